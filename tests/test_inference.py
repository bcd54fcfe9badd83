"""Batch inference: an item the tower knows nothing about is embedded as the zero vector."""

import numpy as np
import tensorflow as tf

from tfrec import features, inference
from tfrec.data import vocab


def test_uninformed_items_get_the_zero_vector():
    table = vocab.ItemTable(
        features={
            features.ITEM_ID: np.array(["a", "b", "c"], object),
            features.ITEM_TOKEN_IDS: np.zeros([3, 4], np.int32),
            features.ITEM_CATEGORY: np.array(["", "", ""], object),
            features.ITEM_PRICE: np.zeros([3], np.float32),
        },
        titles=np.array(["", "", ""], object),
        informed=np.array([True, False, True]),
    )
    inputs = {
        name: tf.keras.Input(shape=spec_shape, dtype=dtype, name=name)
        for name, spec_shape, dtype in (
            (features.ITEM_ID, (), tf.string),
            (features.ITEM_TOKEN_IDS, (4,), tf.int32),
            (features.ITEM_CATEGORY, (), tf.string),
            (features.ITEM_PRICE, (), tf.float32),
        )
    }
    price = tf.keras.layers.Reshape((1,))(inputs[features.ITEM_PRICE])
    tower = tf.keras.Model(inputs, tf.keras.layers.Dense(2, bias_initializer="ones")(price))
    vectors = inference.item_embeddings(tower, table)
    np.testing.assert_allclose(vectors[1], 0.0)
    assert np.all(vectors[[0, 2]] == 1.0)  # the tower's own output elsewhere
