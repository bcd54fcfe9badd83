"""Catalog changes: the index row operations and the checks of the retire file."""

from __future__ import annotations

import re

import numpy as np
import pytest

from tfrec import errors
from tfrec.exporting import add_items, catalog_change
from tfrec.exporting import index as index_lib


def _index(ids, offset=0.0):
    n = len(ids)
    return index_lib.ItemIndex(
        item_ids=np.asarray(ids, object),
        vectors=np.arange(n * 2, dtype=np.float32).reshape(n, 2) + offset,
        titles=np.asarray([f"t-{i}" for i in ids], object),
        categories=np.asarray(["c"] * n, object),
        prices=np.arange(n, dtype=np.float32) + offset,
    )


def test_replace_rows_keeps_positions_and_without_keeps_order():
    base = _index(["a", "b", "c", "d"])
    changed = _index(["c", "a"], offset=100.0)
    out = base.replace_rows(changed)
    assert out.item_ids.tolist() == ["a", "b", "c", "d"]
    # a <- changed row 1, c <- changed row 0; b and d untouched.
    np.testing.assert_array_equal(out.vectors, [[102, 103], [2, 3], [100, 101], [6, 7]])
    np.testing.assert_array_equal(out.prices, [101, 1, 100, 3])
    assert out.titles.tolist() == ["t-a", "t-b", "t-c", "t-d"]
    assert base.vectors[0].tolist() == [0, 1]  # the base index is not modified
    kept = out.without(["b", "a"])
    assert kept.item_ids.tolist() == ["c", "d"]
    np.testing.assert_array_equal(kept.vectors, [[100, 101], [6, 7]])
    with pytest.raises(errors.DataError, match="must be in the index, received 'x'"):
        base.replace_rows(_index(["x"]))


def test_items_may_change_served_ids_but_never_repeat(tmp_path):
    path = tmp_path / "items.csv"
    path.write_text("item_id,title\nold,Red mug\nnew,Blue mug\n")
    frame = add_items.read_items(path, known_ids=["old"], changes=True)
    assert frame["item_id"].tolist() == ["old", "new"]
    path.write_text("item_id,title\nold,Red mug\nold,Blue mug\n")
    with pytest.raises(
        errors.DataError,
        match=re.escape(f"file `{path}`, row 3, field `item_id`: expected each item id once"),
    ):
        add_items.read_items(path, known_ids=["old"], changes=True)


@pytest.mark.parametrize(
    "name, text, where",
    [
        ("retire.txt", "a\nzz\n", ", row 2, field `item_id`: expected a served item id"),
        ("retire.txt", "# stale\n\na\na\n", ", row 4, field `item_id`: expected each id once"),
        ("retire.txt", "b\n", ", row 1, field `item_id`: expected an id that is not also changed"),
        ("retire.csv", "item_id,reason\na,gone\n,x\n", ", row 3, field `item_id`: expected a non"),
        ("retire.csv", "id\na\n", ", row 1, field `item_id`: required column is missing"),
        ("retire.csv", "item_id\na,b\n", ", row 2: expected 1 fields"),
        ("retire.txt", "# nothing\n", ": expected at least one id to retire"),
    ],
)
def test_bad_retire_files_name_file_row_and_field(tmp_path, name, text, where):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(errors.DataError, match=re.escape(f"file `{path}`{where}")):
        catalog_change.read_retired(path, ["a", "b", "c"], changed_ids=["b"])


def test_retire_reads_text_and_csv_files(tmp_path):
    (tmp_path / "r.txt").write_text("c\n\n# old\na\n")
    (tmp_path / "r.csv").write_text("reason,item_id\ngone,c\n")
    assert catalog_change.read_retired(tmp_path / "r.txt", ["a", "c"]) == ["c", "a"]
    assert catalog_change.read_retired(tmp_path / "r.csv", ["a", "c"]) == ["c"]


def test_a_change_needs_items_or_retired_ids():
    with pytest.raises(errors.ConfigError, match="`--items` or `--retire`"):
        catalog_change.CatalogChange()
