"""Reading delimited text files, and mapping each record back to the row a spreadsheet shows."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import gzip
import io
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any, Literal, NoReturn, Optional

import numpy as np
import pandas as pd

from tfrec import errors

# A description is a sentence or two; 64 Ki characters in one field means a broken export
# (an unclosed quote, a file pasted into a cell), not data.
MAX_FIELD_SIZE = 65536


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
    path: os.PathLike | str,
    fmt: TextFormat = TextFormat(),
    names: Optional[Sequence[str]] = None,
    max_field_size: int = MAX_FIELD_SIZE,
) -> pd.DataFrame:
    """Reads a (possibly gzipped) delimited file as strings, "" where empty.

    The frame's index is the 0-based record number, which `line_of` maps back to a row.

    Args:
        path: str. The file; a `.gz` name is decompressed.
        fmt: TextFormat. The layout.
        names: list of str or None. Column names when the file has no header.
        max_field_size: int. Most characters one field may hold.

    Raises:
        errors.DataError: the file is missing, holds a byte that is not `fmt.encoding`, a
            quote that is never closed (naming the row where it opens), a row with the wrong
            number of fields, or a field longer than `max_field_size` (naming row and field).
    """
    path = Path(path)
    if not path.is_file():
        raise errors.DataError(
            "expected an existing file, received a path that is not one", path=path
        )
    try:
        data = _read_bytes(path)
    except (OSError, EOFError) as e:  # a truncated or mislabelled .gz
        raise errors.DataError(
            f"expected a readable file, received one that fails: {e}", path=path
        ) from None
    kwargs: dict[str, Any] = dict(
        header=0 if fmt.header else None,
        names=list(names) if names is not None else None,
        dtype=str,
        keep_default_na=False,
        encoding=fmt.encoding,
    )
    sep = fmt.sep
    if len(sep) > 1:
        # No fast pandas engine takes a multi-character separator: swap it for a control byte.
        data = data.replace(sep.encode(fmt.encoding), b"\x1f")
        sep = "\x1f"
    num_fields = len(names) if names is not None else None
    if fmt.quoting and data.count(b'"') % 2:
        # Quotes come in pairs in RFC-4180 text; an odd count is a cheap hint that one is never
        # closed, which the fast parsers accept silently by reading to the end of the file.
        _diagnose(path, fmt, num_fields, max_field_size)
    try:
        if fmt.quoting and len(fmt.sep) == 1:
            frame = pd.read_csv(io.BytesIO(data), sep=sep, engine="pyarrow", **kwargs)
        else:
            quoting: Literal[0, 3] = csv.QUOTE_MINIMAL if fmt.quoting else csv.QUOTE_NONE
            frame = pd.read_csv(io.BytesIO(data), sep=sep, engine="c", quoting=quoting, **kwargs)
            frame = frame.fillna("")
    except (ValueError, UnicodeDecodeError) as e:
        _diagnose(path, fmt, num_fields, max_field_size)
        raise errors.DataError(
            f"expected {fmt.sep!r}-separated text, could not parse: {e}", path=path
        ) from e
    frame.columns = [str(c).strip().lstrip("\ufeff") for c in frame.columns]
    physical = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
    if physical == len(frame) + (1 if fmt.header else 0):
        # Every record takes at least one line, so equal counts mean exactly one line each.
        _remember(_layout_key(path, fmt), None)
    check_field_sizes(frame, path, fmt, max_field_size)
    return frame


def check_field_sizes(
    frame: pd.DataFrame, path: os.PathLike | str, fmt: Optional[TextFormat], max_field_size: int
) -> None:
    """Raises DataError naming the row and field of the first field over `max_field_size`."""
    first = None
    for column in frame.columns:
        lengths = frame[column].str.len().to_numpy(dtype=np.float64, na_value=0)
        over = np.flatnonzero(lengths > max_field_size)
        if len(over) and (first is None or over[0] < first[0]):
            first = (int(over[0]), column, int(lengths[over[0]]))
    if first is not None:
        position, column, _ = first
        row = line_of(path, frame.index[position], fmt)
        _oversized(path, row, column, frame[column].iloc[position], max_field_size)


def _oversized(
    path: os.PathLike | str, row: int, field: str, text: str, max_field_size: int
) -> NoReturn:
    raise errors.DataError(
        f"expected at most {max_field_size:,} characters in a field (`data.max_field_size`), "
        f"received {len(text):,} characters starting {text[:40]!r}",
        path=path,
        row=row,
        field=field,
    )


def line_of(path: os.PathLike | str, record: int, fmt: Optional[TextFormat] = None) -> int:
    """The row a spreadsheet shows for data record `record` (0-based): header = row 1.

    `fmt` None means a file that is not text (XLSX, Parquet): one row per record after the
    header. Only called on error and report paths: see `lines_of`.
    """
    return int(lines_of(path, [record], fmt)[0])


def lines_of(
    path: os.PathLike | str, records: Sequence[int] | np.ndarray, fmt: Optional[TextFormat] = None
) -> np.ndarray:
    """The 1-based line on which each data record in `records` starts, in one pass.

    A file that `read_table` found to hold one record per line maps arithmetically; any other
    is rescanned once with the csv module, so that quoted line breaks and skipped blank lines
    do not shift the number.
    """
    wanted = np.asarray(records, dtype=np.int64)
    if fmt is None:
        return wanted + 2
    offset = 2 if fmt.header else 1
    key = _layout_key(Path(path), fmt)
    if not len(wanted) or (key in _LAYOUTS and _LAYOUTS[key] is None):
        return wanted + offset
    starts = _LAYOUTS.get(key)
    if starts is None or len(starts) <= int(wanted.max()):
        starts = np.asarray(_record_starts(Path(path), fmt), dtype=np.int64)
        _remember(key, starts)
    out = wanted + offset
    known = wanted < len(starts)
    out[known] = starts[wanted[known]]
    return out


# File layout -> None (one record per line) or the start line of every record. Filled by
# `read_table` and the first rescan; a changed file gets a new key.
_LAYOUTS: dict[tuple, Optional[np.ndarray]] = {}


def _layout_key(path: Path, fmt: TextFormat) -> tuple:
    stat = path.stat()
    return (str(path.resolve()), stat.st_mtime_ns, stat.st_size, fmt)


def _remember(key: tuple, starts: Optional[np.ndarray]) -> None:
    while len(_LAYOUTS) >= 8:
        _LAYOUTS.pop(next(iter(_LAYOUTS)))
    _LAYOUTS[key] = starts


def _record_starts(path: Path, fmt: TextFormat) -> list[int]:
    """Start line of every data record (blank lines hold no record)."""
    starts: list[int] = []
    with _open_text(path, fmt.encoding) as f, _unlimited_fields():
        reader = _reader(f, fmt)
        if fmt.header:
            next(reader, None)
        start = reader.line_num + 1
        for fields in reader:
            if fields:  # the parsers skip blank lines, so they hold no record
                starts.append(start)
            start = reader.line_num + 1
    return starts


def _read_bytes(path: Path) -> bytes:
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rb") as f:
        return f.read()


def _open_text(path: Path, encoding: str) -> IO[str]:
    if path.suffix.lower() == ".gz":
        return gzip.open(path, "rt", encoding=encoding, newline="")
    return open(path, encoding=encoding, newline="")


@contextlib.contextmanager
def _unlimited_fields() -> Iterator[None]:
    # The csv module refuses fields over 128 Ki characters by default; field sizes are checked
    # on the parsed frame instead, so a rescan must never stop on one.
    old = csv.field_size_limit(sys.maxsize)
    try:
        yield
    finally:
        csv.field_size_limit(old)


class _Lines:
    """Iterates a text file's lines, keeping those of the record being read."""

    def __init__(self, f: Iterator[str], sep: str) -> None:
        self._f = f
        self._sep = sep
        self.record: list[str] = []

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = next(self._f)
        line = line.replace(self._sep, "\x1f") if len(self._sep) > 1 else line
        self.record.append(line)
        return line


