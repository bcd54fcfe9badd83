"""The candidates of a served index refreshed once a day: what a query at time t could be shown.

A served model's index grows without retraining (`tfrec index refresh`): new catalog rows are
embedded by the trained item tower from their text and attributes. Refreshed at the start of
each UTC day, the index a query at time t searches holds the model's own catalog plus every
item first seen before t's day; an item first seen on t's day or later is not in it yet.
The mask goes into the score function, so `protocol.evaluate` stays one protocol: its
`available` mask decides which items count as relevant, this one what each query can return.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tfrec.evaluation import protocol

DAY_SECONDS = 86_400
# The score of an item a query cannot be shown: below any model score, and finite so that the
# protocol's pessimistic tie count still ranks such an item behind every candidate.
LOWEST = -1e9

CandidateFn = Callable[[int, int], np.ndarray]


def day_start(timestamps: np.ndarray) -> np.ndarray:
    """Unix second of 00:00 UTC of each timestamp's day (unix time counts no leap seconds).

    Args:
        timestamps: int array [num_queries]. Unix seconds.

    Returns:
        int64 array [num_queries].
    """
    t = np.asarray(timestamps, dtype=np.int64)
    return t - t % DAY_SECONDS


def candidates(known: np.ndarray, first_seen: np.ndarray, timestamps: np.ndarray) -> CandidateFn:
    """The per-query candidate mask of a model whose index is refreshed daily.

    Args:
        known: bool array [num_items]. The model's own catalog.
        first_seen: float array [num_items]. Unix second of each item's first event; NaN for
            an item without one (never added by a refresh).
        timestamps: int array [num_queries]. Each query's time.

    Returns:
        callable `(start, end) -> bool array [end - start, num_items]`: True where query
        `start + row` can be shown the item.
    """
    known = np.asarray(known, dtype=bool)
    first_seen = np.asarray(first_seen, dtype=np.float64)
    if known.shape != first_seen.shape:
        raise ValueError(
            f"`known` and `first_seen` must both be [num_items], received {known.shape} and "
            f"{first_seen.shape}"
        )
    days = day_start(timestamps).astype(np.float64)

    def mask(start: int, end: int) -> np.ndarray:
        # NaN < day is False: an item without an event is never refreshed in.
        return known[None, :] | (first_seen[None, :] < days[start:end, None])

    return mask


def fixed(known: np.ndarray) -> CandidateFn:
    """The candidate mask of a model served as trained: its own catalog for every query.

    Args:
        known: bool array [num_items].
    """
    known = np.asarray(known, dtype=bool)

    def mask(start: int, end: int) -> np.ndarray:
        return np.broadcast_to(known, (end - start, known.size))

    return mask


def restrict(score_fn: protocol.ScoreFn, mask: CandidateFn) -> protocol.ScoreFn:
    """`score_fn` with every item outside the query's candidates scored LOWEST."""

    def score(start: int, end: int) -> np.ndarray:
        return np.where(mask(start, end), score_fn(start, end), LOWEST)

    return score
