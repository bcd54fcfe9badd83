"""Which source rows a loader keeps, why it drops the others, and strict mode that refuses them."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Callable
from typing import Optional

import numpy as np
import numpy.typing as npt
import pandas as pd

from tfrec import errors
from tfrec.data import schema, textfile

DUPLICATE = "exact duplicate row"
EXAMPLES = 3  # example rows kept per drop reason


def price_reason(field: str) -> str:
    return f"{field} <= 0"


def time_reason(field: str) -> str:
    return f"{field} outside the plausible time range"


@dataclasses.dataclass(frozen=True)
class Rules:
    """What a loader treats as bad data, and whether it drops it or refuses the file.

    Args:
        strict: bool. Raise DataError (naming file, row and field) on the first exact duplicate
            row, price <= 0 or time outside [min_timestamp, max_timestamp], instead of dropping
            and counting them. Defaults to False.
        min_timestamp: str. Earliest plausible event time, ISO 8601, UTC. Defaults to
            "1990-01-01".
        max_timestamp: str. Latest plausible event time, ISO 8601, UTC; "" means one day after
            now. Defaults to "".
        max_field_size: int. Most characters one field of a text file may hold. Defaults to
            65536.

    Example:
        rules = Rules(strict=True, min_timestamp="2010-01-01")
    """

    strict: bool = False
    min_timestamp: str = "1990-01-01"
    max_timestamp: str = ""
    max_field_size: int = textfile.MAX_FIELD_SIZE

    def __post_init__(self) -> None:
        lo, hi = self.time_range()
        if lo > hi:
            raise errors.ConfigError(
                "`data.min_timestamp` must not be after `data.max_timestamp`, received "
                f"{self.min_timestamp!r} > {self.max_timestamp!r}"
            )
        if int(self.max_field_size) < 1:
            raise errors.ConfigError(
                f"`data.max_field_size` must be >= 1, received {self.max_field_size!r}"
            )

    def time_range(self) -> tuple[int, int]:
        """The plausible range as unix seconds, both ends included."""
        lo = _seconds(self.min_timestamp, "data.min_timestamp")
        if self.max_timestamp:
            hi = _seconds(self.max_timestamp, "data.max_timestamp")
        else:
            hi = int((dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).timestamp())
        return lo, hi


def _seconds(text: str, name: str) -> int:
    stamp: Optional[pd.Timestamp]
    try:
        stamp = pd.Timestamp(text)
    except (ValueError, TypeError):
        stamp = None
    if stamp is None or pd.isna(stamp):
        raise errors.ConfigError(f"`{name}` must be an ISO 8601 date or time, received {text!r}")
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return int(stamp.timestamp())


def iso(seconds: int) -> str:
    """Unix seconds as `YYYY-MM-DD HH:MM:SS` (UTC); beyond year 9999 as the number."""
    try:
        return dt.datetime.fromtimestamp(int(seconds), dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return f"{int(seconds):,} s"


class Cleaner:
    """Drops source records for named reasons, counting each, keeping a few example rows.

    A record is counted under the first reason that drops it. When `rules.strict` is set,
    `finish` raises DataError for the earliest row in the file that the checks for exact
    duplicates, prices <= 0 or implausible times dropped.

    Args:
        report: schema.CleaningReport. Receives the counts, examples and treatments.
        records: array of int. The 0-based source record number of each row (the frame index).
        path: str. The source file, for messages.
        fmt: textfile.TextFormat or None. Its layout, to turn records into rows.
        rules: Rules. What counts as bad data, and whether to refuse it.
    """

    def __init__(
        self,
        report: schema.CleaningReport,
        records: npt.ArrayLike,
        path: os.PathLike | str,
        fmt: Optional[textfile.TextFormat],
        rules: Rules,
    ) -> None:
        self.report = report
        self.records = np.asarray(records, dtype=np.int64)
        self.path = path
        self.fmt = fmt
        self.rules = rules
        self.keep = np.ones(len(self.records), dtype=bool)
        self._examples: list[tuple[str, int, str]] = []
        self._refused: list[tuple[int, Optional[str], str]] = []

    def drop(
        self,
        reason: str,
        bad: npt.ArrayLike,
        describe: Optional[Callable[[int], str]] = None,
    ) -> np.ndarray:
        """Drops the kept rows where `bad`; returns their positions.

        Args:
            reason: str. The drop reason in the report.
            bad: bool array, one per row.
            describe: callable or None. position -> short text for an example row.
        """
        bad = np.asarray(bad, dtype=bool)
        newly = np.flatnonzero(self.keep & bad)
        self.report.drop(reason, len(newly))
        self.keep &= ~bad
        for position in newly[:EXAMPLES]:
            self._examples.append((reason, int(position), describe(position) if describe else ""))
        return newly

    def duplicates(self, frame: pd.DataFrame) -> None:
        """Drops rows whose every source field equals an earlier row's."""
        bad = frame.duplicated(keep="first").to_numpy()
        hashes = None

        def original(position: int) -> int:
            nonlocal hashes
            if hashes is None:
                hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy()
            same = np.flatnonzero(hashes[:position] == hashes[position])
            row = frame.iloc[position].tolist()
            return next(int(p) for p in same if frame.iloc[p].tolist() == row)

        def refusal(p: int) -> tuple[None, str]:
            return None, f"expected each row once, received a copy of row {self._row(original(p))}"

        self._refuse(bad, refusal)
        self.drop(DUPLICATE, bad, lambda p: f"copy of row {self._row(original(p))}")
        self.report.treatments["exact duplicates"] = (
            "Rows identical in every field to an earlier row are dropped (a repeated export or "
            "a double scan); `data.strict` refuses them."
        )

    def prices(self, text: pd.Series, prices: np.ndarray, field: str) -> None:
        """Drops rows with a known price <= 0 (free lines, refunds, bookkeeping)."""
        bad = ~np.isnan(prices) & (prices <= 0)

        def value(p: int) -> str:
            return repr(str(text.iloc[p]).strip())

        self._refuse(bad, lambda p: (field, f"expected a price > 0, received {value(p)}"))
        self.drop(price_reason(field), bad, lambda p: f"`{field}` {value(p)}")
        self.report.treatments[price_reason(field)] = (
            f"Rows whose `{field}` is zero or negative are not sales and are dropped; "
            "`data.strict` refuses them."
        )

    def times(
        self, text: pd.Series, seconds: np.ndarray, present: npt.ArrayLike, field: str
    ) -> None:
        """Drops rows whose time is outside the plausible range (clock resets, typos)."""
        lo, hi = self.rules.time_range()
        bad = np.asarray(present, dtype=bool) & ((seconds < lo) | (seconds > hi))
        expected = (
            f"a time from {iso(lo)} to {iso(hi)} UTC (`data.min_timestamp`, `data.max_timestamp`)"
        )

        def value(p: int) -> str:
            raw = str(text.iloc[p]).strip()
            return f"{raw!r}" + ("" if raw == iso(seconds[p]) else f" ({iso(seconds[p])} UTC)")

        self._refuse(bad, lambda p: (field, f"expected {expected}, received {value(p)}"))
        self.drop(time_reason(field), bad, lambda p: f"`{field}` {value(p)}")
        self.report.treatments[time_reason(field)] = (
            f"Events before {iso(lo)} or after {iso(hi)} UTC are dropped as implausible "
            "(`data.min_timestamp`, `data.max_timestamp`); `data.strict` refuses them."
        )

    def finish(self) -> None:
        """Writes the example rows into the report; in strict mode raises for a refused row.

        Raises:
            errors.DataError: strict mode and a row was refused, naming file, row and field.
        """
        if self._refused:
            position, field, text = min(self._refused, key=lambda r: self.records[r[0]])
            raise errors.DataError(
                f"{text} (`data.strict` refuses such rows)",
                path=self.path,
                row=self._row(position),
                field=field,
            )
        if not self._examples:
            return
        rows = textfile.lines_of(
            self.path, self.records[[p for _, p, _ in self._examples]], self.fmt
        )
        for (reason, _, text), row in zip(self._examples, rows, strict=True):
            entry = f"row {int(row)}" + (f": {text}" if text else "")
            self.report.examples.setdefault(reason, []).append(entry)
        self._examples = []

    def _row(self, position: int) -> int:
        return textfile.line_of(self.path, self.records[position], self.fmt)

    def _refuse(self, bad: np.ndarray, message: Callable[[int], tuple[Optional[str], str]]) -> None:
        if not self.rules.strict:
            return
        newly = np.flatnonzero(self.keep & bad)
        if len(newly):
            self._refused.append((int(newly[0]), *message(int(newly[0]))))
