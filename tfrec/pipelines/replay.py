"""`tfrec replay`: month by month, a never-updated, an updated, a gated and a retrained model."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd

from tfrec import artifact as artifact_lib
from tfrec import config as config_lib
from tfrec import errors
from tfrec.data import examples as examples_lib
from tfrec.data import loaders, schema
from tfrec.data import prepared as prepared_lib
from tfrec.evaluation import refresh_lag
from tfrec.pipelines import replay_chart, replay_gates, window_eval
from tfrec.pipelines import update as update_run
from tfrec.training import trainer

# Arm -> (the model it serves, whether its index is refreshed `replay.refresh_lag_seconds`
# behind the log). `never` is the model as trained, as before refreshes existed; every served
# arm gets new items once the lag has passed. `gated` serves the champion: the updated model
# only from the month its gates passed.
ARMS = {
    "never": ("never", False),
    "never+refresh": ("never", True),
    "updated+refresh": ("updated", True),
    "gated": ("gated", True),
    "retrained+refresh": ("retrained", True),
}
# Share of each training window, at its end, that picks the best epoch: the update's
# `update.validation_fraction`, so the updated and retrained towers train on the same events.
VALIDATION_FRACTION = 0.2
# A last month with fewer days of data is partial (UCI Online Retail stops on 9 December 2011).
_MIN_DAYS = 20


def month_starts(interactions: pd.DataFrame, months: int) -> list[int]:
    """Unix seconds of the first second of the last `months + 1` full calendar months, and of
    the month after them: `[W_1, E_1 = W_2, ..., E_months, end]`.

    Raises:
        errors.ConfigError: the data holds fewer full months (plus one to start from).
    """
    ts = pd.to_datetime(interactions["timestamp"], unit="s", utc=True)
    last = ts.max()
    end = (last + pd.Timedelta(days=1)).normalize()
    end_month = end.tz_convert(None).to_period("M").to_timestamp().tz_localize("UTC")
    if (end - end_month).days < _MIN_DAYS:
        end = end_month  # drop the partial month
    else:
        end = end_month + pd.offsets.MonthBegin(1)
    starts = [end - pd.offsets.MonthBegin(i) for i in range(months + 1, 0, -1)] + [end]
    if starts[0] - pd.offsets.MonthBegin(1) < ts.min():
        raise errors.ConfigError(
            f"`--months {months}` needs {months + 2} full months of data (one to start from); "
            f"the data spans {ts.min().date()} to {last.date()}"
        )
    return [int(s.timestamp()) for s in starts]


def _before(dataset: schema.Dataset, end: int) -> schema.Dataset:
    """The data as the shop had it at `end`: events before it, items and users they name."""
    inter = dataset.interactions[dataset.interactions["timestamp"] < end].reset_index(drop=True)
    items = dataset.items[dataset.items["item_id"].isin(inter["item_id"])].reset_index(drop=True)
    users = pd.DataFrame({"user_id": pd.unique(inter["user_id"])})
    return schema.Dataset(dataset.name, inter, items, users, dataset.report)


def _train(config: config_lib.Config, dataset: schema.Dataset, start: int, end: int, run: Path):
    """Towers and repeat prior trained from scratch on events before `end`, the last
    VALIDATION_FRACTION of [start, end) picking the epoch; published as an artifact."""
    cut = start + int((end - start) * (1 - VALIDATION_FRACTION))
    last = int(dataset.interactions["timestamp"].max())
    split = config_lib.SplitConfig(
        validation_start=schema.iso_utc(cut), test_start=schema.iso_utc(last)
    )
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, split=split))
    prepared = prepared_lib.prepare(config, dataset)
    trainer.train(config, run, prepared)
    return artifact_lib.publish(run, config, prepared)


def _write_window(dataset: schema.Dataset, start: int, end: int, folder: Path) -> tuple:
    """The events of [start, end) and the catalog rows of their items, in canonical columns."""
    folder.mkdir(parents=True, exist_ok=True)
    inter = dataset.interactions
    window = inter[(inter["timestamp"] >= start) & (inter["timestamp"] < end)]
    window.to_csv(folder / "events.csv", index=False)
    items = dataset.items[dataset.items["item_id"].isin(window["item_id"])]
    items.to_csv(folder / "items.csv", index=False)
    return folder / "events.csv", folder / "items.csv"


def evaluate(
    path: os.PathLike | str,
    dataset: schema.Dataset,
    start: int,
    end: int,
    refresh_lag_seconds: Optional[int],
) -> dict[str, Optional[float]]:
    """Recall@50 and NDCG@10 of an artifact's towers + repeat prior on the month [start, end),
    items first listed during it counted (`window_eval.window_result(new_items=True)`), and
    Recall@50 on the new-item slice (the queries with such an item among their relevant ones,
    on those items) and on its part listed the query's own day, before it."""
    result = window_eval.window_result(
        path, dataset, start, end, refresh_lag_seconds=refresh_lag_seconds, new_items=True
    )
    metrics, new = result.metrics["all"], result.metrics[window_eval.NEW_IN_WINDOW]
    same_day = result.metrics[window_eval.LISTED_SAME_DAY]
    return {
        "recall@50": float(metrics["recall@50"]),
        "ndcg@10": float(metrics["ndcg@10"]),
        "queries": int(metrics["queries"]),
        "new_items_recall@50": _recall(new),
        "new_items_queries": int(new["queries"]),
        "same_day_recall@50": _recall(same_day),
        "same_day_queries": int(same_day["queries"]),
    }


