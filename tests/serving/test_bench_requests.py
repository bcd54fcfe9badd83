"""The serving bench's requests: synthetic moments, shaped as each signature declares."""

import numpy as np
import pytest

from tfrec import errors, features
from tfrec.ranking import requests as requests_lib
from tfrec.serving import bench_requests

SPEC = features.FeatureSpec(
    max_history=3,
    text_length=4,
    query_text_length=2,
    event_types=("", "view", "cart"),
    users=["u1", "u2"],
    items=[],
    categories=[],
    wordpiece=["[PAD]"],
)


def _info(*dims):
    return {"dtype": "DT_STRING", "tensor_shape": {"dim": [{"size": str(d)} for d in dims]}}


def test_request_rows_are_built_by_the_request_builder():
    ids = np.array(["syn-1", "syn-2", "syn-3"], object)
    rows = bench_requests.request_rows(SPEC, ids, count=50, k=7, seed=0)
    assert len(rows) == 50
    lengths = set()
    for row in rows:
        assert sorted(row) == sorted(requests_lib.build("u", [], now=0, query_text=""))
        assert row["user_id"][0] in SPEC.users and row["k"].tolist() == [7]
        assert row["query_text"].tolist() == [""] and row["exclude_recent"].tolist() == [False]
        history = row["history_item_ids"][0].tolist()
        assert set(history) <= set(ids) and 1 <= len(history) <= SPEC.max_history
        assert set(row["history_event_types"][0].tolist()) <= {"view", "cart"}  # no ""
        lengths.add(len(history))
    assert lengths == {1, 2, 3}
    # Moments spread over the week, so the time inputs vary.
    assert len({int(r["hour_of_day"][0]) for r in rows}) > 5
    assert len({int(r["day_of_week"][0]) for r in rows}) > 3
    again = bench_requests.request_rows(SPEC, ids, count=50, k=7, seed=0)
    assert all(np.array_equal(a[n], b[n]) for a, b in zip(rows, again, strict=True) for n in a)


def test_inputs_follow_the_declared_shapes():
    row = requests_lib.build(
        "u1", [("a", "view"), ("b", "cart"), ("c", "view")], now=0, k=10, query_text=""
    )
    per_row = {
        "inputs": {
            "user_id": _info(-1),
            "history_item_ids": _info(-1, -1),
            "k": _info(-1),
            "exclude_recent": _info(-1),
        }
    }
    assert bench_requests.inputs_for(per_row, row) == {
        "user_id": ["u1"],
        "history_item_ids": [["a", "b", "c"]],
        "k": [10],
        "exclude_recent": [False],
    }
    scalars = {"inputs": {"k": _info(), "history_event_types": _info(-1, 2)}}
    assert bench_requests.inputs_for(scalars, row) == {
        "k": 10,
        "history_event_types": [["view", "cart"]],
    }
    tower = {"inputs": {"history_item_ids": _info(-1, 5), "query_token_ids": _info(-1, 4)}}
    assert bench_requests.inputs_for(tower, row) == {
        "history_item_ids": [["a", "b", "c", "", ""]],
        "query_token_ids": [[0, 0, 0, 0]],
    }
    with pytest.raises(errors.ConfigError, match="input `image` that the serving bench cannot"):
        bench_requests.inputs_for({"inputs": {"image": _info(-1)}}, row, "retrieve")
    assert bench_requests.batchable(
        {"inputs": per_row["inputs"], "outputs": {"ids": _info(-1, -1)}}
    )
    assert not bench_requests.batchable({"inputs": scalars["inputs"], "outputs": {}})


def test_batches_stack_consecutive_moments_of_the_pool():
    ids = np.array(["syn-1", "syn-2", "syn-3"], object)
    pool = bench_requests.request_rows(SPEC, ids, count=5, k=7, seed=1)
    assert bench_requests.batches(pool, 1) == pool
    batches = bench_requests.batches(pool, 3)
    assert len(batches) == 5
    # Request 3 holds moments 3, 4 and 0 (wrapping), histories padded with "" to the widest.
    users = [r["user_id"][0] for r in (pool[3], pool[4], pool[0])]
    assert batches[3]["user_id"].tolist() == users
    assert batches[3]["k"].tolist() == [7, 7, 7]
    width = max(len(r["history_item_ids"][0]) for r in (pool[3], pool[4], pool[0]))
    assert batches[3]["history_item_ids"].shape == (3, width)
    assert batches[3]["history_item_ids"][1].tolist()[: len(pool[4]["history_item_ids"][0])] == (
        pool[4]["history_item_ids"][0].tolist()
    )
    # step = rows: each moment once (the last request wraps).
    once = bench_requests.batches(pool, 2, step=2)
    assert [b["hour_of_day"].tolist() for b in once] == [
        [int(pool[i]["hour_of_day"][0]), int(pool[(i + 1) % 5]["hour_of_day"][0])]
        for i in (0, 2, 4)
    ]
    for bad in (0, 6):
        with pytest.raises(ValueError, match=r"`rows` must be in \[1, len\(pool\) = 5\]"):
            bench_requests.batches(pool, bad)


def test_inputs_of_a_batch_hold_every_row():
    rows = [
        requests_lib.build("u1", [("a", "view")], now=0, k=10, query_text=""),
        requests_lib.build("u2", [("b", "cart"), ("c", "view")], now=3600, k=10, query_text=""),
    ]
    batch = requests_lib.stack(rows)
    per_row = {"inputs": {"user_id": _info(-1), "history_item_ids": _info(-1, -1), "k": _info(-1)}}
    assert bench_requests.inputs_for(per_row, batch) == {
        "user_id": ["u1", "u2"],
        "history_item_ids": [["a", ""], ["b", "c"]],
        "k": [10, 10],
    }
    tower = {
        "inputs": {"k": _info(), "history_item_ids": _info(-1, 3), "query_token_ids": _info(-1, 2)}
    }
    assert bench_requests.inputs_for(tower, batch) == {
        "k": 10,
        "history_item_ids": [["a", "", ""], ["b", "c", ""]],
        "query_token_ids": [[0, 0], [0, 0]],
    }
