"""Trains the retrieval towers (tfrec, or the id-only two-tower baseline) through `fit`."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import numpy as np
import tensorflow as tf

from tfrec import config as config_lib
from tfrec import errors, inference, precision
from tfrec.data import pipeline
from tfrec.data import prepared as prepared_lib
from tfrec.evaluation import protocol
from tfrec.models import builders, repeat_prior, retrieval
from tfrec.training import distribution, query_student, tensorboard, workers
from tfrec.training import fit as fit_lib
from tfrec.training import workdir as workdir_lib

KINDS = ("tfrec", "id_two_tower")
# Validation recall for early stopping is computed on at most this many queries per epoch:
# enough for a stable signal, cheap next to an epoch of training.
_VALIDATION_QUERIES = 2000


def build_model(
    config: config_lib.Config, prepared: prepared_lib.PreparedData, kind: str
) -> retrieval.RetrievalModel:
    """The untrained retrieval model of `kind` (`tfrec` or `id_two_tower`) for `prepared`."""
    if kind == "tfrec":
        return builders.build_retrieval_model(config.model, prepared.spec, prepared.item_counts)
    return builders.build_id_two_tower(
        prepared.spec, config.model.embedding_dim, prepared.item_counts
    )


class ValidationSample:
    """A fixed sample of validation queries, scored against the full catalog.

    Used for early stopping (Recall@50) and to tune the repeat prior; never the test split.
    """

    def __init__(
        self, prepared: prepared_lib.PreparedData, size: int = _VALIDATION_QUERIES
    ) -> None:
        queries = prepared.validation
        rng = np.random.default_rng(0)
        keep = np.sort(rng.choice(len(queries), size=min(len(queries), size), replace=False))
        self.prepared = prepared
        self.queries = queries.subset(keep)
        self.relevant = [prepared.catalog_index(r) for r in self.queries.relevant]
        self.history_index = prepared.catalog_index(self.queries.history_item_ids)

    def _evaluate(
        self, score: protocol.ScoreFn, prior: repeat_prior.RepeatPrior, ks: tuple[int, ...]
    ) -> dict[str, float]:
        result = protocol.evaluate(
            prior.apply(score, self.history_index), self.relevant, len(self.prepared.table), ks=ks
        )
        return result.metrics["all"]

    def _score(self, model: retrieval.RetrievalModel) -> protocol.ScoreFn:
        items = inference.item_embeddings(model.candidate_model, self.prepared.table)
        q = inference.query_embeddings(model.query_model, self.queries, self.prepared.spec)
        return inference.dot_score_fn(q, items)

    def recall(self, model: retrieval.RetrievalModel, k: int = 50) -> float:
        """Recall@k of the model's own scores (no repeat prior): the early-stopping signal."""
        metrics = self._evaluate(self._score(model), repeat_prior.RepeatPrior(), (k,))
        return float(metrics[f"recall@{k}"])

    def tune_prior(
        self, model: retrieval.RetrievalModel
    ) -> tuple[repeat_prior.RepeatPrior, list[tuple[float, float, float]]]:
        """Chooses the repeat prior maximizing Recall@50 + NDCG@10 on this sample."""
        score = self._score(model)

        def value(prior: repeat_prior.RepeatPrior) -> float:
            metrics = self._evaluate(score, prior, (10, 50))
            return float(metrics["recall@50"] + metrics["ndcg@10"])

        return repeat_prior.tune(value)


def train(
    config: config_lib.Config,
    workdir: os.PathLike | str,
    prepared: Optional[prepared_lib.PreparedData] = None,
    kind: str = "tfrec",
    warm_start: Optional[Callable[[retrieval.RetrievalModel], Any]] = None,
    epochs: Optional[int] = None,
) -> dict[str, Any]:
    """Trains one retrieval model into `workdir`, resuming from its last checkpoint.

    Under `train.distribution: multi_worker` every worker calls this with the same arguments
    and trains in step with the others; only the chief writes `workdir` and runs what follows
    training (the repeat prior's tuning, the TensorBoard extras), the others write into a
    temporary folder they remove (`workers.write_dir`).

    Args:
        config: Config. The resolved run config (written to `workdir/config.yaml` first).
        workdir: str or path-like. The run directory.
        prepared: PreparedData or None. Reused when given (e.g. for baselines).
        kind: str. `tfrec` (the full model) or `id_two_tower` (the baseline).
        warm_start: callable or None. Sets the freshly built model's weights before training
            (`tfrec update` copies a trained model's); a checkpoint in `workdir` still wins,
            so an interrupted update resumes. None: the builders' initial weights.
        epochs: int or None. Total epochs; None: `train.epochs`.

    Returns:
        A summary dict: best validation recall, epochs run, seconds, examples per second.
    """
    strategy = distribution.make_strategy(config.train.distribution)
    with workers.write_dir(Path(workdir), strategy) as root:
        return _train(
            config, workdir_lib.Workdir(root), prepared, kind, strategy, warm_start, epochs
        )


