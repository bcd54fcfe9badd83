"""The Python Recommender over a hand-made tiny index: answers, explanations, rules, errors."""

import numpy as np
import pytest
import tensorflow as tf

import tfrec  # noqa: F401
from tests.ranking import conftest
from tfrec import features
from tfrec.exporting import index as index_lib
from tfrec.exporting import signatures
from tfrec.ranking import explain, recommender

CATEGORIES = ["shoes", "shoes", "hats", "shoes"]  # of conftest.ITEMS a, b, c, d
QUERY_LENGTH = 4


def _query_model(vector=(1.0, 0.5)) -> tf.keras.Model:
    """A query tower that ignores the request: every query is `vector`.

    Retrieval scores against conftest.VECTORS: a 1, b 1, c 0.5, d -1.
    """
    shapes = {
        features.USER_ID: ([], tf.string),
        features.HISTORY_ITEM_IDS: ([conftest.MAX_HISTORY], tf.string),
        features.HISTORY_EVENT_TYPES: ([conftest.MAX_HISTORY], tf.string),
        features.HOUR_OF_DAY: ([], tf.int32),
        features.DAY_OF_WEEK: ([], tf.int32),
        features.QUERY_TOKEN_IDS: ([QUERY_LENGTH], tf.int32),
    }
    inputs = {n: tf.keras.Input(s, dtype=d, name=n) for n, (s, d) in shapes.items()}
    hour = tf.keras.layers.Lambda(lambda h: tf.cast(h, tf.float32)[:, None])(
        inputs[features.HOUR_OF_DAY]
    )
    out = tf.keras.layers.Lambda(lambda h: h * 0.0 + tf.constant([vector]))(hour)
    return tf.keras.Model(inputs, out)


@pytest.fixture(scope="module")
def parts():
    index = index_lib.ItemIndex(
        conftest.ITEMS, conftest.VECTORS, ["A", "B", "C", "D"], CATEGORIES, np.zeros(4)
    )
    return _query_model(), index, conftest.make_network()


def _recommender(parts, **kwargs) -> recommender.Recommender:
    query_model, index, ranker = parts
    module = signatures.ServingModule(
        query_model, index, conftest.MAX_HISTORY, QUERY_LENGTH, ranker=ranker, **kwargs
    )
    return recommender.Recommender(module)


EVENTS = [("b", "purchase"), ("a", "view"), ("zz", "cart"), ("c", "view"), ("a", "cart")]


def test_answer_format_and_explanations_by_hand(parts):
    rec = _recommender(parts)
    out = rec.recommend("u1", EVENTS, k=3, now=0)
    # b was purchased: a, c, d remain.
    assert sorted(r["item_id"] for r in out) == ["a", "c", "d"]
    assert list(out[0]) == ["item_id", "score", "ranker_score", "retrieval_score", "explanation"]
    assert [r["score"] for r in out] == sorted((r["score"] for r in out), reverse=True)
    by_id = {r["item_id"]: r for r in out}
    assert [by_id[i]["retrieval_score"] for i in "acd"] == [1.0, 0.5, -1.0]
    # Weights dot(item, event item) * 0.9 ** position. For a: b (0) 1, a (1) 0.9,
    # a (4) 0.9 ** 4; zz unknown, c orthogonal. For c: c (3) 0.9 ** 3. d opposes a and b.
    assert by_id["a"]["explanation"] == [
        {"item_id": "b", "event_type": "purchase", "position": 0, "weight": 1.0},
        {"item_id": "a", "event_type": "view", "position": 1, "weight": pytest.approx(0.9)},
        {"item_id": "a", "event_type": "cart", "position": 4, "weight": pytest.approx(0.6561)},
    ]
    assert by_id["c"]["explanation"] == [
        {"item_id": "c", "event_type": "view", "position": 3, "weight": pytest.approx(0.729)}
    ]
    assert by_id["d"]["explanation"] == []


@pytest.mark.parametrize(
    "decay, type_weights", [(0.9, None), (0.5, {"view": 2.0}), (1.0, {"cart": 3.0, "view": 0.0})]
)
def test_explanations_equal_the_explainer(parts, decay, type_weights):
    rec = _recommender(
        parts, exclude_event_types=(), recency_decay=decay, event_type_weights=type_weights
    )
    explainer = explain.Explainer(
        conftest.ITEMS, conftest.VECTORS, recency_decay=decay, event_type_weights=type_weights
    )
    out = rec.recommend("u2", EVENTS, k=4)
    expected = explainer.explain_many([r["item_id"] for r in out], EVENTS)
    assert len(out) == 4
    for got, reasons in zip(out, expected, strict=True):
        assert [e["position"] for e in got["explanation"]] == [r.position for r in reasons]
        np.testing.assert_allclose(
            [e["weight"] for e in got["explanation"]], [r.weight for r in reasons], rtol=1e-6
        )


def test_unavailable_items_are_dropped_before_the_category_cap(parts):
    rec = _recommender(parts, max_per_category=1)
    first = [r["item_id"] for r in rec.recommend("u1", [], k=4)]
    shoes = [i for i in first if CATEGORIES[conftest.ITEMS.index(i)] == "shoes"]
    assert sorted(first) == sorted(shoes + ["c"]) and len(shoes) == 1  # one shoe, one hat
    again = [r["item_id"] for r in rec.recommend("u1", [], k=4, exclude=[shoes[0], "zz"])]
    # The unavailable shoe takes no slot of the cap: another shoe is shown instead.
    assert shoes[0] not in again and len(again) == 2 and "c" in again
    assert again == [r["item_id"] for r in rec.recommend("u1", [], k=4, exclude=(shoes[0],))]


def test_request_validation(parts):
    rec = _recommender(parts)
    with pytest.raises(ValueError, match="`k` must be a positive int, received 0"):
        rec.recommend("u1", [], k=0)
    with pytest.raises(
        ValueError, match=r"`recent_events\[0\]` must be an \(item_id, event_type\)"
    ):
        rec.recommend("u1", ["a"], k=1)
    with pytest.raises(ValueError, match="`user_id` must be a str, received 3"):
        rec.recommend(3, [], k=1)
    with pytest.raises(ValueError, match="`exclude` must be a list of item ids"):
        rec.recommend("u1", [], k=1, exclude="a")
    with pytest.raises(ValueError, match="`now` must be unix seconds, a datetime or None"):
        rec.recommend("u1", [], k=1, now="noon")
    with pytest.raises(ValueError, match="`query_text` needs a Recommender built with a"):
        rec.recommend("u1", [], k=1, query_text="red shoes")
    query_model, index, _ = parts
    retrieval_only = signatures.ServingModule(query_model, index, conftest.MAX_HISTORY, 4)
    with pytest.raises(ValueError, match="`module` must be a ServingModule with a ranker"):
        recommender.Recommender(retrieval_only)
    with pytest.raises(ValueError, match="`text_module` must be a ServingModule with a"):
        recommender.Recommender(rec.module, rec.module)
