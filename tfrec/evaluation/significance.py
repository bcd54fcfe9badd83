"""Paired comparisons of two models on the same queries: bootstrap intervals, Holm-adjusted p."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy import stats


def paired_difference(
    a: np.ndarray,
    b: np.ndarray,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Mean of `a - b` over queries both count, with a paired bootstrap interval and a p-value.

    Queries are resampled together for both models (a paired bootstrap, percentile interval,
    `scipy.stats.bootstrap`); the p-value is the two-sided Wilcoxon signed-rank test of the
    differences (`scipy.stats.wilcoxon`; 1.0 when every difference is zero).

    Args:
        a: float array [num_queries]. Per-query metric of the first model (NaN: not counted).
        b: float array [num_queries]. The same metric of the second model on the same queries.
        confidence: float in (0, 1). Interval level. Defaults to 0.95.
        resamples: int. Bootstrap resamples. Defaults to 2000.
        seed: int. Random state. Defaults to 0.

    Returns:
        dict: `difference` (mean of a - b), `low`, `high`, `p_value`, `queries`, and the share
        of queries where a is better (`better`) or worse (`worse`).

    Example:
        >>> paired_difference(np.array([1.0, 1.0, 0.0]), np.array([0.0, 1.0, 0.0]))["difference"]
        0.3333333333333333
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(
            f"`a` and `b` must be 1-D arrays over the same queries, received shapes {a.shape} "
            f"and {b.shape}"
        )
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"`confidence` must be in (0, 1), received {confidence!r}")
    both = ~(np.isnan(a) | np.isnan(b))
    diff = a[both] - b[both]
    if diff.size < 2:
        raise ValueError(f"a paired comparison needs at least 2 queries, received {diff.size}")
    if np.all(diff == diff[0]):
        low = high = float(diff[0])
        p_value = 1.0 if diff[0] == 0 else 0.0
    else:
        interval = stats.bootstrap(
            (diff,),
            np.mean,
            confidence_level=confidence,
            n_resamples=resamples,
            method="percentile",
            rng=np.random.default_rng(seed),
        ).confidence_interval
        low, high = float(interval.low), float(interval.high)
        nonzero = diff[diff != 0]
        p_value = float(stats.wilcoxon(nonzero).pvalue) if nonzero.size else 1.0
    return {
        "difference": float(diff.mean()),
        "low": low,
        "high": high,
        "p_value": p_value,
        "queries": int(diff.size),
        "better": float(np.mean(diff > 0)),
        "worse": float(np.mean(diff < 0)),
    }


def holm(p_values: Mapping[str, float]) -> dict[str, float]:
    """Holm-adjusted p-values of a family of tests (`statsmodels.stats.multitest`)."""
    from statsmodels.stats.multitest import multipletests

    names = list(p_values)
    if not names:
        return {}
    adjusted = multipletests([p_values[n] for n in names], method="holm")[1]
    return {name: float(p) for name, p in zip(names, adjusted, strict=True)}


def compare(
    model: Mapping[str, np.ndarray],
    reference: Mapping[str, np.ndarray],
    metrics: tuple[str, ...],
    confidence: float = 0.95,
    resamples: int = 2000,
) -> dict[str, dict[str, Any]]:
    """`paired_difference` of `model` minus `reference` for each metric, Holm across metrics.

    Args:
        model, reference: dict metric -> per-query values (`EvalResult.per_query`).
        metrics: tuple of str. The metrics compared (the family Holm corrects over).

    Returns:
        dict metric -> `paired_difference` fields plus `p_holm` and `significant` (the
        interval excludes zero and `p_holm` < 1 - confidence).
    """
    out = {
        m: paired_difference(model[m], reference[m], confidence, resamples, seed=i)
        for i, m in enumerate(metrics)
    }
    adjusted = holm({m: r["p_value"] for m, r in out.items()})
    for m, r in out.items():
        r["p_holm"] = adjusted[m]
        r["significant"] = bool((r["low"] > 0 or r["high"] < 0) and r["p_holm"] < 1 - confidence)
    return out
