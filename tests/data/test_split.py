"""Tests of the temporal split and its cold-start report."""

import numpy as np
import pytest

from tests.data.helpers_pipeline import DAY, interactions, shop
from tfrec import config as config_lib
from tfrec import errors
from tfrec.data import split as split_lib


def _ticks(timestamps):
    return interactions([(f"u{t % 3}", f"i{t % 4}", int(t), "view") for t in timestamps])


def test_fractions_cut_the_time_range():
    # Range [0, 100]: 0.5 -> 50, 0.8 -> 80.
    parts = split_lib.temporal_split(_ticks(range(0, 101, 10)), config_lib.SplitConfig(0.5, 0.8))
    assert (parts.validation_start, parts.test_start) == (50, 80)
    assert parts.train["timestamp"].tolist() == [0, 10, 20, 30, 40]
    assert parts.validation["timestamp"].tolist() == [50, 60, 70]
    assert parts.test["timestamp"].tolist() == [80, 90, 100]


def test_fraction_rounds_up_to_the_next_second():
    # Range [0, 99]: 0.25 -> 24.75 -> 25, so ts 25 is validation and ts 24 is train.
    parts = split_lib.temporal_split(_ticks(range(100)), config_lib.SplitConfig(0.25, 0.5))
    assert (parts.validation_start, parts.test_start) == (25, 50)
    assert parts.train["timestamp"].max() == 24
    assert parts.validation["timestamp"].min() == 25


def test_iso_dates_are_utc_and_timezones_convert():
    log = _ticks(np.arange(10) * DAY)
    parts = split_lib.temporal_split(
        log, config_lib.SplitConfig("1970-01-03", "1970-01-08T01:00:00+01:00")
    )
    assert (parts.validation_start, parts.test_start) == (2 * DAY, 7 * DAY)
    assert len(parts.train) == 2 and len(parts.validation) == 5 and len(parts.test) == 3


def test_parts_have_fresh_index_and_keep_order():
    parts = split_lib.temporal_split(shop(), config_lib.SplitConfig(0.6, 0.8))
    assert list(parts.test.index) == [0, 1, 2]
    assert parts.test["item_id"].tolist() == ["d", "e", "a"]


def test_report_counts_cold_start():
    # Range 0..9 days: validation from 5.4 d (u1 c, u4 d), test from 7.2 d (u1 d, u1 e, u2 a).
    report = split_lib.temporal_split(shop(), config_lib.SplitConfig(0.6, 0.8)).report()
    assert report["train"] == {"interactions": 6, "users": 3, "items": 3}
    assert report["validation"] == {
        "interactions": 2,
        "users": 2,
        "items": 2,
        "cold_users": 1,  # u4
        "cold_items": 1,  # d
        "cold_user_interactions": 1,
        "cold_item_interactions": 1,
    }
    assert report["test"]["cold_users"] == 0
    assert report["test"]["cold_items"] == 2  # d, e
    assert report["test"]["cold_item_interactions"] == 2
    assert report["test_start_utc"] == "1970-01-08T04:48:00+00:00"


@pytest.mark.parametrize(
    "validation_start, test_start, message",
    [
        (0.8, 0.5, r"`split.test_start` must come after `split.validation_start`"),
        (0.5, 0.5, r"`split.test_start` must come after"),
        (1.5, 0.9, r"`split.validation_start` as a fraction must lie in \(0, 1\), received 1.5"),
        (0.0, 0.9, r"`split.validation_start` as a fraction must lie in \(0, 1\)"),
        ("soon", 0.9, r"`split.validation_start` must be an ISO date .* received 'soon'"),
        ("1969-01-01", 0.9, r"`split.validation_start` must fall inside the data's time range"),
        (0.5, "2000-01-01", r"`split.test_start` must fall inside the data's time range"),
        (True, 0.9, r"`split.validation_start` must be an ISO date or a fraction"),
    ],
)
def test_bad_cutoffs_raise_config_error(validation_start, test_start, message):
    with pytest.raises(errors.ConfigError, match=message):
        split_lib.temporal_split(
            _ticks(range(0, 101, 10)), config_lib.SplitConfig(validation_start, test_start)
        )


def test_empty_part_raises_data_error():
    # Nothing between 50 and 90.
    with pytest.raises(errors.DataError, match=r"the validation part .* is empty"):
        split_lib.temporal_split(_ticks([0, 10, 20, 95, 100]), config_lib.SplitConfig(0.5, 0.9))


def test_empty_log_raises_data_error():
    with pytest.raises(errors.DataError, match=r"`interactions` must not be empty"):
        split_lib.temporal_split(_ticks([]), config_lib.SplitConfig())
