"""Tests for the Amazon review loader: rating events, and item text from earlier reviews only."""

from pathlib import Path

import pytest

import tfrec  # noqa: F401
from tfrec import config as config_lib
from tfrec import errors
from tfrec.data import amazon_reviews, cleaning, loaders

HEADER = (
    "reviewerID,asin,reviewerName,overall,summary,reviewText,helpful_yes,helpful_total,"
    "unixReviewTime,reviewTime"
)
DAY = 86400
T0 = 1_300_000_000
ROWS = [
    f'U1,A,"Ann",5.0,great strings,"Bright tone, lasts long",3,4,{T0},"x"',
    f'U2,A,"Bob",4.0,good value,"Fine for the price",9,9,{T0 + DAY},"x"',
    f'U1,B,"Ann",3.0,ok cable,"Works",0,0,{T0 + 2 * DAY},"x"',
    # After the validation start below: must not become item text.
    f'U3,A,"Cy",1.0,zebraword,"zebraword zebraword",50,50,{T0 + 9 * DAY},"x"',
    f'U3,C,"Cy",2.0,late item,"Only reviewed late",0,0,{T0 + 10 * DAY},"x"',
]
SPLIT = config_lib.SplitConfig(validation_start=0.5, test_start=0.8)


def _file(write, rows=ROWS) -> Path:
    return write("reviews.csv.gz", [HEADER, *rows])


def test_ratings_and_text_from_the_training_window_only(write):
    ds = amazon_reviews.load(_file(write), split_config=SPLIT)
    inter = ds.interactions
    assert inter["event_type"].unique().tolist() == ["rating"]
    assert inter["value"].tolist() == [5.0, 4.0, 3.0, 1.0, 2.0]
    assert inter["timestamp"].is_monotonic_increasing
    items = ds.items.set_index("item_id")
    # The most helpful review leads; the late review's words appear nowhere.
    assert items.loc["A", "title"] == "good value · great strings"
    assert items.loc["A", "description"] == "Fine for the price"
    assert "zebraword" not in " ".join(ds.items["title"] + ds.items["description"])
    assert items.loc["C", "title"] == "" and items.loc["C", "description"] == ""
    assert sorted(ds.users["user_id"]) == ["U1", "U2", "U3"]
    assert "before" in ds.report.treatments["text"]


def test_without_a_split_every_review_makes_text(write):
    ds = amazon_reviews.load(_file(write))
    assert "zebraword" in ds.items.set_index("item_id").loc["A", "title"]


def test_bad_rating_names_row_and_field(write):
    rows = [*ROWS[:2], f'U1,B,"Ann",five,ok,"Works",0,0,{T0},"x"']
    with pytest.raises(errors.DataError, match=r"row 4.*overall|overall.*row 4"):
        amazon_reviews.load(_file(write, rows), split_config=SPLIT)


def test_missing_column_is_named(write):
    path = write("reviews.csv", ["reviewerID,asin,overall", "U1,A,5"])
    with pytest.raises(errors.DataError, match="unixReviewTime"):
        amazon_reviews.load(path)


def test_strict_refuses_a_duplicate_row(write):
    rows = [*ROWS, ROWS[0]]
    with pytest.raises(errors.DataError, match="copy of row 2"):
        amazon_reviews.load(_file(write, rows), cleaning.Rules(strict=True), SPLIT)


SHARED = (
    Path(__file__).resolve().parents[3]
    / "shared/data/amazon-musical-instruments-5core-2014/reviews.csv.gz"
)


@pytest.mark.skipif(not SHARED.is_file(), reason="the shared Amazon review file is not here")
def test_shared_file_through_the_config():
    path = Path(__file__).resolve().parents[2] / "configs" / "amazon_instruments.yaml"
    config = config_lib.load(str(path), [f"data.path={SHARED}"])
    ds = loaders.load(config.data)
    assert len(ds.interactions) == 10_261  # the published 5-core count
    assert ds.interactions["user_id"].nunique() == 1_429
    assert ds.items["item_id"].nunique() == 900
    assert (ds.items["title"] != "").sum() > 700  # most items were reviewed before 2014


def test_read_reviews_keeps_every_review_apart(write):
    reviews = amazon_reviews.read_reviews(_file(write))
    assert reviews["record"].tolist() == [0, 1, 2, 3, 4]
    assert reviews["item_id"].tolist() == ["A", "A", "B", "A", "C"]
    assert reviews.loc[0, "summary"] == "great strings"
    assert reviews.loc[0, "text"] == "Bright tone, lasts long"
    assert reviews["timestamp"].tolist()[-1] == T0 + 10 * DAY


def test_read_reviews_names_row_and_field_of_an_empty_item(write):
    rows = [*ROWS[:2], f'U1,,"Ann",3.0,ok,"Works",0,0,{T0},"x"']
    with pytest.raises(errors.DataError, match=r"row 4, field `asin`: expected a value"):
        amazon_reviews.read_reviews(_file(write, rows))
    with pytest.raises(errors.DataError, match=r"expected an existing file"):
        amazon_reviews.read_reviews(write("x.csv", [HEADER]).parent / "missing.csv")
