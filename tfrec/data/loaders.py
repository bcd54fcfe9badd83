"""Dispatch from DataConfig to a loader, and the file reading every loader shares."""

from __future__ import annotations

import csv
import dataclasses
import gzip
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from tfrec import config as config_lib
from tfrec import errors
from tfrec.data import schema

DATASETS = ("synthetic", "online-retail", "movielens", "csv")


def load(data: config_lib.DataConfig) -> schema.Dataset:
    """Loads the dataset `data.dataset` from `data.path` into the canonical schema.

    `synthetic` ignores `data.path` and generates from `data.synthetic`. For `csv`, `data.path`
    is the folder that relative names in `data.csv` resolve against, or the interactions file
    itself (relative names then resolve against its folder).

    Args:
        data: DataConfig.

    Returns:
        A schema.Dataset.

    Raises:
        errors.DataError: a missing file or folder, or bad data in it.
    """
    # Loaders are imported here, not at the top, so each one can use the helpers below.
    if data.dataset == "synthetic":
        from tfrec.data import synthetic

        s = data.synthetic
        return synthetic.generate(s.num_items, s.num_users, s.num_events, s.num_categories, s.seed)
    if data.dataset == "csv":
        from tfrec.data import csv_loader

        csv_config, base_dir = data.csv, data.path
        if data.path and not Path(data.path).is_dir():
            _require(data.path, folder=False)
            csv_config = dataclasses.replace(csv_config, interactions=str(data.path))
            # A relative catalog name means "beside the interactions file", not the cwd.
            base_dir = str(Path(data.path).parent)
        return csv_loader.load(csv_config, base_dir=base_dir)
    if data.dataset == "online-retail":
        from tfrec.data import online_retail

        return online_retail.load(_require(data.path, folder=False))
    if data.dataset == "movielens":
        from tfrec.data import movielens

        return movielens.load(_require(data.path, folder=True))
    raise errors.ConfigError(f"`data.dataset` must be one of {DATASETS}, received {data.dataset!r}")


def _require(path: Optional[str], folder: bool) -> Path:
    what = "folder" if folder else "file"
    if not path:
        raise errors.DataError(f"`data.path` must name the dataset {what}, received {path!r}")
    p = Path(path)
    if not (p.is_dir() if folder else p.is_file()):
        raise errors.DataError(
            f"expected an existing {what}, received a path that is not one", path=p
        )
    return p


@dataclasses.dataclass(frozen=True)
class TextFormat:
    """How a delimited text file is laid out.

    Args:
        sep: str. Field separator; several characters (MovieLens `::`) are allowed.
        header: bool. Whether line 1 holds the column names.
        encoding: str. Text encoding.
        quoting: bool. RFC-4180 double quotes; False reads quotes as plain characters.
    """

    sep: str = ","
    header: bool = True
    encoding: str = "utf-8"
    quoting: bool = True


def read_table(
    path: os.PathLike | str, fmt: TextFormat = TextFormat(), names: Optional[Sequence[str]] = None
) -> pd.DataFrame:
    """Reads a (possibly gzipped) delimited file as strings, "" where empty.

    The frame's index is the 0-based record number, which `line_of` maps back to a line.

    Raises:
        errors.DataError: the file is missing, holds a byte that is not `fmt.encoding`, or a
            row with the wrong number of fields (naming the line).
    """
    path = Path(path)
    if not path.is_file():
        raise errors.DataError(
            "expected an existing file, received a path that is not one", path=path
        )
    kwargs = dict(
        header=0 if fmt.header else None,
        names=list(names) if names is not None else None,
        dtype=str,
        keep_default_na=False,
        encoding=fmt.encoding,
    )
    source: object = path
    sep = fmt.sep
    if len(sep) > 1:
        # No fast pandas engine takes a multi-character separator: swap it for a control byte.
        source = io.BytesIO(_read_bytes(path).replace(sep.encode(fmt.encoding), b"\x1f"))
        sep = "\x1f"
    try:
        if fmt.quoting and not isinstance(source, io.BytesIO):
            frame = pd.read_csv(source, sep=sep, engine="pyarrow", **kwargs)
        else:
            quoting = csv.QUOTE_MINIMAL if fmt.quoting else csv.QUOTE_NONE
            frame = pd.read_csv(source, sep=sep, engine="c", quoting=quoting, **kwargs)
            frame = frame.fillna("")
    except (ValueError, UnicodeDecodeError) as e:
        _diagnose(path, fmt, len(names) if names is not None else None)
        raise errors.DataError(
            f"expected {fmt.sep!r}-separated text, could not parse: {e}", path=path
        ) from e
    frame.columns = [str(c).strip().lstrip("\ufeff") for c in frame.columns]
    return frame


