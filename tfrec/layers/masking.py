"""Padding masks for id sequences: "" padded item histories and 0 padded WordPiece ids."""

from __future__ import annotations

import tensorflow as tf


@tf.keras.utils.register_keras_serializable(package="tfrec")
class PaddingMask(tf.keras.layers.Layer):
    """Marks the real (non-padding) positions of a padded id sequence.

    Recent-event histories pad with "" and WordPiece token ids pad with 0; every pooling and
    attention layer downstream needs to know which positions are real so that padding never
    leaks into a user or item representation.

    Args:
        padding_value: str or int. The value that means "no element". Defaults to 0.

    Call args:
        inputs: tf.string or integer tensor, `[batch, length]`.

    Returns:
        tf.bool tensor, `[batch, length]`, True at real positions.

    Example:
        >>> PaddingMask("")(tf.constant([["a", ""]])).numpy()
        array([[ True, False]])
    """

    def __init__(self, padding_value: str | int = 0, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(padding_value, (str, int)) or isinstance(padding_value, bool):
            raise ValueError(
                f"`padding_value` must be a str or int, received {padding_value!r} "
                f"({type(padding_value).__name__})"
            )
        self.padding_value = padding_value

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        return tf.not_equal(inputs, tf.constant(self.padding_value, dtype=inputs.dtype))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "padding_value": self.padding_value}


@tf.keras.utils.register_keras_serializable(package="tfrec")
class SelfAttentionMask(tf.keras.layers.Layer):
    """Turns a sequence mask into a pairwise self-attention mask over a user's history.

    A position attends to every real position (padding neither attends nor is attended); a
    history with no real position gets an all-False mask, which `MultiHeadAttention` turns into
    uniform (finite) weights that masked pooling then ignores.

    Call args:
        inputs: tf.bool tensor, `[batch, length]`.

    Returns:
        tf.bool tensor, `[batch, length, length]`.

    Example:
        >>> SelfAttentionMask()(tf.constant([[True, False]])).shape
        TensorShape([1, 2, 2])
    """

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        mask = tf.cast(inputs, tf.bool)
        return tf.logical_and(mask[:, :, tf.newaxis], mask[:, tf.newaxis, :])
