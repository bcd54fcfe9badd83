"""`requests.build` and `stack` produce exactly the request schema's inputs."""

from __future__ import annotations

import datetime

import numpy as np
import pytest

from tfrec import request_schema
from tfrec.ranking import requests

EVENTS = [("i1", "view"), ("i2", "cart")]


@pytest.mark.parametrize("query_text", [None, "red shoes"])
def test_build_matches_the_schema(query_text):
    row = requests.build("u1", EVENTS, now=0, k=4, query_text=query_text)
    expected = request_schema.inputs_of(request_schema.RECOMMEND, query_text is not None)
    assert list(row) == [i.name for i in expected]
    for spec in expected:
        assert row[spec.name].dtype == spec.numpy_dtype, spec.name
        assert row[spec.name].ndim == spec.rank and row[spec.name].shape[0] == 1, spec.name
    request_schema.check(row, request_schema.RECOMMEND, with_text=query_text is not None)
    assert row["history_item_ids"].tolist() == [["i1", "i2"]]
    # 1970-01-01 was a Thursday: weekday 3 with Monday = 0, hour 0 UTC.
    assert (row["hour_of_day"][0], row["day_of_week"][0]) == (0, 3)


def test_build_reads_time_as_training_examples_do():
    moments = [0, 5 * 3600 + 59, 4 * 86400 + 23 * 3600, -1]
    for seconds in moments:
        row = requests.build("u", now=seconds)
        hour, day = request_schema.time_features([seconds])
        at = datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
        assert row["hour_of_day"].tolist() == hour.tolist() == [at.hour], seconds
        assert row["day_of_week"].tolist() == day.tolist() == [at.weekday()], seconds


def test_stack_pads_with_the_schema_padding_and_empty_is_the_schema_batch():
    rows = [requests.build("u1", EVENTS, now=0), requests.build("u2", [], now=0, k=1)]
    batch = requests.stack(rows)
    request_schema.check(batch)
    assert batch["history_event_types"].tolist() == [["view", "cart"], ["", ""]]
    assert batch["k"].tolist() == [10, 1]
    empty = requests.stack([])
    request_schema.check(empty)
    schema_empty = request_schema.empty_batch()
    assert {k: (v.dtype, v.shape) for k, v in empty.items()} == {
        k: (v.dtype, v.shape) for k, v in schema_empty.items()
    }


def test_stack_names_the_row_and_input_that_do_not_fit():
    good = requests.build("u1", EVENTS, now=0)
    with pytest.raises(ValueError, match=r"`rows\[1\]` must have the inputs of `rows\[0\]`"):
        requests.stack([good, requests.build("u2", now=0, query_text="x")])
    bad = dict(good, k=np.array([2], np.int64))
    with pytest.raises(
        request_schema.RequestError,
        match=r"`rows\[1\]`: `inputs.k`: expected dtype int32, received int64",
    ):
        requests.stack([good, bad])
