"""Cold-start and changed items: read an items CSV and embed its rows with the trained item tower."""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from tfrec import errors, features
from tfrec.data import vocab
from tfrec.exporting import index as index_lib

REQUIRED = ("item_id", "title")
OPTIONAL = ("description", "category", "price")


def read_items(path: os.PathLike | str, known_ids=(), changes: bool = False) -> pd.DataFrame:
    """Reads and checks an items CSV: columns item_id,title[,description,category,price].

    Args:
        path: path. UTF-8 CSV with a header row.
        known_ids: iterable of str. Ids already served; a new item must not reuse one.
        changes: bool. Rows may also describe served items anew (`tfrec index refresh`);
            False: every id must be new (`tfrec export --add-items`). Either way an id appears
            once. Defaults to False.

    Returns:
        pd.DataFrame in the canonical item schema (tfrec.data.schema.ITEM_COLUMNS).

    Raises:
        DataError: naming the file, the row (header = row 1) and the field.
    """
    path = Path(path)
    if not path.is_file():
        raise errors.DataError("expected an existing CSV file, received a missing path", path=path)
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            raise errors.DataError(
                "expected a header row, received an empty file", path=path, row=1
            )
        header = [h.strip() for h in header]
        for name in header:
            if name not in REQUIRED + OPTIONAL:
                raise errors.DataError(
                    f"unknown column; expected {REQUIRED + OPTIONAL}", path=path, row=1, field=name
                )
        for name in REQUIRED:
            if name not in header:
                raise errors.DataError("required column is missing", path=path, row=1, field=name)
        known = {str(i) for i in known_ids}
        seen: dict[str, int] = {}
        rows = []
        for number, values in data_rows(reader, header, path):
            row = _check_row(dict(zip(header, values, strict=True)), path, number)
            _check_id(row["item_id"], known, seen, changes, path, number)
            rows.append(row)
    if not rows:
        raise errors.DataError("expected at least one item row, received none", path=path)
    frame = pd.DataFrame(rows, columns=REQUIRED + OPTIONAL)
    frame["price"] = frame["price"].astype(np.float32)
    return frame


def data_rows(reader, header: list, path: Path):
    """(1-based row number, values) of each non-blank row after the header, each checked to
    have one value per column (`errors.DataError` naming the row otherwise)."""
    for number, values in enumerate(reader, start=2):
        if not any(v.strip() for v in values):
            continue  # blank line
        if len(values) != len(header):
            raise errors.DataError(
                f"expected {len(header)} fields, received {len(values)}", path=path, row=number
            )
        yield number, values


def _check_id(item_id: str, known: set, seen: dict, changes: bool, path: Path, number: int):
    if item_id in seen:
        raise errors.DataError(
            f"expected each item id once, received {item_id!r} again (first at row "
            f"{seen[item_id]})",
            path=path,
            row=number,
            field="item_id",
        )
    seen[item_id] = number
    if item_id in known and not changes:
        raise errors.DataError(
            f"expected a new item id, received {item_id!r} which is already served",
            path=path,
            row=number,
            field="item_id",
        )


def _check_row(row: dict, path: Path, number: int) -> dict:
    item_id = row["item_id"].strip()
    if not item_id:
        raise errors.DataError(
            "expected a non-empty id, received ''", path=path, row=number, field="item_id"
        )
    title = row["title"].strip()
    if not title:
        # The tower embeds a new item from its text: without any, it would sit at the OOV point.
        raise errors.DataError(
            "expected a non-empty title, received ''", path=path, row=number, field="title"
        )
    raw_price = row.get("price", "").strip()
    price = float("nan")
    if raw_price:
        try:
            price = float(raw_price)
        except ValueError:
            price = -1.0
        if not math.isfinite(price) or price < 0:
            raise errors.DataError(
                f"expected a number >= 0 or empty, received {raw_price!r}",
                path=path,
                row=number,
                field="price",
            )
    return {
        "item_id": item_id,
        "title": title,
        "description": row.get("description", "").strip(),
        "category": row.get("category", "").strip(),
        "price": price,
    }


def embed_items(
    items: pd.DataFrame, spec: features.FeatureSpec, candidate_model
) -> index_lib.ItemIndex:
    """An ItemIndex of `items` embedded by the candidate tower (no retraining).

    New ids are out of the tower's id vocabulary, so their vectors come from their text,
    category and price, as for any item unseen in training; a changed item trained on keeps
    its id embedding and adds its new text, category and price.
    """
    table = vocab.build_item_table(items, spec)
    return index_lib.from_table(candidate_model, table)
