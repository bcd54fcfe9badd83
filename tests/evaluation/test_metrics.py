"""Hand-computed golden values for each ranking metric."""

import math

import numpy as np
import pytest

from tfrec.evaluation import metrics

INF = np.inf


def test_recall_at_k_hand_case():
    # Query 0: 3 relevant items at ranks 1, 4, 12. Top-5 holds 2 of them; min(5, 3) = 3 -> 2/3.
    # Query 1: 8 relevant, only ranks 2 and 3 known (< 5), others beyond: 2 / min(5, 8) = 0.4.
    # Query 2: 1 relevant at rank 5 -> 1 / min(5, 1) = 1.0 (1.0 is reachable).
    ranks = [[1, 4, 12], [2, 3, INF], [5, INF, INF]]
    got = metrics.recall_at_k(ranks, k=5, num_relevant=[3, 8, 1])
    np.testing.assert_allclose(got, [2 / 3, 0.4, 1.0])


def test_recall_defaults_num_relevant_to_finite_ranks():
    # Finite ranks per row: 2 and 1. Row 0: 1 hit in top-2 / min(2, 2) = 0.5. Row 1: 0 / 1.
    np.testing.assert_allclose(metrics.recall_at_k([[1, 7], [3, INF]], k=2), [0.5, 0.0])


def test_ndcg_at_k_hand_case():
    # Query 0: relevant at ranks 1 and 3, k = 3.
    #   DCG = 1/log2(2) + 1/log2(4) = 1 + 0.5 = 1.5; IDCG (2 hits) = 1 + 1/log2(3) = 1.63093.
    #   NDCG = 1.5 / 1.63093 = 0.91972.
    # Query 1: 5 relevant, one at rank 2, k = 3: DCG = 1/log2(3) = 0.63093;
    #   IDCG over min(3, 5) = 3 hits = 1 + 0.63093 + 0.5 = 2.13093 -> 0.29609.
    # Query 2: relevant at rank 4 > k -> 0.
    got = metrics.ndcg_at_k([[1, 3], [2, INF], [4, INF]], k=3, num_relevant=[2, 5, 2])
    idcg2 = 1 + 1 / math.log2(3)
    idcg3 = idcg2 + 0.5
    np.testing.assert_allclose(got, [1.5 / idcg2, (1 / math.log2(3)) / idcg3, 0.0])
    np.testing.assert_allclose(got, [0.919721, 0.296082, 0.0], atol=1e-6)


def test_ndcg_perfect_ranking_is_one():
    # Relevant at ranks 1, 2 with 2 relevant: DCG == IDCG.
    np.testing.assert_allclose(metrics.ndcg_at_k([[1, 2]], k=10), [1.0])


def test_hit_rate_hand_case():
    # Row 0 has rank 3 <= 3; row 1's best rank 4 > 3; row 2 only padding.
    np.testing.assert_array_equal(
        metrics.hit_rate_at_k([[9, 3], [4, 5], [INF, INF]], k=3), [1.0, 0.0, 0.0]
    )


def test_mrr_hand_case():
    # 1-D: best ranks 1, 4, 10 -> 1, 0.25, 0.1; mean = 0.45.
    got = metrics.mrr([1, 4, 10])
    np.testing.assert_allclose(got, [1.0, 0.25, 0.1])
    assert got.mean() == pytest.approx(0.45)
    # 2-D: row minimum is used; an all-inf row gives 0.
    np.testing.assert_allclose(metrics.mrr([[5, 2], [INF, INF]]), [0.5, 0.0])


def test_coverage_hand_case():
    # Lists {0, 1, 2} and {2, 3, 4} cover 5 distinct items of 10 -> 0.5.
    assert metrics.coverage(np.array([[0, 1, 2], [2, 3, 4]]), num_items=10) == 0.5
    # Pooled over blocks: {0, 1} and {1, 9} -> 3 of 10.
    assert metrics.coverage([np.array([[0, 1]]), np.array([[1, 9]])], 10) == pytest.approx(0.3)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: metrics.recall_at_k([[1]], k=0), "`k` must be a positive int"),
        (lambda: metrics.recall_at_k([1, 2], k=1), r"`ranks` must be \[num_queries"),
        (lambda: metrics.ndcg_at_k([[0]], k=1), "1-based"),
        (lambda: metrics.recall_at_k([[INF]], k=1), "`num_relevant` must be >= 1"),
        (lambda: metrics.recall_at_k([[1]], k=1, num_relevant=[1, 2]), "`num_relevant` must"),
        (lambda: metrics.coverage([[0, 10]], num_items=10), r"catalog indices in \[0, 10\)"),
        (lambda: metrics.coverage([[0]], num_items=0), "`num_items` must be a positive int"),
    ],
)
def test_errors_name_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()
