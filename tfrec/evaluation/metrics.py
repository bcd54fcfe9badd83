"""Ranking metrics (recall, NDCG, MRR, hit rate, coverage) and the top-k lists they read."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Optional

import numpy as np
import numpy.typing as npt

# Ranks are 1-based. A relevant item whose rank is unknown or beyond every cut-off, and the padding
# of a ragged batch, are `np.inf`: it never counts as a hit and adds 0 to a reciprocal rank.


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"`k` must be a positive int, received {k!r}")
    return int(k)


def _ranks_2d(ranks: npt.ArrayLike) -> np.ndarray:
    ranks = np.asarray(ranks, dtype=np.float64)
    if ranks.ndim != 2:
        raise ValueError(
            f"`ranks` must be [num_queries, max_relevant] (np.inf as padding), "
            f"received shape {ranks.shape}"
        )
    if np.any(ranks < 1):
        raise ValueError(f"`ranks` are 1-based and must be >= 1, received min {ranks.min()}")
    return ranks


def _num_relevant(ranks: np.ndarray, num_relevant: Optional[npt.ArrayLike]) -> np.ndarray:
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


def recall_at_k(
    ranks: npt.ArrayLike, k: int, num_relevant: Optional[npt.ArrayLike] = None
) -> np.ndarray:
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


def ndcg_at_k(
    ranks: npt.ArrayLike, k: int, num_relevant: Optional[npt.ArrayLike] = None
) -> np.ndarray:
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


def hit_rate_at_k(ranks: npt.ArrayLike, k: int) -> np.ndarray:
    """Per-query HitRate@k: 1.0 when any relevant item ranks in the top k, else 0.0.

    Args:
        ranks: array [num_queries, max_relevant]. As in `recall_at_k`.
        k: int. The cut-off.

    Returns:
        float64 array [num_queries] of 0.0 / 1.0.
    """
    k = _check_k(k)
    return np.asarray((_ranks_2d(ranks) <= k).any(axis=1), dtype=np.float64)


def mrr(ranks: npt.ArrayLike) -> np.ndarray:
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
    best = np.asarray(ranks, dtype=np.float64)
    if best.ndim == 2:
        best = _ranks_2d(best).min(axis=1, initial=np.inf)
    elif best.ndim != 1:
        raise ValueError(
            f"`ranks` must be [num_queries] or [num_queries, max_relevant], "
            f"received shape {best.shape}"
        )
    if np.any(best < 1):
        raise ValueError(f"`ranks` are 1-based and must be >= 1, received min {best.min()}")
    return 1.0 / best


def coverage(top_lists: Iterable[npt.ArrayLike], num_items: int) -> float:
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


def _candidates(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices [rows, k] of the k highest scores per row, in no order, and which rows are exact.

    A plain argpartition of 100k-wide rows costs ~1 ms per row. Instead, the k-th largest of
    the maxima of >= k disjoint column groups is a lower bound of the k-th largest score, so
    only the few items above it enter a small argpartition. A row with fewer than k items
    strictly above the bound has its k-th score equal to the bound: its list is exact (ties by
    lower index) and its `exact` flag is set.
    """
    c, m = scores.shape
    width = max(1, min(32, m // (4 * k)))
    groups = m // width
    # Groups are strided columns {j, j + groups, ...}: the max over axis 1 vectorizes well.
    maxima = scores[:, : groups * width].reshape(c, width, groups).max(axis=1)
    if groups * width < m:
        maxima = np.concatenate([maxima, scores[:, groups * width :].max(axis=1)[:, None]], 1)
    bound = np.partition(maxima, maxima.shape[1] - k, axis=1)[:, maxima.shape[1] - k, None]
    keep = scores > bound
    above = keep.sum(axis=1)
    short = np.flatnonzero(above < k)
    if short.size:
        # Fill up with the lowest-index items tied at the bound, so huge ties stay cheap.
        every = short.size == c  # e.g. popularity: one tied row repeated; skip fancy copies
        tied = np.flatnonzero((scores if every else scores[short]) == bound[short])
        rows = tied // m
        counts = np.bincount(rows, minlength=short.size)
        pos = np.arange(tied.size) - np.repeat(np.cumsum(counts) - counts, counts)
        take = pos < (k - above[short])[rows]
        keep[short[rows[take]], tied[take] % m] = True
    flat = np.flatnonzero(keep)
    rows, cols = flat // m, flat % m
    counts = np.bincount(rows, minlength=c)
    pos = np.arange(flat.size) - np.repeat(np.cumsum(counts) - counts, counts)
    values = np.full((c, counts.max()), -np.inf, scores.dtype)
    index = np.zeros((c, counts.max()), np.int64)
    values[rows, pos], index[rows, pos] = scores[rows, cols], cols
    # Other rows keep >= k items above a finite bound, so the -inf padding is never picked.
    picked = np.argpartition(values, values.shape[1] - k, axis=1)[:, values.shape[1] - k :]
    top = np.take_along_axis(index, picked, axis=1)
    top[short] = index[short, :k]  # exactly k kept, possibly -inf like the padding
    exact = np.zeros(c, bool)
    exact[short] = True
    return top, exact


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k lists of a batch of score rows, and the pessimistic rank of each listed item.

    Ties inside a list are broken by lower catalog index; the rank of an item counts every item
    scoring >= it (so ties rank pessimistically, as in the protocol). No full sort is made.

    Args:
        scores: float array [num_queries, num_items]. No NaN; -inf marks removed items.
        k: int. List length; at most num_items.

    Returns:
        (indices int64 [num_queries, k] best first, ranks float64 [num_queries, k]).

    Example:
        >>> top_k(np.array([[0.1, 0.7, 0.7, 0.3]]), 2)
        (array([[1, 2]]), array([[2., 2.]]))
    """
    c, m = scores.shape
    if k < m:
        part, exact = _candidates(scores, k)
    else:
        part, exact = np.tile(np.arange(m), (c, 1)), np.ones(c, bool)
    cand = np.take_along_axis(scores, part, axis=1)
    t = cand.min(axis=1)
    n_ge_t = (scores >= t[:, None]).sum(axis=1)
    # Elsewhere a tie straddling the boundary got arbitrary members; re-pick them by index.
    for i in np.flatnonzero((n_ge_t > k) & ~exact):
        greater = np.flatnonzero(scores[i] > t[i])
        part[i] = np.concatenate([greater, np.flatnonzero(scores[i] == t[i])[: k - greater.size]])
        cand[i] = scores[i, part[i]]
    order = np.lexsort((part, -cand), axis=-1)
    top = np.take_along_axis(part, order, axis=1)
    top_scores = np.take_along_axis(cand, order, axis=1)
    # Pessimistic rank of a position = 1 + last position of its tie group (lists are sorted).
    last = np.ones(top_scores.shape, bool)
    last[:, :-1] = top_scores[:, :-1] != top_scores[:, 1:]
    ends = np.where(last, np.arange(top.shape[1]), top.shape[1])
    ranks = np.minimum.accumulate(ends[:, ::-1], axis=1)[:, ::-1] + 1.0
    # The boundary group continues past the list: its rank counts the whole row.
    ranks = np.where(top_scores == t[:, None], n_ge_t[:, None], ranks)
    return top, ranks
