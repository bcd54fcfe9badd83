"""Temporal train / validation / test split with a cold-start report."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Union

import numpy as np
import pandas as pd

from tfrec import config as config_lib
from tfrec import errors


@dataclasses.dataclass
class Split:
    """Interactions cut in time, so evaluation only ever sees the future of training.

    Args:
        train: pd.DataFrame. Interactions with `timestamp < validation_start`.
        validation: pd.DataFrame. Interactions in `[validation_start, test_start)`.
        test: pd.DataFrame. Interactions with `timestamp >= test_start`.
        validation_start: int. First validation second (unix seconds, UTC).
        test_start: int. First test second (unix seconds, UTC).
    """

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    validation_start: int
    test_start: int

    def report(self) -> dict[str, Any]:
        """Sizes per part and cold-start counts of the evaluation parts.

        Returns:
            dict with the cut-offs (unix seconds and ISO UTC), and per part `interactions`,
            `users`, `items`; `validation` and `test` also hold `cold_users` / `cold_items`
            (distinct ids absent from train) and `cold_user_interactions` /
            `cold_item_interactions` (rows involving them).
        """
        train_users = pd.Index(pd.unique(self.train["user_id"]))
        train_items = pd.Index(pd.unique(self.train["item_id"]))
        out: dict[str, Any] = {
            "validation_start": int(self.validation_start),
            "test_start": int(self.test_start),
            "validation_start_utc": _iso(self.validation_start),
            "test_start_utc": _iso(self.test_start),
        }
        for name in ("train", "validation", "test"):
            frame = getattr(self, name)
            part = {
                "interactions": len(frame),
                "users": int(frame["user_id"].nunique()),
                "items": int(frame["item_id"].nunique()),
            }
            if name != "train":
                cold_user_rows = ~frame["user_id"].isin(train_users)
                cold_item_rows = ~frame["item_id"].isin(train_items)
                part["cold_users"] = int(frame.loc[cold_user_rows, "user_id"].nunique())
                part["cold_items"] = int(frame.loc[cold_item_rows, "item_id"].nunique())
                part["cold_user_interactions"] = int(cold_user_rows.sum())
                part["cold_item_interactions"] = int(cold_item_rows.sum())
            out[name] = part
        return out


def _iso(ts: int) -> str:
    return pd.Timestamp(int(ts), unit="s", tz="UTC").isoformat()


def resolve_cutoff(value: Union[str, float], lo: int, hi: int, name: str) -> int:
    """Turns a cut-off (ISO date or fraction of [lo, hi]) into unix seconds.

    A fractional cut-off is rounded up to the next whole second: timestamps are integers, so
    `ts < ceil(c)` holds exactly when `ts < c`.

    Args:
        value: str or float. ISO 8601 date/time (naive means UTC) or a fraction in (0, 1).
        lo: int. Earliest timestamp of the data.
        hi: int. Latest timestamp of the data.
        name: str. Config field, for error messages.

    Returns:
        int unix seconds.
    """
    if isinstance(value, bool):
        raise errors.ConfigError(
            f"`{name}` must be an ISO date or a fraction in (0, 1), received {value!r}"
        )
    if isinstance(value, (int, float, np.integer, np.floating)):
        if not 0.0 < float(value) < 1.0:
            raise errors.ConfigError(
                f"`{name}` as a fraction must lie in (0, 1), received {value!r}"
            )
        return int(math.ceil(lo + float(value) * (hi - lo)))
    if isinstance(value, str):
        try:
            stamp = pd.Timestamp(value)
        except (ValueError, TypeError) as e:
            raise errors.ConfigError(
                f"`{name}` must be an ISO date such as '2011-10-01' or a fraction in (0, 1), "
                f"received {value!r}"
            ) from e
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
        seconds = stamp.value / 1e9  # nanoseconds since the epoch
        return int(math.ceil(seconds))
    raise errors.ConfigError(
        f"`{name}` must be an ISO date string or a float fraction, "
        f"received {value!r} ({type(value).__name__})"
    )


def temporal_split(interactions: pd.DataFrame, split: config_lib.SplitConfig) -> Split:
    """Cuts interactions at two points in time.

    Args:
        interactions: pd.DataFrame in the canonical schema (needs `timestamp`, `user_id`,
            `item_id`).
        split: SplitConfig. `validation_start` and `test_start`, each an ISO date or a fraction
            of the time range [min timestamp, max timestamp].

    Returns:
        Split. Rows keep their order; each part has a fresh RangeIndex.

    Raises:
        ConfigError: a cut-off is malformed, out of the data's time range, or out of order.
        DataError: no interactions, or a part would be empty.

    Example:
        >>> parts = temporal_split(ds.interactions, SplitConfig(0.8, "2011-11-15"))
        >>> parts.report()["test"]["cold_users"]
    """
    if len(interactions) == 0:
        raise errors.DataError("`interactions` must not be empty, received 0 rows")
    ts = interactions["timestamp"].to_numpy(dtype=np.int64)
    lo, hi = int(ts.min()), int(ts.max())
    validation_start = resolve_cutoff(split.validation_start, lo, hi, "split.validation_start")
    test_start = resolve_cutoff(split.test_start, lo, hi, "split.test_start")
    for name, cut in (
        ("split.validation_start", validation_start),
        ("split.test_start", test_start),
    ):
        if not lo < cut <= hi:
            raise errors.ConfigError(
                f"`{name}` must fall inside the data's time range ({_iso(lo)}, {_iso(hi)}], "
                f"received {_iso(cut)}"
            )
    if test_start <= validation_start:
        raise errors.ConfigError(
            f"`split.test_start` must come after `split.validation_start` ({_iso(validation_start)}), "
            f"received {_iso(test_start)}"
        )
    masks = {
        "train": ts < validation_start,
        "validation": (ts >= validation_start) & (ts < test_start),
        "test": ts >= test_start,
    }
    parts = {}
    for name, mask in masks.items():
        if not mask.any():
            raise errors.DataError(
                f"the {name} part of the temporal split is empty: expected at least one "
                f"interaction, received none (validation_start={_iso(validation_start)}, "
                f"test_start={_iso(test_start)})"
            )
        parts[name] = interactions.loc[mask].reset_index(drop=True)
    return Split(
        train=parts["train"],
        validation=parts["validation"],
        test=parts["test"],
        validation_start=validation_start,
        test_start=test_start,
    )
