"""A toy model with tfrec's request fields, its server on loopback, and peak-RSS measurement."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

# Fixtures shared with the server's own tests (pytest finds fixtures imported here).
from tests.serving.conftest import make_export, save_toy, start_server, toy_versions  # noqa: F401
from tfrec import request_schema
from tfrec.serving import servable

CATALOG = 50  # items in the toy's index: the largest `k` it accepts


class TfrecToy(tf.Module):
    """tfrec's `recommend` inputs (the request schema's), scored by hand-checkable counts.

    score[row, j] = 10 * (non-empty history items) + (non-empty event types) - j: the two
    history lists are counted separately, so only the server can refuse unequal widths.
    """

    def __init__(self):
        super().__init__()
        self.ids = tf.constant([f"i{j}" for j in range(CATALOG)])

    @tf.function(input_signature=request_schema.tensor_specs(request_schema.RECOMMEND))
    def recommend(
        self, user_id, history_item_ids, history_event_types, hour_of_day, day_of_week, k, exclude_recent
    ):  # fmt: skip
        items = tf.reduce_sum(tf.cast(history_item_ids != "", tf.float32), axis=1)
        events = tf.reduce_sum(tf.cast(history_event_types != "", tf.float32), axis=1)
        width = tf.minimum(tf.reduce_max(k), CATALOG)
        offsets = tf.cast(tf.range(width), tf.float32)
        scores = (10 * items + events)[:, None] - offsets[None, :]
        ids = tf.tile(self.ids[None, :width], [tf.shape(k)[0], 1])
        return {"item_ids": ids, "scores": scores}

    @tf.function(
        input_signature=[request_schema.QUERY_TEXT.tensor_spec(), request_schema.K.tensor_spec()]
    )
    def search(self, query_text, k):
        return {"length": tf.strings.length(query_text, unit="UTF8_CHAR")}


def save_tfrec_toy(path: Path) -> None:
    module = TfrecToy()
    signatures = {"recommend": module.recommend, "search": module.search}
    signatures["serving_default"] = module.recommend
    tf.saved_model.save(module, str(path), signatures=signatures)
    index = path / servable.INDEX_FILE
    index.parent.mkdir(parents=True)
    np.savez(index, vectors=np.zeros((CATALOG, 2), np.float32), prices=np.ones(CATALOG))


@pytest.fixture(scope="session")
def tfrec_toy(tmp_path_factory):
    """Version 1 of the toy model `tfrec` under a model base path, saved once per session."""
    base = tmp_path_factory.mktemp("adversarial") / "export"
    save_tfrec_toy(base / "tfrec" / "1")
    return base


def request(rows: int = 1, width: int = 2, k: int = 5) -> dict:
    """A columnar `recommend` request (also the Client's input form)."""
    values = {
        request_schema.USER_ID: "u1",
        request_schema.HISTORY_ITEM_IDS: ["i1"] * width,
        request_schema.HISTORY_EVENT_TYPES: ["view"] * width,
        request_schema.HOUR_OF_DAY: 14,
        request_schema.DAY_OF_WEEK: 2,
        request_schema.K: k,
        request_schema.EXCLUDE_RECENT: False,
    }
    assert list(values) == list(request_schema.inputs_of(request_schema.RECOMMEND))
    return {spec.name: [value] * rows for spec, value in values.items()}


class PeakRss:
    """Peak resident memory of this process since `reset()` (Linux `VmHWM`, reset by clear_refs).

    The servers under test run in this process, so this is the server's peak (plus the small
    clients').
    """

    def reset(self) -> int:
        try:
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            pytest.skip("cannot reset the peak RSS (/proc/self/clear_refs)")
        return self._read("VmRSS")

    def peak(self) -> int:
        return self._read("VmHWM")

    @staticmethod
    def _read(field: str) -> int:
        text = Path("/proc/self/status").read_text()
        return int(re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE).group(1)) << 10


@pytest.fixture
def peak_rss():
    if not Path("/proc/self/status").is_file():
        pytest.skip("peak RSS needs Linux /proc")
    return PeakRss()
