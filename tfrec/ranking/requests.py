"""The one place a user's moment becomes the inputs of the `retrieve`/`recommend` signatures."""

from __future__ import annotations

import datetime
import time
from collections.abc import Sequence
from typing import Optional, Union

import numpy as np

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
    k: int = 10,
    exclude_recent: bool = False,
    query_text: Optional[str] = None,
) -> dict:
    """One request row of `retrieve` or `recommend`, as NumPy arrays with a batch of 1.

    Args:
        user_id: str. The user (unknown users get the OOV embedding).
        recent: list of (item_id, event_type), most recent first. Sent whole: the graph keeps
            the latest `max_history` for the towers; exclusions and explanations read all.
        now: unix seconds, datetime (naive = UTC) or None (the current time). Sets
            `hour_of_day` and `day_of_week` (Monday = 0) in UTC.
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
    moment = datetime.datetime.fromtimestamp(unix_seconds(now), tz=datetime.UTC)
    inputs = {
        "user_id": np.array([str(user_id)], object),
        "history_item_ids": np.array([i for i, _ in events], object).reshape(1, -1),
        "history_event_types": np.array([e for _, e in events], object).reshape(1, -1),
        "hour_of_day": np.array([moment.hour], np.int32),
        "day_of_week": np.array([moment.weekday()], np.int32),
        "k": np.array([k], np.int32),
        "exclude_recent": np.array([bool(exclude_recent)]),
    }
    if query_text is not None:
        inputs["query_text"] = np.array([str(query_text)], object)
    return inputs


def stack(rows: Sequence[dict]) -> dict:
    """One batch request from one-row requests of `build`; recent events padded with "".

    Every row must have the same inputs (all with `query_text` or none).
    """
    if not rows:
        return {
            "user_id": np.zeros([0], object),
            "history_item_ids": np.zeros([0, 0], object),
            "history_event_types": np.zeros([0, 0], object),
            "hour_of_day": np.zeros([0], np.int32),
            "day_of_week": np.zeros([0], np.int32),
            "k": np.zeros([0], np.int32),
            "exclude_recent": np.zeros([0], bool),
        }
    names = set(rows[0])
    for i, row in enumerate(rows):
        if set(row) != names:
            raise ValueError(
                f"`rows[{i}]` must have the inputs of `rows[0]` {sorted(names)}, "
                f"received {sorted(row)}"
            )
    width = max(row["history_item_ids"].shape[1] for row in rows)
    out = {}
    for name in rows[0]:
        parts = [row[name] for row in rows]
        if parts[0].ndim == 2:
            padded = np.full([len(parts), width], "", object)
            for i, part in enumerate(parts):
                padded[i, : part.shape[1]] = part[0]
            out[name] = padded
        else:
            out[name] = np.concatenate(parts)
    return out
