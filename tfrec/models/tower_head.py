"""The shared top of both towers: feature concatenation, hidden layers, float32 embedding."""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf


def tower_head(
    parts: Sequence[tf.Tensor],
    hidden_units: Sequence[int],
    embedding_dim: int,
    normalize: bool,
    prefix: str,
) -> tf.Tensor:
    """Concatenates a tower's feature encodings and maps them to its output embedding.

    Args:
        parts: list of tensors [batch, d_i]. The tower's encoded features.
        hidden_units: sequence of int. ReLU layers before the projection.
        embedding_dim: int. Output size.
        normalize: bool. L2-normalize the output (cosine scores).
        prefix: str. Layer-name prefix (`item`, `query`), kept stable for checkpoints.

    Returns:
        float32 tensor [batch, embedding_dim].
    """
    x = (
        parts[0]
        if len(parts) == 1
        else tf.keras.layers.Concatenate(name=f"{prefix}_features")(parts)
    )
    for i, units in enumerate(hidden_units):
        x = tf.keras.layers.Dense(units, activation="relu", name=f"{prefix}_hidden_{i}")(x)
    # float32 output: scores, the loss and the serving index should not see float16 rounding.
    if hidden_units or len(parts) > 1 or x.shape[-1] != embedding_dim:
        x = tf.keras.layers.Dense(embedding_dim, dtype="float32", name=f"{prefix}_projection")(x)
    else:
        # A lone id embedding of the output size is the output (the TFRS tutorial's tower).
        x = tf.keras.layers.Activation("linear", dtype="float32", name=f"{prefix}_output")(x)
    if normalize:
        x = tf.keras.layers.UnitNormalization(dtype="float32", name=f"{prefix}_l2_norm")(x)
    return x
