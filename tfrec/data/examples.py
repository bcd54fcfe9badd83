"""Leak-free retrieval examples and evaluation queries built from an interaction log."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pandas as pd

from tfrec import errors, request_schema
from tfrec.data import schema


@dataclasses.dataclass
class RetrievalExamples:
    """One training or evaluation example per target interaction, as NumPy arrays.

    Every query feature only uses events strictly before the example's timestamp, so events
    sharing that timestamp (other lines of the same invoice) never leak into the history.

    Args:
        user_id: np.ndarray [n] object. The user.
        history_item_ids: np.ndarray [n, max_history] object. Earlier items, most recent first,
            "" padding.
        history_event_types: np.ndarray [n, max_history] object. Their event types, "" padding.
        timestamp: np.ndarray [n] int64. Unix seconds of the target event.
        hour_of_day: np.ndarray [n] int32. UTC hour of the target event.
        day_of_week: np.ndarray [n] int32. UTC weekday of the target event, Monday = 0.
        item_id: np.ndarray [n] object. The target item.
        event_type: np.ndarray [n] object. The target event type.
    """

    user_id: np.ndarray
    history_item_ids: np.ndarray
    history_event_types: np.ndarray
    timestamp: np.ndarray
    hour_of_day: np.ndarray
    day_of_week: np.ndarray
    item_id: np.ndarray
    event_type: np.ndarray

    def __len__(self) -> int:
        return len(self.user_id)

    def subset(self, rows: np.ndarray) -> RetrievalExamples:
        """The examples at positions `rows`, in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        return RetrievalExamples(
            **{f.name: getattr(self, f.name)[rows] for f in dataclasses.fields(self)}
        )


def concatenate(parts: Sequence[RetrievalExamples]) -> RetrievalExamples:
    """The examples of `parts` one after the other (e.g. a replay sample, then a new window)."""
    if not parts:
        raise ValueError("`parts` must hold at least one RetrievalExamples, received none")
    return RetrievalExamples(
        **{
            f.name: np.concatenate([getattr(p, f.name) for p in parts])
            for f in dataclasses.fields(RetrievalExamples)
        }
    )


@dataclasses.dataclass
class EvalQueries:
    """One retrieval query per (user, timestamp) group of target events, for offline evaluation.

    Args:
        user_id, history_item_ids, history_event_types, timestamp, hour_of_day, day_of_week:
            as in RetrievalExamples, one row per query.
        relevant: list of np.ndarray (object). Distinct items of the group, in log order.
        seen: list of np.ndarray (object). Distinct items the user interacted with strictly
            before the query time (any event type), in order of first interaction. These are
            read-only views of one shared array.
    """

    user_id: np.ndarray
    history_item_ids: np.ndarray
    history_event_types: np.ndarray
    timestamp: np.ndarray
    hour_of_day: np.ndarray
    day_of_week: np.ndarray
    relevant: list
    seen: list

    def __len__(self) -> int:
        return len(self.user_id)

    def subset(self, rows: np.ndarray) -> EvalQueries:
        """The queries at positions `rows`, in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        return EvalQueries(
            user_id=self.user_id[rows],
            history_item_ids=self.history_item_ids[rows],
            history_event_types=self.history_event_types[rows],
            timestamp=self.timestamp[rows],
            hour_of_day=self.hour_of_day[rows],
            day_of_week=self.day_of_week[rows],
            relevant=[self.relevant[i] for i in rows],
            seen=[self.seen[i] for i in rows],
        )


def time_features(timestamp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """UTC hour of day and day of week (Monday = 0) of unix seconds, as int32 arrays: the
    request schema's `hour_of_day` and `day_of_week`, as requests compute them."""
    return request_schema.time_features(np.asarray(timestamp, dtype=np.int64))


