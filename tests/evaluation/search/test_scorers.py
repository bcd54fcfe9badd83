"""Search scorers and their fusion on hand-made cases."""

import numpy as np
import pytest

from tfrec.evaluation.search import dense, fusion, lexical

ITEMS = ["red guitar strings", "blue drum sticks", "guitar strap in black"]


def test_reciprocal_rank_fusion_by_hand():
    a = np.array([[3.0, 2.0, 1.0]])  # ranks 1, 2, 3
    b = np.array([[1.0, 1.0, 2.0]])  # ranks 3, 3, 1 (pessimistic ties)
    np.testing.assert_allclose(fusion.ranks(b), [[3, 3, 1]])
    fused = fusion.reciprocal_rank_fusion([a, b], k=60)
    np.testing.assert_allclose(fused, [[1 / 61 + 1 / 63, 1 / 62 + 1 / 63, 1 / 63 + 1 / 61]])
    with pytest.raises(ValueError, match=r"`scores` must share one shape"):
        fusion.reciprocal_rank_fusion([a, b[:, :2]])
    with pytest.raises(ValueError, match=r"`k` must be an int >= 0, received -1"):
        fusion.reciprocal_rank_fusion([a], k=-1)


def test_best_review_takes_each_items_best_review():
    reviews = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    items = np.array([2, 0, 2])  # item 1 has no review
    query = np.array([[1.0, 0.0], [0.0, 1.0]])
    scores = dense.best_review_scores(query, reviews, items, num_items=3, batch_size=1)
    np.testing.assert_allclose(scores, [[0.0, -1.0, 1.0], [1.0, -1.0, 0.8]])


def test_lexical_scorers_rank_the_item_sharing_the_query_words_first():
    queries = ["guitar strings", "drum", "violin"]
    for scores in (lexical.bm25_scores(ITEMS, queries), lexical.tfidf_scores(ITEMS, queries)):
        assert scores.shape == (3, 3) and scores.dtype == np.float32
        assert np.argmax(scores[0]) == 0 and np.argmax(scores[1]) == 1
        assert not scores[2].any()  # no shared word: nothing scores


class FakeEncoder:
    """Counts calls; vectors are the text lengths."""

    preset = "/nonexistent-preset"
    max_length = 8

    def __init__(self):
        self.calls = 0

    def encode(self, texts, progress=False, desc=""):
        self.calls += 1
        return np.array([[len(t), 1.0] for t in texts], np.float32)


def test_cached_encode_reuses_the_vectors_of_the_same_texts(tmp_path):
    encoder = FakeEncoder()
    first = dense.cached_encode(encoder, ["ab", "c"], tmp_path, "items", progress=False)
    again = dense.cached_encode(encoder, ["ab", "c"], tmp_path, "items", progress=False)
    np.testing.assert_array_equal(first, again)
    assert encoder.calls == 1
    dense.cached_encode(encoder, ["ab", "d e"], tmp_path, "items", progress=False)
    assert encoder.calls == 2 and len(list(tmp_path.glob("items-*.npy"))) == 2
