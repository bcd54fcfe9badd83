"""HfBertBackbone: exact vs tanh GELU, config round trip, SavedModel export without tfrec."""

import keras_nlp
import numpy as np
import pytest
import tensorflow as tf

from tests import harness
from tfrec.layers import hf_bert_backbone, text_encoder

SIZES = dict(
    vocabulary_size=20, num_layers=2, num_heads=2, hidden_dim=8, intermediate_dim=16,
    max_sequence_length=6, dropout=0.0,
)  # fmt: skip
TOKENS = tf.constant([[2, 5, 9, 3, 0, 0], [2, 7, 3, 0, 0, 0]])


def _inputs(ids):
    return text_encoder.BertInputs()(ids)


def _scaled(backbone, seed=0):
    # Large kernels push feed-forward inputs to |x| ~ 2, where the two GELUs differ.
    rng = np.random.default_rng(seed)
    backbone.set_weights([rng.standard_normal(w.shape) * 0.8 for w in backbone.get_weights()])
    return backbone


def test_activation_choice_changes_the_computation():
    exact = _scaled(hf_bert_backbone.HfBertBackbone(intermediate_activation="gelu", **SIZES))
    approx = hf_bert_backbone.HfBertBackbone(**SIZES)
    stock = keras_nlp.models.BertBackbone(**SIZES)
    approx.set_weights(exact.get_weights())
    stock.set_weights(exact.get_weights())
    out = {n: m(_inputs(TOKENS))["sequence_output"].numpy() for n, m in
           [("exact", exact), ("approx", approx), ("stock", stock)]}  # fmt: skip
    np.testing.assert_array_equal(out["approx"], out["stock"])  # default = keras-nlp's BERT
    assert np.abs(out["exact"] - out["stock"]).max() > 1e-4


def test_config_round_trip_keeps_the_exact_gelu():
    backbone = _scaled(hf_bert_backbone.HfBertBackbone(intermediate_activation="gelu", **SIZES))
    assert backbone.get_config()["intermediate_activation"] == "gelu"
    clone = tf.keras.saving.deserialize_keras_object(
        tf.keras.saving.serialize_keras_object(backbone)
    )
    assert isinstance(clone, hf_bert_backbone.HfBertBackbone)
    assert clone.get_config() == backbone.get_config()
    clone.set_weights(backbone.get_weights())
    np.testing.assert_allclose(
        clone(_inputs(TOKENS))["sequence_output"], backbone(_inputs(TOKENS))["sequence_output"]
    )


def test_saved_model_export_reloads_with_equal_outputs(tmp_path):
    backbone = _scaled(hf_bert_backbone.HfBertBackbone(intermediate_activation="gelu", **SIZES))
    encoder = text_encoder.build_text_encoder(backbone, output_dim=4)
    harness.run_saved_model_test(encoder, TOKENS, tmp_path)


def test_unknown_activation_is_refused():
    with pytest.raises(ValueError, match=r"`intermediate_activation` must be one of .*'relu'"):
        hf_bert_backbone.HfBertBackbone(intermediate_activation="relu", **SIZES)
