"""EASE, item-kNN, session-kNN, buy again and the hybrid against hand-computed references."""

import numpy as np
import pytest

from tfrec.evaluation import baselines
from tfrec.evaluation.baselines import scoring


def window_of(matrix, timestamps=None):
    """A Window holding `matrix[u, i]` interactions of user u with item i (all at time u)."""
    matrix = np.asarray(matrix)
    users, items = np.nonzero(matrix)
    counts = matrix[users, items]
    users, items = np.repeat(users, counts), np.repeat(items, counts)
    ts = users if timestamps is None else np.asarray(timestamps)
    return baselines.Window(users, items, ts, matrix.shape[0], matrix.shape[1])


def queries_of(pasts, history=None):
    """Queries of known users whose whole past is `pasts[q]` (most recent first, in training)."""
    lengths = [len(p) for p in pasts]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    items = np.concatenate([np.asarray(p, np.int64) for p in pasts]) if pasts else []
    history = np.full((len(pasts), 1), -1) if history is None else np.asarray(history)
    return baselines.Queries(
        np.arange(len(pasts)), history, np.zeros(len(pasts), np.int64), offsets, items
    )


def without_tie_break(scores, popularity):
    """Inverts `scoring.tie_break` for rows with a non-zero score (to compare raw scores)."""
    scores = np.asarray(scores, np.float64)
    pop = np.asarray(popularity, np.float64) / max(np.max(popularity), 1.0)
    # scale s = max|raw| is unknown; raw + 1e-4 s pop has max|.| within 1e-4 of s.
    s = np.abs(scores).max(axis=1, keepdims=True) / (1 + scoring.TIE_BREAK)
    return scores - scoring.TIE_BREAK * s * pop


def test_tie_break_orders_ties_by_popularity_only():
    out = scoring.tie_break([[2.0, 2.0, 1.0], [0.0, 0.0, 0.0]], popularity=[1.0, 5.0, 9.0])
    # Row 0: the tie 0/1 goes to the more popular item 1; item 2's lower score stays below.
    assert np.argsort(-out[0]).tolist() == [1, 0, 2]
    # Row 1 (no score): pure popularity.
    np.testing.assert_allclose(out[1], [1 / 9, 5 / 9, 1.0], rtol=1e-6)
    assert out.dtype == np.float32


def test_ease_matches_closed_form_on_hand_matrix():
    # X^T X = [[3,2,2],[2,3,2],[2,2,3]]; + 1 I = 2 I + 2 J, so P = 0.5 (I - J / 4):
    # diag(P) = 0.375, off-diagonal -0.125, and B = I - P / diag(P) is 1/3 off the diagonal.
    x = [[1, 1, 0], [0, 1, 1], [1, 0, 1], [1, 1, 1]]
    ease = baselines.EASE(l2=1.0).fit(window_of(x))
    np.testing.assert_allclose(ease.weights, (np.ones((3, 3)) - np.eye(3)) / 3, atol=1e-6)
    scores = ease.scorer(queries_of([[0], [0, 1]]))(0, 2)
    np.testing.assert_allclose(
        without_tie_break(scores, [3, 3, 3]), [[0, 1 / 3, 1 / 3], [1 / 3, 1 / 3, 2 / 3]], atol=1e-6
    )


def test_ease_matches_numpy_inverse_on_random_matrix():
    x = (np.random.default_rng(0).random((12, 5)) < 0.4).astype(int)
    x[0] = 1  # every item bought once at least
    ease = baselines.EASE(l2=3.0).fit(window_of(x))
    p = np.linalg.inv(x.T @ x + 3.0 * np.eye(5))
    expected = np.eye(5) - p / np.diag(p)
    np.testing.assert_allclose(ease.weights, expected, atol=1e-5)


