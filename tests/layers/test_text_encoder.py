"""Tests for the BERT text encoder: shapes, empty text, harness round trips, local presets."""

import numpy as np
import pytest
import tensorflow as tf

from tests import harness
from tfrec.layers import text_encoder

VOCAB, LENGTH, DIM = 40, 8, 12
TOKENS = tf.constant([[5, 9, 17, 0, 0, 0, 0, 0], [0] * 8, [3, 4, 5, 6, 7, 8, 9, 10]])


def tiny_backbone():
    return text_encoder.build_bert_backbone(
        VOCAB, LENGTH, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16, dropout=0.0
    )


def build():
    return text_encoder.build_text_encoder(tiny_backbone(), DIM)


def test_text_encoder_harness(tmp_path):
    encoder = harness.run_layer_test(build, TOKENS, (3, DIM), saved_model_dir=tmp_path)
    # A text with no token encodes to exactly zero (an empty query adds nothing).
    np.testing.assert_array_equal(encoder(TOKENS)[1], np.zeros(DIM))
    # Shorter inputs (search queries) go through the same encoder.
    assert encoder(TOKENS[:, :4]).shape == (3, DIM)


def test_preset_round_trip(tmp_path):
    backbone = tiny_backbone()
    encoder = text_encoder.build_text_encoder(backbone, DIM)
    text_encoder.save_backbone_preset(backbone, tmp_path / "preset")
    assert {p.name for p in (tmp_path / "preset").iterdir()} >= {
        "config.json",
        "model.weights.h5",
        "metadata.json",
    }
    loaded = text_encoder.load_backbone_preset(tmp_path / "preset", vocabulary_size=VOCAB)
    assert loaded.get_config() == backbone.get_config()
    inputs = text_encoder.BertInputs()(TOKENS)
    np.testing.assert_allclose(
        loaded(inputs)["sequence_output"], backbone(inputs)["sequence_output"], rtol=1e-6
    )
    reloaded = text_encoder.build_text_encoder(loaded, DIM)
    reloaded.get_layer("text_projection").set_weights(
        encoder.get_layer("text_projection").get_weights()
    )
    np.testing.assert_allclose(reloaded(TOKENS), encoder(TOKENS), rtol=1e-5, atol=1e-6)


def test_preset_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="`preset` must be a local keras-nlp preset"):
        text_encoder.load_backbone_preset(tmp_path)
    text_encoder.save_backbone_preset(tiny_backbone(), tmp_path / "p")
    with pytest.raises(ValueError, match="expected 41 tokens, received 40"):
        text_encoder.load_backbone_preset(tmp_path / "p", vocabulary_size=VOCAB + 1)


def test_empty_text_is_zero_under_mixed_precision():
    previous = tf.keras.mixed_precision.global_policy()
    tf.keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        encoded = build()(tf.zeros([2, LENGTH], tf.int32))
    finally:
        tf.keras.mixed_precision.set_global_policy(previous)
    np.testing.assert_array_equal(tf.cast(encoded, tf.float32), np.zeros([2, DIM]))
