"""Trains the DCN-v2 ranker on the retrieval stage's own candidates, into `workdir/ranking`."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Optional

import numpy as np
import tensorflow as tf

from tfrec import config as config_lib
from tfrec import errors, inference
from tfrec.data import prepared as prepared_lib
from tfrec.models import repeat_prior
from tfrec.ranking import builder, dataset, sampling
from tfrec.ranking import metrics as ranking_metrics
from tfrec.ranking import model as model_lib
from tfrec.training import fit as fit_lib
from tfrec.training import state as state_lib
from tfrec.training import workdir as workdir_lib

# Cap on training positives: with the default 9 negatives each, 50k positives are 500k rows, an
# epoch of ~30 s on 2 CPU cores. The ranker's windows of the demo and of Online Retail (about 36k
# invoice lines in October 2011) fit whole; larger logs are subsampled by whole queries.
MAX_TRAIN_POSITIVES = 50_000
_EVAL_BATCH = 4096


def ranking_workdir(workdir) -> workdir_lib.Workdir:
    """The ranker's part of a run: `<workdir>/ranking` (heads.json, checkpoints, best, history)."""
    return workdir_lib.Workdir(Path(workdir) / "ranking")


def heads_path(workdir) -> Path:
    return ranking_workdir(workdir).root / "heads.json"


def blend_path(workdir) -> Path:
    """The final score's blend of retrieval and ranker (`ranking.blend.Blend`), tuned after training."""
    return ranking_workdir(workdir).root / "blend.json"


def has_ranker(workdir) -> bool:
    """Whether `workdir` holds a trained ranker (its heads and a best checkpoint)."""
    best = ranking_workdir(workdir).best
    return heads_path(workdir).is_file() and tf.train.latest_checkpoint(str(best)) is not None


def selection_score(head_metrics: dict, loss_weights: dict) -> float:
    """The validation number that picks the best epoch (higher is better).

    The loss-weighted mean AUC of the binary heads that have both classes; with no such head
    (e.g. a rating-only ranker), minus the mean RMSE of the regression heads.
    """
    aucs = [
        (loss_weights.get(h, 1.0), m["auc"])
        for h, m in head_metrics.items()
        if "auc" in m and math.isfinite(m["auc"]) and loss_weights.get(h, 1.0) > 0
    ]
    if aucs:
        weights = np.array([w for w, _ in aucs])
        return float(np.dot(weights, [a for _, a in aucs]) / weights.sum())
    rmses = [m["rmse"] for m in head_metrics.values() if "rmse" in m]
    return -float(np.mean(rmses)) if rmses else -math.inf


WINDOWS = ("validation", "train")


def example_windows(ranking_config: config_lib.RankingConfig, split) -> tuple:
    """((start, end), (start, end)) of the ranker's training and validation examples.

    "validation" (the default) splits the validation window in time: the first
    `1 - holdout` of it trains, the rest picks the epoch. The retrieval towers never trained
    on those events, so the `retrieval_score` the ranker reads there is as reliable as on
    live traffic; on the training window the towers' scores of their own training positives
    are inflated, and a ranker trained there learns to over-trust them. "train" trains on
    the training window and validates on the validation window. The test window is never
    used. Windows are [start, end) in unix seconds; None is open.

    Raises:
        errors.ConfigError: unknown `examples_window`, or `holdout` outside (0, 1).
    """
    window = ranking_config.examples_window
    if window not in WINDOWS:
        raise errors.ConfigError(
            f"`ranking.examples_window` must be one of {WINDOWS}, received {window!r}"
        )
    holdout = ranking_config.holdout
    if isinstance(holdout, bool) or not isinstance(holdout, (int, float)) or not 0 < holdout < 1:
        raise errors.ConfigError(f"`ranking.holdout` must lie in (0, 1), received {holdout!r}")
    if window == "train":
        return (None, split.validation_start), (split.validation_start, split.test_start)
    span = split.test_start - split.validation_start
    cut = split.validation_start + int(round(span * (1.0 - holdout)))
    return (split.validation_start, cut), (cut, split.test_start)


def _finished(wd: workdir_lib.Workdir, config: config_lib.Config) -> bool:
    """Whether the ranker of `wd` ran all `ranking.epochs` or stopped early.

    Checked before building any example, the costly part of a resumed run with nothing to do.
    """
    if tf.train.latest_checkpoint(str(wd.checkpoints)) is None:
        return False
    state = state_lib.TrainingState(wd, tf.Module(), None)
    epoch = state.restore(verbose=False)
    return epoch >= config.ranking.epochs or state.out_of_patience(
        config.train.early_stopping_patience
    )


def _build(config, prepared, retrieval_model, heads) -> tuple:
    item_vectors = inference.item_embeddings(retrieval_model.candidate_model, prepared.table)
    ranker = builder.build_ranker(
        config.ranking, prepared.spec, list(prepared.table.item_ids), item_vectors, heads
    )
    return ranker, item_vectors


