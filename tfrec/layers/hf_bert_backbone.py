"""A KerasNLP BERT backbone whose feed-forward activation follows the imported checkpoint."""

from __future__ import annotations

import keras_nlp
import tensorflow as tf

# keras-nlp's `BertBackbone` hard-codes the tanh approximation of GELU (Google's original BERT);
# Hugging Face's `hidden_act: "gelu"` is the exact erf form. The two differ by up to ~5e-4 per
# activation, which compounds over layers: imported sentence embeddings would drift from the
# reference model they were trained as.
_ACTIVATIONS = ("gelu", "gelu_approximate")


@tf.keras.utils.register_keras_serializable(package="tfrec")
class HfBertBackbone(keras_nlp.models.BertBackbone):
    """`keras_nlp.models.BertBackbone` with a configurable feed-forward activation.

    Item and query text read by a pretrained language model must be encoded exactly as the model
    was trained, or the pretrained similarity structure degrades. This backbone keeps the
    keras-nlp BERT layout (same layers, weights and preset files, so
    `keras_nlp.models.BertBackbone.from_preset` loads it) and adds one constructor argument: the
    activation of every transformer layer's intermediate dense layer.

    Args:
        intermediate_activation: str. `"gelu"` (exact, erf-based: Hugging Face BERT checkpoints)
            or `"gelu_approximate"` (tanh approximation: keras-nlp's own BERT). Defaults to
            `"gelu_approximate"`.
        **kwargs: The arguments of `keras_nlp.models.BertBackbone` (`vocabulary_size`,
            `num_layers`, `num_heads`, `hidden_dim`, `intermediate_dim`, `dropout`,
            `max_sequence_length`, `num_segments`, `dtype`, `name`, ...).

    Example:
        >>> backbone = HfBertBackbone(
        ...     vocabulary_size=10, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16,
        ...     max_sequence_length=4, intermediate_activation="gelu")
        >>> ids = tf.constant([[2, 5, 3, 0]])
        >>> out = backbone({"token_ids": ids, "segment_ids": tf.zeros_like(ids),
        ...                 "padding_mask": tf.cast(ids != 0, tf.int32)})
        >>> out["sequence_output"].shape
        TensorShape([1, 4, 8])
    """

    def __init__(self, intermediate_activation: str = "gelu_approximate", **kwargs):
        if intermediate_activation not in _ACTIVATIONS:
            raise ValueError(
                f"`intermediate_activation` must be one of {list(_ACTIVATIONS)}, received "
                f"{intermediate_activation!r}"
            )
        super().__init__(**kwargs)
        self.intermediate_activation = intermediate_activation
        if intermediate_activation == "gelu":
            # The parent builds its functional graph in `__init__` with the tanh GELU. A
            # Functional model re-runs each layer's `call` on every invocation and `Dense.call`
            # reads `self.activation` then, so swapping the function here changes the
            # computation without rebuilding (or duplicating) the parent's graph code.
            exact_gelu = tf.keras.activations.get("gelu")
            for layer in self.transformer_layers:
                layer.activation = exact_gelu
                layer._feedforward_intermediate_dense.activation = exact_gelu

    def get_config(self) -> dict:
        return {**super().get_config(), "intermediate_activation": self.intermediate_activation}
