"""A change to a served item index: new items appended, changed items re-embedded, ids retired."""

from __future__ import annotations

import csv
import dataclasses
import os
from pathlib import Path
from typing import Optional

from tfrec import errors, features
from tfrec.exporting import add_items
from tfrec.exporting import index as index_lib

ITEM_ID = "item_id"


@dataclasses.dataclass(frozen=True)
class CatalogChange:
    """What an export changes in the newest served item index, without retraining.

    `tfrec export --add-items` only appends new items; `tfrec index refresh` also re-embeds
    served items from a new description and drops retired ids. Both start from the item index
    of the newest version already exported.

    Args:
        items: path or None. An items CSV (`add_items.read_items`): ids not served are
            appended; served ids (with `changes`) are re-embedded and keep their row.
        retire: path or None. Served ids to drop: a `.csv` file with an `item_id` column, any
            other file one id per line (blank lines and lines starting with `#` skipped).
        changes: bool. Whether `items` may describe served ids anew. Defaults to True.
    """

    items: Optional[Path] = None
    retire: Optional[Path] = None
    changes: bool = True

    def __post_init__(self):
        if self.items is None and self.retire is None:
            raise errors.ConfigError(
                "a catalog change needs `--items` or `--retire`, received neither"
            )


@dataclasses.dataclass(frozen=True)
class Applied:
    """The index a change produced, and which ids it added, changed and retired.

    Args:
        index: ItemIndex. The new index: kept rows in their order (changed ones replaced in
            place), then the new items in CSV order.
        new: tuple of str. Ids appended.
        changed: tuple of str. Served ids re-embedded in place.
        retired: tuple of str. Served ids dropped.
    """

    index: index_lib.ItemIndex
    new: tuple[str, ...]
    changed: tuple[str, ...]
    retired: tuple[str, ...]

    def counts(self) -> dict:
        """`new`, `changed` and `retired` counts and the resulting `num_items`."""
        return {
            "new": len(self.new),
            "changed": len(self.changed),
            "retired": len(self.retired),
            "num_items": len(self.index),
        }


def read_retired(path: os.PathLike | str, served_ids, changed_ids=(), items_path=None) -> list[str]:
    """Reads and checks a file of ids to retire.

    Args:
        path: path. A `.csv` with a header row holding `item_id` (other columns are ignored),
            or a text file of one id per line (blank lines and `#` comments skipped).
        served_ids: iterable of str. Ids of the served index; only those can be retired.
        changed_ids: iterable of str. Ids the same change re-embeds: retiring one too is a
            contradiction.
        items_path: path or None. The items CSV of `changed_ids`, named in that error.

    Returns:
        list of str, in file order.

    Raises:
        DataError: naming the file, the row (first line = row 1) and the field `item_id`.
    """
    path = Path(path)
    if not path.is_file():
        raise errors.DataError(
            "expected an existing file of ids, received a missing path", path=path
        )
    served = {str(i) for i in served_ids}
    changed = {str(i) for i in changed_ids}
    seen: dict[str, int] = {}
    for number, item_id in _id_rows(path):
        if not item_id:
            raise errors.DataError(
                "expected a non-empty id, received ''", path=path, row=number, field=ITEM_ID
            )
        if item_id in seen:
            raise errors.DataError(
                f"expected each id once, received {item_id!r} again (first at row {seen[item_id]})",
                path=path,
                row=number,
                field=ITEM_ID,
            )
        if item_id not in served:
            raise errors.DataError(
                f"expected a served item id, received {item_id!r} which the newest version's "
                "index does not hold",
                path=path,
                row=number,
                field=ITEM_ID,
            )
        if item_id in changed:
            raise errors.DataError(
                f"expected an id that is not also changed, received {item_id!r} which "
                f"`{items_path}` re-describes: change it or retire it",
                path=path,
                row=number,
                field=ITEM_ID,
            )
        seen[item_id] = number
    if not seen:
        raise errors.DataError("expected at least one id to retire, received none", path=path)
    return list(seen)


def _id_rows(path: Path):
    """(row number, stripped id) of every id row of `path`."""
    with path.open(newline="", encoding="utf-8") as f:
        if path.suffix.lower() != ".csv":
            for number, line in enumerate(f, start=1):
                text = line.strip()
                if text and not text.startswith("#"):
                    yield number, text
            return
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        if ITEM_ID not in header:
            raise errors.DataError(
                f"required column is missing (received columns {header})",
                path=path,
                row=1,
                field=ITEM_ID,
            )
        column = header.index(ITEM_ID)
        for number, values in add_items.data_rows(reader, header, path):
            yield number, values[column].strip()


def apply(
    change: CatalogChange,
    base: index_lib.ItemIndex,
    spec: features.FeatureSpec,
    candidate_model,
) -> Applied:
    """`base` with `change` made: retired rows dropped, changed rows replaced, new rows appended.

    Every item of the CSV (new and changed) is embedded by `candidate_model` in one pass, so a
    changed item's vector is exactly what the tower gives its new text, category and price.

    Args:
        change: CatalogChange.
        base: ItemIndex. The newest served index.
        spec: FeatureSpec. Tokenizer, text length and price moments of the trained model.
        candidate_model: tf.keras.Model. The trained item tower.

    Raises:
        DataError: a bad row of either file (see `add_items.read_items`, `read_retired`), or a
            change that leaves no item in the index.
    """
    served = set(base.item_ids.tolist())
    new: list[str] = []
    changed: list[str] = []
    embedded = None
    if change.items is not None:
        frame = add_items.read_items(change.items, known_ids=served, changes=change.changes)
        embedded = add_items.embed_items(frame, spec, candidate_model)
        for item_id in embedded.item_ids.tolist():
            (changed if item_id in served else new).append(item_id)
    retired: list[str] = []
    if change.retire is not None:
        retired = read_retired(change.retire, served, changed, change.items)
        if len(served) - len(retired) + len(new) < 1:
            raise errors.DataError(
                f"expected at least one item left in the index, received {len(retired)} ids "
                f"to retire, every served item, and no new one",
                path=change.retire,
            )
    index = base
    if embedded is not None and changed:
        index = index.replace_rows(_subset(embedded, changed))
    if retired:
        index = index.without(retired)
    if embedded is not None and new:
        index = index.extend(_subset(embedded, new))
    return Applied(index, tuple(new), tuple(changed), tuple(retired))


def _subset(index: index_lib.ItemIndex, item_ids: list[str]) -> index_lib.ItemIndex:
    """The rows of `index` whose id is in `item_ids`, in index order."""
    return index.without(sorted(set(index.item_ids.tolist()) - set(item_ids)))
