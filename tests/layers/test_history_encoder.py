"""Tests for the history encoder variants: shapes, padding, empty and unknown histories."""

import numpy as np
import pytest
import tensorflow as tf

from tests import harness
from tfrec.layers import history_encoder

ITEMS = ["i0", "i1", "i2", "i3"]
EVENTS = ("view", "cart", "purchase")
MAX_HISTORY, DIM = 4, 8
HISTORY = [
    tf.constant([["i1", "i2", "", ""], ["", "", "", ""], ["new", "i3", "i0", "i1"]]),
    tf.constant([["view", "cart", "", ""], ["", "", "", ""], ["view", "odd", "view", "cart"]]),
]


@pytest.mark.parametrize("kind", history_encoder.KINDS)
def test_history_encoder_harness(kind, tmp_path):
    def build():
        return history_encoder.build_history_encoder(
            ITEMS, EVENTS, MAX_HISTORY, DIM, kind=kind, num_heads=2, dropout=0.0
        )

    # The GRU variant is built from standard Keras layers only; its SavedModel trace (a masked
    # while loop) is the slowest check here, so only the variants with custom layers run it.
    saved_model_dir = None if kind == "gru" else tmp_path
    encoder = harness.run_layer_test(build, HISTORY, (3, DIM), saved_model_dir=saved_model_dir)
    encoded = encoder(HISTORY).numpy()
    # No history: exactly zero. Unknown ids and event types still give a finite, non-zero vector.
    np.testing.assert_array_equal(encoded[1], np.zeros(DIM))
    assert np.abs(encoded[2]).sum() > 0


@pytest.mark.parametrize("kind", history_encoder.KINDS)
def test_padding_is_ignored(kind):
    encoder = history_encoder.build_history_encoder(ITEMS, EVENTS, MAX_HISTORY, DIM, kind=kind)
    ids = tf.constant([["i1", "i2", "", ""]])
    events = tf.constant([["view", "cart", "", ""]])
    # Whatever sits in the event-type slots of padded positions must not change the output.
    noisy_events = tf.constant([["view", "cart", "purchase", "view"]])
    np.testing.assert_allclose(encoder([ids, events]), encoder([ids, noisy_events]), atol=1e-6)


def test_validation():
    with pytest.raises(ValueError, match="`kind` must be one of"):
        history_encoder.build_history_encoder(ITEMS, EVENTS, MAX_HISTORY, DIM, kind="lstm")
    with pytest.raises(ValueError, match="padding value"):
        history_encoder.build_history_encoder(ITEMS + [""], EVENTS, MAX_HISTORY, DIM)
