"""The canonical trainer: workdir, resumable checkpoints, early stopping, TensorBoard."""

from __future__ import annotations

import json
import time

import numpy as np
import tensorflow as tf

from tfrec import config as config_lib
from tfrec import inference, precision
from tfrec.data import pipeline
from tfrec.data import prepared as prepared_lib
from tfrec.evaluation import protocol
from tfrec.models import builders
from tfrec.training import callbacks, distribution
from tfrec.training import workdir as workdir_lib

KINDS = ("tfrec", "id_two_tower")
# Validation recall for early stopping is computed on at most this many queries per epoch:
# enough for a stable signal, cheap next to an epoch of training.
_VALIDATION_QUERIES = 2000


def build_model(config: config_lib.Config, prepared, kind: str):
    if kind == "tfrec":
        return builders.build_retrieval_model(config.model, prepared.spec, prepared.item_counts)
    return builders.build_id_two_tower(
        prepared.spec, config.model.embedding_dim, prepared.item_counts
    )


def validation_recall_fn(prepared, k: int = 50):
    """Returns model -> Recall@k on a fixed sample of validation queries (full catalog)."""
    queries = prepared.validation
    n = len(queries.user_id)
    rng = np.random.default_rng(0)
    keep = np.sort(rng.choice(n, size=min(n, _VALIDATION_QUERIES), replace=False))
    sample = queries.subset(keep)
    relevant = [prepared.catalog_index(r) for r in sample.relevant]

    def recall(model) -> float:
        items = inference.item_embeddings(model.candidate_model, prepared.table)
        q = inference.query_embeddings(model.query_model, sample, prepared.spec)
        result = protocol.evaluate(
            inference.dot_score_fn(q, items), relevant, len(items), ks=(k,)
        )
        return float(result.metrics["all"][f"recall@{k}"])

    return recall


def train(config: config_lib.Config, workdir, prepared=None, kind: str = "tfrec") -> dict:
    """Trains one retrieval model into `workdir`, resuming from its last checkpoint.

    Args:
        config: Config. The resolved run config (written to `workdir/config.yaml` first).
        workdir: path. The run directory.
        prepared: PreparedData or None. Reused when given (e.g. for baselines).
        kind: str. `tfrec` (the full model) or `id_two_tower` (the baseline).

    Returns:
        A summary dict: best validation recall, epochs run, seconds, examples per second.
    """
    wd = workdir_lib.Workdir(workdir)
    wd.claim(config)
    if prepared is None:
        prepared = prepared_lib.prepare(config)
    prepared.spec.save(wd.spec)
    tc = config.train
    policy = precision.resolve_policy(tc.precision)
    tf.keras.utils.set_random_seed(tc.seed)
    strategy = distribution.make_strategy(tc.distribution)
    with strategy.scope():
        precision.set_policy(policy)
        model = build_model(config, prepared, kind)
        optimizer = precision.wrap_optimizer(
            tf.keras.optimizers.Adam(learning_rate=tc.learning_rate), policy
        )
        model.compile(optimizer=optimizer)
    precision.set_policy("float32")

    batch_size = tc.batch_size * strategy.num_replicas_in_sync
    ds = pipeline.retrieval_dataset(
        prepared.train,
        prepared.table,
        prepared.spec,
        batch_size,
        shuffle=True,
        seed=tc.seed,
        query_text_rate=config.data.query_text_rate if kind == "tfrec" else 0.0,
        repeat=tc.steps_per_epoch is not None,
        drop_remainder=True,
    )
    state = callbacks.TrainingState(wd, model, optimizer)
    initial_epoch = state.restore()
    cbs = [
        callbacks.LearningRateLogger(),
        callbacks.ValidationRecall(validation_recall_fn(prepared), state, tc.early_stopping_patience),
        tf.keras.callbacks.TensorBoard(
            log_dir=str(wd.tb), histogram_freq=tc.histogram_freq, update_freq="epoch",
            profile_batch=0,
        ),
        callbacks.Checkpointing(state),
    ]
    num_examples = len(prepared.train.user_id)
    start = time.perf_counter()
    history = model.fit(
        ds,
        epochs=tc.epochs,
        initial_epoch=initial_epoch,
        steps_per_epoch=tc.steps_per_epoch,
        callbacks=cbs,
        verbose=2 if not _interactive() else 1,
    )
    seconds = time.perf_counter() - start
    epochs_run = max(0, len(history.epoch))
    state.restore_best()
    steps = tc.steps_per_epoch or (num_examples // batch_size)
    summary = {
        "kind": kind,
        "precision": policy,
        "replicas": strategy.num_replicas_in_sync,
        "epochs_run": epochs_run,
        "best_epoch": state.best_epoch,
        "best_validation_recall@50": state.best_value,
        "train_examples": num_examples,
        "seconds": seconds,
        "examples_per_second": (epochs_run * steps * batch_size / seconds) if seconds and epochs_run else None,
        "history": {k: [float(x) for x in v] for k, v in history.history.items()},
    }
    config_lib.write_text_atomic(wd.history, json.dumps(summary, indent=2))
    if kind == "tfrec":
        callbacks.write_projector(wd.tb, model, prepared)
    callbacks.write_hparams(wd.tb, config, summary)
    return summary


def load_trained(config: config_lib.Config, workdir, prepared, kind: str = "tfrec"):
    """Rebuilds a model from its config and restores its best weights."""
    wd = workdir_lib.Workdir(workdir)
    model = build_model(config, prepared, kind)
    callbacks.TrainingState(wd, model, None).restore_best(required=True)
    return model


def _interactive() -> bool:
    import sys

    return sys.stdout.isatty()
