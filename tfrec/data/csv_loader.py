"""Loader for any interactions CSV or Parquet (plus an optional catalog) via a CsvConfig mapping."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional, cast

import numpy as np
import pandas as pd

from tfrec import config as config_lib
from tfrec import errors
from tfrec.data import cleaning, fields, schema, textfile

# Source spellings of event types that other public logs use (RetailRocket, GA exports, ...).
EVENT_ALIASES = {
    "addtocart": "cart",
    "add_to_cart": "cart",
    "transaction": "purchase",
    "order": "purchase",
    "buy": "purchase",
    "click": "view",
}
TEXT_FIELDS = ("title", "description", "category")
DEFAULTS: dict[str, Any] = {
    "event_type": "purchase",
    "value": 1.0,
    "quantity": 1.0,
    "price": np.nan,
}


def load(
    csv: config_lib.CsvConfig,
    base_dir: Optional[os.PathLike | str] = None,
    rules: Optional[cleaning.Rules] = None,
) -> schema.Dataset:
    """Loads an interactions file and an optional catalog through the column mapping in `csv`.

    Rows without a user, item or time, with a time outside the plausible range, with a price
    <= 0, or repeating an earlier row exactly are dropped and counted in the report (refused
    in strict mode).

    Args:
        csv: CsvConfig. File names and the source column for each canonical field; an empty
            mapping means the source has no such column (defaults: event_type `purchase`,
            value 1.0, quantity 1, price NaN; title falls back to the item id).
        base_dir: str or None. Folder that relative file names in `csv` are resolved against.
        rules: cleaning.Rules or None. Strict mode, plausible times, field size; None: defaults.

    Returns:
        A schema.Dataset named `csv`.

    Raises:
        errors.DataError: a missing file or column, a malformed value or an unknown event type
            (naming file, row and field); in strict mode also a row the cleaning would drop.
    """
    if not csv.interactions:
        raise errors.DataError(
            "`data.csv.interactions` must name the interactions file, received ''"
        )
    rules = cleaning.Rules() if rules is None else rules
    path = _resolve(csv.interactions, base_dir)
    frame, fmt = read_any(path, rules.max_field_size)
    report = schema.CleaningReport(source=str(path), rows_read=len(frame))
    cleaner = cleaning.Cleaner(report, frame.index, path, fmt, rules)
    for field in ("user_id", "item_id", "timestamp"):
        if not getattr(csv, field):
            raise errors.DataError(f"`data.csv.{field}` must name a column, received ''", path=path)
    mapped = {f: getattr(csv, f) for f in ("user_id", "item_id", "timestamp")}
    mapped.update({f: getattr(csv, f) for f in DEFAULTS if getattr(csv, f)})
    fields.require_columns(frame, list(mapped.values()), path)

    users = frame[csv.user_id].str.strip()
    items = frame[csv.item_id].str.strip()
    stamp = frame[csv.timestamp].str.strip()
    ts = parse_timestamps(stamp, csv.timestamp_format, path, csv.timestamp, fmt)
    for reason, bad in (
        (f"missing `{csv.user_id}`", users == ""),
        (f"missing `{csv.item_id}`", items == ""),
        (f"missing `{csv.timestamp}`", stamp == ""),
    ):
        cleaner.drop(reason, bad.to_numpy())
    report.treatments["missing ids or timestamps"] = (
        "Rows without a user, item or time are dropped."
    )

    out = pd.DataFrame({"user_id": users, "item_id": items, "timestamp": ts})
    out["event_type"] = _events(frame, csv.event_type, path, fmt, report)
    for field in ("value", "quantity", "price"):
        column = getattr(csv, field)
        if column:
            parsed = fields.parse_numbers(frame[column], path, column, fmt)
            out[field] = np.where(np.isnan(parsed), DEFAULTS[field], parsed)
        else:
            out[field] = DEFAULTS[field]
    cleaner.times(frame[csv.timestamp], ts, (stamp != "").to_numpy(), csv.timestamp)
    if csv.price:
        cleaner.prices(frame[csv.price], out["price"].to_numpy(dtype=np.float64), csv.price)
    cleaner.duplicates(frame)
    cleaner.finish()
    keep = cleaner.keep
    out = out[keep].sort_values("timestamp", kind="stable")
    report.rows_kept = len(out)
    catalog = _catalog(csv, base_dir, frame[keep], out, report, rules.max_field_size)
    users_frame = pd.DataFrame({"user_id": pd.unique(out["user_id"])})
    return schema.Dataset("csv", out, catalog, users_frame, report)


def parse_timestamps(
    values: pd.Series,
    timestamp_format: str,
    path: os.PathLike | str,
    field: str,
    fmt: Optional[textfile.TextFormat] = None,
) -> np.ndarray:
    """Unix seconds from unix seconds, ISO 8601 or `timestamp_format` text (0 where empty)."""
    present = (values != "").to_numpy()
    if not timestamp_format:
        numbers = pd.to_numeric(values.where(present), errors="coerce").to_numpy(dtype=float)
        if np.isfinite(numbers[present]).all():
            # A file mostly in milliseconds is refused outright; a lone huge value is an implausible
            # time that the cleaning drops (or refuses in strict mode) with its row.
            if present.any() and np.mean(np.abs(numbers[present]) > 1e11) > 0.5:
                row = int(np.argmax(present & (np.abs(np.nan_to_num(numbers)) > 1e11)))
                raise errors.DataError(
                    f"expected unix seconds, received {values.iloc[row]!r} "
                    "(milliseconds? divide by 1000 first)",
                    path=path,
                    row=textfile.line_of(path, values.index[row], fmt),
                    field=field,
                )
            # Clipped so that absurd values stay absurd instead of wrapping around in int64.
            numbers = np.clip(np.nan_to_num(numbers), -(2.0**62), 2.0**62)
            return np.where(present, numbers, 0).astype(np.int64)
    return fields.parse_datetimes(
        values,
        [timestamp_format or "ISO8601"],
        path,
        field,
        fmt,
        expected=f"`{timestamp_format}` text" if timestamp_format else "unix seconds or ISO 8601",
    )


def _events(
    frame: pd.DataFrame,
    column: str,
    path: Path,
    fmt: Optional[textfile.TextFormat],
    report: schema.CleaningReport,
) -> np.ndarray:
    if not column:
        report.treatments["event type"] = "The source has no event type: every row is a purchase."
        return np.full(len(frame), DEFAULTS["event_type"], dtype=object)
    raw = frame[column].str.strip().str.lower()
    events = raw.replace(EVENT_ALIASES)
    unknown = ~events.isin(schema.EVENT_TYPES)
    if unknown.any():
        # The frame's index is the record number; pandas-stubs types idxmax as any label.
        record = cast(int, unknown.idxmax())
        raise errors.DataError(
            f"expected an event type in {schema.EVENT_TYPES} (or {sorted(EVENT_ALIASES)}), "
            f"received {frame[column][record]!r}",
            path=path,
            row=textfile.line_of(path, record, fmt),
            field=column,
        )
    if raw.isin(list(EVENT_ALIASES)).any():
        report.treatments["event type aliases"] = f"Event types are renamed: {EVENT_ALIASES}."
    return events.to_numpy(dtype=object)


def _catalog(
    csv: config_lib.CsvConfig,
    base_dir: Optional[os.PathLike | str],
    frame: pd.DataFrame,
    out: pd.DataFrame,
    report: schema.CleaningReport,
    max_field_size: int,
) -> pd.DataFrame:
    """The item table: from the catalog file when given, else from the interaction columns.

    Title, description and category must exist in a given catalog when mapped. The `price`
    column is optional there: without it, an item's price is the median of its event prices.
    """
    path: Optional[Path]
    catalog_fmt: Optional[textfile.TextFormat]
    if csv.catalog:
        path = _resolve(csv.catalog, base_dir)
        source, catalog_fmt = read_any(path, max_field_size)
        wanted = [csv.item_id] + [getattr(csv, f) for f in TEXT_FIELDS if getattr(csv, f)]
        fields.require_columns(source, wanted, path)
        source = source.assign(**{csv.item_id: source[csv.item_id].str.strip()})
        dup = source[csv.item_id].duplicated()
        if dup.any():
            report.treatments["duplicate catalog rows"] = (
                f"{int(dup.sum())} catalog rows repeat an item id; the first row is kept."
            )
        source = source[~dup & (source[csv.item_id] != "")]
    else:
        path = catalog_fmt = None
        source = frame.assign(**{csv.item_id: out["item_id"]}).drop_duplicates(csv.item_id)
        report.treatments["catalog"] = (
            "No catalog file: item text comes from the interactions file where mapped, "
            "else the title is the item id."
        )
    cat = pd.DataFrame({"item_id": source[csv.item_id].to_numpy(dtype=object)})
    for field in TEXT_FIELDS:
        column = getattr(csv, field)
        has = bool(column) and column in source.columns
        cat[field] = source[column].str.strip().to_numpy(dtype=object) if has else ""
    has_price = bool(csv.price) and csv.catalog and csv.price in source.columns
    cat["price"] = (
        fields.parse_numbers(source[csv.price], path, csv.price, catalog_fmt)
        if has_price
        else np.nan
    )
    observed = out.groupby("item_id")["price"].median()
    cat["price"] = cat["price"].fillna(cat["item_id"].map(observed))
    ids = pd.unique(out["item_id"])
    missing = ids[~pd.Index(ids).isin(cat["item_id"])]
    if len(missing):
        # pandas-stubs omits arrays of labels (here Arrow strings) from Series indexing.
        price = observed[missing].to_numpy()  # type: ignore[index]
        extra = pd.DataFrame({"item_id": missing, "title": missing, "description": "",
                              "category": "", "price": price})  # fmt: skip
        cat = pd.concat([cat, extra], ignore_index=True)
        report.treatments["items missing from the catalog"] = (
            f"{len(missing)} items are absent from the catalog: their title is their id."
        )
    untitled = cat["title"] == ""
    cat.loc[untitled, "title"] = cat.loc[untitled, "item_id"]
    return cat


def _resolve(name: str, base_dir: Optional[os.PathLike | str]) -> Path:
    path = Path(name)
    if base_dir is not None and not path.is_absolute():
        path = Path(base_dir) / path
    return path


def read_any(path: Path, max_field_size: int) -> tuple[pd.DataFrame, Optional[textfile.TextFormat]]:
    """A CSV, TSV or Parquet file as str columns ("" where empty) and its text layout."""
    if path.suffix.lower() in (".parquet", ".pq"):
        if not path.is_file():
            raise errors.DataError("expected an existing Parquet file, received none", path=path)
        frame = pd.read_parquet(path)
        frame = frame.astype(str).where(frame.notna(), "")
        return frame, None
    fmt = textfile.TextFormat(sep="\t" if path.suffix.lower() in (".tsv", ".tab") else ",")
    return textfile.read_table(path, fmt, max_field_size=max_field_size), fmt
