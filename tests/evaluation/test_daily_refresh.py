"""Daily index refresh: which items each query can be shown."""

from __future__ import annotations

import numpy as np
import pytest

from tfrec.evaluation import daily_refresh

DAY = daily_refresh.DAY_SECONDS


def test_day_start_is_midnight_utc():
    # 2011-10-05 00:00:00, 13:20:00 and 23:59:59 UTC, then 2011-10-06 00:00:00.
    stamps = np.array([1317772800, 1317820800, 1317859199, 1317859200])
    assert daily_refresh.day_start(stamps).tolist() == [1317772800] * 3 + [1317859200]


def test_an_item_joins_the_candidates_the_day_after_its_first_event():
    # Items: 0 in the model's catalog; 1 first seen on day 2 at noon; 2 never seen (no event);
    # 3 first seen at the very start of day 1.
    known = np.array([True, False, False, False])
    first_seen = np.array([0.0, 2 * DAY + DAY / 2, np.nan, 1 * DAY])
    # Queries: day 1 at noon, day 2 after item 1's event, day 3 at its first second.
    stamps = np.array([DAY + DAY // 2, 2 * DAY + 60_000, 3 * DAY])
    mask = daily_refresh.candidates(known, first_seen, stamps)
    expected = np.array(
        [
            [True, False, False, False],  # item 3 was seen today, not before today
            [True, False, False, True],  # item 1 is listed today: not in today's index
            [True, True, False, True],  # refreshed at midnight: item 1 is in
        ]
    )
    np.testing.assert_array_equal(mask(0, 3), expected)
    np.testing.assert_array_equal(mask(1, 3), expected[1:])


def test_a_model_served_as_trained_keeps_its_catalog_for_every_query():
    known = np.array([True, False, True])
    np.testing.assert_array_equal(daily_refresh.fixed(known)(4, 6), [[True, False, True]] * 2)


def test_restrict_scores_non_candidates_lowest_per_query():
    scores = np.array([[3.0, 2.0, 1.0], [3.0, 2.0, 1.0]])
    mask = np.array([[True, False, True], [False, True, True]])
    out = daily_refresh.restrict(lambda s, e: scores[s:e], lambda s, e: mask[s:e])(0, 2)
    lowest = daily_refresh.LOWEST
    np.testing.assert_array_equal(out, [[3.0, lowest, 1.0], [lowest, 2.0, 1.0]])


def test_mismatched_item_arrays_are_refused():
    with pytest.raises(ValueError, match="`known` and `first_seen` must both be"):
        daily_refresh.candidates(np.ones(3, bool), np.zeros(2), np.zeros(1, np.int64))