def line_of(path: os.PathLike | str, record: int, fmt: Optional[TextFormat] = None) -> int:
    """The 1-based line (sheet row for XLSX, record for Parquet) that holds data record `record`.

    Only called on the error path: it rescans the file so that quoted line breaks and skipped
    blank lines do not shift the number.
    """
    path = Path(path)
    record = int(record)
    if fmt is None:
        return record + (2 if path.suffix.lower() in (".xlsx", ".xls") else 1)
    with _open_text(path, fmt.encoding) as f:
        reader = _reader(f, fmt)
        if fmt.header:
            next(reader, None)
        count, start = 0, reader.line_num + 1
        for fields in reader:
            if fields:  # the parsers skip blank lines, so they hold no record
                if count == record:
                    return start
                count += 1
            start = reader.line_num + 1
    return record + (2 if fmt.header else 1)


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
    fmt: Optional[TextFormat] = None,
    expected: str = "a number",
) -> np.ndarray:
    """Float64 array from number text; NaN where empty; DataError naming the first bad row."""
    text = values.str.strip()
    present = (text != "").to_numpy()
    numbers = pd.to_numeric(text.where(present), errors="coerce").to_numpy(dtype=np.float64)
    bad = present & ~np.isfinite(numbers)
    if bad.any():
        record = values.index[np.argmax(bad)]
        raise errors.DataError(
            f"expected {expected}, received {values[record]!r}",
            path=path,
            row=line_of(path, record, fmt),
            field=field,
        )
    return numbers


def parse_datetimes(
    values: pd.Series,
    formats: Sequence[str],
    path,
    field: str,
    fmt: Optional[TextFormat] = None,
    expected: str = "a date",
) -> np.ndarray:
    """Unix seconds (int64, 0 where empty) using the first format that parses every value.

    Naive times are read as UTC; times with an offset are converted to UTC.
    """
    text = values.str.strip()
    present = (text != "").to_numpy()
    first_bad = None
    for f in formats:
        parsed = pd.to_datetime(text.where(present), format=f, errors="coerce", utc=True)
        bad = present & parsed.isna().to_numpy()
        if not bad.any():
            seconds = parsed.dt.tz_convert(None).to_numpy(dtype="datetime64[s]").astype(np.int64)
            return np.where(present, seconds, 0)
        first_bad = bad if first_bad is None else first_bad
    record = values.index[np.argmax(first_bad)]
    raise errors.DataError(
        f"expected {expected}, received {values[record]!r}",
        path=path,
        row=line_of(path, record, fmt),
        field=field,
    )


def _read_bytes(path: Path) -> bytes:
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rb") as f:
        return f.read()


def _open_text(path: Path, encoding: str):
    if path.suffix.lower() == ".gz":
        return gzip.open(path, "rt", encoding=encoding, newline="")
    return open(path, encoding=encoding, newline="")


def _reader(f, fmt: TextFormat):
    if len(fmt.sep) > 1:
        f = (line.replace(fmt.sep, "\x1f") for line in f)
    delimiter = "\x1f" if len(fmt.sep) > 1 else fmt.sep
    quoting = csv.QUOTE_MINIMAL if fmt.quoting else csv.QUOTE_NONE
    return csv.reader(f, delimiter=delimiter, quoting=quoting)


def _diagnose(path: Path, fmt: TextFormat, num_fields: Optional[int]) -> None:
    """Raises DataError at the first undecodable byte or ragged row, if there is one."""
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rb") as f:
        for number, line in enumerate(f, start=1):
            try:
                line.decode(fmt.encoding)
            except UnicodeDecodeError as e:
                raise errors.DataError(
                    f"expected {fmt.encoding} text, received byte 0x{line[e.start]:02x} "
                    f"at character {e.start + 1}",
                    path=path,
                    row=number,
                ) from None
    with _open_text(path, fmt.encoding) as f:
        reader = _reader(f, fmt)
        start = 1
        for fields in reader:
            if fields:
                num_fields = len(fields) if num_fields is None else num_fields
                if len(fields) != num_fields:
                    raise errors.DataError(
                        f"expected {num_fields} fields, received {len(fields)}: {fields!r}",
                        path=path,
                        row=start,
                    )
            start = reader.line_num + 1
