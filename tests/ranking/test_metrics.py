"""Tests of ranker metrics against pure-Python references and hand-computed cases."""

import itertools
import math

import numpy as np
import pytest

import tfrec  # noqa: F401
from tfrec.ranking import metrics


def _auc_reference(labels, scores):
    pairs = [
        (p, n)
        for p, n in itertools.product(range(len(labels)), repeat=2)
        if labels[p] == 1 and labels[n] == 0
    ]
    won = sum(
        1.0 if scores[p] > scores[n] else 0.5 if scores[p] == scores[n] else 0.0 for p, n in pairs
    )
    return won / len(pairs)


def _ndcg_reference(candidates, scores, relevant, k):
    ranked = [c for _, c in sorted(zip(scores, candidates, strict=True), key=lambda t: -t[0])][:k]
    dcg = sum(1 / math.log2(r + 2) for r, c in enumerate(ranked) if c in relevant)
    ideal = sum(1 / math.log2(r + 2) for r in range(min(k, len(relevant))))
    return dcg / ideal


def test_auc_hand_case_and_reference():
    assert metrics.auc([1, 0, 1, 0], [0.9, 0.1, 0.4, 0.4]) == 0.875
    rng = np.random.default_rng(0)
    for _ in range(20):
        labels = rng.integers(0, 2, 15)
        scores = rng.integers(0, 5, 15).astype(float)  # many ties
        if 0 < labels.sum() < 15:
            assert metrics.auc(labels, scores) == pytest.approx(_auc_reference(labels, scores))
    assert math.isnan(metrics.auc([1, 1], [0.1, 0.2]))


def test_log_loss_by_hand():
    # logit 0 -> p = 0.5 -> ln 2 for either label; logit ln 3 -> p = 0.75, label 1 -> -ln 0.75.
    assert metrics.log_loss([1, 0], [0.0, 0.0]) == pytest.approx(math.log(2))
    assert metrics.log_loss([1], [math.log(3)]) == pytest.approx(-math.log(0.75))
    assert np.isfinite(metrics.log_loss([0], [1000.0]))  # stable for large logits


def test_head_metrics_per_head():
    labels = np.array([[1, 4.0], [0, 2.0]])
    outputs = np.array([[2.0, 3.0], [-1.0, 2.0]])
    result = metrics.head_metrics(labels, outputs, ["purchase", "rating"])
    assert result["purchase"]["auc"] == 1.0
    assert result["rating"]["rmse"] == pytest.approx(math.sqrt(0.5))


def test_reranked_ndcg_hand_cases():
    # Ranker puts the only relevant item "a" at rank 2: 1 / log2(3).
    np.testing.assert_allclose(
        metrics.reranked_ndcg_at_k([["a", "b"]], [[0.1, 0.9]], [["a"]]), [1 / math.log2(3)]
    )
    # Two relevant, one missed by retrieval: DCG 1 (rank 1), ideal 1 + 1/log2(3).
    np.testing.assert_allclose(
        metrics.reranked_ndcg_at_k([["a", "b"]], [[0.9, 0.1]], [["a", "z"]]),
        [1 / (1 + 1 / math.log2(3))],
    )
    # Relevant item ranked 11th: outside the top 10 -> 0.
    ids = [[f"i{j}" for j in range(12)]]
    assert metrics.reranked_ndcg_at_k(ids, [np.arange(12.0)[::-1]], [["i10"]])[0] == 0.0


def test_reranked_ndcg_matches_reference_on_random_lists():
    rng = np.random.default_rng(1)
    candidates = np.stack([rng.permutation(40)[:25] for _ in range(4)])
    scores = rng.normal(size=candidates.shape)
    relevant = [rng.choice(40, rng.integers(1, 8), replace=False) for _ in range(4)]
    actual = metrics.reranked_ndcg_at_k(candidates, scores, relevant, k=10)
    expected = [
        _ndcg_reference(list(c), list(s), set(r), 10)
        for c, s, r in zip(candidates, scores, relevant, strict=True)
    ]
    np.testing.assert_allclose(actual, expected)


def test_reranked_ndcg_validation():
    with pytest.raises(ValueError, match=r"`relevant\[0\]` must hold at least one item"):
        metrics.reranked_ndcg_at_k([["a"]], [[1.0]], [[]])
    with pytest.raises(ValueError, match="`k` must be a positive int, received 0"):
        metrics.reranked_ndcg_at_k([["a"]], [[1.0]], [["a"]], k=0)
