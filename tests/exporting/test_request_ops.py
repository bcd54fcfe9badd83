"""Graph ops of the serving signatures against their NumPy/Python counterparts."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import tfrec  # noqa: F401
from tfrec.exporting import request_ops as ops
from tfrec.ranking import explain, rules


@pytest.mark.parametrize("seed", range(5))
def test_category_cap_keeps_what_the_python_rules_keep(seed):
    rng = np.random.default_rng(seed)
    batch, n, cap = 3, 12, 2
    scores = rng.normal(size=(batch, n)).astype(np.float32)
    scores[:, 3] = scores[:, 4]  # a tie: input order decides, as in apply_rules
    scores[rng.random((batch, n)) < 0.2] = ops.EXCLUDED_SCORE
    categories = rng.choice(["a", "b", "c", ""], size=(batch, n))
    out = ops.cap_per_category(tf.constant(scores), tf.constant(categories), cap).numpy()
    for row in range(batch):
        ids = [f"i{j}" for j in range(n)]
        dropped = [ids[j] for j in range(n) if scores[row, j] <= ops.EXCLUDED_SCORE]
        expected = rules.apply_rules(
            ids, scores[row], categories[row], k=n, unavailable=dropped, max_per_category=cap
        )
        kept = np.flatnonzero(out[row] > ops.EXCLUDED_SCORE)
        assert sorted(kept.tolist()) == sorted(expected.tolist())
        np.testing.assert_array_equal(out[row, kept], scores[row, kept])  # order untouched


def test_explain_golden_by_hand():
    # Items a = [1, 0], b = [0.5, 0], c = [0, 1], d = [-1, 0]; recent events (most recent
    # first) b view, c view, a purchase, d view, unknown cart, and a padding "" slot.
    vectors = tf.constant([[1, 0], [0.5, 0], [0, 1], [-1, 0]], tf.float32)
    events = tf.constant([[1, 2, 0, 3, -1, -1]])
    types = tf.constant([["view", "view", "purchase", "view", "cart", ""]])
    targets = tf.constant([[0, 2, -1]])  # shown: a, c, then an empty slot
    positions, weights = ops.explain(
        targets,
        events,
        types,
        ops.row_vectors(vectors),
        top=2,
        recency_decay=0.5,
        event_type_weights={"purchase": 4.0},
    )
    # For a: b 0.5 * 1 = 0.5, c 0, a 1 * 0.25 * 4 = 1, d < 0. For c: c 1 * 0.5 = 0.5 only.
    assert positions.numpy().tolist() == [[[2, 0], [1, -1], [-1, -1]]]
    np.testing.assert_allclose(weights.numpy(), [[[1.0, 0.5], [0.5, 0.0], [0.0, 0.0]]])


@pytest.mark.parametrize("seed", range(5))
def test_explain_cites_what_the_explainer_cites(seed):
    rng = np.random.default_rng(seed)
    ids = [f"i{j}" for j in range(15)]
    vectors = rng.normal(size=(15, 4)).astype(np.float32)
    vectors[3] = vectors[5]  # equal weights: the more recent event comes first
    type_weights = {"cart": 2.0, "purchase": 0.5}
    explainer = explain.Explainer(
        ids, vectors, top=3, recency_decay=0.8, event_type_weights=type_weights
    )
    length = int(rng.integers(0, 8))
    events = [
        (f"i{j}", str(rng.choice(["view", "cart", "purchase"])))
        for j in rng.integers(0, 18, length)  # i15.. are unknown
    ]
    shown = [f"i{j}" for j in rng.integers(0, 15, 6)]
    rows = np.array([[ids.index(i) if i in ids else -1 for i, _ in events]], np.int32)
    positions, weights = ops.explain(
        tf.constant([[ids.index(i) for i in shown]]),
        tf.constant(rows.reshape(1, length)),
        tf.constant(np.array([[e for _, e in events]], object).reshape(1, length), tf.string),
        ops.row_vectors(tf.constant(vectors)),
        top=3,
        recency_decay=0.8,
        event_type_weights=type_weights,
    )
    for slot, reasons in enumerate(explainer.explain_many(shown, events)):
        cited = [p for p in positions.numpy()[0, slot] if p >= 0]
        assert cited == [r.position for r in reasons]
        np.testing.assert_allclose(
            weights.numpy()[0, slot, : len(cited)], [r.weight for r in reasons], rtol=1e-5
        )
