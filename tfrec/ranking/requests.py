"""The one place a user's moment becomes the inputs of the `retrieve`/`recommend` signatures."""

from __future__ import annotations

import datetime
import time
from collections.abc import Sequence
from typing import Optional, Union

import numpy as np

from tfrec import request_schema

Moment = Union[None, int, float, datetime.datetime]


def unix_seconds(now: Moment) -> float:
    """Unix seconds of `now`: unix seconds, a datetime (naive = UTC) or None (the current time)."""
    if now is None:
        return time.time()
    if isinstance(now, datetime.datetime):
        if now.tzinfo is None:
            now = now.replace(tzinfo=datetime.UTC)
        return now.timestamp()
    if isinstance(now, bool) or not isinstance(now, (int, float, np.integer, np.floating)):
        raise ValueError(f"`now` must be unix seconds, a datetime or None, received {now!r}")
    return float(now)


def recent_events(events) -> list:
    """`events` as a list of (item_id, event_type) str pairs, validated."""
    found = []
    for i, event in enumerate(events or ()):
        if not (isinstance(event, (tuple, list)) and len(event) == 2):
            raise ValueError(
                f"`recent_events[{i}]` must be an (item_id, event_type) pair, received {event!r}"
            )
        found.append((str(event[0]), str(event[1])))
    return found


def build(
    user_id: str,
    recent: Sequence = (),
    now: Moment = None,
    k: int = request_schema.K.default,
    exclude_recent: bool = request_schema.EXCLUDE_RECENT.default,
    query_text: Optional[str] = None,
) -> dict:
    """One request row of `retrieve` or `recommend`, as NumPy arrays with a batch of 1.

    The inputs, their dtypes and shapes are `tfrec.request_schema`'s.

    Args:
        user_id: str. The user (unknown users get the OOV embedding).
        recent: list of (item_id, event_type), most recent first. Sent whole: the graph keeps
            the latest `max_history` for the towers; exclusions and explanations read all.
        now: unix seconds, datetime (naive = UTC) or None (the current time). Sets
            `hour_of_day` and `day_of_week` (Monday = 0) in UTC, as training examples do.
        k: int >= 1. Items to return at most. Defaults to 10.
        exclude_recent: bool. Drop every recent item. Defaults to False.
        query_text: str or None. Adds `query_text` (the `_text` variant's input) unless None.

    Returns:
        dict input name -> np.ndarray [1] or [1, len(recent)].

    Example:
        >>> build("u1", [("sku-9", "cart")], now=0, k=5)["day_of_week"]
        array([3], dtype=int32)
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"`k` must be a positive int, received {k!r}")
    events = recent_events(recent)
    hour, day = request_schema.time_features([unix_seconds(now)])
    values: dict[request_schema.RequestInput, Sequence] = {
        request_schema.USER_ID: [str(user_id)],
        request_schema.HISTORY_ITEM_IDS: [[i for i, _ in events]],
        request_schema.HISTORY_EVENT_TYPES: [[e for _, e in events]],
        request_schema.HOUR_OF_DAY: list(hour),
        request_schema.DAY_OF_WEEK: list(day),
        request_schema.K: [k],
        request_schema.EXCLUDE_RECENT: [bool(exclude_recent)],
    }
    if query_text is not None:
        values[request_schema.QUERY_TEXT] = [str(query_text)]
    return {spec.name: spec.column(value) for spec, value in values.items()}


def stack(rows: Sequence[dict]) -> dict:
    """One batch request from the requests of `build`; lists padded with the schema's "".

    Every row must have the same inputs (all with `query_text` or none) and fit the schema
    (`request_schema.check`); no rows is the schema's empty batch of `recommend`.
    """
    if not rows:
        return request_schema.empty_batch(request_schema.RECOMMEND)
    names = set(rows[0])
    for i, row in enumerate(rows):
        if set(row) != names:
            raise ValueError(
                f"`rows[{i}]` must have the inputs of `rows[0]` {sorted(names)}, "
                f"received {sorted(row)}"
            )
        try:
            request_schema.check(
                row,
                request_schema.RECOMMEND,
                with_text=request_schema.QUERY_TEXT.name in row,
                excluding=request_schema.EXCLUDE_ITEM_IDS.name in row,
            )
        except request_schema.RequestError as e:
            raise request_schema.RequestError(f"`rows[{i}]`: {e}") from None
    out = {}
    for name in rows[0]:
        spec = request_schema.BY_NAME[name]
        parts = [row[name] for row in rows]
        if spec.rank == 2:
            out[name] = spec.column([list(r) for part in parts for r in part])
        else:
            out[name] = np.concatenate(parts).astype(spec.numpy_dtype)
    return out
