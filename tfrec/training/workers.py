"""Which worker writes: the chief writes the run's workdir, every other worker a throwaway copy."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import tensorflow as tf

from tfrec import errors


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run: always, except on the non-chief workers.

    The chief is the `chief` task, or worker 0 when the cluster has none; TensorFlow decides
    it from `TF_CONFIG` (`should_checkpoint`).
    """
    return bool(strategy.extended.should_checkpoint)


def num_workers(strategy: tf.distribute.Strategy) -> int:
    """The number of worker processes training together: 1 but under multi-worker training."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return 1
    spec = strategy.cluster_resolver.cluster_spec()
    return sum(spec.num_tasks(job) for job in spec.jobs if job in ("chief", "worker"))


@contextlib.contextmanager
def write_dir(workdir: Path, strategy: tf.distribute.Strategy) -> Iterator[Path]:
    """Yields where this worker writes its training state: `workdir` on the chief.

    A non-chief worker runs the same program, checkpoints included (saving may run collective
    ops every worker must join), but into a temporary folder that is removed on exit: the
    pattern of TensorFlow's "Multi-worker training with Keras" guide. Unlike the guide's
    `workertemp_<id>` subfolder, the folder is in the system's temporary directory, so a
    workdir on shared storage never holds another worker's files, not even while training.
    The folder starts with a copy of the workdir's checkpoints when this worker can read them
    (shared storage), so every worker resumes from the same epoch.
    """
    if is_chief(strategy):
        yield workdir
        return
    task = strategy.cluster_resolver.task_id
    temp = Path(tempfile.mkdtemp(prefix=f"tfrec-worker{task}-"))
    try:
        for part in ("checkpoints", "best"):
            if (workdir / part).is_dir():
                shutil.copytree(workdir / part, temp / part)
        yield temp
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def check_same_start(strategy: tf.distribute.Strategy, epoch: int, workdir: Path) -> None:
    """Checks every worker resumes from the same epoch; a no-op outside multi-worker training.

    Workers that start from different epochs would train different numbers of steps and wait
    for each other forever; every worker sees the gathered epochs and fails the same way.

    Raises:
        errors.WorkdirError: the workers restored different epochs.
    """
    if num_workers(strategy) == 1:
        return
    per_replica = strategy.run(lambda: tf.constant([epoch], tf.int64))
    epochs = [int(e) for e in strategy.gather(per_replica, axis=0).numpy()]
    if len(set(epochs)) > 1:
        raise errors.WorkdirError(
            f"workdir `{workdir}`: the workers resume from different epochs {epochs} (one per "
            "replica): resuming a multi-worker run needs the workdir on storage every worker "
            "reads, or a new --workdir to start over"
        )
