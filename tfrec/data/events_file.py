"""A new window of events (and new or changed items) in the canonical schema, for `tfrec update`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import pandas as pd

from tfrec import config as config_lib
from tfrec import errors
from tfrec.data import cleaning, csv_loader, fields, schema

# The columns a window file must and may hold: the canonical schema's own names, so a file
# written by `tfrec data generate` or exported from a shop's log in that schema reads as is.
REQUIRED_EVENT_COLUMNS = ("user_id", "item_id", "timestamp")
OPTIONAL_EVENT_COLUMNS = ("event_type", "value", "quantity", "price")
REQUIRED_ITEM_COLUMNS = ("item_id",)
OPTIONAL_ITEM_COLUMNS = ("title", "description", "category", "price")


def _check_header(path: Path, columns, required, optional, what: str) -> list:
    """The optional columns present; DataError on a missing or unknown column (row 1)."""
    columns = list(columns)
    for name in required:
        if name not in columns:
            raise errors.DataError(
                f"the {what} file must have the canonical columns {list(required)} (and may "
                f"have {list(optional)}), received {columns}: `{name}` is missing",
                path=path,
                row=1,
                field=name,
            )
    allowed = set(required) | set(optional)
    for name in columns:
        if name not in allowed:
            raise errors.DataError(
                f"the {what} file must hold only the canonical columns "
                f"{list(required) + list(optional)}, received an unknown column {name!r}",
                path=path,
                row=1,
                field=name,
            )
    return [c for c in optional if c in columns]


def load_window(
    events: os.PathLike | str,
    items: Optional[os.PathLike | str] = None,
    rules: Optional[cleaning.Rules] = None,
) -> schema.Dataset:
    """Reads a window of new events, and optionally new or changed items, in canonical columns.

    Events have `user_id`, `item_id`, `timestamp` (unix seconds or ISO 8601) and optionally
    `event_type`, `value`, `quantity`, `price`; items have `item_id` and optionally `title`,
    `description`, `category`, `price`. Values are checked and cleaned as `dataset: csv` does.

    Args:
        events: path. CSV, TSV or Parquet file of events.
        items: path or None. Item file; None: items of the events that the model does not know
            get their id as title.
        rules: cleaning.Rules or None. None: the defaults.

    Returns:
        schema.Dataset of the window (`items`: those of `items` plus any other event item).

    Raises:
        errors.DataError: a missing or unknown column (row 1, the header) or a bad value,
            naming the file, row and field.
    """
    rules = cleaning.Rules() if rules is None else rules
    events_path = Path(events)
    frame, _ = csv_loader.read_any(events_path, rules.max_field_size)
    event_columns = _check_header(
        events_path, frame.columns, REQUIRED_EVENT_COLUMNS, OPTIONAL_EVENT_COLUMNS, "events"
    )
    mapping = {c: c for c in event_columns}
    item_columns: list = []
    if items is not None:
        items_frame, _ = csv_loader.read_any(Path(items), rules.max_field_size)
        item_columns = _check_header(
            Path(items), items_frame.columns, REQUIRED_ITEM_COLUMNS, OPTIONAL_ITEM_COLUMNS, "items"
        )
    csv = config_lib.CsvConfig(
        interactions=str(events_path),
        catalog="" if items is None else str(items),
        event_type=mapping.get("event_type", ""),
        value=mapping.get("value", ""),
        quantity=mapping.get("quantity", ""),
        price=mapping.get("price", ""),
        title="title" if (items is None or "title" in item_columns) else "",
        description="description" if "description" in item_columns else "",
        category="category" if "category" in item_columns else "",
    )
    window = csv_loader.load(csv, rules=rules)
    if items is not None and "price" in item_columns and not csv.price:
        # The loader reads a catalog price under the events' price column; here only the
        # item file has one, so it is read on its own.
        catalog = items_frame.drop_duplicates("item_id").set_index("item_id")
        price = fields.parse_numbers(catalog["price"], Path(items), "price")
        listed = pd.Series(price, index=catalog.index)
        known = window.items["item_id"].map(listed)
        window.items["price"] = known.fillna(window.items["price"]).to_numpy()
    return window
