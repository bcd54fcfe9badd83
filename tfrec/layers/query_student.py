"""A shallow copy of a BERT's lower layers that encodes search queries in real time.

A query is the one text that cannot be cached: it arrives with the request, so every
transformer layer it goes through is paid at serving time. The student has fewer layers than
the frozen part it replaces (`PretrainedTextEncoder`'s embeddings + lower layers, usually the
whole backbone) and is trained to give the same output on query-like text
(`tfrec.training.query_student`). It reads the teacher's own (frozen) embeddings, so the
30k-row token table is not copied, and it starts from teacher layers picked evenly from the
first to the last frozen one: DistilBERT's initialisation, which starts the student close to
the teacher instead of from noise.
"""

from __future__ import annotations

import keras_nlp
import numpy as np
import tensorflow as tf


def teacher_layers(num_frozen: int, num_layers: int) -> list[int]:
    """Indices of the teacher layers the student starts from: evenly spaced, ends included.

    Args:
        num_frozen: int >= 1. Transformer layers of the frozen part the student replaces.
        num_layers: int in [1, num_frozen]. Student layers.

    Example:
        >>> teacher_layers(6, 2)
        [0, 5]
    """
    if not isinstance(num_frozen, int) or num_frozen < 1:
        raise ValueError(f"`num_frozen` must be an int >= 1, received {num_frozen!r}")
    if not isinstance(num_layers, int) or not 1 <= num_layers <= num_frozen:
        raise ValueError(
            f"`num_layers` must be an int in [1, {num_frozen}] (the frozen layers it replaces), "
            f"received {num_layers!r}"
        )
    return [int(i) for i in np.linspace(0, num_frozen - 1, num_layers).round()]


@tf.keras.utils.register_keras_serializable(package="tfrec")
class QueryStudent(tf.keras.layers.Layer):
    """`num_layers` BERT transformer layers over already-embedded tokens.

    Args:
        layer_configs: list of dict. `get_config()` of each keras-nlp `TransformerEncoder`
            to copy, in order (the teacher layers named by `teacher_layers`).

    Call args:
        inputs: float `[batch, length, hidden]` token states after the embedding layer norm.
        padding_mask: int or bool `[batch, length]`, 1 for real tokens.

    Returns:
        `[batch, length, hidden]` token states.
    """

    def __init__(self, layer_configs: list[dict], **kwargs):
        super().__init__(**kwargs)
        if not layer_configs:
            raise ValueError("`layer_configs` must name at least one transformer layer")
        self.layer_configs = [dict(c) for c in layer_configs]
        self.transformer_layers = []
        for i, layer_config in enumerate(self.layer_configs):
            layer_config = dict(layer_config, name=f"student_layer_{i}")
            self.transformer_layers.append(
                keras_nlp.layers.TransformerEncoder.from_config(layer_config)
            )

    def build(self, input_shape):
        # keras-nlp's `TransformerEncoder.build` leaves the attention unbuilt under Keras 2; one
        # eager call creates every weight, in the order a teacher layer built by use has them.
        hidden = int(input_shape[-1])
        with tf.init_scope():
            x = tf.zeros([1, 1, hidden], self.compute_dtype)
            for layer in self.transformer_layers:
                x = layer(x, padding_mask=tf.ones([1, 1], tf.int32))
        super().build(input_shape)

    def copy_teacher(self, backbone: tf.keras.Model, picked: list[int]) -> None:
        """Sets each student layer's weights to those of teacher layer `picked[i]`."""
        if len(picked) != len(self.transformer_layers):
            raise ValueError(
                f"`picked` must name one teacher layer per student layer "
                f"({len(self.transformer_layers)}), received {picked!r}"
            )
        for layer, index in zip(self.transformer_layers, picked, strict=True):
            layer.set_weights(backbone.transformer_layers[index].get_weights())

    def call(self, inputs: tf.Tensor, padding_mask: tf.Tensor, training=None) -> tf.Tensor:
        x = inputs
        for layer in self.transformer_layers:
            x = layer(x, padding_mask=padding_mask, training=training)
        return x

    def get_config(self) -> dict:
        return {**super().get_config(), "layer_configs": self.layer_configs}
