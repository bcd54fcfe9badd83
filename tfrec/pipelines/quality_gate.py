"""`tfrec gate quality`: may a candidate model replace the serving champion?

Both models answer the same queries of a held-out window of events (never trained on by
either): histories from the candidate's data (which holds the champion's when it was updated
from it) plus the window, relevant items from the window, the catalog as the shop knew it at
the window's start (`window_eval.window_result`). The verdict passes when, for every metric of
`gates.quality.metrics`, the paired bootstrap 95% interval of candidate minus champion reaches
above `min_difference_low`, and no slice (items new since the champion's training, the
window's largest categories) loses more than `max_slice_drop`.
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd

from tfrec import artifact as artifact_lib
from tfrec import config as config_lib
from tfrec import errors
from tfrec.data import events_file, loaders, schema, vocab, vocab_growth
from tfrec.evaluation import significance
from tfrec.pipelines import update as update_run
from tfrec.pipelines import window_eval

NEW_ITEMS = "new_items"


def _data(old: schema.Dataset, window: schema.Dataset) -> schema.Dataset:
    """The candidate's events then the window's, the catalog merged as `tfrec update` does."""
    return update_run.combined(old, window, vocab_growth.merge_catalog(old.items, window.items))


def _slices(
    champion: artifact_lib.Artifact, window: schema.Dataset, catalog: pd.DataFrame, top: int
) -> Any:
    """ItemTable -> segments: items the champion's catalog lacks, and the window's `top`
    largest categories (by events)."""
    known = champion.catalog()["item_id"].astype(str).to_numpy(dtype=object)
    category_of = catalog.drop_duplicates("item_id").set_index("item_id")["category"]
    counts = window.interactions["item_id"].map(category_of).value_counts()
    largest = [c for c in counts.index if c][:top]

    def segments(table: vocab.ItemTable) -> dict:
        ids = np.asarray(table.item_ids, dtype=object)
        out = {NEW_ITEMS: (None, ~np.isin(ids, known))}
        category = pd.Series(ids).map(category_of)
        for name in largest:
            out[f"category:{name}"] = (None, (category == name).to_numpy())
        return out

    return segments


def run(
    candidate: os.PathLike | str,
    champion: os.PathLike | str,
    events: os.PathLike | str,
    items: Optional[os.PathLike | str] = None,
    out: Optional[os.PathLike | str] = None,
    overrides: Sequence[str] = (),
) -> dict[str, Any]:
    """Compares `candidate` with `champion` on the held-out window `events`; writes a verdict.

    Args:
        candidate, champion: path. Model artifacts (or run folders holding one).
        events: path. The held-out window's events, canonical columns (as `tfrec update`).
        items: path or None. The window's new or changed items.
        out: path or None. Verdict file; None: `<candidate>/gates/quality.json`.
        overrides: `gates.quality.*=value` settings for this check.

    Returns:
        The verdict: `passed`, `reasons`, per metric the difference with its interval and
        Holm-adjusted p, per slice both models' values, and the settings.

    Raises:
        errors.DataError: an unreadable events or items file (file, row, field), or a window
            that starts before the candidate's data ends (it would not be held out).
    """
    cand = artifact_lib.Artifact(candidate)
    champ = artifact_lib.Artifact(champion)
    config = config_lib.with_overrides(cand.config, overrides, ["gates"])
    gate = config.gates.quality
    window = events_file.load_window(events, items, loaders.rules(config.data))
    if len(window.interactions) == 0:
        raise errors.DataError(
            "expected held-out events, received none after cleaning", path=events
        )
    start = int(window.interactions["timestamp"].min())
    end = int(window.interactions["timestamp"].max()) + 1
    datasets = {art.root: art.dataset() for art in (cand, champ)}
    for art in (cand, champ):
        seen = int(datasets[art.root].interactions["timestamp"].max())
        if seen >= start:
            raise errors.DataError(
                f"expected a window after every event model `{art.root}` knows (its last at "
                f"unix second {seen}), received one starting at {start}: it is not held out",
                path=events,
            )
    data = _data(datasets[cand.root], window)
    segments = _slices(champ, window, data.items, gate.categories)
    results = {
        name: window_eval.window_result(art.root, data, start, end, segments)
        for name, art in (("candidate", cand), ("champion", champ))
    }
    metrics = tuple(gate.metrics)
    overall = significance.compare(
        results["candidate"].per_query, results["champion"].per_query, metrics
    )
    reasons = [
        f"{m}: candidate - champion {r['difference']:+.4f}, 95% CI low {r['low']:+.4f} is "
        f"below {gate.min_difference_low:+g}"
        for m, r in overall.items()
        if not r["low"] >= gate.min_difference_low
    ]
    slices = {}
    for name, values in results["candidate"].metrics.items():
        if name == "all":
            continue
        base = results["champion"].metrics[name]
        queries = int(values.get("queries", 0))
        entry: dict[str, Any] = {"queries": queries}
        for m in metrics:
            diff = float(values[m]) - float(base[m])
            entry[m] = {
                "candidate": float(values[m]),
                "champion": float(base[m]),
                "difference": None if np.isnan(diff) else round(diff, 6),
            }
            if queries >= gate.min_slice_queries and diff < -gate.max_slice_drop:
                reasons.append(
                    f"slice {name} ({queries} queries): {m} {diff:+.4f} is a larger drop than "
                    f"{gate.max_slice_drop:g}"
                )
        slices[name] = entry
    verdict = {
        "gate": "quality",
        "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "candidate": str(cand.root),
        "champion": str(champ.root),
        "events": str(events),
        "window_utc": [schema.iso_utc(start), schema.iso_utc(end - 1)],
        "passed": not reasons,
        "reasons": reasons,
        "overall": {
            m: {k: (float(v) if isinstance(v, (float, np.floating)) else v) for k, v in r.items()}
            for m, r in overall.items()
        },
        "values": {
            name: {m: float(r.metrics["all"][m]) for m in metrics} for name, r in results.items()
        },
        "slices": slices,
        "settings": config_lib.to_dict(config)["gates"]["quality"],
    }
    path = Path(out) if out is not None else cand.root / "gates" / "quality.json"
    config_lib.write_text_atomic(path, json.dumps(verdict, indent=2, default=str) + "\n")
    verdict["path"] = str(path)
    return verdict
