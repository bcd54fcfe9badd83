"""Full-catalog evaluation protocol: every query ranks every item; metrics per segment.

The protocol, in full:

* Queries. The test part of a temporal split is grouped by (user, timestamp), e.g. one invoice;
  each group is one query and its *relevant* items are the group's distinct items, identified by
  catalog index `0..num_items-1`.
* Full catalog. Every query scores all `num_items` items; there are no sampled negatives.
* The catalog as the shop knew it (optional `available` mask): items not yet listed at the
  split boundary (by default: first seen after it) are removed from the ranking and from the
  relevant sets; nobody could have recommended them. Queries left with no relevant item are
  dropped and counted, and coverage is over the available items.
* Exclusion (optional). Items the user interacted with before the query time are removed from
  the ranking (score `-inf`) and from the relevant set, since a repeat purchase cannot then be
  recommended. Queries left with no relevant item are dropped and counted. Whether exclusion was
  on is recorded in the result (`exclude_seen`).
* Ties are pessimistic and deterministic: a relevant item's rank is the number of items whose
  score is >= its own (itself included), so every item tied with it ranks ahead of it. A constant
  scorer therefore ranks every item at `num_items` and earns no credit by luck. Top-k lists (for
  coverage) break ties by lower catalog index.
* Metrics per query, then averaged over the queries of a segment:
  Recall@k = |top-k ∩ relevant| / min(k, |relevant|); NDCG@k with binary gains and the ideal DCG
  over min(k, |relevant|) hits; MRR = 1 / rank of the first relevant item in the full ranking;
  HitRate@k = any relevant item in the top k. Coverage@k = distinct items over the segment's
  top-k lists / num_items.
* Segments. `all` is always reported. A caller segment is (query mask, item mask): it keeps the
  queries of the mask and restricts their relevant sets to the item mask (`cold_items`: items
  unseen in training; `cold_users`: a query mask of users without training history); queries
  left with no relevant item are not in the segment. Each segment reports its query count.

Cost: a few linear passes over each score row (group maxima, comparisons, counts) and an
argpartition of the few items above a lower bound of the k-th score; never a full sort.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Optional

import numpy as np

from tfrec.evaluation import metrics

ScoreFn = Callable[[int, int], np.ndarray]
# Rows of the score matrix handled at once: bounds the argpartition temporaries (~50 MB).
_CHUNK_ELEMENTS = 1 << 22


@dataclasses.dataclass
class EvalResult:
    """Metrics of one model under the protocol.

    Args:
        metrics: dict. Segment name -> {"recall@10": float, ..., "mrr": float, "queries": int};
            values are NaN for a segment with no query.
        ks: tuple of int. The cut-offs.
        num_items: int. Catalog size: the available items when a catalog mask was given.
        exclude_seen: bool. Whether previously seen items were removed from the ranking.
        dropped: dict. Segment name -> queries dropped because exclusion or the catalog mask
            emptied their relevant set.
        seconds: float. Wall time of the evaluation, scoring included.
    """

    metrics: dict[str, dict[str, float]]
    ks: tuple[int, ...]
    num_items: int
    exclude_seen: bool
    dropped: dict[str, int]
    seconds: float = 0.0
    # Metric -> value [num_queries] of each query in `all` (NaN: the query does not count),
    # for paired comparisons of two models on the same queries. Not part of `to_dict`.
    per_query: dict[str, np.ndarray] = dataclasses.field(
        default_factory=dict, repr=False, compare=False
    )

    def __getitem__(self, segment: str) -> dict[str, float]:
        return self.metrics[segment]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (NaN becomes None)."""

        def clean(v):
            return None if isinstance(v, float) and math.isnan(v) else v

        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out.pop("per_query")
        out["ks"] = list(self.ks)
        out["metrics"] = {s: {k: clean(v) for k, v in m.items()} for s, m in self.metrics.items()}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvalResult:
        """Inverse of `to_dict`."""
        table = {
            s: {k: (math.nan if v is None else v) for k, v in m.items()}
            for s, m in data["metrics"].items()
        }
        return cls(
            metrics=table,
            ks=tuple(data["ks"]),
            num_items=int(data["num_items"]),
            exclude_seen=bool(data["exclude_seen"]),
            dropped=dict(data["dropped"]),
            seconds=float(data.get("seconds", 0.0)),
        )


