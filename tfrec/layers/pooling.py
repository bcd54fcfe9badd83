"""Masked pooling of sequences (token states, recent events) into one vector per example."""

from __future__ import annotations

import tensorflow as tf


def _weighted_sum(sequence: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
    # Sums in float32: under float16 a long sum of small weighted terms loses precision.
    pooled = tf.einsum("bt,btd->bd", weights, tf.cast(sequence, tf.float32))
    return tf.cast(pooled, sequence.dtype)


@tf.keras.utils.register_keras_serializable(package="tfrec")
class MaskedMeanPooling(tf.keras.layers.Layer):
    """Averages a sequence over its real positions: a text or history summary per example.

    An example with no real position (an empty search query, a user without history) pools to
    exactly zero, so it contributes nothing downstream instead of the mean of padding (or NaN).

    Call args:
        inputs: list `[sequence, mask]`: float tensor `[batch, length, dim]` and a bool or 0/1
            tensor `[batch, length]`.

    Returns:
        Float tensor `[batch, dim]`, in the layer's compute dtype.

    Example:
        >>> x = tf.ones([1, 3, 2])
        >>> MaskedMeanPooling()([x, tf.constant([[True, True, False]])]).numpy()
        array([[1., 1.]], dtype=float32)
    """

    def call(self, inputs) -> tf.Tensor:
        sequence, mask = inputs
        mask = tf.cast(mask, tf.float32)
        count = tf.reduce_sum(mask, axis=1, keepdims=True)
        return _weighted_sum(sequence, tf.math.divide_no_nan(mask, count))

    def compute_output_shape(self, input_shape):
        sequence_shape = tf.TensorShape(input_shape[0])
        return sequence_shape[:1].concatenate(sequence_shape[2:])


@tf.keras.utils.register_keras_serializable(package="tfrec")
class RecencyWeightedPooling(tf.keras.layers.Layer):
    """Pools a most-recent-first event history with learned per-position weights.

    What a shopper did a minute ago usually says more about the next purchase than what they did
    last month; one learned logit per position (softmax over the real positions) lets training
    decide how fast interest decays. Starts as a plain masked mean (all logits zero).

    Args:
        max_length: int. Longest history (number of positions). Must be >= 1.

    Call args:
        inputs: list `[sequence, mask]`: float tensor `[batch, max_length, dim]` and a bool or
            0/1 tensor `[batch, max_length]`.

    Returns:
        Float tensor `[batch, dim]`; zero for a history with no real event.

    Example:
        >>> pool = RecencyWeightedPooling(max_length=3)
        >>> pool([tf.ones([2, 3, 4]), tf.constant([[1, 1, 0], [0, 0, 0]])]).shape
        TensorShape([2, 4])
    """

    def __init__(self, max_length: int, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(max_length, int) or max_length < 1:
            raise ValueError(f"`max_length` must be an int >= 1, received {max_length!r}")
        self.max_length = max_length

    def build(self, input_shape):
        length = tf.TensorShape(input_shape[0])[1]
        if length is not None and length != self.max_length:
            raise ValueError(
                f"`max_length` is {self.max_length} but the sequence has {length} positions"
            )
        self.position_logits = self.add_weight(
            name="position_logits", shape=[self.max_length], initializer="zeros"
        )
        super().build(input_shape)

    def call(self, inputs) -> tf.Tensor:
        sequence, mask = inputs
        mask = tf.cast(mask, tf.float32)
        logits = tf.cast(self.position_logits, tf.float32)
        # Subtracting the max keeps exp() finite; masked positions get weight exactly 0.
        scores = tf.exp(logits - tf.reduce_max(logits))[tf.newaxis, :] * mask
        weights = tf.math.divide_no_nan(scores, tf.reduce_sum(scores, axis=1, keepdims=True))
        return _weighted_sum(sequence, weights)

    def compute_output_shape(self, input_shape):
        sequence_shape = tf.TensorShape(input_shape[0])
        return sequence_shape[:1].concatenate(sequence_shape[2:])

    def get_config(self) -> dict:
        return {**super().get_config(), "max_length": self.max_length}
