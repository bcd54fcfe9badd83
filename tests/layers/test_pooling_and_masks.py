"""Tests for the padding masks, masked pooling and item-id dropout layers."""

import numpy as np
import pytest
import tensorflow as tf

from tests import harness
from tfrec.layers import id_dropout, masking, pooling

SEQUENCE = tf.constant(
    [[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]], [[5.0, 6.0], [7.0, 8.0], [9.0, 10.0]]]
)
MASK = tf.constant([[True, True, False], [False, False, False]])


def test_padding_mask_strings_and_ints():
    np.testing.assert_array_equal(
        masking.PaddingMask("")(tf.constant([["a", ""]])), [[True, False]]
    )
    np.testing.assert_array_equal(masking.PaddingMask(0)(tf.constant([[3, 0]])), [[True, False]])
    harness.run_serialization_test(masking.PaddingMask(""), tf.constant([["a", ""]]))
    with pytest.raises(ValueError, match="`padding_value`"):
        masking.PaddingMask(1.5)


def test_self_attention_mask():
    got = masking.SelfAttentionMask()(tf.constant([[True, False]]))
    np.testing.assert_array_equal(got, [[[True, False], [False, False]]])


def test_masked_mean_pooling_golden(tmp_path):
    # Row 0: mean of the two real positions; row 1 (no real position): exactly zero.
    got = pooling.MaskedMeanPooling()([SEQUENCE, MASK])
    np.testing.assert_allclose(got, [[2.0, 3.0], [0.0, 0.0]])
    harness.run_layer_test(
        pooling.MaskedMeanPooling, [SEQUENCE, MASK], (2, 2), fit=False, saved_model_dir=tmp_path
    )


def test_recency_weighted_pooling(tmp_path):
    layer = harness.run_layer_test(
        lambda: pooling.RecencyWeightedPooling(3),
        [SEQUENCE, MASK],
        (2, 2),
        num_trainable_weights=1,
        saved_model_dir=tmp_path,
    )
    # logits (log 3, 0, 0) -> weights over the two real positions (3/4, 1/4).
    layer.position_logits.assign([np.log(3.0), 0.0, 0.0])
    got = layer([SEQUENCE, MASK])
    np.testing.assert_allclose(got, [[0.75 * 1 + 0.25 * 3, 0.75 * 2 + 0.25 * 4], [0, 0]], rtol=1e-6)
    with pytest.raises(ValueError, match="`max_length` is 4"):
        pooling.RecencyWeightedPooling(4)([SEQUENCE, MASK])


def test_id_dropout_only_in_training():
    ids = tf.range(1, 10001, dtype=tf.int64)
    layer = id_dropout.IdDropout(rate=0.3, oov_index=0, seed=1)
    np.testing.assert_array_equal(layer(ids, training=False), ids)
    np.testing.assert_array_equal(layer(ids), ids)
    dropped = layer(ids, training=True).numpy()
    kept = dropped == ids.numpy()
    assert set(np.unique(dropped[~kept])) == {0}
    assert 0.27 < 1.0 - kept.mean() < 0.33
    harness.run_serialization_test(layer, ids)
    with pytest.raises(ValueError, match="`rate` must be in"):
        id_dropout.IdDropout(rate=1.0)