def train_ranker(
    config: config_lib.Config,
    workdir,
    prepared: prepared_lib.PreparedData,
    retrieval_model,
    max_positives: Optional[int] = MAX_TRAIN_POSITIVES,
) -> dict:
    """Trains the ranker of a trained retrieval run into `<workdir>/ranking`, resumably.

    Training rows come from the window `example_windows` picks (`sampling.labeled_examples`,
    at most `max_positives` positives); the ranker's frozen item vectors are the retrieval
    candidate tower's catalog embeddings. After each epoch the per-head AUC and log loss on
    validation examples (built the same way from the later window) are logged to
    `<workdir>/tb/ranking`, and the epoch with the best `selection_score` is kept in
    `ranking/best`. A finished run (all
    `ranking.epochs` done, or stopped early) trains nothing when resumed; so a ranker does not
    follow a retrieval model trained further later (more `train.epochs`): delete
    `<workdir>/ranking` to retrain it on the new candidates.

    Args:
        config: Config. `ranking`, `recommend.retrieve_n`, `train.seed`,
            `train.early_stopping_patience`, `train.histogram_freq`.
        workdir: path. The run directory of the retrieval model.
        prepared: PreparedData.
        retrieval_model: RetrievalModel. The trained first stage (best weights).
        max_positives: int or None. Cap on training positives (whole queries are kept).
            Defaults to MAX_TRAIN_POSITIVES.

    Returns:
        Summary dict: heads, epochs run, best epoch and score, validation metrics per head,
        example counts, seconds. Also written to `ranking/history.json`.
    """
    wd = ranking_workdir(workdir)
    heads = builder.resolve_heads(config.ranking, sampling.data_heads(prepared))
    config_lib.write_text_atomic(heads_path(workdir), json.dumps({"heads": list(heads)}, indent=2))
    tf.keras.utils.set_random_seed(config.train.seed)
    ranker, item_vectors = _build(config, prepared, retrieval_model, heads)
    if _finished(wd, config):
        print("Ranker already trained: nothing to do", flush=True)
        previous = json.loads(wd.history.read_text()) if wd.history.is_file() else {}
        return {**previous, "epochs_run": 0}

    seed = config.train.seed
    (train_start, train_end), (val_start, val_end) = example_windows(config.ranking, prepared.split)
    prior = repeat_prior.RepeatPrior.load(workdir_lib.Workdir(workdir).repeat_prior)
    common = dict(
        retrieval_model=retrieval_model, heads=heads, item_vectors=item_vectors, prior=prior
    )
    train_q, train_pairs = sampling.labeled_examples(
        config,
        prepared,
        start=train_start,
        end=train_end,
        max_positives=max_positives,
        seed=seed,
        **common,
    )
    val_q, val_pairs = sampling.labeled_examples(
        config,
        prepared,
        start=val_start,
        end=val_end,
        max_positives=sampling.MAX_EVAL_POSITIVES,
        seed=seed + 1,
        **common,
    )
    windows = {"training": (train_start, train_end), "validation": (val_start, val_end)}
    for name, pairs in (("training", train_pairs), ("validation", val_pairs)):
        if len(pairs) == 0:
            start, end = windows[name]
            raise errors.DataError(
                f"the ranker's {name} examples (events in [{start}, {end}) unix seconds, "
                f"`ranking.examples_window: {config.ranking.examples_window}`) must hold at "
                "least one ranking query on a catalog item, received none"
            )
    catalog = sampling.ranking_catalog(prepared)
    train_ds = dataset.make_dataset(
        train_pairs, train_q, catalog, heads, config.ranking.batch_size, shuffle_seed=seed
    )
    val_ds = dataset.make_dataset(val_pairs, val_q, catalog, heads, _EVAL_BATCH)

    def validate(model: tf.keras.Model) -> tuple[float, dict[str, float]]:
        per_head = ranking_metrics.evaluate_heads(model.network, val_ds, heads)
        logs = {
            f"val_{h}_{name}": v for h, values in per_head.items() for name, v in values.items()
        }
        return selection_score(per_head, ranker.loss_weights), logs

    def describe(logs: dict[str, float]) -> str:
        aucs = [f"{h} {logs[f'val_{h}_auc']:.4f}" for h in heads if f"val_{h}_auc" in logs]
        return "val auc " + ", ".join(aucs) if aucs else ""

    result = fit_lib.fit(
        ranker,
        ranker.optimizer,
        wd,
        train_ds,
        epochs=config.ranking.epochs,
        validation=fit_lib.Validation(
            "val score", validate, config.train.early_stopping_patience, describe
        ),
        tb_dir=Path(workdir) / "tb" / "ranking",
        histogram_freq=config.train.histogram_freq,
        label="ranker epoch",
    )
    summary = {
        "heads": list(heads),
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "best_validation_score": result.best_value,
        "validation": ranking_metrics.evaluate_heads(ranker.network, val_ds, heads),
        "windows": {"train": [train_start, train_end], "validation": [val_start, val_end]},
        "train_queries": len(train_q),
        "train_examples": len(train_pairs),
        "validation_examples": len(val_pairs),
        "seconds": result.seconds,
        "examples_per_second": result.epochs_run * len(train_pairs) / result.seconds
        if result.seconds
        else None,
        "history": result.history,
    }
    config_lib.write_text_atomic(wd.history, json.dumps(summary, indent=2))
    return summary


def load_ranker(
    config: config_lib.Config, workdir, prepared: prepared_lib.PreparedData, retrieval_model
) -> model_lib.RankingModel:
    """Rebuilds the ranker of `workdir` from its config and heads, with its best weights.

    Raises:
        errors.WorkdirError: `workdir` holds no trained ranker.
    """
    if not has_ranker(workdir):
        raise errors.WorkdirError(
            f"workdir `{workdir}` holds no trained ranker: expected `ranking/heads.json` and a "
            f"checkpoint in `ranking/best`, one or both are missing. Run `tfrec train --workdir "
            f"{workdir}` (it trains the ranker after the retrieval model)."
        )
    heads = json.loads(heads_path(workdir).read_text(encoding="utf-8"))["heads"]
    ranker, _ = _build(config, prepared, retrieval_model, tuple(heads))
    fit_lib.restore_best(ranker, ranking_workdir(workdir))
    return ranker