def _reader(f: Iterator[str], fmt: TextFormat, strict: bool = False) -> Any:
    delimiter = "\x1f" if len(fmt.sep) > 1 else fmt.sep
    quoting: Literal[0, 3] = csv.QUOTE_MINIMAL if fmt.quoting else csv.QUOTE_NONE
    lines = f if isinstance(f, _Lines) else _Lines(f, fmt.sep)
    return csv.reader(lines, delimiter=delimiter, quoting=quoting, strict=strict)


def _diagnose(path: Path, fmt: TextFormat, num_fields: Optional[int], max_field_size: int) -> None:
    """Raises DataError at the first undecodable byte, unclosed quote, ragged row or oversized
    field, if there is one."""
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
    with _open_text(path, fmt.encoding) as f, _unlimited_fields():
        lines = _Lines(f, fmt.sep)
        reader = _reader(lines, fmt, strict=fmt.quoting)
        header: Optional[list[str]] = None
        start = 1
        while True:
            lines.record = []
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                _raise_unparsable(path, fmt, header, start, lines, e)
            if fields:
                if header is None and fmt.header:
                    header = fields
                num_fields = len(fields) if num_fields is None else num_fields
                if len(fields) != num_fields:
                    raise errors.DataError(
                        f"expected {num_fields} fields, received {len(fields)}: {fields!r}",
                        path=path,
                        row=start,
                    )
                sizes = [len(x) for x in fields]
                if max(sizes) > max_field_size:
                    index = int(np.argmax(sizes))
                    _oversized(path, start, _name(header, index), fields[index], max_field_size)
            start = reader.line_num + 1


def _name(header: Optional[list[str]], index: int) -> str:
    """The column name of field `index`, or `#n` (1-based) in a file without a header."""
    if header is not None and index < len(header):
        return header[index].strip().lstrip("\ufeff")
    return f"#{index + 1}"


def _raise_unparsable(
    path: Path,
    fmt: TextFormat,
    header: Optional[list[str]],
    start: int,
    lines: _Lines,
    error: csv.Error,
) -> NoReturn:
    # Alone, the record's first line ends inside the quoted field: its last field is the one
    # the quote opens.
    first = lines.record[0] if lines.record else ""
    opened = next(csv.reader([first], delimiter="\x1f" if len(fmt.sep) > 1 else fmt.sep), [""])
    field = _name(header, len(opened) - 1)
    # The csv module's strict mode says "unexpected end of data" for a quote left open at EOF.
    if "unexpected end of data" in str(error):
        raise errors.DataError(
            'expected a closing `"` for the quote that opens in this row, received the end of '
            f"the file (line {start + len(lines.record) - 1})",
            path=path,
            row=start,
            field=field,
        ) from None
    raise errors.DataError(
        f"expected RFC-4180 {fmt.sep!r}-separated text, could not parse: {error}",
        path=path,
        row=start + len(lines.record) - 1,
    ) from None
