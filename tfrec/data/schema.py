"""The canonical schema every loader returns: interactions, item catalog, user attributes."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd

from tfrec import errors

# Event types, weakest to strongest intent. `rating` is explicit feedback (MovieLens, reviews).
EVENT_TYPES = ("view", "cart", "purchase", "rating")

# Interactions: one row per event, sorted by `timestamp` (stable).
INTERACTION_COLUMNS = {
    "user_id": "str",  # never empty
    "item_id": "str",  # present in the catalog
    "timestamp": "int64",  # unix seconds, UTC
    "event_type": "str",  # one of EVENT_TYPES
    "value": "float32",  # rating for `rating` events, 1.0 otherwise
    "quantity": "float32",  # units (1.0 where the source has none)
    "price": "float32",  # unit price at event time; NaN when unknown
}


def iso_utc(ts: int) -> str:
    """A canonical `timestamp` (unix seconds) as ISO 8601 UTC, e.g. 2011-12-09T12:50:00+00:00."""
    return pd.Timestamp(int(ts), unit="s", tz="UTC").isoformat()


# Item catalog: one row per item_id. Text is "" when missing, never NaN.
ITEM_COLUMNS = {
    "item_id": "str",
    "title": "str",
    "description": "str",
    "category": "str",
    "price": "float32",  # NaN when unknown
}

# Users: one row per user_id; any further columns are string attributes.
USER_COLUMNS = {"user_id": "str"}


@dataclasses.dataclass
class CleaningReport:
    """What a loader read, kept and dropped, and how each problem in the source was treated.

    Args:
        source: str. The file or generator the data came from.
        rows_read: int. Data rows read (header excluded).
        rows_kept: int. Interaction rows in the cleaned dataset.
        dropped: dict. Reason -> number of rows dropped for it.
        treatments: dict. Problem -> one sentence on how it was handled (kept, merged, ...).
        examples: dict. Drop reason -> a few of the dropped rows, as "row N: what was there"
            (header = row 1).
    """

    source: str
    rows_read: int = 0
    rows_kept: int = 0
    dropped: dict[str, int] = dataclasses.field(default_factory=dict)
    treatments: dict[str, str] = dataclasses.field(default_factory=dict)
    examples: dict[str, list[str]] = dataclasses.field(default_factory=dict)

    def drop(self, reason: str, count: int) -> None:
        """Counts `count` rows dropped for `reason` (zero counts are recorded too)."""
        self.dropped[reason] = self.dropped.get(reason, 0) + int(count)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Dataset:
    """A cleaned dataset in the canonical schema.

    Args:
        name: str. Short name (`synthetic`, `online-retail`, ...).
        interactions: pd.DataFrame with INTERACTION_COLUMNS, sorted by timestamp.
        items: pd.DataFrame with ITEM_COLUMNS, one row per item.
        users: pd.DataFrame with at least `user_id`.
        report: CleaningReport.
    """

    name: str
    interactions: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame
    report: CleaningReport

    def __post_init__(self) -> None:
        self.interactions = conform(self.interactions, INTERACTION_COLUMNS, "interactions")
        self.items = conform(self.items, ITEM_COLUMNS, "items")
        self.users = conform(self.users, USER_COLUMNS, "users", extra_ok=True)
        validate(self)


def conform(frame: pd.DataFrame, columns: dict, what: str, extra_ok: bool = False) -> pd.DataFrame:
    """Returns `frame` with exactly the schema's columns, in order, cast to the schema's dtypes."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise errors.DataError(
            f"{what} frame is missing columns {missing}; expected {list(columns)}, "
            f"received {list(frame.columns)}"
        )
    out = {}
    for name, dtype in columns.items():
        col = frame[name]
        if dtype == "str":
            out[name] = col.fillna("").astype(str).to_numpy(dtype=object)
        else:
            out[name] = col.to_numpy(dtype=np.dtype(dtype))
    result = pd.DataFrame(out, index=pd.RangeIndex(len(frame)))
    if extra_ok:
        for name in frame.columns:
            if name not in columns:
                result[name] = frame[name].fillna("").astype(str).to_numpy(dtype=object)
    return result


def validate(ds: Dataset) -> None:
    """Checks the invariants every consumer relies on; raises DataError naming the breach."""
    inter, items = ds.interactions, ds.items
    if len(inter) == 0:
        dropped = {k: v for k, v in ds.report.dropped.items() if v}
        raise errors.DataError(
            f"dataset `{ds.name}` has no interactions after cleaning; expected at least one, "
            f"received {ds.report.rows_read} rows, dropped {dropped}"
        )
    if items["item_id"].duplicated().any():
        dup = items.loc[items["item_id"].duplicated(), "item_id"].iloc[0]
        raise errors.DataError(f"items: `item_id` must be unique, received {dup!r} twice")
    # get_indexer on a hash index: `isin` on Arrow strings costs seconds on 1M-item catalogs.
    unknown = pd.Index(items["item_id"]).get_indexer(inter["item_id"]) < 0
    if unknown.any():
        raise errors.DataError(
            f"interactions: {int(unknown.sum())} rows reference items missing from the catalog, "
            f"e.g. {inter.loc[unknown, 'item_id'].iloc[0]!r}"
        )
    bad_events = ~inter["event_type"].isin(EVENT_TYPES)
    if bad_events.any():
        raise errors.DataError(
            f"interactions: `event_type` must be one of {EVENT_TYPES}, "
            f"received {inter.loc[bad_events, 'event_type'].iloc[0]!r}"
        )
    if (inter["user_id"] == "").any():
        raise errors.DataError("interactions: `user_id` must not be empty")
    if not inter["timestamp"].is_monotonic_increasing:
        raise errors.DataError("interactions: rows must be sorted by `timestamp`")


def item_text(items: pd.DataFrame) -> np.ndarray:
    """The text the item tower reads: title, then description, then category."""
    parts = [items["title"], items["description"], items["category"]]
    # pandas-stubs omits the list of Series that `others` also accepts.
    joined = parts[0].str.cat(parts[1:], sep=" . ")  # type: ignore[arg-type]
    text = joined.str.replace(r"(\s\.\s)+$", "", regex=True)
    return text.str.strip().to_numpy(dtype=object)
