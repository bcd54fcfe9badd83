"""Segment labels of test queries."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tfrec.experiments import segments


def test_popularity_buckets():
    counts = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 100])
    got = segments.popularity_buckets(counts)
    assert got[0] == "cold"
    assert got[-1] == "head (top 10%)"
    assert got[1] == "tail (bottom 50%)"
    assert got[8] == "torso (50-90%)"


def test_history_buckets():
    assert [segments.history_bucket(n) for n in (0, 2, 3, 10, 11)] == [
        "0",
        "1-2",
        "3-5",
        "6-10",
        "11+",
    ]


def test_labels():
    catalog = pd.DataFrame(
        {"item_id": ["a", "b"], "category": ["shoes", "bags"], "train_events": [5, 0]}
    )
    frame = segments.labels(
        ["u1", "u2"], [10, 20], [["a", "", ""], ["", "", ""]], [["b", "a"], ["a"]], catalog, ["u1"]
    )
    assert list(frame["cold_users"]) == ["known user", "cold user"]
    assert list(frame["cold_items"]) == ["cold item", "known item"]
    assert list(frame["category"]) == ["bags", "shoes"]
    assert list(frame["history_length"]) == ["1-2", "0"]


def test_segment_means_skip_queries_that_do_not_count():
    got = segments.segment_means(np.array([1.0, 0.0, np.nan, 0.5]), ["x", "x", "x", "y"])
    assert got.set_index("label").to_dict() == {
        "mean": {"x": 0.5, "y": 0.5},
        "queries": {"x": 2, "y": 1},
    }
