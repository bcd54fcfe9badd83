"""Warm start: every weight copied, id tables grown row by row, new rows from the OOV row."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tfrec.models import warm_start


def _tower(vocabulary_size: int, extra_rows: int = 1, name: str = "item_embedding"):
    tf.keras.utils.set_random_seed(vocabulary_size)
    ids = tf.keras.Input(shape=(), dtype=tf.int32)
    x = tf.keras.layers.Embedding(vocabulary_size + extra_rows, 4, name=name)(ids)
    return tf.keras.Model(ids, tf.keras.layers.Dense(2, name="head")(x))


def test_grown_tables_keep_old_rows_and_start_new_ones_from_oov():
    old, new = _tower(3), _tower(5)
    grown = warm_start.copy_weights(old.weights, new.weights)
    assert grown == {"item_embedding": (4, 6)}
    before, after = old.weights[0].numpy(), new.weights[0].numpy()
    np.testing.assert_array_equal(after[:4], before)
    np.testing.assert_array_equal(after[4:], np.repeat(before[:1], 2, axis=0))  # OOV row 0
    for a, b in zip(old.weights[1:], new.weights[1:], strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_history_tables_start_new_rows_from_their_oov_row_after_the_mask():
    old = _tower(3, extra_rows=2, name="history_item_embedding")
    new = _tower(4, extra_rows=2, name="history_item_embedding")
    warm_start.copy_weights(old.weights, new.weights)
    np.testing.assert_array_equal(new.weights[0].numpy()[5], old.weights[0].numpy()[1])


def test_anything_but_a_grown_id_table_is_refused():
    with pytest.raises(ValueError, match="can only append rows"):
        warm_start.copy_weights(_tower(5).weights, _tower(3).weights)  # shrinks
    with pytest.raises(ValueError, match="can only append rows"):
        warm_start.copy_weights(_tower(3, name="other").weights, _tower(4, name="other").weights)
    with pytest.raises(ValueError, match="same architecture"):
        warm_start.copy_weights(_tower(3).weights, _tower(3).weights[:1])
