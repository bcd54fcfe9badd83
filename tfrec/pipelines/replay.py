"""`tfrec replay`: month by month, a never-updated, a monthly-updated and a retrained model."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd

from tfrec import artifact as artifact_lib
from tfrec import config as config_lib
from tfrec import errors, inference
from tfrec.data import examples as examples_lib
from tfrec.data import loaders, schema, vocab
from tfrec.data import prepared as prepared_lib
from tfrec.evaluation import daily_refresh, protocol
from tfrec.models import repeat_prior
from tfrec.pipelines import update as update_run
from tfrec.training import trainer

# Arm -> (the model it serves, whether its index is refreshed daily). `never` is the model as
# trained, as before refreshes existed; every served arm gets each day's new items.
ARMS = {
    "never": ("never", False),
    "never+refresh": ("never", True),
    "updated+refresh": ("updated", True),
    "retrained+refresh": ("retrained", True),
}
# Width and height of the chart, pixels: three panels side by side, the legend below them.
PNG_SIZE = (1200, 460)
# The segment of items first seen during the evaluated window (`window_result(new_items=True)`).
NEW_IN_WINDOW = "new_in_window"
KS = (10, 50)
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


def window_result(
    path: os.PathLike | str,
    dataset: schema.Dataset,
    start: int,
    end: int,
    segments: Optional[Callable[[vocab.ItemTable], dict]] = None,
    refresh: bool = False,
    new_items: bool = False,
) -> protocol.EvalResult:
    """The evaluation of an artifact's towers + repeat prior on the window [start, end).

    By default the ranking is over the shop's catalog at `start` (items with an event before
    it), and items the model's own catalog lacks score lowest, as a served model could not
    return them. With `new_items`, items first seen during the window also count (in the
    ranking and the relevant sets), and the segment NEW_IN_WINDOW holds them. With `refresh`,
    the model's index is refreshed at the start of each UTC day (`daily_refresh`): a query at
    time t can also be shown every item first seen before t's day, embedded by the model's
    item tower from its catalog row; items first seen on t's day or later score lowest for it.
    A relevant item first seen on its query's own day is then out of reach of every model; it
    still counts, the same for all.

    Queries and histories come from `dataset`, so two models scored on the same `dataset`
    with the same `new_items` answer the same queries (per-query values pair up).

    Args:
        path: path. The model artifact (or its run folder).
        dataset: schema.Dataset. Events up to `end` at least, and the catalog.
        start, end: int. The window, unix seconds.
        segments: callable or None. ItemTable -> `protocol.evaluate` segments (name ->
            (query mask or None, item mask or None)) over that table's items.
        refresh: bool. Refresh the model's index daily. Defaults to False.
        new_items: bool. Count items first seen in the window. Defaults to False.
    """
    art = artifact_lib.Artifact(path)
    spec = art.spec()
    towers = trainer.load_trained(art.config, art.root, art.prepared())
    inter = dataset.interactions[dataset.interactions["timestamp"] < end]
    data = art.config.data
    queries = examples_lib.build_eval_queries(
        inter, start, end, data.max_history, data.target_events
    )
    table = vocab.build_item_table(dataset.items, spec)
    first = pd.Series(table.item_ids).map(inter.groupby("item_id")["timestamp"].min())
    first_seen = first.to_numpy(np.float64)
    available = first_seen < (end if new_items else start)
    known = np.isin(table.item_ids, art.catalog()["item_id"].astype(str).to_numpy(dtype=object))
    items = inference.item_embeddings(towers.candidate_model, table)
    q = inference.query_embeddings(towers.query_model, queries, spec)
    prior = repeat_prior.RepeatPrior.load(art.workdir.repeat_prior)
    scored = prior.apply(inference.dot_score_fn(q, items), table.index_of(queries.history_item_ids))
    mask = (
        daily_refresh.candidates(known, first_seen, queries.timestamp)
        if refresh
        else daily_refresh.fixed(known)
    )
    relevant = [table.index_of(r) for r in queries.relevant]
    slices = {} if segments is None else dict(segments(table))
    if new_items:
        slices[NEW_IN_WINDOW] = (None, first_seen >= start)
    return protocol.evaluate(
        daily_refresh.restrict(scored, mask),
        relevant,
        len(table),
        ks=KS,
        available=available,
        segments=slices or None,
    )


def evaluate(
    path: os.PathLike | str, dataset: schema.Dataset, start: int, end: int, refresh: bool
) -> dict[str, float]:
    """Recall@50 and NDCG@10 of an artifact's towers + repeat prior on the month [start, end),
    items first listed during it counted (`window_result(new_items=True)`), and Recall@50 on
    the new-item slice: the queries with such an item among their relevant ones, on those
    items."""
    result = window_result(path, dataset, start, end, refresh=refresh, new_items=True)
    metrics, new = result.metrics["all"], result.metrics[NEW_IN_WINDOW]
    return {
        "recall@50": float(metrics["recall@50"]),
        "ndcg@10": float(metrics["ndcg@10"]),
        "queries": int(metrics["queries"]),
        "new_items_recall@50": float(new["recall@50"]),
        "new_items_queries": int(new["queries"]),
    }


def new_item_reach(
    config: config_lib.Config, dataset: schema.Dataset, start: int, end: int
) -> dict[str, int]:
    """How many (query, relevant item) pairs of [start, end) name an item first seen in it,
    and how many of those a daily refresh can reach (the item first seen before the query's
    day); the rest are out of reach of every arm."""
    inter = dataset.interactions[dataset.interactions["timestamp"] < end]
    data = config.data
    queries = examples_lib.build_eval_queries(
        inter, start, end, data.max_history, data.target_events
    )
    first = inter.groupby("item_id")["timestamp"].min()
    lengths = np.array([len(r) for r in queries.relevant], dtype=np.int64)
    ids = np.concatenate(queries.relevant) if len(queries) else np.zeros(0, object)
    seen = pd.Series(ids).map(first).to_numpy(np.int64)
    day = np.repeat(daily_refresh.day_start(queries.timestamp), lengths)
    new = seen >= start
    return {"pairs": int(new.sum()), "reachable_pairs": int((new & (seen < day)).sum())}


def replay(config: config_lib.Config, months: int, workdir: os.PathLike | str) -> dict[str, Any]:
    """Replays the last `months` months of the config's data with four arms.

    A base model is trained on the data before the first replayed month. Then for each month
    W: `never` keeps the base model as trained; `never+refresh` serves it with its index
    refreshed daily (`window_result(refresh=True)`); `updated+refresh` runs `tfrec update` on
    W from the previous month's updated model; `retrained+refresh` trains from scratch on
    everything before W's end; both served with the daily refresh. Each is evaluated on the
    month after W (`evaluate`, items first listed in it counted for every arm); times are wall
    seconds of training or updating (evaluation excluded). The ranker is not part of the
    replay: the arms are compared on retrieval (towers and repeat prior), which is what an
    update changes.

    Writes `<workdir>/replay.json`, `<workdir>/replay.html` and `<workdir>/replay.png`.
    """
    out = Path(workdir)
    out.mkdir(parents=True, exist_ok=True)
    dataset = loaders.load(config.data)
    starts = month_starts(dataset.interactions, months)
    first = starts[0]
    base_start = first - (starts[1] - starts[0])  # a month-long validation tail, as the others
    t0 = time.perf_counter()
    base = _train(config, _before(dataset, first), base_start, first, out / "base")
    base_seconds = time.perf_counter() - t0
    rows: list[dict[str, Any]] = []
    reach: dict[str, dict[str, int]] = {}
    current = {"never": base, "updated": base}
    for i in range(months):
        w_start, w_end, e_end = starts[i], starts[i + 1], starts[i + 2]
        month = pd.Timestamp(w_end, unit="s", tz="UTC").strftime("%Y-%m")
        seconds = {"never": 0.0}
        t0 = time.perf_counter()
        events, items = _write_window(dataset, w_start, w_end, out / f"window-{i + 1}")
        updated = update_run.update(
            current["updated"],
            events,
            out / f"updated-{i + 1}",
            items=items,
            overrides=[f"update.validation_fraction={VALIDATION_FRACTION}"],
        )
        current["updated"] = Path(updated["artifact"])
        seconds["updated"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        current["retrained"] = _train(
            config, _before(dataset, w_end), w_start, w_end, out / f"retrained-{i + 1}"
        )
        seconds["retrained"] = time.perf_counter() - t0
        reach[month] = new_item_reach(config, dataset, w_end, e_end)
        for arm, (model, refresh) in ARMS.items():
            metrics = evaluate(current[model], dataset, w_end, e_end, refresh)
            row = {"month": month, "arm": arm, "refresh": refresh, "seconds": seconds[model]}
            rows.append({**row, **metrics})
            print(
                f"{month} {arm}: recall@50 {metrics['recall@50']:.4f}, ndcg@10 "
                f"{metrics['ndcg@10']:.4f} ({metrics['queries']} queries); new items' "
                f"recall@50 {metrics['new_items_recall@50']:.4f} "
                f"({metrics['new_items_queries']} queries); {seconds[model]:.0f}s",
                flush=True,
            )
    result = {
        "config": config.name,
        "months": months,
        "base": {"trained_before": schema.iso_utc(first), "seconds": base_seconds},
        "epochs": {"retrained": config.train.epochs, "updated": config.update.epochs},
        "new_item_pairs": reach,
        "rows": rows,
    }
    config_lib.write_text_atomic(out / "replay.json", json.dumps(result, indent=2))
    plot(rows, out / "replay.png")
    return result


_COLORS = {
    "never": "#969696",
    "never+refresh": "#2ca02c",
    "updated+refresh": "#1f77b4",
    "retrained+refresh": "#d62728",
}
_LABELS = {
    "never": "never updated, no refresh",
    "never+refresh": "never updated + daily refresh",
    "updated+refresh": "updated monthly + daily refresh",
    "retrained+refresh": "retrained monthly + daily refresh",
}
_METRICS = {
    "recall@50": "Recall@50",
    "ndcg@10": "NDCG@10",
    "new_items_recall@50": "Recall@50 on new items",
}


def plot(rows: Sequence[dict[str, Any]], path: Path) -> bool:
    """Recall@50, NDCG@10 and Recall@50 on the new-item slice per evaluated month, one line
    per arm (Plotly): `path` with an .html suffix always, and the PNG `path` when kaleido
    finds a Chromium to render it.

    Returns:
        bool: whether the PNG was written (a message on stderr says why not).
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    frame = pd.DataFrame(list(rows))
    fig = make_subplots(rows=1, cols=len(_METRICS), subplot_titles=list(_METRICS.values()))
    for col, metric in enumerate(_METRICS, start=1):
        for arm in ARMS:
            part = frame[frame["arm"] == arm].sort_values("month")
            fig.add_trace(
                go.Scatter(
                    x=part["month"],
                    y=part[metric],
                    name=_LABELS[arm],
                    mode="lines+markers",
                    line={"color": _COLORS[arm], "width": 3},
                    showlegend=col == 1,
                    legendgroup=arm,
                ),
                row=1,
                col=col,
            )
    fig.update_xaxes(type="category", title_text="evaluated month")
    fig.update_layout(
        template="plotly_white",
        width=PNG_SIZE[0],
        height=PNG_SIZE[1],
        margin={"t": 60},
        legend={"orientation": "h", "y": -0.25},
    )
    fig.write_html(str(Path(path).with_suffix(".html")), include_plotlyjs=True)
    try:
        fig.write_image(str(path))
    except Exception as error:  # kaleido's error types vary with its version and platform
        print(
            f"tfrec replay: {Path(path).with_suffix('.html')} written, the PNG not: {error} "
            "(install Chromium, e.g. Debian's `chromium`, for kaleido to render it)",
            file=sys.stderr,
        )
        return False
    return True
