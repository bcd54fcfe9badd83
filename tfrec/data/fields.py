"""Parsing source columns into numbers and times, naming the row and field of the first bad value."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NoReturn, Optional

import numpy as np
import pandas as pd

from tfrec import errors
from tfrec.data import textfile


def require_columns(frame: pd.DataFrame, expected: Sequence[str], path) -> None:
    """Raises DataError listing expected vs received columns when any is missing."""
    missing = [c for c in expected if c not in frame.columns]
    if missing:
        raise errors.DataError(
            f"expected columns {list(expected)}, received {list(frame.columns)} "
            f"(missing {missing})",
            path=path,
            field=missing[0],
        )


def parse_numbers(
    values: pd.Series,
    path,
    field: str,
    fmt: Optional[textfile.TextFormat] = None,
    expected: str = "a number",
) -> np.ndarray:
    """Float64 array from number text; NaN where empty; DataError naming the first bad row.

    Args:
        values: pd.Series of str, indexed by 0-based record number.
        path: str. The file, for the message.
        field: str. The source column, for the message.
        fmt: TextFormat or None. The file's layout (None: XLSX or Parquet).
        expected: str. What a value should look like, for the message.
    """
    text = values.str.strip()
    present = (text != "").to_numpy()
    numbers = pd.to_numeric(text.where(present), errors="coerce").to_numpy(dtype=np.float64)
    bad = present & ~np.isfinite(numbers)
    if bad.any():
        raise_bad_value(values, int(np.argmax(bad)), path, field, fmt, expected)
    return numbers


def parse_datetimes(
    values: pd.Series,
    formats: Sequence[str],
    path,
    field: str,
    fmt: Optional[textfile.TextFormat] = None,
    expected: str = "a date",
) -> np.ndarray:
    """Unix seconds (int64, 0 where empty) using the first format that parses every value.

    Naive times are read as UTC; times with an offset are converted to UTC. When no format
    parses every value, the error names the first value the best-fitting format (the one
    that parses most values) rejects: a file written in one format blames its one bad row,
    not its first row for not being in another format.
    """
    text = values.str.strip()
    present = (text != "").to_numpy()
    best_bad = np.zeros(len(text), dtype=bool)
    for f in formats:
        parsed = pd.to_datetime(text.where(present), format=f, errors="coerce", utc=True)
        bad = present & parsed.isna().to_numpy()
        if not bad.any():
            seconds = parsed.dt.tz_convert(None).to_numpy(dtype="datetime64[s]").astype(np.int64)
            return np.where(present, seconds, 0)
        if not best_bad.any() or bad.sum() < best_bad.sum():
            best_bad = bad
    raise_bad_value(values, int(np.argmax(best_bad)), path, field, fmt, expected)


def raise_bad_value(values: pd.Series, position: int, path, field, fmt, expected: str) -> NoReturn:
    """Raises DataError for `values.iloc[position]`, naming its file, row and field."""
    raise errors.DataError(
        f"expected {expected}, received {values.iloc[position]!r}",
        path=path,
        row=textfile.line_of(path, values.index[position], fmt),
        field=field,
    )
