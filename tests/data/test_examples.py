"""Tests of leak-free retrieval examples and evaluation queries."""

import numpy as np
import pytest

from tests.data.helpers_pipeline import DAY, interactions, random_log, shop
from tfrec import errors
from tfrec.data import examples as examples_lib

END = 10**9


def _invoice_log():
    # u1: a@10, then an invoice b, c @20, then d@30; u2: a@20.
    return interactions(
        [
            ("u1", "a", 10, "view"),
            ("u1", "b", 20, "cart"),
            ("u2", "a", 20, "view"),
            ("u1", "c", 20, "purchase"),
            ("u1", "d", 30, "purchase"),
        ]
    )


def test_history_excludes_same_second_and_is_most_recent_first():
    ex = examples_lib.build_examples(_invoice_log(), 0, END, max_history=3)
    assert ex.user_id.tolist() == ["u1", "u1", "u2", "u1", "u1"]
    assert ex.item_id.tolist() == ["a", "b", "a", "c", "d"]
    assert ex.history_item_ids.tolist() == [
        ["", "", ""],
        ["a", "", ""],  # c (same second) is not history of b
        ["", "", ""],  # u1's events are not u2's history
        ["a", "", ""],
        ["c", "b", "a"],  # the invoice in log order, reversed
    ]
    assert ex.history_event_types[4].tolist() == ["purchase", "cart", "view"]
    assert ex.timestamp.dtype == np.int64 and ex.hour_of_day.dtype == np.int32
    assert ex.history_item_ids.dtype == object and ex.history_item_ids.shape == (5, 3)


def test_window_and_target_events_select_examples_but_not_history():
    ex = examples_lib.build_examples(_invoice_log(), 20, 30, 2, target_events=("purchase",))
    assert ex.item_id.tolist() == ["c"]
    assert ex.event_type.tolist() == ["purchase"]
    assert ex.history_item_ids.tolist() == [["a", ""]]  # history before start_ts still counts


def test_history_truncates_to_max_history():
    ex = examples_lib.build_examples(_invoice_log(), 30, END, 1)
    assert ex.history_item_ids.tolist() == [["c"]]


def test_time_features_are_utc_with_monday_zero():
    # 1970-01-01 (ts 0) was a Thursday; 1970-01-05 05:00 a Monday; 1969-12-31 23:00 a Wednesday.
    hour, day = examples_lib.time_features(np.array([0, 4 * DAY + 5 * 3600, -3600]))
    assert hour.tolist() == [0, 5, 23]
    assert day.tolist() == [3, 0, 2]


def _reference_history(users, times, row, max_history):
    """Pure-Python history of `row`: same user, strictly earlier, latest first (log order)."""
    earlier = [j for j in range(len(users)) if users[j] == users[row] and times[j] < times[row]]
    earlier.sort(key=lambda j: (times[j], j), reverse=True)
    return earlier[:max_history]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_leakage_on_random_logs(seed):
    log = random_log(seed)
    users, times = log["user_id"].tolist(), log["timestamp"].tolist()
    items, events = log["item_id"].tolist(), log["event_type"].tolist()
    ex = examples_lib.build_examples(log, 200, END, max_history=4)
    rows = [j for j in range(len(log)) if times[j] >= 200]
    assert len(ex) == len(rows)
    for k, row in enumerate(rows):
        assert (ex.user_id[k], ex.timestamp[k]) == (users[row], times[row])
        reference = _reference_history(users, times, row, 4)
        for j in reference:  # the property itself, stated directly
            assert times[j] < ex.timestamp[k] and users[j] == ex.user_id[k]
        padding = [""] * (4 - len(reference))
        assert ex.history_item_ids[k].tolist() == [items[j] for j in reference] + padding
        assert ex.history_event_types[k].tolist() == [events[j] for j in reference] + padding


def test_eval_queries_group_an_invoice():
    # Test window from day 8: u1 buys d and e in one invoice, u2 buys a on day 9.
    queries = examples_lib.build_eval_queries(shop(), 8 * DAY, END, 3, ("purchase",))
    assert queries.user_id.tolist() == ["u1", "u2"]
    assert queries.timestamp.tolist() == [8 * DAY, 9 * DAY]
    assert [r.tolist() for r in queries.relevant] == [["d", "e"], ["a"]]
    # u1 before day 8: a (view), a, b (cart), c; u2 before day 9: b, b.
    assert [s.tolist() for s in queries.seen] == [["a", "b", "c"], ["b"]]
    assert queries.history_item_ids.tolist() == [["c", "b", "a"], ["b", "b", ""]]
    assert queries.day_of_week.tolist() == [4, 5]


def test_eval_queries_on_random_logs_match_a_reference():
    log = random_log(3, n=200)
    queries = examples_lib.build_eval_queries(log, 300, END, 2, ("purchase",))
    targets = log[(log["timestamp"] >= 300) & (log["event_type"] == "purchase")]
    groups = targets.groupby(["user_id", "timestamp"], sort=False)
    assert len(queries) == groups.ngroups
    for k in range(len(queries)):
        user, ts = queries.user_id[k], queries.timestamp[k]
        group = groups.get_group((user, ts))
        assert queries.relevant[k].tolist() == list(dict.fromkeys(group["item_id"]))
        before = log[(log["user_id"] == user) & (log["timestamp"] < ts)]
        assert queries.seen[k].tolist() == list(dict.fromkeys(before["item_id"]))
    assert (np.diff(queries.timestamp) >= 0).all()


def test_eval_queries_empty_window():
    queries = examples_lib.build_eval_queries(shop(), END, END + 1, 3)
    assert len(queries) == 0 and queries.relevant == [] and queries.seen == []
    assert queries.history_item_ids.shape == (0, 3)


def test_seen_views_are_read_only():
    queries = examples_lib.build_eval_queries(shop(), 8 * DAY, END, 3)
    with pytest.raises(ValueError):
        queries.seen[0][0] = "x"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(max_history=0), r"`max_history` must be >= 1, received 0"),
        (dict(start_ts=5, end_ts=5), r"`end_ts` must be greater than `start_ts` \(5\), received 5"),
        (dict(target_events=("click",)), r"`target_events` must be drawn from .*'click'"),
    ],
)
def test_bad_arguments_raise(kwargs, message):
    args = dict(start_ts=0, end_ts=END, max_history=3)
    args.update(kwargs)
    for build in (examples_lib.build_examples, examples_lib.build_eval_queries):
        with pytest.raises(errors.ConfigError, match=message):
            build(shop(), **args)


def test_missing_column_raises_data_error():
    with pytest.raises(
        errors.DataError, match=r"`interactions` is missing columns \['event_type'\]"
    ):
        examples_lib.build_examples(shop().drop(columns="event_type"), 0, END, 3)
