"""Segment labels of the test queries, for metric bars per kind of user and item.

A query's item-side labels come from its first target item; its user-side labels from the
user and the history the query sees. Labels are computed once, from the reference's data, and
apply to every variant evaluated on the same queries.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

# Segment dimension -> title in the report.
DIMENSIONS = {
    "cold_users": "Cold users (not in training)",
    "cold_items": "Cold items (target first seen after training)",
    "category": "Category of the target item",
    "popularity": "Popularity of the target item (training events)",
    "history_length": "History length (recent events the query sees)",
}
_HISTORY_BUCKETS = ((0, 0, "0"), (1, 2, "1-2"), (3, 5, "3-5"), (6, 10, "6-10"), (11, None, "11+"))


def popularity_buckets(train_events: np.ndarray) -> np.ndarray:
    """`cold` (no training event), then `tail`, `torso`, `head` by the 50th and 90th
    percentiles of the training counts of items that have any."""
    counts = np.asarray(train_events, np.float64)
    out = np.full(counts.shape, "cold", dtype=object)
    warm = counts > 0
    if warm.any():
        p50, p90 = np.percentile(counts[warm], [50, 90])
        out[warm] = np.where(
            counts[warm] > p90,
            "head (top 10%)",
            np.where(counts[warm] > p50, "torso (50-90%)", "tail (bottom 50%)"),
        )
    return out


def history_bucket(length: int) -> str:
    for low, high, name in _HISTORY_BUCKETS:
        if length >= low and (high is None or length <= high):
            return name
    raise ValueError(f"`length` must be >= 0, received {length}")


def labels(
    user_id: Sequence[str],
    timestamp: Sequence[int],
    history_item_ids: Iterable[Sequence[str]],
    relevant: Iterable[Sequence[str]],
    catalog: pd.DataFrame,
    known_users: Iterable[str],
) -> pd.DataFrame:
    """One row per test query: `user_id`, `timestamp` and one column per `DIMENSIONS` key.

    Args:
        user_id, timestamp: [num_queries]. The queries, in evaluation order.
        history_item_ids: per query, its history item ids ("" pads).
        relevant: per query, its target item ids (the first one labels the query).
        catalog: DataFrame with `item_id`, `category`, `train_events` (the artifact catalog).
        known_users: users of the training vocabulary.
    """
    for column in ("item_id", "category", "train_events"):
        if column not in catalog:
            raise ValueError(f"`catalog` must have a `{column}` column, received {list(catalog)}")
    known = set(known_users)
    items = catalog.set_index("item_id")
    bucket = pd.Series(popularity_buckets(items["train_events"].to_numpy()), index=items.index)
    first = [str(r[0]) if len(r) else "" for r in relevant]
    category = items["category"].reindex(first).fillna("(unknown)").astype(str).to_numpy()
    popularity = bucket.reindex(first).fillna("cold").to_numpy()
    events = items["train_events"].reindex(first).fillna(0).to_numpy()
    lengths = [sum(1 for h in hist if h) for hist in history_item_ids]
    return pd.DataFrame(
        {
            "user_id": list(user_id),
            "timestamp": list(timestamp),
            "cold_users": ["known user" if u in known else "cold user" for u in user_id],
            "cold_items": np.where(events > 0, "known item", "cold item"),
            "category": category,
            "popularity": popularity,
            "history_length": [history_bucket(n) for n in lengths],
        }
    )


def segment_means(values: np.ndarray, labels_column: Sequence[str]) -> pd.DataFrame:
    """Mean of per-query `values` per label (NaN queries do not count), with query counts."""
    frame = pd.DataFrame({"label": list(labels_column), "value": np.asarray(values, np.float64)})
    frame = frame.dropna()
    grouped = frame.groupby("label", sort=True)["value"]
    return pd.DataFrame({"mean": grouped.mean(), "queries": grouped.size()}).reset_index()
