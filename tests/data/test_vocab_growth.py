"""Stable vocabulary growth: old ids keep their rows, new ones are appended, nothing is dropped."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from tfrec import errors, features
from tfrec.data import vocab_growth


def _spec(**changes) -> features.FeatureSpec:
    spec = features.FeatureSpec(
        max_history=3,
        text_length=4,
        query_text_length=2,
        event_types=("view", "cart", "purchase", "rating"),
        users=["u1", "u2"],
        items=["i1", "i2", "i3"],
        categories=["toys", "books"],
        wordpiece=list(features.SPECIAL_TOKENS) + ["a"],
    )
    return dataclasses.replace(spec, **changes)


def _items(ids, category="toys") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": ids,
            "title": [f"title {i}" for i in ids],
            "description": "",
            "category": category,
            "price": 1.0,
        }
    )


def test_new_ids_are_appended_by_frequency_after_the_old_rows():
    window = pd.DataFrame(
        {
            "user_id": ["u2", "u9", "u8", "u8", ""],
            "item_id": ["i2", "n1", "n2", "n2", "i1"],
            "timestamp": [1, 2, 3, 4, 5],
        }
    )
    catalog = pd.concat([_items(["i1", "i2", "i3"]), _items(["n1", "n2"], "garden")])
    grown = vocab_growth.grow_spec(_spec(), window, catalog)
    # u8 twice, u9 once; "" is never an entry.
    assert grown.users == ["u1", "u2", "u8", "u9"]
    assert grown.items == ["i1", "i2", "i3", "n2", "n1"]
    assert grown.categories == ["toys", "books", "garden"]
    assert grown.wordpiece == _spec().wordpiece
    vocab_growth.check_growth(_spec(), grown)  # a grown spec passes its own check


def test_a_model_without_categories_gets_no_category_table():
    window = pd.DataFrame({"user_id": ["u1"], "item_id": ["n1"], "timestamp": [1]})
    grown = vocab_growth.grow_spec(_spec(categories=[]), window, _items(["n1"], "garden"))
    assert grown.categories == []


def test_a_shrinking_vocabulary_is_refused_naming_file_and_row(tmp_path):
    with pytest.raises(errors.DataError, match=r"items\.txt.*row 3.*field `items`.*'i3'"):
        vocab_growth.check_growth(_spec(), _spec(items=["i1", "i2"]), tmp_path)
    with pytest.raises(errors.DataError, match=r"users\.txt.*row 1.*expected 'u1', received 'u2'"):
        vocab_growth.check_growth(_spec(), _spec(users=["u2", "u1", "u3"]), tmp_path)
    with pytest.raises(errors.DataError, match="`wordpiece`"):
        vocab_growth.check_growth(_spec(), _spec(wordpiece=list(features.SPECIAL_TOKENS)))


def test_the_catalog_keeps_old_rows_updates_described_items_and_appends_new_ones():
    old = _items(["i1", "i2", "i3"])
    window = pd.concat(
        [
            # Mentioned by id only (the loader's title is the id): keeps its old text.
            pd.DataFrame(
                {
                    "item_id": ["i1"],
                    "title": ["i1"],
                    "description": "",
                    "category": "",
                    "price": 9.0,
                }
            ),  # fmt: skip
            _items(["i2"], "books").assign(title="renamed"),
            _items(["n1"]),
        ]
    )
    merged = vocab_growth.merge_catalog(old, window)
    assert merged["item_id"].tolist() == ["i1", "i2", "i3", "n1"]
    assert merged["title"].tolist() == ["title i1", "renamed", "title i3", "title n1"]
    assert merged["category"].tolist() == ["toys", "books", "toys", "toys"]


def test_a_catalog_that_drops_or_moves_an_item_is_refused(tmp_path):
    old = _items(["i1", "i2", "i3"])
    with pytest.raises(errors.DataError, match=r"row 2.*'i2' would be dropped"):
        vocab_growth.check_catalog(old, _items(["i1", "i3"]), tmp_path / "items.parquet")
    with pytest.raises(errors.DataError, match=r"row 1.*'i1' would be moved"):
        vocab_growth.check_catalog(old, _items(["i2", "i1", "i3"]), tmp_path / "items.parquet")


def test_ids_unseen_for_the_retirement_period_are_listed_not_removed():
    day = 86400
    log = pd.DataFrame(
        {
            "user_id": ["u1", "u2", "u1"],
            "item_id": ["i1", "i2", "i1"],
            "timestamp": [0, 5 * day, 9 * day],
        }
    )
    out = vocab_growth.retired(log, _spec(), as_of=10 * day, after_days=3)
    assert out["users"] == ["u2"]
    assert out["items"] == ["i2", "i3"]  # i3 never had an event
