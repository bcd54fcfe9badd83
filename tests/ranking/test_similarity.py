"""Tests of the pooled candidate-to-history similarity layer against hand-computed values."""

import numpy as np
import pytest
import tensorflow as tf

import tfrec  # noqa: F401
from tfrec.ranking import similarity


def test_pooled_similarity_by_hand():
    # Candidate [1, 0]; history vectors [2, 0], [-1, 0], [0, 5], padding -> sims 2, -1, 0, (x).
    # Event indices: 2 = view, 3 = cart, 2 = view, 0 = padding (ignored even with sim 7).
    candidate = tf.constant([[1.0, 0.0]])
    history = tf.constant([[[2.0, 0.0], [-1.0, 0.0], [0.0, 5.0], [7.0, 0.0]]])
    index = tf.constant([[2, 3, 2, 0]])
    out = similarity.HistorySimilarity(num_event_types=3)([candidate, history, index]).numpy()
    # all: max 2, mean 1/3; view: max 2, mean 1; cart: max -1, mean -1; purchase: none -> 0, 0.
    np.testing.assert_allclose(out, [[2.0, 1.0 / 3.0, 2.0, 1.0, -1.0, -1.0, 0.0, 0.0]], rtol=1e-6)


def test_no_history_gives_zeros_and_unknown_type_counts_only_overall():
    candidate = tf.constant([[1.0, 0.0], [1.0, 0.0]])
    history = tf.constant([[[3.0, 0.0], [3.0, 0.0]], [[-4.0, 0.0], [1.0, 0.0]]])
    index = tf.constant([[0, 0], [1, 0]])  # row 0: all padding; row 1: one unknown event type
    out = similarity.HistorySimilarity(num_event_types=1)([candidate, history, index]).numpy()
    np.testing.assert_allclose(out, [[0, 0, 0, 0], [-4, -4, 0, 0]])


def test_config_round_trip_and_validation():
    layer = similarity.HistorySimilarity(num_event_types=2, name="s")
    clone = similarity.HistorySimilarity.from_config(layer.get_config())
    assert clone.num_event_types == 2 and clone.name == "s"
    with pytest.raises(ValueError, match="`num_event_types` must be >= 0, received -1"):
        similarity.HistorySimilarity(num_event_types=-1)
