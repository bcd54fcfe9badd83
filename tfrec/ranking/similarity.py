"""Pooled similarity of a ranking candidate to the user's recent events, overall and per type."""

from __future__ import annotations

import tensorflow as tf


@tf.keras.utils.register_keras_serializable(package="tfrec")
class HistorySimilarity(tf.keras.layers.Layer):
    """Relates a candidate item to the user's recent events through frozen item vectors.

    The ranker uses it to ask "how close is this candidate to what the user just looked at,
    carted or bought?". For every valid history position it takes the dot product of the
    candidate's vector with that event's item vector, then pools max and mean over all valid
    positions and over the positions of each event type. A group without events gives 0, so a
    user without history gets all zeros rather than -inf or NaN. The layer has no weights.

    Args:
        num_event_types: int. Known event types; the event index input uses 0 for padding,
            1 for an unknown type and `2 + t` for known type `t` (a `StringLookup` with
            `mask_token=""` and one OOV index produces exactly this).
        **kwargs: Passed to `tf.keras.layers.Layer`.

    Call args:
        inputs: list of three tensors: candidate vectors [batch, dim], history item vectors
            [batch, max_history, dim] and history event indices [batch, max_history] (int).

    Returns:
        [batch, 2 * (1 + num_event_types)]: (max, mean) over all events, then (max, mean) for
        each known event type in vocabulary order.

    Example:
        >>> layer = HistorySimilarity(num_event_types=3)
        >>> layer([tf.ones([1, 2]), tf.ones([1, 4, 2]), tf.constant([[2, 4, 0, 0]])]).shape
        TensorShape([1, 8])
    """

    def __init__(self, num_event_types: int, **kwargs):
        super().__init__(**kwargs)
        if isinstance(num_event_types, bool) or not isinstance(num_event_types, int):
            raise ValueError(f"`num_event_types` must be an int, received {num_event_types!r}")
        if num_event_types < 0:
            raise ValueError(f"`num_event_types` must be >= 0, received {num_event_types}")
        self.num_event_types = num_event_types

    def call(self, inputs):
        candidate, history, event_index = inputs
        sims = tf.einsum("bd,bld->bl", candidate, history)  # [batch, max_history]
        event_index = tf.cast(event_index, tf.int32)
        # Group 0 is "any event"; group 1 + t holds events of known type t (index 2 + t).
        groups = [event_index > 0]
        groups += [tf.equal(event_index, 2 + t) for t in range(self.num_event_types)]
        masks = tf.stack(groups, axis=1)  # [batch, groups, max_history]
        sims = tf.expand_dims(sims, 1)  # [batch, 1, max_history]
        present = tf.cast(masks, sims.dtype)
        count = tf.reduce_sum(present, axis=-1)
        mean = tf.math.divide_no_nan(tf.reduce_sum(sims * present, axis=-1), count)
        lowest = tf.fill(tf.shape(sims), tf.constant(sims.dtype.min, sims.dtype))
        maximum = tf.reduce_max(tf.where(masks, sims, lowest), axis=-1)
        maximum = tf.where(count > 0, maximum, tf.zeros_like(maximum))
        pooled = tf.stack([maximum, mean], axis=-1)  # [batch, groups, 2]
        return tf.reshape(pooled, [-1, 2 * (1 + self.num_event_types)])

    def compute_output_shape(self, input_shape):
        return tf.TensorShape([input_shape[0][0], 2 * (1 + self.num_event_types)])

    def get_config(self):
        config = super().get_config()
        config.update({"num_event_types": self.num_event_types})
        return config
