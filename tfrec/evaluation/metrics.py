"""Ranking metrics on the ranks of relevant items: recall, NDCG, MRR, hit rate, coverage."""

from __future__ import annotations

from typing import Iterable, Optional

import numpy as np

# Ranks are 1-based. A relevant item whose rank is unknown or beyond every cut-off, and the padding
# of a ragged batch, are `np.inf`: it never counts as a hit and adds 0 to a reciprocal rank.


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"`k` must be a positive int, received {k!r}")
    return int(k)


def _ranks_2d(ranks) -> np.ndarray:
    ranks = np.asarray(ranks, dtype=np.float64)
    if ranks.ndim != 2:
        raise ValueError(
            f"`ranks` must be [num_queries, max_relevant] (np.inf as padding), "
            f"received shape {ranks.shape}"
        )
    if np.any(ranks < 1):
        raise ValueError(f"`ranks` are 1-based and must be >= 1, received min {ranks.min()}")
    return ranks


def _num_relevant(ranks: np.ndarray, num_relevant) -> np.ndarray:
    if num_relevant is None:
        # Without an explicit count every relevant item must have a finite rank.
        num_relevant = np.isfinite(ranks).sum(axis=1)
    num_relevant = np.asarray(num_relevant, dtype=np.float64)
    if num_relevant.shape != ranks.shape[:1]:
        raise ValueError(
            f"`num_relevant` must have shape {ranks.shape[:1]}, received {num_relevant.shape}"
        )
    if np.any(num_relevant < 1):
        raise ValueError("`num_relevant` must be >= 1 for every query, received a 0")
    return num_relevant


def recall_at_k(ranks, k: int, num_relevant: Optional[np.ndarray] = None) -> np.ndarray:
    """Per-query Recall@k = |top-k ∩ relevant| / min(k, |relevant|); average it for the metric.

    Dividing by `min(k, |relevant|)` rather than `|relevant|` keeps 1.0 reachable for a query
    with more relevant items than slots.

    Args:
        ranks: array [num_queries, max_relevant]. 1-based rank of each relevant item in the full
            ranking; `np.inf` for padding or "beyond every cut-off".
        k: int. The cut-off.
        num_relevant: array [num_queries] or None. Size of each relevant set. Defaults to the
            number of finite ranks per row.

    Returns:
        float64 array [num_queries] in [0, 1].

    Example:
        >>> recall_at_k([[1, 3, np.inf]], k=2, num_relevant=[3]).tolist()
        [0.5]
    """
    k = _check_k(k)
    ranks = _ranks_2d(ranks)
    n_rel = _num_relevant(ranks, num_relevant)
    return (ranks <= k).sum(axis=1) / np.minimum(k, n_rel)


def ndcg_at_k(ranks, k: int, num_relevant: Optional[np.ndarray] = None) -> np.ndarray:
    """Per-query NDCG@k with binary gains; the ideal DCG puts min(k, |relevant|) hits on top.

    Args:
        ranks: array [num_queries, max_relevant]. As in `recall_at_k`.
        k: int. The cut-off.
        num_relevant: array [num_queries] or None. As in `recall_at_k`.

    Returns:
        float64 array [num_queries] in [0, 1].

    Example:
        >>> round(float(ndcg_at_k([[2]], k=10)[0]), 4)  # 1/log2(3)
        0.6309
    """
    k = _check_k(k)
    ranks = _ranks_2d(ranks)
    n_rel = _num_relevant(ranks, num_relevant)
    with np.errstate(divide="ignore"):
        gains = np.where(ranks <= k, 1.0 / np.log2(np.minimum(ranks, k) + 1.0), 0.0)
    discounts = 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))
    ideal = np.cumsum(discounts)[np.minimum(n_rel, k).astype(np.int64) - 1]
    return gains.sum(axis=1) / ideal


def hit_rate_at_k(ranks, k: int) -> np.ndarray:
    """Per-query HitRate@k: 1.0 when any relevant item ranks in the top k, else 0.0.

    Args:
        ranks: array [num_queries, max_relevant]. As in `recall_at_k`.
        k: int. The cut-off.

    Returns:
        float64 array [num_queries] of 0.0 / 1.0.
    """
    k = _check_k(k)
    return (_ranks_2d(ranks) <= k).any(axis=1).astype(np.float64)


def mrr(ranks) -> np.ndarray:
    """Per-query reciprocal rank of the first relevant item; their mean is the MRR.

    Args:
        ranks: array [num_queries] of the best (smallest) rank per query, or
            [num_queries, max_relevant] of all relevant ranks (the row minimum is used). Ranks
            come from the full ranking, so no cut-off applies; `np.inf` gives 0.

    Returns:
        float64 array [num_queries] in [0, 1].

    Example:
        >>> mrr([[4, 2], [1, np.inf]]).tolist()
        [0.5, 1.0]
    """
    ranks = np.asarray(ranks, dtype=np.float64)
    if ranks.ndim == 2:
        ranks = _ranks_2d(ranks).min(axis=1, initial=np.inf)
    elif ranks.ndim != 1:
        raise ValueError(
            f"`ranks` must be [num_queries] or [num_queries, max_relevant], "
            f"received shape {ranks.shape}"
        )
    if np.any(ranks < 1):
        raise ValueError(f"`ranks` are 1-based and must be >= 1, received min {ranks.min()}")
    return 1.0 / ranks


def coverage(top_lists: Iterable, num_items: int) -> float:
    """Catalog coverage: distinct items across all recommendation lists / catalog size.

    Args:
        top_lists: array [num_queries, k] of catalog indices, or an iterable of such arrays
            (e.g. one per batch) whose items are pooled.
        num_items: int. Catalog size.

    Returns:
        float in [0, 1].

    Example:
        >>> coverage([[0, 1], [1, 2]], num_items=6)
        0.5
    """
    if isinstance(num_items, bool) or not isinstance(num_items, (int, np.integer)) or num_items < 1:
        raise ValueError(f"`num_items` must be a positive int, received {num_items!r}")
    seen = np.zeros(int(num_items), dtype=bool)
    if isinstance(top_lists, np.ndarray):
        top_lists = [top_lists]
    for block in top_lists:
        block = np.asarray(block, dtype=np.int64).ravel()
        if block.size and (block.min() < 0 or block.max() >= num_items):
            raise ValueError(
                f"`top_lists` must hold catalog indices in [0, {num_items}), "
                f"received {block.min()}..{block.max()}"
            )
        seen[block] = True
    return float(seen.sum() / num_items)