def test_ease_refuses_catalogs_above_its_limit():
    with pytest.raises(ValueError, match=r"at most `max_items` = 2 items, received a catalog of 3"):
        baselines.EASE(max_items=2).fit(window_of([[1, 1, 1]]))
    with pytest.raises(ValueError, match="`l2` must be a float > 0, received 0"):
        baselines.EASE(l2=0)
    with pytest.raises(ValueError, match=r"`EASE.scorer` needs a fitted model"):
        baselines.EASE().scorer(queries_of([[0]]))


KNN_X = [[1, 1, 0, 0], [1, 0, 1, 0], [0, 1, 1, 1], [2, 0, 0, 1], [0, 0, 0, 1]]


def top_k_mask(similarity, k):
    keep = np.zeros_like(similarity, dtype=bool)
    for i, row in enumerate(similarity):
        keep[i, np.argsort(-row, kind="stable")[:k]] = True
    return np.where(keep, similarity, 0.0)


def test_item_knn_cosine_matches_numpy_reference():
    x = np.asarray(KNN_X, np.float64)
    unit = x / np.linalg.norm(x, axis=0)
    cosine = unit.T @ unit  # row 0: [1, .289, .289, .471], no ties among the kept
    knn = baselines.ItemKNN(neighbors=2, weighting="cosine").fit(window_of(KNN_X))
    np.testing.assert_allclose(knn.similarity.toarray(), top_k_mask(cosine, 2), atol=1e-6)
    # Query past: item 0 twice, item 2 once -> scores 2 * S[0] + S[2].
    scores = knn.raw_scorer(queries_of([[0, 2, 0]]))(0, 1)
    np.testing.assert_allclose(scores[0], 2 * top_k_mask(cosine, 2)[0] + top_k_mask(cosine, 2)[2])


def test_item_knn_bm25_matches_numpy_reference():
    x = np.asarray(KNN_X, np.float64).T  # items are the documents, users the terms
    k1, b = 1.2, 0.75
    idf = np.log(x.shape[0]) - np.log1p((x > 0).sum(axis=0))
    length = (1 - b) + b * x.sum(axis=1) / x.sum(axis=1).mean()
    w = np.where(x > 0, x * (k1 + 1) / (k1 * length[:, None] + x) * idf[None, :], 0.0)
    knn = baselines.ItemKNN(neighbors=4, weighting="bm25").fit(window_of(KNN_X))
    np.testing.assert_allclose(knn.similarity.toarray(), w @ w.T, atol=1e-6)


def test_item_knn_validates_arguments():
    with pytest.raises(ValueError, match="`neighbors` must be a positive int, received 0"):
        baselines.ItemKNN(neighbors=0)
    with pytest.raises(ValueError, match=r"`weighting` must be one of \('cosine', 'bm25'\)"):
        baselines.ItemKNN(weighting="jaccard")


def test_session_knn_on_three_sessions():
    # Sessions (user, time): S0 = {0, 1}, S1 = {1, 2, 3}, S2 = {3}.
    window = baselines.Window([0, 0, 0, 0, 0, 1], [0, 1, 1, 2, 3, 3], [1, 1, 2, 2, 2, 1], 2, 5)
    # History [1, 3, pad]: weights (3 - p) / 3 -> item 1: 1, item 3: 2/3.
    # Similarity / sqrt(|S|): S0 1/sqrt2 = .7071, S1 (5/3)/sqrt3 = .9623, S2 2/3.
    queries = baselines.Queries([0], [[1, 3, -1]], [0], [0, 0], [])
    s0, s1 = 1 / np.sqrt(2), (5 / 3) / np.sqrt(3)
    popularity = [1, 2, 1, 2, 0]
    two = baselines.SessionKNN(neighbors=2).fit(window).scorer(queries)(0, 1)
    np.testing.assert_allclose(
        without_tie_break(two, popularity)[0], [s0, s0 + s1, s1, s1, 0], atol=1e-5
    )
    # One neighbour (S1): items 1, 2, 3 tie; popularity puts 1 and 3 (2 buys) before 2.
    one = baselines.SessionKNN(neighbors=1).fit(window).scorer(queries)(0, 1)
    assert np.argsort(-one[0], kind="stable").tolist() == [1, 3, 2, 0, 4]


