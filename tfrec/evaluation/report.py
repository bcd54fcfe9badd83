"""Fixed-width tables of evaluation results: models by metrics, and models by segments."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Optional

from tfrec.evaluation import protocol

BEST_MARK = "*"


def default_metrics(result: protocol.EvalResult) -> list[str]:
    """Recall and NDCG at every cut-off, then HitRate, MRR and Coverage at the smallest one."""
    k0 = result.ks[0]
    names = [f"recall@{k}" for k in result.ks] + [f"ndcg@{k}" for k in result.ks]
    return names + [f"hit_rate@{k0}", "mrr", f"coverage@{k0}"]


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.4f}"


def _render(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown pipe table padded to fixed width, so it reads the same in a terminal."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells):
        padded = [
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join("-" * (w + 1) + ":" if i else "-" * (w + 2) for i, w in enumerate(widths))
    return "\n".join([line(header), rule + "|", *(line(r) for r in rows)])


def _best_marked(values: Sequence, higher_is_better: bool = True) -> list[str]:
    """Formats a column, marking every value equal to the best one."""
    finite = [v for v in values if isinstance(v, float) and not math.isnan(v)]
    best = (max if higher_is_better else min)(finite) if len(finite) > 1 else None
    return [_cell(v) + (BEST_MARK if best is not None and v == best else "") for v in values]


def format_table(
    results: Mapping[str, protocol.EvalResult],
    segment: str = "all",
    metrics: Optional[Sequence[str]] = None,
) -> str:
    """One row per model, one column per metric, the best value per column marked `*`.

    Args:
        results: dict. Model name -> EvalResult, in display order.
        segment: str. The segment to show. Defaults to "all".
        metrics: list of str or None. Metric columns. Defaults to `default_metrics` of the first
            result.

    Returns:
        str. The table, then one line on the segment, query count and exclusion.

    Example:
        >>> print(format_table({"most_popular": pop_result, "two_tower": model_result}))
    """
    if not results:
        raise ValueError("`results` must hold at least one model, received none")
    first = next(iter(results.values()))
    names = list(metrics) if metrics is not None else default_metrics(first)
    for model, result in results.items():
        if segment not in result.metrics:
            raise ValueError(
                f"`segment` must be one of {list(result.metrics)} for model `{model}`, "
                f"received {segment!r}"
            )
        unknown = [n for n in names if n not in result.metrics[segment]]
        if unknown:
            raise ValueError(
                f"`metrics` must be among {list(result.metrics[segment])}, received {unknown[0]!r}"
            )
    queries = {r.metrics[segment]["queries"] for r in results.values()}
    with_queries = len(queries) > 1  # differing counts mean the rows are not comparable
    header = ["model", *names] + (["queries"] if with_queries else [])
    columns = [_best_marked([r.metrics[segment][n] for r in results.values()]) for n in names]
    rows = []
    for i, (model, result) in enumerate(results.items()):
        row = [model, *(col[i] for col in columns)]
        if with_queries:
            row.append(_cell(result.metrics[segment]["queries"]))
        rows.append(row)
    footer = f"segment `{segment}`"
    if not with_queries:
        footer += f", {_cell(queries.pop())} queries"
    footer += f", {first.num_items:,} items, exclude_seen={first.exclude_seen}"
    return _render(header, rows) + "\n" + footer


def format_comparison(
    results: Mapping[str, protocol.EvalResult],
    metrics: Optional[Sequence[str]] = None,
    segments: Optional[Sequence[str]] = None,
) -> str:
    """One row per model, columns `segment metric`: how each model fares on cold start.

    Args:
        results: dict. Model name -> EvalResult, in display order.
        metrics: list of str or None. Defaults to Recall and NDCG at the smallest cut-off.
        segments: list of str or None. Defaults to every segment of the first result.

    Returns:
        str. The table with a final `queries` row giving each segment's query count.
    """
    if not results:
        raise ValueError("`results` must hold at least one model, received none")
    first = next(iter(results.values()))
    k0 = first.ks[0]
    names = list(metrics) if metrics is not None else [f"recall@{k0}", f"ndcg@{k0}"]
    segs = list(segments) if segments is not None else list(first.metrics)
    for model, result in results.items():
        missing = [s for s in segs if s not in result.metrics]
        if missing:
            raise ValueError(
                f"`segments` must be among {list(result.metrics)} for model `{model}`, "
                f"received {missing[0]!r}"
            )
    header = ["model"] + [f"{s} {n}" for s in segs for n in names]
    columns = [
        _best_marked([r.metrics[s].get(n, math.nan) for r in results.values()])
        for s in segs
        for n in names
    ]
    rows = [[model, *(col[i] for col in columns)] for i, model in enumerate(results)]
    rows.append(["queries"] + [_cell(first.metrics[s]["queries"]) for s in segs for _ in names])
    return _render(header, rows) + f"\nexclude_seen={first.exclude_seen}"


def format_comparisons(comparisons: Mapping[str, Mapping[str, Mapping]]) -> str:
    """tfrec minus the best baseline per metric: difference, 95% interval, Holm-adjusted p.

    Args:
        comparisons: dict pipeline -> metric -> `significance.compare` fields plus `baseline`.

    Returns:
        str. One table per pipeline; `yes` in `significant` only where the interval excludes
        zero after correction.
    """
    if not comparisons:
        return "\n[vs best baseline] no baseline evaluated"
    parts = []
    for model, by_metric in comparisons.items():
        header = [
            "metric",
            "best baseline",
            "difference",
            "95% interval",
            "p (Holm)",
            "significant",
        ]
        rows = [
            [
                metric,
                r["baseline"],
                f"{r['difference']:+.4f}",
                f"[{r['low']:+.4f}, {r['high']:+.4f}]",
                f"{r['p_holm']:.3g}",
                "yes" if r["significant"] else "no",
            ]
            for metric, r in by_metric.items()
        ]
        parts.append(
            f"\n[vs best baseline] {model} minus the best baseline of each metric, "
            "paired over test queries"
        )
        parts.append(_render(header, rows))
    return "\n".join(parts)