def _recall(segment: dict[str, float]) -> Optional[float]:
    """A slice's Recall@50; None (JSON null, not NaN) when no query is in it."""
    return float(segment["recall@50"]) if segment["queries"] else None


def _shown(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.4f}"


def new_item_reach(
    config: config_lib.Config, dataset: schema.Dataset, start: int, end: int
) -> dict[str, int]:
    """How many (query, relevant item) pairs of [start, end) name an item first seen in it,
    and how many of those the refreshed index can reach (the item first seen at least
    `replay.refresh_lag_seconds` before the query, `refresh_lag.reachable`); the rest are out
    of reach of every arm."""
    inter = dataset.interactions[dataset.interactions["timestamp"] < end]
    data = config.data
    queries = examples_lib.build_eval_queries(
        inter, start, end, data.max_history, data.target_events
    )
    first = inter.groupby("item_id")["timestamp"].min()
    lengths = np.array([len(r) for r in queries.relevant], dtype=np.int64)
    ids = np.concatenate(queries.relevant) if len(queries) else np.zeros(0, object)
    seen = pd.Series(ids).map(first).to_numpy(np.int64)
    stamps = np.repeat(np.asarray(queries.timestamp, dtype=np.int64), lengths)
    new = seen >= start
    lag = config.replay.refresh_lag_seconds
    reach = refresh_lag.reachable(seen, stamps, lag)
    return {
        "pairs": int(new.sum()),
        "reachable_pairs": int((new & reach).sum()),
        "refresh_lag_seconds": lag,
    }


