"""Stable vocabulary growth: old ids keep their rows, new ids are appended, none is ever dropped."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd

from tfrec import errors, features
from tfrec.data import vocab

# The vocabularies an update may grow (their files in the spec folder, for error messages).
GROWN = {"users": "users.txt", "items": "items.txt", "categories": "categories.txt"}
# Vocabularies an update never changes: the text encoder's token rows and the lookups of
# fixed inputs are not warm-started row by row.
FIXED = ("wordpiece", "event_types")


def _new_values(values: pd.Series, known: list) -> list:
    """Values of `values` absent from `known`, most frequent first (ties by value)."""
    values = values.astype(str)
    fresh = values[~values.isin(pd.Index(known)) & (values != "")]
    return vocab._by_frequency(fresh)


def grow_spec(
    spec: features.FeatureSpec, interactions: pd.DataFrame, items: pd.DataFrame
) -> features.FeatureSpec:
    """`spec` with the users, items and categories of a new window appended.

    Every id of `spec` keeps its position (so its embedding row); ids first seen in
    `interactions` follow, most frequent first. Categories of the window's items are appended
    likewise. WordPiece, event types and price moments stay: the text encoder and the price
    input are warm-started as they are.

    Args:
        spec: FeatureSpec. The trained model's vocabularies.
        interactions: pd.DataFrame. The new window's events (canonical schema).
        items: pd.DataFrame. The catalog after the update (canonical schema).

    Returns:
        FeatureSpec.
    """
    users = list(spec.users) + _new_values(interactions["user_id"], list(spec.users))
    new_items = _new_values(interactions["item_id"], list(spec.items))
    item_ids = list(spec.items) + new_items
    categories = list(spec.categories)
    if categories:
        # A model trained without categories has no category table to grow.
        window = items.loc[items["item_id"].isin(new_items), "category"].fillna("")
        categories += _new_values(window, categories)
    return dataclasses.replace(spec, users=users, items=item_ids, categories=categories)


def check_growth(
    old: features.FeatureSpec, new: features.FeatureSpec, spec_dir: Optional[Path] = None
) -> None:
    """Refuses a spec that does not keep every old id at its row.

    Raises:
        errors.DataError: a grown vocabulary lost or moved an entry (naming the vocabulary
            file and the row of the first such entry), or a fixed one changed.
    """
    where = Path(spec_dir) if spec_dir is not None else Path("spec")
    for key, name in GROWN.items():
        before, after = list(getattr(old, key)), list(getattr(new, key))
        if len(after) < len(before):
            missing = next((v for v in before if v not in set(after)), before[len(after)])
            raise errors.DataError(
                f"an update must never shrink the `{key}` vocabulary: expected at least "
                f"{len(before)} entries, received {len(after)} ({missing!r} would be dropped)",
                path=where / name,
                row=before.index(missing) + 1,
                field=key,
            )
        for row, (a, b) in enumerate(zip(before, after[: len(before)], strict=True)):
            if a != b:
                raise errors.DataError(
                    f"an update must keep every `{key}` entry at its row: expected {a!r}, "
                    f"received {b!r}",
                    path=where / name,
                    row=row + 1,
                    field=key,
                )
    for key in FIXED:
        if tuple(getattr(old, key)) != tuple(getattr(new, key)):
            raise errors.DataError(
                f"an update must not change the `{key}` vocabulary",
                path=where,
                field=key,
            )


def merge_catalog(
    old: pd.DataFrame, window: pd.DataFrame, path: Optional[Path] = None
) -> pd.DataFrame:
    """The catalog after an update: old items in their order, changed ones updated, new appended.

    Args:
        old: pd.DataFrame. The trained model's item table (canonical schema).
        window: pd.DataFrame. Items of the new window; those without text of their own (title
            = id, no description) keep their old text.
        path: Path or None. Where `old` came from, for error messages.

    Raises:
        errors.DataError: the merged table would lose an old item.
    """
    columns = list(old.columns)
    window = window.drop_duplicates("item_id").set_index("item_id")
    merged = old.set_index("item_id", drop=False).copy()
    listed = window.index.intersection(merged.index)
    # An item the window mentions only by id (its title is its id) keeps its old attributes.
    described = window.loc[listed]
    described = described[
        (described["title"] != described.index) | (described["description"] != "")
    ]
    for field in ("title", "description", "category", "price"):
        if field in described.columns and len(described):
            merged.loc[described.index, field] = described[field].to_numpy()
    fresh = window.loc[window.index.difference(merged.index, sort=False)].reset_index()
    result = pd.concat([merged.reset_index(drop=True), fresh[columns]], ignore_index=True)
    check_catalog(old, result, path)
    return result


def check_catalog(old: pd.DataFrame, new: pd.DataFrame, path: Optional[Path] = None) -> None:
    """Refuses a catalog that drops or reorders an old item (catalog rows index the model's
    item vectors).

    Raises:
        errors.DataError: naming the catalog and the row of the first lost or moved item.
    """
    before = old["item_id"].astype(str).to_numpy()
    after = new["item_id"].astype(str).to_numpy()
    head = after[: len(before)]
    lost = np.flatnonzero(~np.isin(before, after))
    moved = np.flatnonzero(before[: len(head)] != head)
    if len(lost) or len(moved):
        row = int(lost[0]) if len(lost) else int(moved[0])
        raise errors.DataError(
            f"an update must keep every catalog item at its row: item {before[row]!r} would be "
            f"{'dropped' if len(lost) else 'moved'} ({len(before)} items before, "
            f"{len(after)} after)",
            path=path,
            row=row + 1,
            field="item_id",
        )


def retired(
    interactions: pd.DataFrame, spec: features.FeatureSpec, as_of: int, after_days: float
) -> dict[str, Any]:
    """Users and items of `spec` with no event in the `after_days` days before `as_of`.

    Their rows stay in the vocabularies (no index shifts); the list marks them for later
    steps (serving filters, a future compaction). An id seen again is simply not listed.

    Returns:
        dict with `as_of` (unix seconds), `after_days`, `users` and `items` (lists of ids).
    """
    cutoff = int(as_of - after_days * 86400)
    out: dict[str, Any] = {"as_of": int(as_of), "after_days": after_days}
    for key, column in (("users", "user_id"), ("items", "item_id")):
        last = interactions.groupby(column)["timestamp"].max()
        ids = pd.Series(list(getattr(spec, key)), dtype=object)
        seen = ids.map(last)
        out[key] = ids[seen.isna() | (seen < cutoff)].tolist()
    return out