def _train(
    config: config_lib.Config,
    wd: workdir_lib.Workdir,
    prepared: Optional[prepared_lib.PreparedData],
    kind: str,
    strategy: tf.distribute.Strategy,
    warm_start: Optional[Callable[[retrieval.RetrievalModel], Any]],
    epochs: Optional[int],
) -> dict[str, Any]:
    chief = workers.is_chief(strategy)
    if chief:
        wd.claim(config)
    if prepared is None:
        prepared = prepared_lib.prepare(config)
    prepared.spec.save(wd.spec)
    tc = config.train
    policy = precision.resolve_policy(tc.precision)
    # Every worker seeds alike: the same shuffle order is what lets each keep its own share.
    tf.keras.utils.set_random_seed(tc.seed)
    with strategy.scope():
        precision.set_policy(policy)
        model = build_model(config, prepared, kind)
        if warm_start is not None:
            warm_start(model)
        optimizer = precision.wrap_optimizer(
            tf.keras.optimizers.Adam(learning_rate=tc.learning_rate), policy
        )
        model.compile(optimizer=optimizer)
    precision.set_policy("float32")
    student_summary = None
    if kind == "tfrec" and config.model.text_encoder.query_student.layers:
        student_summary = _distil_query_student(config, wd, prepared, model, strategy, warm_start)

    # `train.batch_size` is per replica: a step reads batch_size x replicas examples over all
    # workers, and each replica's in-batch softmax sees `batch_size` candidates.
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
    # Every worker builds the same global batches and keeps its replicas' slices of each (the
    # examples come from memory, not files, so there is nothing to shard by file).
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    ds = ds.with_options(options)
    validation = ValidationSample(prepared)

    def validate(m: tf.keras.Model) -> tuple[float, dict[str, float]]:
        value = validation.recall(m)
        return value, {"val_recall@50": value}

    result = fit_lib.fit(
        model,
        optimizer,
        wd,
        ds,
        epochs=tc.epochs if epochs is None else epochs,
        validation=fit_lib.Validation("val_recall@50", validate, tc.early_stopping_patience),
        tb_dir=wd.tb,
        histogram_freq=tc.histogram_freq,
        steps_per_epoch=tc.steps_per_epoch,
        label=f"{kind} epoch",
    )
    num_examples = len(prepared.train.user_id)
    steps = tc.steps_per_epoch or (num_examples // batch_size)
    summary = {
        "kind": kind,
        "precision": policy,
        "replicas": strategy.num_replicas_in_sync,
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "best_validation_recall@50": result.best_value,
        "train_examples": num_examples,
        "seconds": result.seconds,
        "examples_per_second": (result.epochs_run * steps * batch_size / result.seconds)
        if result.seconds and result.epochs_run
        else None,
        "history": result.history,
    }
    if student_summary is not None:
        summary["query_student"] = student_summary
    if not chief:
        return summary  # what follows writes the run, or only feeds what does
    if result.finished_before and wd.history.is_file():
        # A resumed run with nothing left to train keeps the timing of the run that trained;
        # `epochs_run` stays 0: it describes this invocation.
        previous = json.loads(wd.history.read_text(encoding="utf-8"))
        kept = ("seconds", "examples_per_second", "history", "query_student")
        summary.update({k: previous[k] for k in kept if k in previous})
    if kind == "tfrec":
        prior, tried = validation.tune_prior(model)
        prior.save(wd.repeat_prior)
        summary["repeat_prior"] = {"beta": prior.beta, "decay": prior.decay, "tried": tried}
        print(f"repeat prior (tuned on validation): beta={prior.beta} decay={prior.decay}")
    config_lib.write_text_atomic(wd.history, json.dumps(summary, indent=2))
    if kind == "tfrec":
        tensorboard.write_projector(wd.tb, model, prepared)
    tensorboard.write_hparams(wd.tb, config, summary)
    return summary


def _distil_query_student(
    config: config_lib.Config,
    wd: workdir_lib.Workdir,
    prepared: prepared_lib.PreparedData,
    model: retrieval.RetrievalModel,
    strategy: tf.distribute.Strategy,
    warm_start: Optional[Callable[[retrieval.RetrievalModel], Any]],
) -> Optional[dict[str, Any]]:
    """Distils the text encoder's query student unless its weights come from elsewhere.

    A resumed run restores the distilled student from its checkpoint, and an update copies
    the current model's: neither distils again.
    """
    if warm_start is not None or tf.train.latest_checkpoint(str(wd.checkpoints)):
        return None
    if strategy.num_replicas_in_sync > 1:
        raise errors.ConfigError(
            "`model.text_encoder.query_student` is distilled in one process: train it with "
            "`train.distribution` other than multi_worker, or set its `layers` to 0"
        )
    student = config.model.text_encoder.query_student
    # Titles of the training vocabulary's items: text the shop had before the split.
    rows = prepared.table.index_of(np.asarray(prepared.spec.items, dtype=object))
    return query_student.distil(
        model.query_model.get_layer("text_encoder"),
        prepared.spec,
        [str(t) for t in prepared.table.titles[rows[rows >= 0]]],
        steps=student.steps,
        batch_size=student.batch_size,
        learning_rate=student.learning_rate,
        seed=config.train.seed,
    )


def load_trained(
    config: config_lib.Config,
    workdir: os.PathLike | str,
    prepared: prepared_lib.PreparedData,
    kind: str = "tfrec",
) -> retrieval.RetrievalModel:
    """Rebuilds a model from its config and restores its best weights.

    Args:
        config: Config. The run config the model was trained with.
        workdir: str or path-like. The run directory.
        prepared: PreparedData. The data the model was trained on.
        kind: str. `tfrec` or `id_two_tower`, as in `train`.

    Returns:
        The RetrievalModel with its best weights.

    Raises:
        WorkdirError: when `workdir` holds no checkpoint.
    """
    model = build_model(config, prepared, kind)
    fit_lib.restore_best(model, workdir_lib.Workdir(workdir))
    return model
