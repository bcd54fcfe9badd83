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
from tfrec.serving import log_events, pseudonym
from tfrec.training import state as state_lib
from tfrec.training import trainer

PathLike = os.PathLike | str
RECORD = "update.json"
LOG_EVENTS = "events-from-logs.csv"  # in the new run folder: the events the logs gave


def _refuse_overlap(source: Path, out: Path) -> None:
    """An update never writes where the artifact it reads lives (nor publishes over it)."""
    src, dst = source.resolve(), out.resolve()
    if dst == src.parent or dst == src or src in dst.parents or dst in src.parents:
        raise errors.WorkdirError(
            f"`--workdir {out}` must be a folder apart from the artifact `{source}`: an update "
            "writes a new artifact and never modifies the one it starts from"
        )


def combined(
    old: schema.Dataset,
    window: schema.Dataset,
    catalog: pd.DataFrame,
    same_event: Optional[Sequence[str]] = None,
):
    """The model's data after the update: old events then the window's, one catalog.

    `same_event`: the columns by which two events are the same one (the first is kept);
    None: all columns.
    """
    interactions = pd.concat([old.interactions, window.interactions], ignore_index=True)
    # Events sent again (a window overlapping the old one) count once.
    interactions = interactions.drop_duplicates(same_event)
    interactions = interactions.sort_values("timestamp", kind="stable")
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


def _events_from_logs(
    source: artifact_lib.Artifact,
    logs: PathLike,
    log_key: Optional[PathLike],
    outcomes: Sequence[PathLike],
) -> log_events.LogEvents:
    """The logs' events, known users matched through the key; printed as counted."""
    key = None if log_key is None else pseudonym.read_key(log_key, "--log-key")
    found = log_events.read(logs, outcomes, key, source.spec().users)
    print(
        f"from logs {logs}: {len(found.events)} events from {found.outcomes} outcomes of "
        f"{found.records} logged requests ({found.unmatched_request} for requests not in the "
        f"logs, {found.no_user} without a user); users: {found.matched_users} matched known "
        f"users, {found.pseudonym_users} stayed pseudonyms, {found.new_raw_users} new raw ids"
    )
    return found


def _load_window(
    events: Optional[PathLike],
    items: Optional[PathLike],
    from_logs: Optional[log_events.LogEvents],
    out: Path,
    rules,
) -> tuple[schema.Dataset, Path]:
    """The new window: `events`, the logs' events, or both with repeated events once.

    The logs' events are written to `out/LOG_EVENTS` and read back by the events loader, so
    they are checked and cleaned as an events file is, and the run keeps what it learned from.
    """
    windows = []
    if events is not None:
        windows.append(events_file.load_window(events, items, rules))
    if from_logs is not None:
        path = out / LOG_EVENTS
        out.mkdir(parents=True, exist_ok=True)
        from_logs.events.to_csv(path, index=False)
        windows.append(events_file.load_window(path, items if events is None else None, rules))
    window = windows[0]
    if len(windows) == 2:
        catalog = pd.concat([w.items for w in windows]).drop_duplicates("item_id")
        window = combined(windows[0], windows[1], catalog, list(log_events.COLUMNS))
    return window, Path(events) if events is not None else out / LOG_EVENTS


def update(
    artifact: PathLike,
    events: Optional[PathLike],
    workdir: PathLike,
    items: Optional[PathLike] = None,
    overrides: Sequence[str] = (),
    logs: Optional[PathLike] = None,
    log_key: Optional[PathLike] = None,
    outcomes: Sequence[PathLike] = (),
) -> dict[str, Any]:
    """Warm-starts a trained model on a new window of events and publishes a new artifact.

    The vocabularies grow stably (old ids keep their rows; ids first seen in the window are
    appended, starting from the OOV row); the towers start from the artifact's weights and
    train `update.epochs` on the window's examples before its last
    `update.validation_fraction` (which picks the best epoch and re-tunes the repeat prior),
    after a uniform replay sample of the old window's examples (`update.replay_ratio` per new
    one). The ranker is warm-started and not trained (`_refresh_ranker`); the blend is kept.
    The catalog keeps every old item at its row and appends new ones. `artifact` is only read.

    With `logs`, the window also holds what the served model's users did
    (`tfrec.serving.log_events`): one event per reported outcome of a logged request, the
    user matched to a known one through `log_key` or kept as a pseudonym.

    Args:
        artifact: path. The model artifact (or a run folder holding one).
        events: path or None. The new window's events in the canonical columns
            (`tfrec.data.events_file`). None: only the logs' events (`logs` is then needed).
        workdir: path. The new run folder; its `artifact/` is the updated model.
        items: path or None. New or changed items in the canonical columns.
        overrides: `update.*=value` settings for this update.
        logs: path or None. A `tfrec serve --log-dir` folder whose outcomes become events.
        log_key: path or None. The key file `tfrec serve --log-key-file` used; required for
            pseudonymised logs.
        outcomes: paths. Outcome CSVs read with the folder's own outcome files.

    Returns:
        dict: what was grown, replayed, retired and trained, timings and the new artifact.

    Raises:
        errors.DataError: a bad events or items file (file, row, field), a window with no
            validation query, or an update that would shrink a vocabulary or the catalog.
        errors.WorkdirError: `workdir` overlaps the artifact.
        errors.ConfigError: neither `events` nor `logs`; pseudonymised logs without their key.
    """
    start = time.perf_counter()
    source = artifact_lib.Artifact(artifact)
    out = Path(workdir)
    _refuse_overlap(source.root, out)
    config = config_lib.with_overrides(source.config, overrides, ["update"])
    uc = config.update
    if events is None and logs is None:
        raise errors.ConfigError("expected `--events`, `--logs` or both, received neither")
    from_logs = None if logs is None else _events_from_logs(source, logs, log_key, outcomes)
    if from_logs is not None and len(from_logs.events) == 0:
        if events is None:
            raise errors.DataError(
                "expected at least one outcome of a logged request to learn from, received "
                f"none ({from_logs.outcomes} outcomes, {from_logs.records} logged requests)",
                path=logs,
            )
        from_logs = None
    window, events = _load_window(events, items, from_logs, out, loaders.rules(config.data))
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
    if len(train_examples) < config.train.batch_size:
        # Training drops a last partial batch: fewer examples than one batch train nothing.
        raise errors.DataError(
            f"expected at least `train.batch_size` ({config.train.batch_size}) training "
            f"examples, received {len(train_examples)} ({counts['new_window']} from the new "
            f"window before its last {uc.validation_fraction}, {counts['replayed']} replayed): "
            "pass a longer window or a larger `update.replay_ratio`",
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
            "logs": None
            if from_logs is None
            else {"log_dir": str(logs), "events": len(from_logs.events), **from_logs.summary()},
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