def _flatten(lists: Sequence, num_items: int, name: str, unique: bool):
    """Ragged per-query index arrays -> (query index, item) flat arrays sorted by query."""
    arrays = []
    for i, items in enumerate(lists):
        a = np.asarray(items, dtype=np.int64).ravel()
        if a.size and (a.min() < 0 or a.max() >= num_items):
            bad = a[(a < 0) | (a >= num_items)][0]
            raise ValueError(
                f"`{name}[{i}]` must hold catalog indices in [0, {num_items}), received {bad}"
            )
        arrays.append(np.unique(a) if unique else a)
    lengths = np.array([a.size for a in arrays], dtype=np.int64)
    items = np.concatenate(arrays) if arrays else np.zeros(0, np.int64)
    return np.repeat(np.arange(len(arrays)), lengths), items, lengths


def _check_segments(segments, n: int, num_items: int) -> dict[str, tuple]:
    out = {"all": (np.ones(n, bool), None)}
    for name, spec in (segments or {}).items():
        if name == "all":
            raise ValueError("`segments` must not redefine `all`, which is always reported")
        if not (isinstance(spec, (tuple, list)) and len(spec) == 2):
            raise ValueError(
                f"`segments[{name!r}]` must be (query_mask, item_mask), received {spec!r}"
            )
        q_mask, i_mask = spec
        q_mask = np.ones(n, bool) if q_mask is None else np.asarray(q_mask)
        if q_mask.dtype != bool or q_mask.shape != (n,):
            raise ValueError(
                f"`segments[{name!r}]` query mask must be bool [{n}], "
                f"received {q_mask.dtype} {q_mask.shape}"
            )
        if i_mask is not None and not callable(i_mask):
            i_mask = np.asarray(i_mask)
            if i_mask.dtype != bool or i_mask.shape != (num_items,):
                raise ValueError(
                    f"`segments[{name!r}]` item mask must be bool [{num_items}] or None, "
                    f"received {i_mask.dtype} {i_mask.shape}"
                )
        out[name] = (q_mask, i_mask)
    return out


