"""Ranking queries and their labeled positives from a canonical interaction log, leak-free."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional, Union, cast

import numpy as np
import pandas as pd

from tfrec.ranking import examples

_SECONDS_PER_DAY = 86400
_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday; Monday = 0


def ranking_queries(
    interactions: pd.DataFrame,
    item_ids: Union[Sequence[str], np.ndarray],
    heads: Sequence[str],
    max_history: int,
    start: Optional[int] = None,
    end: Optional[int] = None,
) -> tuple[examples.RankingQueries, examples.LabeledPairs]:
    """One query per (user, timestamp) group of events in [start, end), with its positives.

    The history of a query holds the user's events strictly before its timestamp (from the
    whole log, so events before `start` count), most recent first: events of the same group
    (other lines of one invoice) never leak into it. Every distinct catalog item of the group
    becomes a positive row; its label on head `h` is 1 when the group holds an `h` event on it
    (the maximum `value` for the `rating` head), else 0. So an item only viewed is a row with
    purchase = 0: a real "seen but not bought" example for the purchase head.

    Args:
        interactions: pd.DataFrame in the canonical schema (tfrec.data.schema), sorted by time.
        item_ids: list or array of str. The catalog; item_index refers to positions in it. Events on
            other items are left out of the positives (they still appear in histories).
        heads: list of str. Label columns, e.g. ("view", "cart", "purchase").
        max_history: int. History length.
        start: int or None. First unix second of the target window. Defaults to None (open).
        end: int or None. End (exclusive) of the target window. Defaults to None (open).

    Returns:
        (RankingQueries, LabeledPairs of the positives).
    """
    if isinstance(max_history, bool) or not isinstance(max_history, int) or max_history < 1:
        raise ValueError(f"`max_history` must be a positive int, received {max_history!r}")
    heads = tuple(heads)
    ts = interactions["timestamp"].to_numpy(np.int64)
    users = interactions["user_id"].to_numpy(object)
    items = interactions["item_id"].to_numpy(object)
    events = interactions["event_type"].to_numpy(object)
    window = np.ones(len(ts), bool)
    if start is not None:
        window &= ts >= start
    if end is not None:
        window &= ts < end
    catalog = pd.Index(list(item_ids))
    # pandas-stubs wants an Index; get_indexer takes any array of labels.
    item_index = catalog.get_indexer(cast(pd.Index, items))
    target = window & (item_index >= 0)

    frame = pd.DataFrame({"user": users[target], "ts": ts[target]})
    group = frame.groupby(["user", "ts"], sort=False).ngroup().to_numpy()
    first = np.unique(group, return_index=True)[1]
    q_user, q_ts = frame["user"].to_numpy(object)[first], frame["ts"].to_numpy(np.int64)[first]

    values = interactions["value"].to_numpy(np.float32)[target]
    label_frame = pd.DataFrame({"q": group, "i": item_index[target]})
    for head in heads:
        hit = events[target] == head
        label_frame[head] = np.where(hit, values if head in examples.REGRESSION_HEADS else 1.0, 0.0)
    labels = label_frame.groupby(["q", "i"], sort=True).max()
    pairs = examples.LabeledPairs(
        labels.index.get_level_values("q").to_numpy(),
        labels.index.get_level_values("i").to_numpy(),
        labels[list(heads)].to_numpy(np.float32).reshape(len(labels), len(heads)),
    )

    history_items = np.full([len(q_user), max_history], "", dtype=object)
    history_events = np.full([len(q_user), max_history], "", dtype=object)
    by_user = pd.Series(np.arange(len(users))).groupby(users, sort=False).indices
    for q, (user, t) in enumerate(zip(q_user, q_ts, strict=True)):
        rows = by_user[user]  # ascending positions, hence ascending timestamps
        end_pos = np.searchsorted(ts[rows], t, side="left")
        recent = rows[max(0, end_pos - max_history) : end_pos][::-1]
        history_items[q, : len(recent)] = items[recent]
        history_events[q, : len(recent)] = events[recent]
    queries = examples.RankingQueries(
        user_id=q_user,
        history_item_ids=history_items,
        history_event_types=history_events,
        hour_of_day=((q_ts // 3600) % 24).astype(np.int32),
        day_of_week=((q_ts // _SECONDS_PER_DAY + _EPOCH_WEEKDAY) % 7).astype(np.int32),
    )
    return queries, pairs
