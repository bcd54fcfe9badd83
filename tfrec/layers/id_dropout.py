"""Item-id dropout: trains the candidate tower to fall back on content for unseen items."""

from __future__ import annotations

import tensorflow as tf


@tf.keras.utils.register_keras_serializable(package="tfrec")
class IdDropout(tf.keras.layers.Layer):
    """Replaces lookup indices by the OOV index with probability `rate`, during training only.

    New catalog items reach the candidate tower with the OOV id. If the tower never saw the OOV
    id during training it has no reason to encode such items well; dropping ids teaches it to
    produce useful embeddings from text, category and price alone (cold start).

    Args:
        rate: float in [0, 1). Probability that an id is replaced. Defaults to 0.1.
        oov_index: int. The index the lookup layer gives unknown ids. Defaults to 0.
        seed: int or None. Seed of the random draw. Defaults to None.

    Call args:
        inputs: integer tensor of lookup indices, any shape, e.g. `[batch]`.
        training: bool. Ids are only dropped when True.

    Returns:
        Tensor of the same shape and dtype as `inputs`.

    Example:
        >>> IdDropout(rate=0.5)(tf.constant([3, 4]), training=False).numpy()
        array([3, 4], dtype=int32)
    """

    def __init__(self, rate: float = 0.1, oov_index: int = 0, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"`rate` must be in [0, 1), received {rate!r}")
        self.rate = float(rate)
        self.oov_index = int(oov_index)
        self.seed = seed

    def call(self, inputs: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        if not training or self.rate == 0.0:
            return inputs
        drop = tf.random.uniform(tf.shape(inputs), seed=self.seed) < self.rate
        return tf.where(drop, tf.cast(self.oov_index, inputs.dtype), inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        config = {"rate": self.rate, "oov_index": self.oov_index, "seed": self.seed}
        return {**super().get_config(), **config}
