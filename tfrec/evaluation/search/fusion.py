"""Reciprocal-rank fusion of several scorers' full-catalog rankings."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats

# Cormack, Clarke and Buettcher (SIGIR 2009): k = 60 damps the weight of the very top ranks.
RRF_K = 60


def ranks(scores: np.ndarray) -> np.ndarray:
    """1-based rank of every item in each row, ties pessimistic (as `protocol.evaluate`).

    Args:
        scores: float [num_queries, num_items].

    Returns:
        float64 [num_queries, num_items]: the number of items scoring >= the item.
    """
    return stats.rankdata(-np.asarray(scores, np.float64), method="max", axis=1)


def reciprocal_rank_fusion(scores: Sequence[np.ndarray], k: int = RRF_K) -> np.ndarray:
    """Fused score `sum_m 1 / (k + rank_m(item))` over the scorers' rankings.

    Args:
        scores: sequence of float arrays [num_queries, num_items], one per scorer.
        k: int >= 0. Rank offset. Defaults to RRF_K.

    Returns:
        float64 [num_queries, num_items].
    """
    if not scores:
        raise ValueError("`scores` must hold at least one score matrix, received none")
    shapes = {np.shape(s) for s in scores}
    if len(shapes) != 1:
        raise ValueError(f"`scores` must share one shape, received {sorted(shapes)}")
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ValueError(f"`k` must be an int >= 0, received {k!r}")
    fused = np.zeros(np.shape(scores[0]), np.float64)
    for s in scores:
        fused += 1.0 / (k + ranks(s))
    return fused