class _Log:
    """The log sorted by (user, time), with the bounds history windows need.

    Attributes (all indexed by sorted position): `order` maps to original rows; `user_start` is
    the user's first position; `tie_start` the first position of the user's events at the same
    timestamp, so the history of position i is positions [user_start, tie_start) reversed.
    """

    def __init__(self, interactions: pd.DataFrame):
        needed = ("user_id", "item_id", "timestamp", "event_type")
        missing = [c for c in needed if c not in interactions.columns]
        if missing:
            raise errors.DataError(
                f"`interactions` is missing columns {missing}; expected "
                f"{list(schema.INTERACTION_COLUMNS)}, received {list(interactions.columns)}"
            )
        user_codes, _ = pd.factorize(interactions["user_id"], sort=False)
        ts = interactions["timestamp"].to_numpy(dtype=np.int64)
        # lexsort is stable, so rows of one user and second keep their log order.
        self.order = np.lexsort((ts, user_codes))
        self.user = user_codes[self.order]
        self.ts = ts[self.order]
        self.item = interactions["item_id"].to_numpy(dtype=object)[self.order]
        self.event = interactions["event_type"].to_numpy(dtype=object)[self.order]
        n = len(self.order)
        positions = np.arange(n)
        new_user = np.ones(n, dtype=bool)
        new_user[1:] = self.user[1:] != self.user[:-1]
        new_tie = new_user.copy()
        new_tie[1:] |= self.ts[1:] != self.ts[:-1]
        self.user_start = np.maximum.accumulate(np.where(new_user, positions, 0))
        self.tie_start = np.maximum.accumulate(np.where(new_tie, positions, 0))

    def targets(self, start_ts: int, end_ts: int, target_events: Sequence[str]) -> np.ndarray:
        """Sorted positions of target rows in [start_ts, end_ts), in original log order."""
        keep = (self.ts >= start_ts) & (self.ts < end_ts)
        if target_events:
            keep &= np.isin(self.event, np.asarray(list(target_events), dtype=object))
        positions = np.flatnonzero(keep)
        return positions[np.argsort(self.order[positions], kind="stable")]

    def history(self, positions: np.ndarray, max_history: int) -> tuple[np.ndarray, np.ndarray]:
        """[len(positions), max_history] items and event types before each position, "" padded."""
        window = self.tie_start[positions, None] - 1 - np.arange(max_history)[None, :]
        # Out-of-window slots point one past the end, at the "" padding appended below.
        window = np.where(window >= self.user_start[positions, None], window, len(self.order))
        items = np.append(self.item, "").astype(object)[window]
        events = np.append(self.event, "").astype(object)[window]
        return items, events


def _check(start_ts: int, end_ts: int, max_history: int, target_events: Sequence[str]) -> None:
    if max_history < 1:
        raise errors.ConfigError(f"`max_history` must be >= 1, received {max_history}")
    if end_ts <= start_ts:
        raise errors.ConfigError(
            f"`end_ts` must be greater than `start_ts` ({start_ts}), received {end_ts}"
        )
    unknown = [e for e in target_events if e not in schema.EVENT_TYPES]
    if unknown:
        raise errors.ConfigError(
            f"`target_events` must be drawn from {schema.EVENT_TYPES}, received {unknown}"
        )


def _query_fields(interactions, log: _Log, positions: np.ndarray, max_history: int) -> dict:
    """The query features shared by training examples and evaluation queries."""
    items, events = log.history(positions, max_history)
    ts = log.ts[positions]
    hour, day = time_features(ts)
    # Named as the request inputs they become at serving time.
    return {
        request_schema.USER_ID.name: interactions["user_id"].to_numpy(dtype=object)[
            log.order[positions]
        ],
        request_schema.HISTORY_ITEM_IDS.name: items,
        request_schema.HISTORY_EVENT_TYPES.name: events,
        "timestamp": ts,
        request_schema.HOUR_OF_DAY.name: hour,
        request_schema.DAY_OF_WEEK.name: day,
    }


