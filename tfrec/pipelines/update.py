"""`tfrec update`: a trained model warm-started on a new window of events, as a new artifact."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd

from tfrec import artifact as artifact_lib
from tfrec import config as config_lib
from tfrec import errors, inference
from tfrec.data import events_file, loaders, schema, vocab, vocab_growth
from tfrec.data import examples as examples_lib
from tfrec.data import prepared as prepared_lib
from tfrec.data import split as split_lib
from tfrec.models import warm_start
from tfrec.ranking import builder as ranking_builder
from tfrec.ranking import training as ranking_training
from tfrec.training import state as state_lib
from tfrec.training import trainer

PathLike = os.PathLike | str
RECORD = "update.json"


def _refuse_overlap(source: Path, out: Path) -> None:
    """An update never writes where the artifact it reads lives (nor publishes over it)."""
    src, dst = source.resolve(), out.resolve()
    if dst == src.parent or dst == src or src in dst.parents or dst in src.parents:
        raise errors.WorkdirError(
            f"`--workdir {out}` must be a folder apart from the artifact `{source}`: an update "
            "writes a new artifact and never modifies the one it starts from"
        )


def combined(old: schema.Dataset, window: schema.Dataset, catalog: pd.DataFrame):
    """The model's data after the update: old events then the window's, one catalog."""
    interactions = pd.concat([old.interactions, window.interactions], ignore_index=True)
    # Events sent again (a window overlapping the old one) count once.
    interactions = interactions.drop_duplicates().sort_values("timestamp", kind="stable")
    users = pd.concat([old.users, window.users], ignore_index=True).drop_duplicates("user_id")
    report = schema.CleaningReport(
        source=f"{old.report.source} + {window.report.source}",
        rows_read=old.report.rows_read + window.report.rows_read,
        rows_kept=len(interactions),
        dropped={
            k: old.report.dropped.get(k, 0) + window.report.dropped.get(k, 0)
            for k in {**old.report.dropped, **window.report.dropped}
        },
        treatments={**old.report.treatments, **window.report.treatments},
    )
    return schema.Dataset(
        old.name, interactions.reset_index(drop=True), catalog, users.reset_index(drop=True), report
    )


def _training_examples(
    interactions: pd.DataFrame,
    data: config_lib.DataConfig,
    new_start: int,
    cut: int,
    replay_ratio: float,
    seed: int,
) -> tuple[examples_lib.RetrievalExamples, dict[str, int]]:
    """The window's examples before `cut`, after a uniform sample of the old window's."""
    new = examples_lib.build_examples(
        interactions, new_start, cut, data.max_history, data.target_events
    )
    parts, counts = [], {"new_window": len(new), "replayed": 0, "old_window": 0}
    if replay_ratio > 0:
        old = examples_lib.build_examples(
            interactions, np.iinfo(np.int64).min, new_start, data.max_history, data.target_events
        )
        size = min(len(old), int(round(replay_ratio * len(new))))
        rows = np.sort(np.random.default_rng(seed).choice(len(old), size=size, replace=False))
        parts.append(old.subset(rows))
        counts.update(replayed=size, old_window=len(old))
    parts.append(new)
    return examples_lib.concatenate(parts), counts


def _refresh_ranker(source, config, out: Path, prepared, old_towers, new_towers) -> dict:
    """The ranker warm-started from the old one, its frozen item vectors recomputed.

    Not trained: its inputs (id embeddings, retrieval score, the candidate's and history's
    item vectors) keep their meaning after a few epochs of the towers, new ids start from the
    OOV rows it already learned, and the item vectors it reads come from the updated towers.
    That costs one pass over the catalog instead of building ranking examples and training.
    """
    old = ranking_training.load_ranker(source.config, source.root, source.prepared(), old_towers)
    heads = json.loads(ranking_training.heads_path(source.root).read_text("utf-8"))["heads"]
    vectors = inference.item_embeddings(new_towers.candidate_model, prepared.table)
    ranker = ranking_builder.build_ranker(
        config.ranking, prepared.spec, list(prepared.table.item_ids), vectors, tuple(heads)
    )
    grown = warm_start.copy_weights(old.network.weights, ranker.network.weights)
    wd = ranking_training.ranking_workdir(out)
    wd.root.mkdir(parents=True, exist_ok=True)
    for path in (ranking_training.heads_path, ranking_training.blend_path):
        if path(source.root).is_file():
            config_lib.write_text_atomic(path(out), path(source.root).read_text("utf-8"))
    previous_path = ranking_training.ranking_workdir(source.root).history
    previous = json.loads(previous_path.read_text("utf-8")) if previous_path.is_file() else {}
    best = float(previous.get("best_validation_score", float("nan")))
    state_lib.TrainingState(wd, ranker, None).save_best(0, best)
    summary = {
        "warm_started_from": str(source.root),
        "epochs_run": 0,
        "grown": {k: list(v) for k, v in grown.items()},
        "heads": heads,
        "best_validation_score": best,
    }
    config_lib.write_text_atomic(wd.history, json.dumps(summary, indent=2))
    return summary


def update(
    artifact: PathLike,
    events: PathLike,
    workdir: PathLike,
    items: Optional[PathLike] = None,
    overrides: Sequence[str] = (),
) -> dict[str, Any]:
    """Warm-starts a trained model on a new window of events and publishes a new artifact.

    The vocabularies grow stably (old ids keep their rows; ids first seen in the window are
    appended, starting from the OOV row); the towers start from the artifact's weights and
    train `update.epochs` on the window's examples before its last
    `update.validation_fraction` (which picks the best epoch and re-tunes the repeat prior),
    after a uniform replay sample of the old window's examples (`update.replay_ratio` per new
    one). The ranker is warm-started and not trained (`_refresh_ranker`); the blend is kept.
    The catalog keeps every old item at its row and appends new ones. `artifact` is only read.

    Args:
        artifact: path. The model artifact (or a run folder holding one).
        events: path. The new window's events in the canonical columns
            (`tfrec.data.events_file`).
        workdir: path. The new run folder; its `artifact/` is the updated model.
        items: path or None. New or changed items in the canonical columns.
        overrides: `update.*=value` settings for this update.

    Returns:
        dict: what was grown, replayed, retired and trained, timings and the new artifact.

    Raises:
        errors.DataError: a bad events or items file (file, row, field), a window with no
            validation query, or an update that would shrink a vocabulary or the catalog.
        errors.WorkdirError: `workdir` overlaps the artifact.
    """
    start = time.perf_counter()
    source = artifact_lib.Artifact(artifact)
    out = Path(workdir)
    _refuse_overlap(source.root, out)
    config = config_lib.with_overrides(source.config, overrides, ["update"])
    uc = config.update
    window = events_file.load_window(events, items, loaders.rules(config.data))
    if len(window.interactions) == 0:
        raise errors.DataError(
            "expected at least one event in the new window, received none after cleaning",
            path=events,
        )
    old_ds, old_spec = source.dataset(), source.spec()
    catalog = vocab_growth.merge_catalog(
        old_ds.items, window.items, source.root / "data" / "items.parquet"
    )
    dataset = combined(old_ds, window, catalog)
    spec = vocab_growth.grow_spec(old_spec, window.interactions, catalog)
    vocab_growth.check_growth(old_spec, spec, source.workdir.spec)

    ts = window.interactions["timestamp"].to_numpy()
    new_start, end = int(ts.min()), int(ts.max())
    cut = new_start + int(math.ceil((end + 1 - new_start) * (1.0 - uc.validation_fraction)))
    inter = dataset.interactions
    split = split_lib.Split(
        train=inter[inter["timestamp"] < cut],
        validation=inter[inter["timestamp"] >= cut],
        test=inter.iloc[:0],
        validation_start=cut,
        test_start=end + 1,
    )
    train_examples, counts = _training_examples(
        inter, config.data, new_start, cut, uc.replay_ratio, config.train.seed
    )
    if len(train_examples) == 0:
        raise errors.DataError(
            "expected training events in the new window before its last "
            f"`update.validation_fraction` ({uc.validation_fraction}), received none",
            path=events,
        )
    prepared = prepared_lib.PreparedData(
        dataset=dataset,
        split=split,
        spec=spec,
        table=vocab.build_item_table(catalog, spec),
        item_counts=vocab.item_counts(pd.DataFrame({"item_id": train_examples.item_id}), spec),
        data=config.data,
    )
    prepared._examples["train"] = train_examples
    if len(prepared.validation) == 0:
        raise errors.DataError(
            f"the last {uc.validation_fraction} of the new window (events from unix second "
            f"{cut}) must hold at least one validation query, received none: pass a longer "
            "window or a larger `update.validation_fraction`",
            path=events,
        )

    old_towers = trainer.load_trained(source.config, source.root, source.prepared())
    grown: dict[str, tuple[int, int]] = {}

    def warm(model) -> None:
        for part in ("query_model", "candidate_model"):
            copied = warm_start.copy_weights(
                getattr(old_towers, part).weights, getattr(model, part).weights
            )
            grown.update(copied)

    prep_seconds = time.perf_counter() - start
    towers = trainer.train(config, out, prepared, warm_start=warm, epochs=uc.epochs)
    new_towers = trainer.load_trained(config, out, prepared)
    ranker = None
    if source.has_ranker:
        ranker = _refresh_ranker(source, config, out, prepared, old_towers, new_towers)
    record: dict[str, Any] = {
        "from": {
            "artifact": str(source.root),
            "created": source.manifest.get("created"),
            "fingerprint": source.manifest["data"]["fingerprint"],
        },
        "window": {
            "events": str(events),
            "items": None if items is None else str(items),
            "start": new_start,
            "end": end,
            "validation_start": cut,
            "interactions": len(window.interactions),
        },
        "settings": config_lib.to_dict(config)["update"],
        "vocabularies": {
            key: {"before": len(getattr(old_spec, key)), "after": len(getattr(spec, key))}
            for key in vocab_growth.GROWN
        },
        "catalog": {"before": len(old_ds.items), "after": len(catalog)},
        "tables_grown": {k: list(v) for k, v in grown.items()},
        "examples": counts,
    }
    if uc.retire_after_days is not None:
        record["retired"] = vocab_growth.retired(inter, spec, end, uc.retire_after_days)
    config_lib.write_text_atomic(out / RECORD, json.dumps(record, indent=2))
    # The new model is the old one, grown: the same config (this update's settings are in
    # update.json), so a later update starts from the settings the model was trained with.
    config_lib.save(source.config, out / "config.yaml")
    published = artifact_lib.publish(
        out, config, prepared, provenance={"updated_from": record["from"]}
    )
    seconds = time.perf_counter() - start
    summary = {
        **record,
        "towers": {k: towers[k] for k in ("epochs_run", "best_epoch", "seconds") if k in towers},
        "best_validation_recall@50": towers.get("best_validation_recall@50"),
        "ranker": ranker,
        "seconds": {"preparing": prep_seconds, "total": seconds},
        "artifact": str(published),
    }
    print(
        f"updated {source.root} -> {published}: "
        + ", ".join(f"{k} {v['before']} -> {v['after']}" for k, v in record["vocabularies"].items())
        + f", catalog {len(old_ds.items)} -> {len(catalog)}; {counts['new_window']} new and "
        f"{counts['replayed']} replayed examples; {seconds:.1f}s"
    )
    return summary
