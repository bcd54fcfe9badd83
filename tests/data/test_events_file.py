"""A new window's events and items in the canonical columns, for `tfrec update`."""

from __future__ import annotations

import numpy as np
import pytest

from tfrec import errors
from tfrec.data import events_file
from tfrec.data import examples as examples_lib


def test_events_and_items_in_canonical_columns(tmp_path):
    events = tmp_path / "events.csv"
    events.write_text(
        "user_id,item_id,timestamp,event_type\n"
        "u1,n1,2024-01-02T10:00:00,addtocart\n"
        "u2,i7,2024-01-02T11:00:00,purchase\n",
        encoding="utf-8",
    )
    items = tmp_path / "items.csv"
    items.write_text("item_id,title,price\nn1,A new lamp,12.5\n", encoding="utf-8")
    window = events_file.load_window(events, items)
    assert window.interactions["event_type"].tolist() == ["cart", "purchase"]
    catalog = window.items.set_index("item_id")
    # The item file's price is read although the events have none; an item the file does not
    # list gets its id as title.
    assert catalog.loc["n1", "title"] == "A new lamp" and catalog.loc["n1", "price"] == 12.5
    assert catalog.loc["i7", "title"] == "i7" and np.isnan(catalog.loc["i7", "price"])


def test_an_item_file_with_an_unknown_column_is_refused(tmp_path):
    events = tmp_path / "events.csv"
    events.write_text("user_id,item_id,timestamp\nu1,n1,1704189600\n", encoding="utf-8")
    items = tmp_path / "items.csv"
    items.write_text("item_id,name\nn1,A lamp\n", encoding="utf-8")
    with pytest.raises(errors.DataError, match=rf"file `{items}`, row 1, field `name`"):
        events_file.load_window(events, items)


def test_retrieval_examples_subset_and_concatenate():
    parts = [
        examples_lib.RetrievalExamples(
            user_id=np.array([u, u], dtype=object),
            history_item_ids=np.array([["a", ""], ["b", "a"]], dtype=object),
            history_event_types=np.array([["view", ""], ["cart", "view"]], dtype=object),
            timestamp=np.array([1, 2]),
            hour_of_day=np.array([0, 1], np.int32),
            day_of_week=np.array([3, 3], np.int32),
            item_id=np.array(["x", "y"], dtype=object),
            event_type=np.array(["view", "cart"], dtype=object),
        )
        for u in ("u1", "u2")
    ]
    both = examples_lib.concatenate([parts[0].subset(np.array([1])), parts[1]])
    assert both.user_id.tolist() == ["u1", "u2", "u2"]
    assert both.history_item_ids.shape == (3, 2) and both.item_id.tolist() == ["y", "x", "y"]
