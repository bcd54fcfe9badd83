"""Tests of explanations: hand-computed weights and citing only events of the request."""

import numpy as np
import pytest

import tfrec  # noqa: F401
from tfrec.ranking import explain

IDS = ["a", "b", "c", "d"]
VECTORS = np.array([[1, 0], [0.5, 0], [0, 1], [-1, 0]], np.float32)


def test_weights_by_hand():
    explainer = explain.Explainer(
        IDS, VECTORS, top=2, recency_decay=0.5, event_type_weights={"purchase": 4.0}
    )
    events = [("b", "view"), ("c", "view"), ("a", "purchase"), ("d", "view"), ("zz", "cart")]
    # For "a": b 0.5 * 1 = 0.5; c 0; a 1 * 0.25 * 4 = 1; d negative; zz unknown -> 0.
    reasons = explainer.explain("a", events)
    assert reasons == [explain.Reason("a", "purchase", 2, 1.0), explain.Reason("b", "view", 0, 0.5)]
    assert explainer.explain("zz", events) == []  # unknown recommended item: nothing to cite
    assert explainer.explain("a", []) == []


@pytest.mark.parametrize("seed", range(10))
def test_reasons_cite_only_given_events(seed):
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(20, 4)).astype(np.float32)
    ids = [f"i{j}" for j in range(20)]
    explainer = explain.Explainer(ids, vectors, top=3)
    events = [(f"i{j}", ["view", "cart"][j % 2]) for j in rng.integers(0, 25, 6)]
    for reasons in explainer.explain_many(ids + ["new"], events):
        assert len(reasons) <= 3
        assert [r.weight for r in reasons] == sorted((r.weight for r in reasons), reverse=True)
        for r in reasons:
            assert events[r.position] == (r.item_id, r.event_type) and r.weight > 0


def test_validation_messages():
    with pytest.raises(ValueError, match=r"`item_vectors` must be \[len\(item_ids\), dim\]"):
        explain.Explainer(IDS, VECTORS[:2])
    with pytest.raises(ValueError, match=r"`recency_decay` must be in \(0, 1\], received 0"):
        explain.Explainer(IDS, VECTORS, recency_decay=0)
