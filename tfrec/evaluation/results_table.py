"""Markdown results of evaluated runs, rendered from their `metrics.json` and `artifact.json`.

A pure function of those two files (plus the run's config path and evaluation time), so the
README's results block and `results/RESULTS.md` can be regenerated from stored numbers alone.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Optional

# The model table's columns: (header, segment, metric).
COLUMNS = (
    ("Recall@10", "all", "recall@10"),
    ("Recall@50", "all", "recall@50"),
    ("NDCG@10", "all", "ndcg@10"),
    ("MRR", "all", "mrr"),
    ("cold items: Recall@50", "cold_items", "recall@50"),
    ("cold users: Recall@50", "cold_users", "recall@50"),
)

# tfrec's own rows, in display order: the served pipeline first, then its parts.
PIPELINES = {
    "tfrec_two_stage": "tfrec, two-stage (served `recommend`)",
    "tfrec": "tfrec, retrieval (towers + repeat prior)",
    "tfrec_towers_only": "tfrec, towers only (ablation)",
}
LABELS = {
    "id_two_tower": "id-only two-tower",
    "most_popular": "most popular",
    "buy_again": "buy again",
    "item_knn": "item-kNN",
    "session_knn": "session-kNN",
    "ease": "EASE",
    "als": "ALS",
    "hybrid": "hybrid buy again + item-kNN",
    "tfidf": "TF-IDF text (cosine to the user's items)",
    "control_new_random": "control: new items first, random order",
    "control_newest_first": "control: new items first, newest first",
}
CONTROL_PREFIX = "control_"
# The comparisons' pipelines, shorter than in the model table: the metric is the row's focus.
COMPARED = {"tfrec_two_stage": "two-stage", "tfrec": "retrieval"}
MISSING = "-"


def _get(data: Any, *keys: str) -> Any:
    """`data[k1][k2]...`, or None where a level is missing: older files lack newer fields."""
    for key in keys:
        if not isinstance(data, Mapping) or key not in data:
            return None
        data = data[key]
    return data


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return MISSING
    return f"{value:.4f}"


def _count(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else MISSING


def _when(iso: Any) -> str:
    """An ISO 8601 time as `YYYY-MM-DD HH:MM UTC` (midnight as the date alone)."""
    if not isinstance(iso, str):
        return MISSING
    t = datetime.datetime.fromisoformat(iso)
    if t.tzinfo is not None:
        t = t.astimezone(datetime.UTC)
    if (t.hour, t.minute, t.second) == (0, 0, 0):
        return t.strftime("%Y-%m-%d")
    return t.strftime("%Y-%m-%d %H:%M UTC")


def metric_label(metric: str) -> str:
    """`recall@10` -> `Recall@10`, `ndcg@10` -> `NDCG@10`, `mrr` -> `MRR`."""
    name, _, k = metric.partition("@")
    pretty = {"recall": "Recall", "ndcg": "NDCG", "mrr": "MRR", "hit_rate": "HitRate"}
    label = pretty.get(name, name)
    return f"{label}@{k}" if k else label


def model_label(name: str, params: Optional[Mapping] = None) -> str:
    """A model's display name, with the values chosen on validation in brackets."""
    label = PIPELINES.get(name) or LABELS.get(name, name)
    if params:
        label += " [" + ", ".join(f"{k} {v}" for k, v in params.items()) + "]"
    return label


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], left: int = 1) -> str:
    """A Markdown pipe table: the first `left` columns left-aligned, the numbers right-aligned."""
    rule = ["---"] * left + ["---:"] * (len(header) - left)
    lines = [header, rule, *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def _model_rows(metrics: Mapping) -> list[tuple[str, Mapping]]:
    """(label, metrics by segment) per model: tfrec's pipelines, baselines, then controls."""
    models: Mapping = metrics.get("models") or {}
    baselines: Mapping = metrics.get("baselines") or {}
    rows: list[tuple[str, Mapping]] = []
    two_stage = _get(metrics, "two_stage", "two_stage", "metrics")
    if two_stage is not None:
        rows.append((model_label("tfrec_two_stage"), two_stage))
    ours = [n for n in PIPELINES if n in models]
    controls = [n for n in models if n.startswith(CONTROL_PREFIX)]
    others = [n for n in models if n not in ours and n not in controls]
    for name in [*ours, *others, *controls]:
        params = _get(baselines, name, "params")
        rows.append((model_label(name, params), models[name].get("metrics") or {}))
    return rows


def _context(run: Mapping) -> str:
    """One line: when, on which data (fingerprint), split, catalog, queries and protocol."""
    art: Mapping = run.get("artifact") or {}
    metrics: Mapping = run.get("metrics") or {}
    split = metrics.get("split") or art.get("split") or {}
    fingerprint = _get(art, "data", "fingerprint")
    exclude = _get(metrics, "protocol", "exclude_seen")
    parts = [
        f"config `{run.get('config', MISSING)}`, run `{run.get('workdir', MISSING)}`",
        f"trained {_when(art.get('created'))}, evaluated {_when(run.get('evaluated'))}",
        f"data `{_get(art, 'data', 'dataset') or MISSING}` "
        f"({_count(_get(art, 'data', 'interactions'))} interactions, "
        f"{_count(_get(art, 'data', 'users'))} users, {_count(_get(art, 'data', 'items'))} "
        f"items), fingerprint `{fingerprint[:12] if isinstance(fingerprint, str) else MISSING}`",
        f"split: validation from {_when(split.get('validation_start_utc'))}, "
        f"test from {_when(split.get('test_start_utc'))}",
        f"catalog {_count(_get(metrics, 'protocol', 'catalog_items'))} items, "
        f"{_count(_get(metrics, 'protocol', 'test_queries'))} test queries",
        f"exclude_seen {MISSING if exclude is None else ('on' if exclude else 'off')}",
        f"baselines fit on the {_get(metrics, 'protocol', 'baselines_fit') or MISSING}",
    ]
    return "; ".join(parts) + "."


def models_table(metrics: Mapping) -> str:
    """One row per model, the columns of `COLUMNS`; a missing segment or metric is `-`."""
    header = ["model", *(c[0] for c in COLUMNS)]
    rows = [
        [label, *(_number(_get(by_segment, seg, m)) for _, seg, m in COLUMNS)]
        for label, by_segment in _model_rows(metrics)
    ]
    return _table(header, rows)


def comparisons_table(comparisons: Mapping) -> str:
    """tfrec minus the best baseline of each metric: `difference [low, high]` and Holm's p.

    A cell is bold when the comparison is significant after Holm's correction.
    """
    header = ["pipeline", "metric", "best baseline", "difference [95% interval]", "p (Holm)"]
    rows = []
    for pipeline, label in COMPARED.items():
        for metric, r in (comparisons.get(pipeline) or {}).items():
            cell = f"{r['difference']:+.4f} [{r['low']:+.4f}, {r['high']:+.4f}]"
            if r.get("significant"):
                cell = f"**{cell}**"
            rows.append(
                [
                    label,
                    metric_label(metric),
                    model_label(r["baseline"]),
                    cell,
                    f"{r['p_holm']:.3g}",
                ]
            )
    return _table(header, rows, left=3)


def render_run(run: Mapping, level: int = 3) -> str:
    """One evaluated run: heading, context line, model table, paired comparisons.

    Args:
        run: dict. `name`, `config` (path), `workdir`, `evaluated` (ISO time), `artifact`
            (the artifact's `artifact.json`) and `metrics` (its `metrics.json`).
        level: int. Markdown heading level of the run's heading. Defaults to 3.

    Returns:
        str. Markdown.
    """
    metrics: Mapping = run.get("metrics") or {}
    art: Mapping = run.get("artifact") or {}
    name = run.get("name") or art.get("name") or MISSING
    parts = [
        f"{'#' * level} {name}",
        _context(run),
        "Test split, full-catalog ranking; every baseline is tuned on the validation window "
        "(chosen values in brackets).",
        models_table(metrics),
    ]
    comparisons = metrics.get("comparisons") or {}
    if any(comparisons.get(p) for p in COMPARED):
        queries = {r.get("queries") for by in comparisons.values() for r in by.values()}
        # One count when every comparison paired the same queries, as the protocol does.
        count = _count(queries.pop()) if len(queries) == 1 else MISSING
        over = "paired" if count == MISSING else f"the {count} paired"
        parts += [
            f"tfrec minus the best baseline of each metric, over {over} test queries (bootstrap "
            "95% interval; Holm-corrected p; bold: significant after correction).",
            comparisons_table(comparisons),
        ]
    else:
        parts.append("No baseline was evaluated: no paired comparison.")
    return "\n\n".join(parts)


def render(runs: Sequence[Mapping], skipped: Sequence[Mapping] = (), level: int = 3) -> str:
    """Every run's section, then one line per config that was not measured and why.

    Args:
        runs: list of dict. Each as `render_run` reads it.
        skipped: list of dict. `config` (path) and `reason`.
        level: int. Heading level of each run. Defaults to 3.

    Returns:
        str. Markdown ending in a newline.
    """
    parts = [render_run(run, level) for run in runs]
    if skipped:
        parts.append(
            "Not measured:\n"
            + "\n".join(
                f"- `{s.get('config', MISSING)}`: {s.get('reason', MISSING)}" for s in skipped
            )
        )
    if not parts:
        parts.append("No run was evaluated.")
    return "\n\n".join(parts) + "\n"
