"""The request schema: its inputs per signature, derived specs and validation messages."""

from __future__ import annotations

import datetime

import numpy as np
import pytest
import tensorflow as tf

from tfrec import features, request_schema

RECOMMEND, RANK = request_schema.RECOMMEND, request_schema.RANK


def _valid(rows: int = 2) -> dict:
    return {
        "user_id": np.array(["u"] * rows, object),
        "history_item_ids": np.full([rows, 3], "i", object),
        "history_event_types": np.full([rows, 3], "view", object),
        "hour_of_day": np.zeros([rows], np.int32),
        "day_of_week": np.zeros([rows], np.int32),
        "k": np.ones([rows], np.int32),
        "exclude_recent": np.zeros([rows], bool),
    }


def test_each_signature_takes_the_context_then_its_own_inputs():
    context = [features.USER_ID, features.HISTORY_ITEM_IDS, features.HISTORY_EVENT_TYPES]
    context += [features.HOUR_OF_DAY, features.DAY_OF_WEEK]
    assert list(request_schema.names_of(RANK)) == context + ["item_ids"]
    assert list(request_schema.names_of(RECOMMEND)) == context + ["k", "exclude_recent"]
    assert request_schema.names_of("retrieve", with_text=True)[-1] == "query_text"
    assert request_schema.names_of(RECOMMEND, True, excluding=True)[-2:] == (
        "exclude_item_ids",
        "query_text",
    )
    with pytest.raises(ValueError, match=r"`excluding` is a variant of `recommend` only"):
        request_schema.inputs_of(RANK, excluding=True)
    with pytest.raises(ValueError, match=r"`signature` must be one of"):
        request_schema.inputs_of("serving_default")


def test_derived_specs_dtypes_and_empty_batch():
    specs = request_schema.tensor_specs(RECOMMEND, with_text=True)
    assert [s.name for s in specs] == list(request_schema.names_of(RECOMMEND, True))
    by_name = {s.name: s for s in specs}
    assert by_name["history_item_ids"] == tf.TensorSpec([None, None], tf.string, "history_item_ids")
    assert by_name["k"] == tf.TensorSpec([None], tf.int32, "k")
    assert by_name["exclude_recent"].dtype == tf.bool
    assert request_schema.STRING_INPUTS == {
        "user_id",
        "history_item_ids",
        "history_event_types",
        "item_ids",
        "query_text",
        "exclude_item_ids",
    }
    assert request_schema.K.numpy_dtype == np.int32
    empty = request_schema.empty_batch(RANK)
    assert {k: v.shape for k, v in empty.items()}["item_ids"] == (0, 0)
    request_schema.check(empty, RANK)


def test_column_pads_lists_with_the_default():
    out = request_schema.HISTORY_ITEM_IDS.column([["a", "b"], [], ["c"]])
    assert out.dtype == object and out.tolist() == [["a", "b"], ["", ""], ["c", ""]]
    assert request_schema.K.column([3, 4]).dtype == np.int32


@pytest.mark.parametrize(
    "change,pattern",
    [
        (
            lambda r: r.pop("k"),
            r"^`inputs`: missing input `k` of signature `recommend`; expected \[.*\], received "
            r"\[.*\]; `k` \[batch\] int32: items to return for the row, at least 1$",
        ),
        (
            lambda r: r.update(query_text=np.array(["x", "y"], object)),
            r"^`inputs`: unknown input `query_text` for signature `recommend`; .*; "
            r"`query_text` \[batch\] string: .*`<model>_text` variant only$",
        ),
        (
            lambda r: r.update(extra=np.zeros([2])),
            r"^`inputs`: unknown input `extra` for signature `recommend`; expected \[.*\], "
            r"received \[.*'extra'.*\]$",
        ),
        (
            lambda r: r.update(hour_of_day=np.zeros([2], np.int64)),
            r"^`inputs.hour_of_day`: expected dtype int32, received int64; `hour_of_day`",
        ),
        (
            lambda r: r.update(user_id=np.array([1, 2])),
            r"^`inputs.user_id`: expected dtype string, received int64",
        ),
        (
            lambda r: r.update(history_item_ids=np.array(["a", "b"], object)),
            r"^`inputs.history_item_ids`: expected shape \[batch, n\], received \[2\]",
        ),
        (
            lambda r: r.update(k=np.ones([3], np.int32)),
            r"^`inputs.k`: expected one row per `user_id` \(2\), received 3$",
        ),
    ],
    ids=["missing", "other-variant", "unknown", "dtype", "string", "rank", "rows"],
)
def test_check_names_the_input_and_what_was_expected(change, pattern):
    inputs = _valid()
    request_schema.check(inputs)
    change(inputs)
    with pytest.raises(request_schema.RequestError, match=pattern):
        request_schema.check(inputs)


@pytest.mark.parametrize("seconds", [0, 3599.5, 86400 * 4 + 3600 * 23, -0.5, -86400 * 3 - 1])
def test_time_features_are_utc_with_monday_zero(seconds):
    hour, day = request_schema.time_features([seconds])
    at = datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
    assert (hour.dtype, day.dtype) == (np.int32, np.int32)
    assert (int(hour[0]), int(day[0])) == (at.hour, at.weekday())
