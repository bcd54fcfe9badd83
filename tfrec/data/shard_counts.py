"""Streaming passes over interaction shards: split boundaries, event counts and vocabularies.

Each pass reads the shards batch by batch through tf.data and keeps one counter per distinct
user and item, never the events: memory grows with the number of ids, not with the log.
"""

from __future__ import annotations

import collections
import dataclasses
import os
from typing import Optional

import numpy as np
import pandas as pd

from tfrec import config as config_lib
from tfrec import errors
from tfrec.data import shards, split

BATCH = 8192  # events per batch: larger batches parse slower (tf.io.parse_example)


@dataclasses.dataclass(frozen=True)
class Boundaries:
    """The temporal split of a shard folder, resolved as `split.temporal_split` does.

    Args:
        min_timestamp: int. Earliest event time (unix seconds).
        max_timestamp: int. Latest event time.
        validation_start: int. First second of the validation part (train is before it).
        test_start: int. First second of the test part.
    """

    min_timestamp: int
    max_timestamp: int
    validation_start: int
    test_start: int


@dataclasses.dataclass
class Counts:
    """Events per user and per item in one time window of a shard folder.

    Args:
        events: int. Events counted.
        users: collections.Counter. user_id -> events.
        items: collections.Counter. item_id -> events.
    """

    events: int
    users: collections.Counter
    items: collections.Counter


def boundaries(folder: os.PathLike | str, split_config: config_lib.SplitConfig) -> Boundaries:
    """Split boundaries from the manifest's time range (no pass over the events).

    Raises:
        errors.ConfigError: a cut-off is malformed, outside the time range, or out of order
            (the messages of `split.temporal_split`).
    """
    manifest = shards.read_manifest(folder, verify=False)
    lo, hi = int(manifest["time_range"]["min"]), int(manifest["time_range"]["max"])
    cuts = {
        name: split.resolve_cutoff(getattr(split_config, name), lo, hi, f"split.{name}")
        for name in ("validation_start", "test_start")
    }
    for name, cut in cuts.items():
        if not lo < cut <= hi:
            raise errors.ConfigError(
                f"`split.{name}` must fall inside the data's time range "
                f"({_iso(lo)}, {_iso(hi)}], received {_iso(cut)}"
            )
    if cuts["test_start"] <= cuts["validation_start"]:
        raise errors.ConfigError(
            "`split.test_start` must come after `split.validation_start` "
            f"({_iso(cuts['validation_start'])}), received {_iso(cuts['test_start'])}"
        )
    return Boundaries(lo, hi, cuts["validation_start"], cuts["test_start"])


def count(
    folder: os.PathLike | str,
    start: Optional[int] = None,
    end: Optional[int] = None,
    verify: bool = True,
) -> Counts:
    """Counts events per user and per item with `start <= timestamp < end`, in one pass.

    Args:
        folder: str. A shard folder.
        start: int or None. First second counted; None: from the beginning.
        end: int or None. First second not counted; None: to the end.
        verify: bool. Check the shards' sha256 first. Defaults to True.

    Returns:
        Counts. Empty ids are not counted (as `tfrec.data.vocab` leaves them out).
    """
    import tensorflow as tf

    lo = np.iinfo(np.int64).min if start is None else int(start)
    hi = np.iinfo(np.int64).max if end is None else int(end)

    def tally(batch: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        # Distinct ids and their counts per batch, in the tf.data threads: Python only merges.
        keep = (batch["timestamp"] >= lo) & (batch["timestamp"] < hi)
        out = {"events": tf.reduce_sum(tf.cast(keep, tf.int64))}
        for column in ("user_id", "item_id"):
            ids, _, counts = tf.unique_with_counts(tf.boolean_mask(batch[column], keep))
            out[column], out[column + "_counts"] = ids, counts
        return out

    tallies: dict[str, _Tally] = {"user_id": _Tally(), "item_id": _Tally()}
    events = 0
    batches = shards.dataset(folder, batch_size=BATCH, verify=verify)
    for part in batches.map(tally, num_parallel_calls=tf.data.AUTOTUNE).as_numpy_iterator():
        events += int(part["events"])
        for column, total in tallies.items():
            total.add(part[column], part[column + "_counts"])
    users, items = (tally.counter() for tally in tallies.values())
    return Counts(events=events, users=users, items=items)


def train_counts(
    folder: os.PathLike | str, split_config: config_lib.SplitConfig, verify: bool = True
) -> Counts:
    """Counts of the training part of the temporal split (events before validation_start)."""
    return count(folder, end=boundaries(folder, split_config).validation_start, verify=verify)


def vocabulary(counter: collections.Counter) -> list[str]:
    """Ids most frequent first, ties by id: the order of `tfrec.data.vocab`'s vocabularies."""
    return [key for key, _ in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))]


def _iso(ts: int) -> str:
    return pd.Timestamp(int(ts), unit="s", tz="UTC").isoformat()


class _Tally:
    """Counts of byte-string ids, merged every few batches in pandas rather than per id in Python."""

    MERGE_EVERY = 32  # batches whose counts wait to be merged: bounded extra memory

    def __init__(self) -> None:
        self._total: Optional[pd.Series] = None
        self._pending: list[pd.Series] = []

    def add(self, ids: np.ndarray, counts: np.ndarray) -> None:
        if len(ids):
            self._pending.append(pd.Series(counts, index=ids))
        if len(self._pending) >= self.MERGE_EVERY:
            self._merge()

    def counter(self) -> collections.Counter:
        self._merge()
        total = self._total if self._total is not None else pd.Series(dtype=np.int64)
        total = total[total.index != b""]  # as `tfrec.data.vocab`, empty ids are not counted
        keys = [key.decode("utf-8") for key in total.index]
        return collections.Counter(dict(zip(keys, total.to_numpy().tolist(), strict=True)))

    def _merge(self) -> None:
        parts = self._pending + ([self._total] if self._total is not None else [])
        if parts:
            self._total = pd.concat(parts).groupby(level=0, sort=False).sum()
        self._pending = []