def test_session_knn_without_history_ranks_by_popularity():
    window = baselines.Window([0, 0, 1], [0, 2, 2], [1, 1, 1], 2, 3)
    queries = baselines.Queries([-1], [[-1, -1]], [0], [0, 0], [])
    scores = baselines.SessionKNN(5).fit(window).scorer(queries)(0, 1)
    assert np.argsort(-scores[0], kind="stable").tolist() == [2, 0, 1]


def test_buy_again_decay_orders_recent_against_frequent():
    window = window_of([[1, 1, 1, 0, 3]])  # popularity: item 4 first, then 0, 1, 2
    # Past, most recent first: item 1, then item 2 three times.
    queries = queries_of([[1, 2, 2, 2], []])
    fast = baselines.BuyAgain(decay=0.5).fit(window).scorer(queries)(0, 2)
    slow = baselines.BuyAgain(decay=1.0).fit(window).scorer(queries)(0, 2)
    # decay 0.5: item 1 = 1 > item 2 = .5 + .25 + .125; decay 1: item 2 = 3 > item 1 = 1.
    assert np.argsort(-fast[0], kind="stable").tolist()[:2] == [1, 2]
    assert np.argsort(-slow[0], kind="stable").tolist()[:2] == [2, 1]
    np.testing.assert_allclose(without_tie_break(fast, [1, 1, 1, 0, 3])[0, 1:3], [1, 0.875])
    # Items outside the past follow by popularity; an empty past is pure popularity.
    assert np.argsort(-fast[0], kind="stable").tolist()[2:] == [4, 0, 3]
    assert np.argsort(-fast[1], kind="stable").tolist() == [4, 0, 1, 2, 3]
    with pytest.raises(ValueError, match=r"`decay` must be a float in \(0, 1\], received 0"):
        baselines.BuyAgain(decay=0)


def test_hybrid_mixes_row_normalised_components():
    window = window_of(KNN_X)
    queries = queries_of([[0, 2, 0], [3]])
    again = baselines.BuyAgain(1.0).fit(window).raw_scorer(queries)(0, 2)
    similar = baselines.ItemKNN(2).fit(window).raw_scorer(queries)(0, 2)
    expected = 0.25 * again / again.max(axis=1, keepdims=True)
    expected += 0.75 * similar / similar.max(axis=1, keepdims=True)
    hybrid = baselines.Hybrid(baselines.BuyAgain(1.0), baselines.ItemKNN(2), weight=0.25)
    scores = hybrid.fit(window).scorer(queries)(0, 2)
    np.testing.assert_allclose(without_tie_break(scores, window.popularity()), expected, atol=1e-5)
    with pytest.raises(ValueError, match=r"`weight` must be a float in \[0, 1\], received 2"):
        baselines.Hybrid(baselines.BuyAgain(), baselines.ItemKNN(), weight=2)


@pytest.mark.skipif(not baselines.ALSBaseline.available(), reason="`implicit` is not installed")
def test_als_fold_in_solves_implicit_user_equation():
    import scipy.sparse
    from implicit.cpu import als as implicit_als

    window = window_of(KNN_X)
    model = baselines.ALSBaseline(factors=3, regularization=0.1, alpha=2.0, iterations=3)
    model.fit_window(window)
    past = scipy.sparse.csr_matrix(np.asarray(KNN_X, np.float32))
    y = model.item_factors.astype(np.float64)
    confidence = scipy.sparse.csr_matrix(2.0 * past.astype(np.float64))
    expected = [
        implicit_als.user_factor(y, y.T @ y, confidence, u, 0.1, 3) for u in range(past.shape[0])
    ]
    np.testing.assert_allclose(model.fold_in(past), expected, rtol=1e-4, atol=1e-5)
    # Through queries: the empty past gets popularity.
    scores = model.query_scorer(queries_of([[0, 1], []]))(0, 2)
    assert np.argsort(-scores[1], kind="stable")[0] == np.argmax(window.popularity())
