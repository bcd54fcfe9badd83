"""Loader for the UCI Online Retail log (CSV, CSV.GZ or XLSX) with a documented cleaning."""

from __future__ import annotations

import bisect
import os
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from tfrec import errors
from tfrec.data import cleaning, fields, schema, textfile

COLUMNS = (
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
    "Country",
)
# Products are 5 digits plus an optional variant suffix (85123A). Everything else is a service
# or bookkeeping line: POST, DOT, M, C2, D, S, BANK CHARGES, AMAZONFEE, CRUK, PADS, B,
# gift_0001_*, DCGS*, ...
PRODUCT_CODE = r"^\d{5}[A-Z]*$"
# The shared CSV uses the first; the UCI xlsx exported by other tools often uses the others.
DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%m/%d/%Y %H:%M", "%d/%m/%Y %H:%M")

# The drop reasons, in the order they are applied (TIME_RANGE right after the first). USUAL is
# the "usual cleaning" (README: 397,884 rows remain); the rest are what this loader adds.
USUAL = (
    "missing Quantity, UnitPrice or InvoiceDate",
    "adjust bad debt (`A` invoice)",
    "cancellation (`C` invoice)",
    "stock adjustment (Quantity <= 0, not a `C` invoice)",
    cleaning.price_reason("UnitPrice"),
    "missing CustomerID",
)
TIME_RANGE = cleaning.time_reason("InvoiceDate")
NON_PRODUCT = "non-product StockCode (POST, DOT, M, C2, BANK CHARGES, ...)"
DUPLICATE = cleaning.DUPLICATE
CANCELLED = "purchase cancelled in full later"


def load(path: os.PathLike | str, rules: Optional[cleaning.Rules] = None) -> schema.Dataset:
    """Loads and cleans UCI Online Retail into purchase events.

    Args:
        path: str. A `.csv`, `.csv.gz` or `.xlsx` file with the UCI columns.
        rules: cleaning.Rules or None. Strict mode, plausible times, field size; None: defaults.

    Returns:
        A schema.Dataset named `online-retail`; the users frame has a `country` column.

    Raises:
        errors.DataError: the file is missing, lacks a column, holds a malformed number or date,
            or is not UTF-8 (naming the line); in strict mode also an exact duplicate row, a
            UnitPrice <= 0 or an implausible InvoiceDate (naming row and field).
    """
    rules = cleaning.Rules() if rules is None else rules
    path = Path(path)
    raw, fmt = _read(path, rules.max_field_size)
    report = schema.CleaningReport(source=str(path), rows_read=len(raw))
    qty = fields.parse_numbers(raw["Quantity"], path, "Quantity", fmt, "a number like 6")
    price = fields.parse_numbers(raw["UnitPrice"], path, "UnitPrice", fmt, "a number like 2.55")
    ts = fields.parse_datetimes(
        raw["InvoiceDate"],
        DATE_FORMATS,
        path,
        "InvoiceDate",
        fmt,
        "a date like 2011-12-09 08:26:00",
    )
    invoice = raw["InvoiceNo"].str.strip().str.upper().to_numpy(dtype=object)
    code = raw["StockCode"].str.strip().str.upper()
    customer = raw["CustomerID"].str.strip().str.replace(r"\.0$", "", regex=True)
    is_cancel = pd.Series(invoice).str.startswith("C").to_numpy()
    has_customer = (customer != "").to_numpy()
    is_product = code.str.match(PRODUCT_CODE).to_numpy()

    cleaner = cleaning.Cleaner(report, raw.index, path, fmt, rules)
    drop = cleaner.drop
    no_date = (raw["InvoiceDate"].str.strip() == "").to_numpy()
    drop(USUAL[0], np.isnan(qty) | np.isnan(price) | no_date)
    cleaner.times(raw["InvoiceDate"], ts, ~no_date, "InvoiceDate")
    drop(USUAL[1], pd.Series(invoice).str.startswith("A").to_numpy(), _show(raw, "InvoiceNo"))
    cancellations = cleaner.keep & is_cancel & has_customer & is_product & (qty < 0)
    drop(USUAL[2], is_cancel, _show(raw, "InvoiceNo"))
    drop(USUAL[3], qty <= 0, _show(raw, "Quantity"))
    cleaner.prices(raw["UnitPrice"], price, "UnitPrice")
    drop(USUAL[5], ~has_customer)
    drop(NON_PRODUCT, ~is_product, _show(raw, "StockCode"))
    cleaner.duplicates(raw)
    code = code.to_numpy(dtype=object)
    customer = customer.to_numpy(dtype=object)
    qty, matched = _apply_cancellations(cleaner.keep, cancellations, customer, code, ts, qty)
    drop(CANCELLED, qty <= 0)
    cleaner.finish()
    keep = cleaner.keep
    report.rows_kept = int(keep.sum())

    lower = (raw["StockCode"].str.strip() != raw["StockCode"].str.strip().str.upper()).to_numpy()
    report.treatments.update(
        {
            "cancellations": (
                f"`C` rows are dropped; each also cancels the latest earlier purchases of the same "
                f"customer and StockCode (oldest last): {matched[0]:,} purchases cancelled in full "
                f"are dropped, {matched[1]:,} partly cancelled keep their remaining quantity, and "
                f"{matched[2]:,} cancellations found no earlier purchase."
            ),
            "adjust bad debt": "The `A` invoices (bookkeeping, StockCode B) are dropped.",
            "stock adjustments": "Non-`C` rows with Quantity <= 0 (damages, write-offs) are dropped.",
            "missing CustomerID": "Guest purchases cannot be attributed to a user and are dropped.",
            "non-product codes": f"StockCodes not matching `{PRODUCT_CODE}` are dropped.",
            "StockCode case": (
                f"StockCodes are upper-cased ({int(lower.sum()):,} rows had lower-case letters)."
            ),
            "time zone": "InvoiceDate (UK wall-clock time) is read as UTC.",
            "category": "The source has no categories: `category` is empty.",
        }
    )
    interactions = pd.DataFrame(
        {
            "user_id": customer[keep],
            "item_id": code[keep],
            "timestamp": ts[keep],
            "event_type": "purchase",
            "value": 1.0,
            "quantity": qty[keep],
            "price": price[keep],
        }
    ).sort_values("timestamp", kind="stable")
    descriptions = raw["Description"].str.strip().to_numpy(dtype=object)
    items = _items(code[keep], descriptions[keep], price[keep], report)
    countries = raw["Country"].str.strip().to_numpy(dtype=object)
    users = _most_frequent(customer[keep], countries[keep], "country")
    report.treatments["country"] = "A user's `country` is the one on most of their rows."
    return schema.Dataset("online-retail", interactions, items, users, report)


