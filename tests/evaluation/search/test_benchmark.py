"""The search benchmark's builder: what becomes item text and what becomes a query."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tfrec.data import amazon_reviews
from tfrec.evaluation.search import benchmark

DAY = 86400


def reviews_table():
    """Ten days of reviews of items A, B, C; the cut at 80% falls at day 8.

    Early (days 0-7): A twice, B once. Late (days 8-10): queries about A, B and C (C has no
    early review, so it is not in the catalog), one one-word summary, and one late review of
    A whose body holds a marker word that must never reach A's text.
    """
    rows = [
        (0, "u1", "A", "warm tone", "Nice strings for my acoustic.", 0),
        (1, "u2", "B", "solid stand", "Holds my bass.", 2 * DAY),
        (2, "u3", "A", "good value", "", 5 * DAY),
        (3, "u4", "A", "bright leaky marker", "leakybody text", 8 * DAY),
        (4, "u5", "B", "sturdy", "one word summary", 9 * DAY),
        (5, "u6", "C", "new cable", "not in the catalog", 9 * DAY),
        (6, "u7", "B", "great guitar stand", "late body", 10 * DAY),
    ]
    columns = ["record", "user_id", "item_id", "summary", "text", "timestamp"]
    return pd.DataFrame(rows, columns=columns)


def test_item_text_holds_only_text_window_reviews_and_queries_only_later_ones():
    sset = benchmark.build(reviews_table(), text_share=0.8, min_query_words=2)
    assert sset.cutoff == 8 * DAY
    assert sset.item_ids.tolist() == ["A", "B"]
    assert sset.item_texts.tolist() == [
        "warm tone. Nice strings for my acoustic.\n\ngood value",
        "solid stand. Holds my bass.",
    ]
    assert sset.review_items.tolist() == [0, 1, 0] and sset.review_records.tolist() == [0, 1, 2]
    # "sturdy" has one word; C is not in the catalog.
    assert sset.queries.tolist() == ["bright leaky marker", "great guitar stand"]
    assert sset.relevant.tolist() == [0, 1] and sset.query_records.tolist() == [3, 6]
    # No query's review, and no review of the query window, is in any item's text.
    late = reviews_table().query("timestamp >= @sset.cutoff")
    for text in [*sset.item_texts, *sset.review_texts]:
        assert "leaky" not in text and "late body" not in text and "sturdy" not in text
    assert not set(sset.query_records) & set(sset.review_records)
    assert set(sset.review_records).isdisjoint(late["record"])
    assert sset.summary() == {
        "items": 2, "text_reviews": 3, "queries": 2, "cutoff_utc": "1970-01-09T00:00:00",
    }  # fmt: skip


def test_text_share_moves_the_cut():
    sset = benchmark.build(reviews_table(), text_share=0.5, min_query_words=1)
    # Cut at day 5: the day-5 review of A is a query now, not text.
    assert sset.review_records.tolist() == [0, 1]
    assert sset.query_records.tolist() == [2, 3, 4, 6]


def test_bad_arguments_and_empty_builds_are_refused():
    with pytest.raises(ValueError, match=r"`text_share` must be in \(0, 1\), received 1.0"):
        benchmark.build(reviews_table(), text_share=1.0)
    with pytest.raises(ValueError, match=r"`min_query_words` must be an int >= 1, received 0"):
        benchmark.build(reviews_table(), min_query_words=0)
    with pytest.raises(ValueError, match=r"received 2 items and 0 queries"):
        benchmark.build(reviews_table(), min_query_words=9)
    assert np.asarray(benchmark.review_text("", "body")) == "body"


SHARED = (
    Path(__file__).resolve().parents[4]
    / "shared/data/amazon-musical-instruments-5core-2014/reviews.csv.gz"
)


@pytest.mark.slow
@pytest.mark.skipif(not SHARED.is_file(), reason="the shared Amazon review file is not here")
def test_the_musical_instruments_build():
    sset = benchmark.build(amazon_reviews.read_reviews(SHARED))
    assert sset.summary() == {
        "items": 719, "text_reviews": 2_587, "queries": 5_742,
        "cutoff_utc": "2012-08-02T04:48:00",
    }  # fmt: skip
    assert set(sset.query_records).isdisjoint(sset.review_records)
