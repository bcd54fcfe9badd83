"""History encoder: a user's recent events (item, event type) -> one vector, three variants."""

from __future__ import annotations

from collections.abc import Sequence

import keras_nlp
import tensorflow as tf

from tfrec.layers import masking, pooling

KINDS = ("pooling", "attention", "gru")


def build_history_encoder(
    items: Sequence[str],
    event_types: Sequence[str],
    max_history: int,
    output_dim: int,
    kind: str = "attention",
    num_heads: int = 2,
    dropout: float = 0.1,
    name: str = "history_encoder",
) -> tf.keras.Model:
    """Encodes a shopper's most recent events into the query tower's history vector.

    Each event is the sum of an item-id embedding and an event-type embedding ("view", "cart",
    "purchase" say different things about intent). Unknown item ids share one OOV bucket; ""
    is padding and never contributes. A user with no history encodes to zero.

    `kind` chooses how events are combined:
      * `pooling`: recency-weighted masked mean (a learned weight per position).
      * `attention`: one Transformer block (self-attention over real events, learned position
        embeddings, feed-forward), then masked mean pooling.
      * `gru`: a GRU reading from the oldest to the most recent event; its last state.

    Args:
        items: sequence of str. Item-id vocabulary (`FeatureSpec.items`); must not contain "".
        event_types: sequence of str. Event-type vocabulary (`FeatureSpec.event_types`).
        max_history: int. Number of positions (`FeatureSpec.max_history`).
        output_dim: int. Size of the event embeddings and of the output.
        kind: str. One of `pooling`, `attention`, `gru`. Defaults to "attention".
        num_heads: int. Attention heads (`attention` only). Defaults to 2.
        dropout: float. Dropout rate inside the attention block. Defaults to 0.1.
        name: str. Model name. Defaults to "history_encoder".

    Returns:
        A Functional model: `[history_item_ids, history_event_types]`, both tf.string
        `[batch, max_history]`, most recent first -> float `[batch, output_dim]`.

    Example:
        >>> encoder = build_history_encoder(["a", "b"], ["view"], 3, 8, kind="pooling")
        >>> ids = tf.constant([["b", "zz", ""]])
        >>> encoder([ids, tf.constant([["view", "view", ""]])]).shape
        TensorShape([1, 8])
    """
    if kind not in KINDS:
        raise ValueError(f"`kind` must be one of {KINDS}, received {kind!r}")
    if "" in items or "" in event_types:
        raise ValueError('`items` and `event_types` must not contain the padding value ""')
    if not isinstance(max_history, int) or max_history < 1:
        raise ValueError(f"`max_history` must be an int >= 1, received {max_history!r}")
    if kind == "attention" and output_dim % num_heads:
        raise ValueError(
            f"`output_dim` must be divisible by `num_heads`, received output_dim={output_dim}, "
            f"num_heads={num_heads}"
        )

    item_ids = tf.keras.Input(shape=(max_history,), dtype=tf.string, name="history_item_ids")
    event_ids = tf.keras.Input(shape=(max_history,), dtype=tf.string, name="history_event_types")
    mask = masking.PaddingMask("", name="history_mask")(item_ids)

    # mask_token="" maps padding to index 0 and unknown ids to index 1 (the OOV bucket).
    item_index = tf.keras.layers.StringLookup(
        vocabulary=list(items), mask_token="", num_oov_indices=1, name="history_item_lookup"
    )(item_ids)
    event_index = tf.keras.layers.StringLookup(
        vocabulary=list(event_types), mask_token="", num_oov_indices=1, name="event_type_lookup"
    )(event_ids)
    item_vectors = tf.keras.layers.Embedding(
        len(items) + 2, output_dim, name="history_item_embedding"
    )(item_index)
    event_vectors = tf.keras.layers.Embedding(
        len(event_types) + 2, output_dim, name="event_type_embedding"
    )(event_index)
    events = tf.keras.layers.Add(name="event_vectors")([item_vectors, event_vectors])

    if kind == "pooling":
        encoded = pooling.RecencyWeightedPooling(max_history, name="recency_pooling")(
            [events, mask]
        )
    elif kind == "attention":
        positions = keras_nlp.layers.PositionEmbedding(max_history, name="position_embedding")(
            events
        )
        x = tf.keras.layers.Add(name="add_positions")([events, positions])
        attention_mask = masking.SelfAttentionMask(name="attention_mask")(mask)
        attended = tf.keras.layers.MultiHeadAttention(
            num_heads, output_dim // num_heads, dropout=dropout, name="self_attention"
        )(x, x, attention_mask=attention_mask)
        attended = tf.keras.layers.Dropout(dropout)(attended)
        x = tf.keras.layers.LayerNormalization(name="attention_norm")(
            tf.keras.layers.Add()([x, attended])
        )
        hidden = tf.keras.layers.Dense(2 * output_dim, activation="gelu", name="ffn_in")(x)
        hidden = tf.keras.layers.Dropout(dropout)(
            tf.keras.layers.Dense(output_dim, name="ffn_out")(hidden)
        )
        x = tf.keras.layers.LayerNormalization(name="ffn_norm")(tf.keras.layers.Add()([x, hidden]))
        encoded = pooling.MaskedMeanPooling(name="history_pooling")([x, mask])
    else:
        # Histories are most recent first; reading backwards ends on the most recent event, and
        # masked steps carry the state through, so an empty history keeps the zero start state.
        encoded = tf.keras.layers.GRU(output_dim, go_backwards=True, name="history_gru")(
            events, mask=mask
        )
    return tf.keras.Model([item_ids, event_ids], encoded, name=name)
