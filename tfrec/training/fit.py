"""The one training loop of tfrec: the retrieval towers and the ranker both train through `fit`.

What it adds to `Model.fit`: resuming from the latest checkpoint of a workdir, a validation
score computed after each epoch that keeps the best weights and stops early, TensorBoard logs,
and a summary. What each model trains on and how it is validated stays with the model's own
module (`tfrec.training.trainer` for the towers, `tfrec.ranking.training` for the ranker).
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

import tensorflow as tf

from tfrec.training import callbacks, workers
from tfrec.training import state as state_lib
from tfrec.training import workdir as workdir_lib

# How the best epoch is chosen; defined beside the callback that applies it.
Validation = callbacks.Validation


@dataclasses.dataclass
class FitResult:
    """What one call of `fit` did.

    `epochs_run` counts this call's epochs only: 0 when the workdir already held a finished
    run (all epochs done, or stopped early), which `fit` then does not train further.
    """

    epochs_run: int
    initial_epoch: int
    best_epoch: int
    best_value: float
    seconds: float
    history: dict[str, list[float]]

    @property
    def finished_before(self) -> bool:
        return self.epochs_run == 0


def fit(
    model: tf.keras.Model,
    optimizer: Optional[tf.keras.optimizers.Optimizer],
    workdir: workdir_lib.Workdir,
    dataset: tf.data.Dataset,
    *,
    epochs: int,
    validation: Validation,
    tb_dir: Path,
    histogram_freq: int = 1,
    steps_per_epoch: Optional[int] = None,
    label: str = "epoch",
    lowest_score: float = -float("inf"),
    extra_callbacks: Sequence[tf.keras.callbacks.Callback] = (),
) -> FitResult:
    """Trains `model` (compiled) on `dataset` in `workdir`, resumably; ends on its best weights.

    Args:
        model: compiled tf.keras.Model.
        optimizer: its optimizer, checkpointed with it so a resumed run continues its moments.
        workdir: Workdir. Checkpoints go to `checkpoints/` (latest) and `best/`.
        dataset: tf.data.Dataset of training batches.
        epochs: int. Total epochs, counting those of earlier (resumed) calls.
        validation: Validation. Picks the best epoch and stops early.
        tb_dir: path. TensorBoard log folder.
        histogram_freq: int. Weight histograms every this many epochs (0: none).
        steps_per_epoch: int or None. None: one pass over `dataset`.
        label: str. Names the model in progress lines (e.g. "ranker epoch 3: ...").
        lowest_score: float. The best score before any epoch; scores may be negative.
        extra_callbacks: more Keras callbacks, run before the validation.

    Returns:
        FitResult.
    """
    state = state_lib.TrainingState(workdir, model, optimizer)
    state.best.assign(lowest_score)  # a restore overwrites it
    initial_epoch = state.restore()
    workers.check_same_start(model.distribute_strategy, initial_epoch, workdir.root)
    if initial_epoch >= epochs or state.out_of_patience(validation.patience):
        state.restore_best()
        print(f"{label}: already trained ({initial_epoch} epochs), nothing to do", flush=True)
        return FitResult(0, initial_epoch, state.best_epoch, state.best_value, 0.0, {})
    cbs = [
        *extra_callbacks,
        callbacks.LearningRateLogger(),
        callbacks.BestEpoch(validation, state, label),
        tf.keras.callbacks.TensorBoard(
            log_dir=str(tb_dir),
            histogram_freq=histogram_freq,
            update_freq="epoch",
            profile_batch=0,
        ),
        callbacks.Checkpointing(state),
    ]
    start = time.perf_counter()
    history = model.fit(
        dataset,
        epochs=epochs,
        initial_epoch=initial_epoch,
        steps_per_epoch=steps_per_epoch,
        callbacks=cbs,
        verbose=1 if sys.stdout.isatty() else 2,
    )
    seconds = time.perf_counter() - start
    state.restore_best()
    return FitResult(
        epochs_run=len(history.epoch),
        initial_epoch=initial_epoch,
        best_epoch=state.best_epoch,
        best_value=state.best_value,
        seconds=seconds,
        history=_floats(history.history),
    )


def restore_best(model: tf.keras.Model, workdir: workdir_lib.Workdir) -> None:
    """Loads the best weights `fit` kept in `workdir` into `model` (built the same way).

    Raises:
        errors.WorkdirError: `workdir` holds no checkpoint.
    """
    state_lib.TrainingState(workdir, model, None).restore_best(required=True)


def _floats(history: dict[str, Any]) -> dict[str, list[float]]:
    return {k: [float(x) for x in v] for k, v in history.items()}
