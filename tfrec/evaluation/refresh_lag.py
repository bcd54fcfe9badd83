"""The candidates of a served index refreshed with a lag: what a query at time t could be shown.

A served model's index grows without retraining (`tfrec index refresh`): new catalog rows are
embedded by the trained item tower from their text and attributes. With refreshes running
continuously `lag` seconds behind the event log, the index a query at time t searches holds
the model's own catalog plus every item first seen at or before `t - lag`. An item's first
event is never in the index of the query that is that event, whatever the lag: nothing knew
the item before it. The mask goes into the score function, so `protocol.evaluate` stays one
protocol: its `available` mask decides which items count as relevant, this one what each
query can return.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tfrec.evaluation import protocol

# The score of an item a query cannot be shown: below any model score, and finite so that the
# protocol's pessimistic tie count still ranks such an item behind every candidate.
LOWEST = -1e9

CandidateFn = Callable[[int, int], np.ndarray]


def reachable(first_seen: np.ndarray, timestamps: np.ndarray, lag_seconds: int) -> np.ndarray:
    """Whether a refresh `lag_seconds` behind has added an item by a query's time.

    Broadcasts like NumPy: pass `first_seen[None, :]` and `timestamps[:, None]` for a
    [num_queries, num_items] mask, or two arrays of (query, item) pairs.

    Args:
        first_seen: float array. Unix second of the item's first event; NaN for an item
            without one (never added by a refresh).
        timestamps: int array. Unix second of the query.
        lag_seconds: int >= 0. How far the refreshed index runs behind the event log.

    Returns:
        bool array of the broadcast shape.
    """
    if isinstance(lag_seconds, bool) or not isinstance(lag_seconds, int) or lag_seconds < 0:
        raise ValueError(f"`lag_seconds` must be an int >= 0, received {lag_seconds!r}")
    # At least one second: an event never precedes itself. NaN <= x is False.
    latest = np.asarray(timestamps, dtype=np.float64) - max(lag_seconds, 1)
    return np.asarray(first_seen, dtype=np.float64) <= latest


def candidates(
    known: np.ndarray, first_seen: np.ndarray, timestamps: np.ndarray, lag_seconds: int
) -> CandidateFn:
    """The per-query candidate mask of a model whose index is refreshed `lag_seconds` behind.

    Args:
        known: bool array [num_items]. The model's own catalog.
        first_seen: float array [num_items]. Unix second of each item's first event; NaN for
            an item without one (never added by a refresh).
        timestamps: int array [num_queries]. Each query's time.
        lag_seconds: int >= 0. How far the refreshed index runs behind the event log.

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
    stamps = np.asarray(timestamps, dtype=np.int64)
    reachable(first_seen[:0], stamps[:0], lag_seconds)  # validates the lag up front

    def mask(start: int, end: int) -> np.ndarray:
        added = reachable(first_seen[None, :], stamps[start:end, None], lag_seconds)
        return known[None, :] | added

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