def evaluate(
    score_fn: ScoreFn,
    relevant: Sequence[np.ndarray],
    num_items: int,
    ks: Sequence[int] = (10, 50, 100),
    exclude: Optional[Sequence[np.ndarray]] = None,
    segments: Optional[Mapping[str, tuple]] = None,
    batch_size: int = 512,
    progress: bool = False,
    available: Optional[np.ndarray] = None,
) -> EvalResult:
    """Evaluates one scorer on the full catalog under the protocol of this module.

    Args:
        score_fn: callable `(start, end) -> array [end - start, num_items]` of scores for queries
            `start..end-1`. Models, popularity and ALS all plug in this way.
        relevant: list of int arrays, one per query: catalog indices of its relevant items.
        num_items: int. Catalog size.
        ks: sequence of int. Cut-offs for Recall, NDCG, HitRate and Coverage. Defaults to
            (10, 50, 100).
        exclude: list of int arrays, one per query, or None. Items removed from the ranking and
            from the relevant set (previously seen items). Defaults to None (no exclusion).
        segments: dict or None. Name -> (query mask bool [num_queries] or None, item mask bool
            [num_items] or None, or a pair mask: a callable `(query indices [p], item indices
            [p]) -> bool [p]` over the relevant pairs, for a segment that depends on both,
            e.g. items listed on their query's own day). `all` is always added.
        batch_size: int. Queries per `score_fn` call. Defaults to 512.
        progress: bool. Show a tqdm progress bar. Defaults to False.
        available: bool array [num_items] or None. The catalog as known at the split: other
            items leave the ranking and the relevant sets. None: every item.

    Returns:
        EvalResult.

    Example:
        >>> r = evaluate(lambda s, e: np.tile([3.0, 2.0, 1.0], (e - s, 1)), [[1]], 3, ks=(1,))
        >>> r["all"]["mrr"]
        0.5
    """
    t0 = time.perf_counter()
    if isinstance(num_items, bool) or not isinstance(num_items, (int, np.integer)) or num_items < 1:
        raise ValueError(f"`num_items` must be a positive int, received {num_items!r}")
    if not ks or any(isinstance(k, bool) or not isinstance(k, (int, np.integer)) for k in ks):
        raise ValueError(f"`ks` must be a non-empty sequence of ints, received {ks!r}")
    ks = tuple(sorted({int(k) for k in ks}))
    if ks[0] < 1:
        raise ValueError(f"`ks` must be positive, received {ks!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive int, received {batch_size!r}")
    n, m = len(relevant), int(num_items)
    big_k = min(ks[-1], m)

    rel_q, rel_item, lengths = _flatten(relevant, m, "relevant", unique=True)
    if np.any(lengths == 0):
        raise ValueError(
            f"`relevant[{int(np.argmin(lengths))}]` must hold at least one item, received none"
        )
    seg_specs = _check_segments(segments, n, m)
    keep = np.ones(rel_q.size, bool)
    blocked = np.zeros(0, np.int64)
    if available is not None:
        available = np.asarray(available)
        if available.dtype != bool or available.shape != (m,):
            raise ValueError(
                f"`available` must be bool [{m}] or None, received {available.dtype} "
                f"{available.shape}"
            )
        blocked = np.flatnonzero(~available)
        keep = available[rel_item]
    ex_q, ex_item, ex_off = np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(n + 1, np.int64)
    if exclude is not None:
        if len(exclude) != n:
            raise ValueError(
                f"`exclude` must have one entry per query ({n}), received {len(exclude)}"
            )
        ex_q, ex_item, ex_len = _flatten(exclude, m, "exclude", unique=False)
        ex_off[1:] = np.cumsum(ex_len)
        keep &= ~np.isin(rel_q * m + rel_item, ex_q * m + ex_item)

    selections, dropped = {}, {}
    for name, (q_mask, i_mask) in seg_specs.items():
        if callable(i_mask):
            pairs = np.asarray(i_mask(rel_q, rel_item))
            if pairs.dtype != bool or pairs.shape != rel_q.shape:
                raise ValueError(
                    f"`segments[{name!r}]` pair mask must return bool [{rel_q.size}] (one per "
                    f"relevant pair), received {pairs.dtype} {pairs.shape}"
                )
            base = q_mask[rel_q] & pairs
        else:
            base = q_mask[rel_q] & (True if i_mask is None else i_mask[rel_item])
        dropped[name] = int(np.unique(rel_q[base]).size - np.unique(rel_q[base & keep]).size)
        selections[name] = (base & keep)[keep]
    rel_q, rel_item = rel_q[keep], rel_item[keep]
    rel_off = np.searchsorted(rel_q, np.arange(n + 1))

    rank = np.full(rel_q.size, np.inf)  # finite only for items in the top-k list
    top = np.zeros((n, big_k), np.int32)
    first = {name: np.full(n, np.nan) for name in selections}
    bar = None
    if progress:
        import tqdm  # only needed for the bar

        bar = tqdm.tqdm(total=n, unit="query", desc="evaluate")
    chunk = max(1, _CHUNK_ELEMENTS // m)
    for start in range(0, n, batch_size):
        end = min(start + batch_size, n)
        batch = np.asarray(score_fn(start, end))
        if batch.shape != (end - start, m):
            raise ValueError(
                f"`score_fn({start}, {end})` must return scores of shape {(end - start, m)}, "
                f"received {batch.shape}"
            )
        dtype = np.float32 if batch.dtype in (np.float16, np.float32) else np.float64
        for a in range(start, end, chunk):
            b = min(a + chunk, end)
            # A copy: -inf is written into it, and score_fn may return a cached view.
            s = np.array(batch[a - start : b - start], dtype=dtype)
            if np.isnan(s).any():
                raise ValueError(f"`score_fn({start}, {end})` returned NaN scores")
            e0, e1 = ex_off[a], ex_off[b]
            s[ex_q[e0:e1] - a, ex_item[e0:e1]] = -np.inf
            s[:, blocked] = -np.inf
            t_list, t_rank = metrics.top_k(s, big_k)
            top[a:b] = t_list
            r0, r1 = rel_off[a], rel_off[b]
            lq, items = rel_q[r0:r1] - a, rel_item[r0:r1]
            keys = (np.arange(b - a)[:, None] * m + t_list).ravel()
            sorter = np.argsort(keys)
            pos = np.minimum(np.searchsorted(keys, lq * m + items, sorter=sorter), keys.size - 1)
            found = keys[sorter[pos]] == lq * m + items
            rank[r0:r1] = np.where(found, t_rank.ravel()[sorter[pos]], np.inf)
            item_scores = s[lq, items]
            # Full-row counts already made, by score threshold: segments often share one.
            done_at, done_count = np.full(b - a, np.nan), np.zeros(b - a)
            for name, sel in selections.items():
                sel = sel[r0:r1]
                best, lowest = np.full(b - a, -np.inf), np.full(b - a, np.inf)
                np.maximum.at(best, lq[sel], item_scores[sel])
                np.minimum.at(lowest, lq[sel], rank[r0:r1][sel])
                has = np.zeros(b - a, bool)
                has[lq[sel]] = True
                # Best relevant item outside the top-k list: count its rank in the full row.
                far = np.flatnonzero(has & np.isinf(lowest))
                new = far[done_at[far] != best[far]]
                rows = s if new.size == b - a else s[new]
                done_count[new] = (rows >= best[new, None]).sum(axis=1)
                done_at[new] = best[new]
                lowest[far] = done_count[far]
                first[name][a:b] = np.where(has, lowest, np.nan)
        if bar is not None:
            bar.update(end - start)
    if bar is not None:
        bar.close()

    listed = m - blocked.size
    table = {
        name: _segment_metrics(sel, rel_q, rank, first[name], top, ks, m, listed)
        for name, sel in selections.items()
    }
    per_query = _per_query(selections["all"], rel_q, rank, first["all"], ks)
    return EvalResult(
        table, ks, listed, exclude is not None, dropped, time.perf_counter() - t0, per_query
    )


def _query_values(sel, rel_q, rank, first, ks) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The queries that count in a segment, and each metric's value for each of them."""
    queries = np.flatnonzero(~np.isnan(first))
    if queries.size == 0:
        return queries, {}
    num_rel = np.bincount(rel_q[sel], minlength=first.size)[queries]
    hit = sel & np.isfinite(rank)
    hq, hr = rel_q[hit], rank[hit]
    row = np.searchsorted(queries, hq)
    col = np.arange(hq.size) - np.searchsorted(hq, hq)  # position within its query
    ranks = np.full((queries.size, max(1, int(col.max(initial=0)) + 1)), np.inf)
    ranks[row, col] = hr
    values: dict[str, np.ndarray] = {}
    for k in ks:
        values[f"recall@{k}"] = metrics.recall_at_k(ranks, k, num_rel)
        values[f"ndcg@{k}"] = metrics.ndcg_at_k(ranks, k, num_rel)
        values[f"hit_rate@{k}"] = metrics.hit_rate_at_k(ranks, k)
    values["mrr"] = metrics.mrr(first[queries])
    return queries, values


def _segment_metrics(sel, rel_q, rank, first, top, ks, num_items, listed) -> dict[str, float]:
    queries, values = _query_values(sel, rel_q, rank, first, ks)
    out: dict[str, float] = {}
    if queries.size == 0:
        for k in ks:
            out.update({f"recall@{k}": math.nan, f"ndcg@{k}": math.nan})
            out.update({f"hit_rate@{k}": math.nan, f"coverage@{k}": math.nan})
        out["mrr"] = math.nan
        out["queries"] = 0
        return _ordered(out, ks)
    out.update({name: float(np.mean(v)) for name, v in values.items()})
    for k in ks:
        # Over the items that could be shown: the catalog as known at the split.
        out[f"coverage@{k}"] = metrics.coverage(top[queries, :k], num_items) * num_items / listed
    out["queries"] = int(queries.size)
    return _ordered(out, ks)


def _per_query(sel, rel_q, rank, first, ks) -> dict[str, np.ndarray]:
    """Metric -> value [num_queries] of every query; NaN where a query does not count."""
    queries, values = _query_values(sel, rel_q, rank, first, ks)
    out = {}
    for name, v in values.items():
        full = np.full(first.size, np.nan)
        full[queries] = v
        out[name] = full
    return out


def _ordered(out: dict, ks) -> dict:
    names = [f"{f}@{k}" for f in ("recall", "ndcg", "hit_rate") for k in ks]
    names += ["mrr"] + [f"coverage@{k}" for k in ks] + ["queries"]
    return {name: out[name] for name in names}
