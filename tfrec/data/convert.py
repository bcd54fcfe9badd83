"""Converting a configured source into interaction shards chunk by chunk, with bounded memory.

Only `csv` interactions (CSV, TSV, their `.gz`, or Parquet) are streamed: every cleaning rule of
`csv_loader` that looks at one row at a time applies chunk by chunk. The other sources are
loaded whole by their loader and its cleaned output is written (`streamed: false` in the
manifest): UCI Online Retail matches each cancellation to earlier purchases anywhere in the log,
Amazon reviews build item text from every review before the validation window, and synthetic
data is generated in memory.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, Optional

import numpy as np
import pandas as pd

from tfrec import config as config_lib
from tfrec import errors
from tfrec.data import cleaning, csv_loader, fields, loaders, schema, shard_writer, shards, textfile

STREAMED = ("csv",)
CHUNK_ROWS = 100_000  # source rows parsed at once: tens of MB of strings
_WHOLE_LOG = (
    "Not applied when streaming: finding a repeat needs the whole log "
    "(`tfrec data stats` reports them)."
)


@dataclasses.dataclass
class Result:
    """What a conversion wrote and how fast.

    Args:
        manifest: dict. The manifest written beside the shards.
        seconds: float. Wall time of the conversion.
    """

    manifest: dict[str, Any]
    seconds: float

    @property
    def events_per_second(self) -> float:
        """Source rows read per second of wall time."""
        return self.manifest["report"]["rows_read"] / max(self.seconds, 1e-9)


def convert(
    data: config_lib.DataConfig,
    out: os.PathLike | str,
    shard_rows: int = shards.SHARD_ROWS,
    chunk_rows: int = CHUNK_ROWS,
    progress: bool = False,
) -> Result:
    """Writes the cleaned interactions of `data` into `out` as sharded TFRecord files.

    Args:
        data: DataConfig. The source, as for `tfrec data stats`.
        out: str. Output folder (created; must hold no shards yet).
        shard_rows: int. Events per shard. Defaults to shards.SHARD_ROWS.
        chunk_rows: int. Source rows parsed at once (csv only). Defaults to CHUNK_ROWS.
        progress: bool. Show a tqdm bar over the bytes of the source file (csv only).
            Defaults to False.

    Returns:
        Result. The manifest also holds `dataset`, `source`, `streamed` and the cleaning
        `report` (rows read, kept, dropped per reason).

    Raises:
        errors.DataError: a missing file or column, or a malformed value, naming file, row and
            field; in strict mode also a row the cleaning would drop.
    """
    if int(chunk_rows) < 1:
        raise errors.ConfigError(f"`chunk_rows` must be >= 1, received {chunk_rows!r}")
    start = time.perf_counter()
    rules = loaders.rules(data)
    with shard_writer.ShardWriter(out, shard_rows) as writer:
        if data.dataset in STREAMED:
            report = _stream(data, writer, rules, int(chunk_rows), progress)
        else:
            ds = loaders.load(data)
            report = ds.report
            for begin in range(0, len(ds.interactions), int(chunk_rows)):
                writer.write(ds.interactions.iloc[begin : begin + int(chunk_rows)])
        manifest = writer.close(
            {
                "dataset": data.dataset,
                "source": report.source,
                "streamed": data.dataset in STREAMED,
                "report": report.to_dict(),
            }
        )
    return Result(manifest=manifest, seconds=time.perf_counter() - start)


def _stream(
    data: config_lib.DataConfig,
    writer: shard_writer.ShardWriter,
    rules: cleaning.Rules,
    chunk_rows: int,
    progress: bool,
) -> schema.CleaningReport:
    import tqdm  # only needed for the bar

    csv, path = _csv_source(data)
    report = schema.CleaningReport(source=str(path))
    size = path.stat().st_size
    with tqdm.tqdm(
        total=size, unit="B", unit_scale=True, desc="convert", disable=not progress
    ) as bar:
        for chunk in _clean_chunks(csv, path, rules, report, chunk_rows, bar.update):
            writer.write(chunk)
    report.rows_kept = writer.rows_written
    report.treatments["exact duplicates"] = _WHOLE_LOG
    report.treatments["order"] = "Events keep the source's order (see `sorted_by_timestamp`)."
    return report


def _csv_source(data: config_lib.DataConfig) -> tuple[config_lib.CsvConfig, Path]:
    """The column mapping and the interactions file, resolved as `loaders.load` does."""
    csv = data.csv
    if data.path and not Path(data.path).is_dir():
        path = Path(data.path)
    else:
        if not csv.interactions:
            raise errors.DataError(
                "`data.csv.interactions` must name the interactions file, received ''"
            )
        path = Path(csv.interactions)
        if data.path and not path.is_absolute():
            path = Path(data.path) / path
    if not path.is_file():
        raise errors.DataError("expected an existing interactions file, received none", path=path)
    for field in ("user_id", "item_id", "timestamp"):
        if not getattr(csv, field):
            raise errors.DataError(f"`data.csv.{field}` must name a column, received ''", path=path)
    return csv, path


def _clean_chunks(
    csv: config_lib.CsvConfig,
    path: Path,
    rules: cleaning.Rules,
    report: schema.CleaningReport,
    chunk_rows: int,
    progress: Optional[Callable[[int], None]],
) -> Iterator[pd.DataFrame]:
    """Canonical interactions of each chunk of the source, cleaned as `csv_loader.load` does."""
    mapped = {f: getattr(csv, f) for f in ("user_id", "item_id", "timestamp")}
    mapped.update({f: getattr(csv, f) for f in csv_loader.DEFAULTS if getattr(csv, f)})
    for frame, fmt in _chunks(path, chunk_rows, rules.max_field_size, progress):
        fields.require_columns(frame, list(mapped.values()), path)
        report.rows_read += len(frame)
        # Only the drops, counts and strict refusals of Cleaner are used: its example rows need
        # a map of the whole file from record to line (see below).
        cleaner = cleaning.Cleaner(report, frame.index, path, fmt, rules)
        users = frame[csv.user_id].str.strip()
        items = frame[csv.item_id].str.strip()
        stamp = frame[csv.timestamp].str.strip()
        ts = _timestamps(frame[csv.timestamp], stamp, csv, path, fmt)
        for reason, bad in (
            (f"missing `{csv.user_id}`", users == ""),
            (f"missing `{csv.item_id}`", items == ""),
            (f"missing `{csv.timestamp}`", stamp == ""),
        ):
            cleaner.drop(reason, bad.to_numpy())
        out = pd.DataFrame({"user_id": users, "item_id": items, "timestamp": ts})
        out["event_type"] = _events(frame, csv.event_type, path, fmt)
        for field in ("value", "quantity", "price"):
            column = getattr(csv, field)
            if column:
                parsed = fields.parse_numbers(frame[column], path, column, fmt)
                out[field] = np.where(np.isnan(parsed), csv_loader.DEFAULTS[field], parsed)
            else:
                out[field] = csv_loader.DEFAULTS[field]
        refusable = (cleaning.time_reason(csv.timestamp), cleaning.price_reason(csv.price))
        before = sum(report.dropped.get(reason, 0) for reason in refusable)
        cleaner.times(frame[csv.timestamp], ts, (stamp != "").to_numpy(), csv.timestamp)
        if csv.price:
            cleaner.prices(frame[csv.price], out["price"].to_numpy(dtype=np.float64), csv.price)
        if rules.strict and sum(report.dropped.get(reason, 0) for reason in refusable) > before:
            # Raises for the first refused row, naming file, row and field. Called only then:
            # with nothing refused it would list example rows, which maps every record of the
            # file to its line (a whole-file pass and an array as long as the log).
            cleaner.finish()
        yield out[cleaner.keep]


def _timestamps(
    raw: pd.Series,
    stamp: pd.Series,
    csv: config_lib.CsvConfig,
    path: Path,
    fmt: Optional[textfile.TextFormat],
) -> np.ndarray:
    """`csv_loader.parse_timestamps` of one chunk, blaming the one text among unix seconds.

    Without `timestamp_format`, a column that is not all numbers is parsed as ISO 8601, which
    blames the chunk's first row for a single stray word among numbers; the stray is named.
    """
    if not csv.timestamp_format:
        present = (stamp != "").to_numpy()
        numeric = pd.to_numeric(stamp.where(present), errors="coerce").notna().to_numpy()
        stray = present & ~numeric
        if stray.any() and numeric.sum() > stray.sum():
            fields.raise_bad_value(
                raw,
                int(np.argmax(stray)),
                path,
                csv.timestamp,
                fmt,
                "unix seconds (as the other rows)",
            )
    return csv_loader.parse_timestamps(stamp, csv.timestamp_format, path, csv.timestamp, fmt)


def _events(
    frame: pd.DataFrame, column: str, path: Path, fmt: Optional[textfile.TextFormat]
) -> Any:
    if not column:
        return csv_loader.DEFAULTS["event_type"]
    raw = frame[column].str.strip().str.lower()
    events = raw.replace(csv_loader.EVENT_ALIASES)
    unknown = ~events.isin(schema.EVENT_TYPES).to_numpy()
    if unknown.any():
        fields.raise_bad_value(
            frame[column],
            int(np.argmax(unknown)),
            path,
            column,
            fmt,
            f"an event type in {schema.EVENT_TYPES} (or {sorted(csv_loader.EVENT_ALIASES)})",
        )
    return events.to_numpy(dtype=object)


def _chunks(
    path: Path,
    chunk_rows: int,
    max_field_size: int,
    progress: Optional[Callable[[int], None]],
) -> Iterator[tuple[pd.DataFrame, Optional[textfile.TextFormat]]]:
    """Frames of up to `chunk_rows` source rows as strings ("" where empty), indexed by record."""
    name = path.name.lower().removesuffix(".gz")
    if name.endswith((".parquet", ".pq")):
        yield from _parquet_chunks(path, chunk_rows, progress)
        return
    fmt = textfile.TextFormat(sep="\t" if name.endswith((".tsv", ".tab")) else ",")
    with open(path, "rb") as raw:
        stream: IO[bytes] = gzip.open(raw) if path.suffix.lower() == ".gz" else raw  # type: ignore[assignment]
        reader = pd.read_csv(
            stream,
            sep=fmt.sep,
            dtype=str,
            keep_default_na=False,
            encoding=fmt.encoding,
            chunksize=chunk_rows,
            engine="c",
        )
        done = 0
        while True:
            try:
                frame = next(reader)
            except StopIteration:
                return
            except (ValueError, UnicodeDecodeError, OSError, EOFError) as e:
                # The C parser names the physical line of a ragged row ("... in line 27, saw 6").
                line = re.search(r"in line (\d+)", str(e))
                raise errors.DataError(
                    f"expected {fmt.sep!r}-separated UTF-8 text, could not parse: {e}".strip(),
                    path=path,
                    row=int(line.group(1)) if line else None,
                ) from None
            frame.columns = [str(c).strip().lstrip("\ufeff") for c in frame.columns]
            frame = frame.fillna("")
            textfile.check_field_sizes(frame, path, fmt, max_field_size)
            if progress is not None:
                position = raw.tell()
                progress(position - done)
                done = position
            yield frame, fmt


def _parquet_chunks(
    path: Path, chunk_rows: int, progress: Optional[Callable[[int], None]]
) -> Iterator[tuple[pd.DataFrame, None]]:
    import pyarrow.parquet as pq

    try:
        source = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises its own error classes for a file that is not Parquet
        raise errors.DataError(
            f"expected a Parquet file, could not read it: {e}", path=path
        ) from None
    first = 0
    size, rows = path.stat().st_size, max(source.metadata.num_rows, 1)
    for batch in source.iter_batches(batch_size=chunk_rows):
        frame = batch.to_pandas()
        frame = frame.astype(str).where(frame.notna(), "")
        frame.index = pd.RangeIndex(first, first + len(frame))
        first += len(frame)
        if progress is not None:
            progress(size * len(frame) // rows)
        yield frame, None