def _show(raw: pd.DataFrame, column: str):
    """Describes an example row by one of its fields."""
    return lambda position: f"`{column}` {raw[column].iloc[position]!r}"


def _read(path: Path, max_field_size: int):
    if not path.is_file():
        raise errors.DataError("expected an existing Online Retail file, received none", path=path)
    if path.suffix.lower() in (".xlsx", ".xls"):
        frame = pd.read_excel(path, dtype=str).fillna("")
        frame.columns = [str(c).strip() for c in frame.columns]
        fmt = None
    else:
        fmt = textfile.TextFormat()
        frame = textfile.read_table(path, fmt, max_field_size=max_field_size)
    fields.require_columns(frame, COLUMNS, path)
    return frame, fmt


def _apply_cancellations(keep, cancellations, customer, code, ts, qty):
    """Subtracts each cancelled quantity from the same customer's latest earlier purchases.

    Returns the new quantities and counts of (fully cancelled purchases, partly cancelled
    purchases, cancellations with no earlier purchase). Cancellations are few (~9k), so a
    Python loop over them is fast.
    """
    qty = qty.copy()
    key = pd.Series(customer) + "\x1f" + pd.Series(code)
    cancel_idx = np.flatnonzero(cancellations)
    wanted = set(key.to_numpy()[cancel_idx])
    buy_idx = np.flatnonzero(keep & key.isin(wanted).to_numpy())
    buy_idx = buy_idx[np.argsort(ts[buy_idx], kind="stable")]
    purchases: dict[str, tuple[list, list]] = {}
    for i in buy_idx:
        times, rows = purchases.setdefault(key.iat[i], ([], []))
        times.append(ts[i])
        rows.append(i)
    touched, unmatched = set(), 0
    for c in cancel_idx[np.argsort(ts[cancel_idx], kind="stable")]:
        times, rows = purchases.get(key.iat[c], ([], []))
        remaining = -qty[c]
        pos = bisect.bisect_right(times, ts[c]) - 1
        if pos < 0:
            unmatched += 1
        while remaining > 0 and pos >= 0:
            i = rows[pos]
            take = min(remaining, qty[i])
            qty[i] -= take
            remaining -= take
            touched.add(i)
            if qty[i] <= 0:
                del times[pos], rows[pos]
            pos -= 1
    full = sum(1 for i in touched if qty[i] <= 0)
    return qty, (full, len(touched) - full, unmatched)


def _items(codes, descriptions, prices, report) -> pd.DataFrame:
    """One row per kept StockCode; the title is its most frequent kept description."""
    pairs = pd.DataFrame({"item_id": codes, "title": descriptions})
    pairs = pairs[pairs["title"] != ""]
    counts = pairs.value_counts().reset_index(name="n")
    counts = counts.sort_values(["item_id", "n", "title"], ascending=[True, False, True])
    titles = counts.drop_duplicates("item_id").set_index("item_id")["title"]
    variants = counts.groupby("item_id").size()
    price = pd.Series(prices).groupby(codes).median()
    items = pd.DataFrame({"item_id": price.index.to_numpy(dtype=object)})
    items["title"] = items["item_id"].map(titles).fillna("")
    items["description"] = ""
    items["category"] = ""
    items["price"] = price.to_numpy()
    report.treatments["descriptions"] = (
        f"Descriptions are stripped; {int((variants > 1).sum()):,} kept items have several, and "
        "the most frequent (then alphabetically first) becomes the title; "
        f"{int((items['title'] == '').sum()):,} items have none and an empty title."
    )
    report.treatments["item price"] = "An item's catalog price is the median of its UnitPrice."
    return items


def _most_frequent(users: np.ndarray, values: np.ndarray, name: str) -> pd.DataFrame:
    """One row per user with the value they have most often (ties: alphabetically first)."""
    frame = pd.DataFrame({"user_id": users, name: values})
    counts = frame.value_counts().reset_index(name="n")
    counts = counts.sort_values(["user_id", "n", name], ascending=[True, False, True])
    return counts.drop_duplicates("user_id")[["user_id", name]].reset_index(drop=True)