def replay(config: config_lib.Config, months: int, workdir: os.PathLike | str) -> dict[str, Any]:
    """Replays the last `months` months of the config's data with five arms.

    A base model is trained on the data before the first replayed month and exported as the
    champion (`<workdir>/export`, version 1, `stable`). Then for each month W: `never` keeps
    the base model as trained; `never+refresh` serves it with its index refreshed
    `replay.refresh_lag_seconds` behind the events (`window_result`); `updated+refresh` runs
    `tfrec update` from the previous month's updated model on the events since that update,
    up to `replay.holdout_days` before W's end; the updated model then goes through the data
    gate (its window, against the model it was updated from) and the quality gate (against
    the champion, on the held-out days) and, if both pass, is exported as the canary and
    promoted to `stable` (`replay_gates.Release`); `gated` serves the champion after that decision;
    `retrained+refresh` trains from scratch on everything before W's end. All but `never` are
    served with the refresh. Each is evaluated on the month after W (`evaluate`, items first
    listed in it counted for every arm); times are wall seconds of training, updating, and for
    `gated` also of gating, exporting and promoting (evaluation excluded). The ranker is not
    part of the replay: the arms are compared on retrieval (towers and repeat prior), which
    is what an update changes.

    Writes `<workdir>/replay.json`, `<workdir>/replay.html`, `<workdir>/replay.png`, and each
    month's gate verdicts under `<workdir>/gates-<i>/`.
    """
    out = Path(workdir)
    out.mkdir(parents=True, exist_ok=True)
    dataset = loaders.load(config.data)
    starts = month_starts(dataset.interactions, months)
    lag = config.replay.refresh_lag_seconds
    holdout = config.replay.holdout_days * window_eval.DAY_SECONDS
    first = starts[0]
    base_start = first - (starts[1] - starts[0])  # a month-long validation tail, as the others
    t0 = time.perf_counter()
    base = _train(config, _before(dataset, first), base_start, first, out / "base")
    base_seconds = time.perf_counter() - t0
    release = replay_gates.Release(base, out / "export")
    rows: list[dict[str, Any]] = []
    reach: dict[str, dict[str, int]] = {}
    decisions: dict[str, dict[str, Any]] = {}
    current = {"never": base, "updated": base}
    update_start = first
    for i in range(months):
        w_start, w_end, e_end = starts[i], starts[i + 1], starts[i + 2]
        held = w_end - holdout
        if held <= max(update_start, w_start):
            raise errors.ConfigError(
                f"`replay.holdout_days` ({config.replay.holdout_days}) must leave part of "
                f"the month from {schema.iso_utc(w_start)} to update on"
            )
        month = pd.Timestamp(w_end, unit="s", tz="UTC").strftime("%Y-%m")
        seconds = {"never": 0.0}
        t0 = time.perf_counter()
        window = _write_window(dataset, update_start, held, out / f"window-{i + 1}")
        held_out = _write_window(dataset, held, w_end, out / f"held-out-{i + 1}")
        source = current["updated"]
        updated = update_run.update(
            source,
            window[0],
            out / f"updated-{i + 1}",
            items=window[1],
            overrides=[f"update.validation_fraction={VALIDATION_FRACTION}"],
        )
        current["updated"] = Path(updated["artifact"])
        seconds["updated"] = time.perf_counter() - t0
        decision = release.decide(
            current["updated"], source, window, held_out, out / f"gates-{i + 1}"
        )
        current["gated"] = release.champion
        seconds["gated"] = seconds["updated"] + sum(decision["seconds"].values())
        decisions[month] = {
            "window_utc": [schema.iso_utc(update_start), schema.iso_utc(held - 1)],
            "held_out_utc": [schema.iso_utc(held), schema.iso_utc(w_end - 1)],
            **decision,
        }
        update_start = held
        _print_decision(month, decisions[month])
        t0 = time.perf_counter()
        current["retrained"] = _train(
            config, _before(dataset, w_end), w_start, w_end, out / f"retrained-{i + 1}"
        )
        seconds["retrained"] = time.perf_counter() - t0
        reach[month] = new_item_reach(config, dataset, w_end, e_end)
        scored: dict[
            tuple, dict[str, Optional[float]]
        ] = {}  # the champion is often another arm's model
        for arm, (model, refresh) in ARMS.items():
            arm_lag = lag if refresh else None
            key = (str(current[model]), arm_lag)
            if key not in scored:
                scored[key] = evaluate(current[model], dataset, w_end, e_end, arm_lag)
            metrics = scored[key]
            row = {
                "month": month,
                "arm": arm,
                "refresh_lag_seconds": arm_lag,
                "seconds": seconds[model],
            }
            rows.append({**row, **metrics})
            print(
                f"{month} {arm}: recall@50 {metrics['recall@50']:.4f}, ndcg@10 "
                f"{metrics['ndcg@10']:.4f} ({metrics['queries']} queries); new items' "
                f"recall@50 {_shown(metrics['new_items_recall@50'])} "
                f"({metrics['new_items_queries']} queries), listed the same day "
                f"{_shown(metrics['same_day_recall@50'])} ({metrics['same_day_queries']} "
                "queries); "
                f"{seconds[model]:.0f}s",
                flush=True,
            )
    result = {
        "config": config.name,
        "months": months,
        "base": {"trained_before": schema.iso_utc(first), "seconds": base_seconds},
        "epochs": {"retrained": config.train.epochs, "updated": config.update.epochs},
        "replay": config_lib.to_dict(config)["replay"],
        "new_item_pairs": reach,
        "gates": decisions,
        "release": {**release.summary(), "base_export_seconds": release.export_seconds},
        "rows": rows,
    }
    config_lib.write_text_atomic(out / "replay.json", json.dumps(result, indent=2))
    replay_chart.plot(rows, out / "replay.png")
    return result


def _print_decision(month: str, decision: dict[str, Any]) -> None:
    verdicts = ", ".join(
        f"{gate} gate {'passed' if decision[gate]['passed'] else 'FAILED'}"
        for gate in ("data", "quality")
    )
    outcome = (
        f"exported as version {decision['version']} and promoted to stable"
        if decision["promoted"]
        else f"not exported, stable stays version {decision['stable']}"
    )
    reasons = decision["data"]["reasons"] + decision["quality"]["reasons"]
    print(
        f"{month} gates (updated model, held out {decision['held_out_utc'][0]} to "
        f"{decision['held_out_utc'][1]}): {verdicts}; {outcome}"
        + "".join(f"\n  - {r}" for r in reasons),
        flush=True,
    )
