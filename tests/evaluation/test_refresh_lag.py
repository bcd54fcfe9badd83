"""Index refresh with a lag: which items each query can be shown."""

from __future__ import annotations

import numpy as np
import pytest

from tfrec.evaluation import refresh_lag

LAG = 3600


def test_an_item_is_a_candidate_once_the_lag_has_passed_since_its_first_event():
    s = 1_317_820_800  # 2011-10-05 13:20 UTC: item 1's first event
    # Items: 0 in the model's catalog; 1 first seen at s; 2 never seen (no event).
    known = np.array([True, False, False])
    first_seen = np.array([0.0, s, np.nan])
    stamps = np.array([s, s + LAG - 1, s + LAG, s + LAG + 1])
    mask = refresh_lag.candidates(known, first_seen, stamps, LAG)
    expected = np.array(
        [
            [True, False, False],  # the first event itself: nothing knew the item before it
            [True, False, False],  # one second short of the lag
            [True, True, False],  # the refresh `LAG` behind has added it
            [True, True, False],
        ]
    )
    np.testing.assert_array_equal(mask(0, 4), expected)
    np.testing.assert_array_equal(mask(2, 4), expected[2:])


def test_without_a_lag_an_item_still_misses_its_own_first_event():
    first_seen = np.array([100.0])
    mask = refresh_lag.candidates(np.array([False]), first_seen, np.array([100, 101]), 0)
    np.testing.assert_array_equal(mask(0, 2), [[False], [True]])


def test_reachable_pairs_broadcast_elementwise():
    got = refresh_lag.reachable(np.array([0.0, 50.0, np.nan]), np.array([10, 10, 10]), 5)
    assert got.tolist() == [True, False, False]


def test_a_model_served_as_trained_keeps_its_catalog_for_every_query():
    known = np.array([True, False, True])
    np.testing.assert_array_equal(refresh_lag.fixed(known)(4, 6), [[True, False, True]] * 2)


def test_restrict_scores_non_candidates_lowest_per_query():
    scores = np.array([[3.0, 2.0, 1.0], [3.0, 2.0, 1.0]])
    mask = np.array([[True, False, True], [False, True, True]])
    out = refresh_lag.restrict(lambda s, e: scores[s:e], lambda s, e: mask[s:e])(0, 2)
    lowest = refresh_lag.LOWEST
    np.testing.assert_array_equal(out, [[3.0, lowest, 1.0], [lowest, 2.0, 1.0]])


def test_mismatched_item_arrays_and_a_negative_lag_are_refused():
    with pytest.raises(ValueError, match="`known` and `first_seen` must both be"):
        refresh_lag.candidates(np.ones(3, bool), np.zeros(2), np.zeros(1, np.int64), LAG)
    with pytest.raises(ValueError, match="`lag_seconds` must be an int >= 0, received -1"):
        refresh_lag.candidates(np.ones(2, bool), np.zeros(2), np.zeros(1, np.int64), -1)