def build_examples(
    interactions: pd.DataFrame,
    start_ts: int,
    end_ts: int,
    max_history: int,
    target_events: Sequence[str] = (),
) -> RetrievalExamples:
    """One retrieval example per target interaction with `start_ts <= timestamp < end_ts`.

    Args:
        interactions: pd.DataFrame in the canonical schema. Pass the whole log (earlier splits
            included): histories are drawn from all of it, strictly before each target.
        start_ts: int. First target second (inclusive).
        end_ts: int. Last target second (exclusive).
        max_history: int. History length H.
        target_events: sequence of str. Event types that become targets; empty: all.

    Returns:
        RetrievalExamples in log order (by timestamp).

    Example:
        >>> ex = build_examples(log, split.validation_start, split.test_start, 20, ("purchase",))
    """
    _check(start_ts, end_ts, max_history, target_events)
    log = _Log(interactions)
    positions = log.targets(start_ts, end_ts, target_events)
    return RetrievalExamples(
        **_query_fields(interactions, log, positions, max_history),
        item_id=log.item[positions].astype(object),
        event_type=log.event[positions].astype(object),
    )


def _seen_items(log: _Log, query_positions: np.ndarray) -> list:
    """Distinct items per query's user strictly before its time, as views of one array."""
    item_codes, _ = pd.factorize(log.item, sort=False)
    pairs = pd.DataFrame({"user": log.user, "item": item_codes})
    # First sorted position of each (user, item): an item is seen before position p exactly
    # when that first position is < tie_start[p]. Sorted positions are user-major, so these
    # first positions are ordered by user, then by time.
    first = np.flatnonzero(~pairs.duplicated().to_numpy())
    first_user = log.user[first]
    seen_all = log.item[first].astype(object)
    seen_all.flags.writeable = False
    lo = np.searchsorted(first_user, log.user[query_positions], side="left")
    hi = np.searchsorted(first, log.tie_start[query_positions], side="left")
    return [seen_all[a:b] for a, b in zip(lo.tolist(), hi.tolist(), strict=True)]


def build_eval_queries(
    interactions: pd.DataFrame,
    start_ts: int,
    end_ts: int,
    max_history: int,
    target_events: Sequence[str] = (),
) -> EvalQueries:
    """One query per (user, timestamp) group of target events in [start_ts, end_ts).

    All target rows of a user at one second (one invoice, one session step) form one query whose
    relevant set is their distinct items; its history is what the user did strictly before.

    Args:
        interactions: pd.DataFrame in the canonical schema, the whole log.
        start_ts: int. First query second (inclusive).
        end_ts: int. Last query second (exclusive).
        max_history: int. History length H.
        target_events: sequence of str. Event types that count as relevant; empty: all.

    Returns:
        EvalQueries ordered by time (ties by the user's first row in the log).
    """
    _check(start_ts, end_ts, max_history, target_events)
    log = _Log(interactions)
    positions = log.targets(start_ts, end_ts, target_events)
    # Group target rows by (user, second): in sorted-position order they are contiguous.
    by_group = np.sort(positions)
    group_key = log.tie_start[by_group]
    starts = np.flatnonzero(np.diff(group_key, prepend=-1) != 0)
    query_positions = by_group[starts]
    relevant_codes = pd.DataFrame({"group": group_key, "item": log.item[by_group]})
    distinct = ~relevant_codes.duplicated().to_numpy()
    relevant_items = log.item[by_group][distinct].astype(object)
    bounds = np.searchsorted(group_key[distinct], group_key[starts], side="left")[1:]
    relevant = np.split(relevant_items, bounds) if len(starts) else []
    # Chronological query order: by the earliest original row of each group.
    first_row = np.minimum.reduceat(log.order[by_group], starts) if len(starts) else starts
    chrono = np.argsort(first_row, kind="stable")
    query_positions = query_positions[chrono]
    relevant = [relevant[i] for i in chrono.tolist()]
    return EvalQueries(
        **_query_fields(interactions, log, query_positions, max_history),
        relevant=relevant,
        seen=_seen_items(log, query_positions),
    )
