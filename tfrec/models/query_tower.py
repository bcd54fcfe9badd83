"""Query tower: user, recent events, time of day and search text -> an L2-normalized embedding."""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from tfrec import features
from tfrec.models import tower_head


def _inputs(max_history: int, query_text_length: int) -> dict:
    return {
        features.USER_ID: tf.keras.Input(shape=(), dtype=tf.string, name=features.USER_ID),
        features.HISTORY_ITEM_IDS: tf.keras.Input(
            shape=(max_history,), dtype=tf.string, name=features.HISTORY_ITEM_IDS
        ),
        features.HISTORY_EVENT_TYPES: tf.keras.Input(
            shape=(max_history,), dtype=tf.string, name=features.HISTORY_EVENT_TYPES
        ),
        features.HOUR_OF_DAY: tf.keras.Input(shape=(), dtype=tf.int32, name=features.HOUR_OF_DAY),
        features.DAY_OF_WEEK: tf.keras.Input(shape=(), dtype=tf.int32, name=features.DAY_OF_WEEK),
        features.QUERY_TOKEN_IDS: tf.keras.Input(
            shape=(query_text_length,), dtype=tf.int32, name=features.QUERY_TOKEN_IDS
        ),
    }


def _time_embedding(values: tf.Tensor, size: int, dim: int, name: str) -> tf.Tensor:
    # IntegerLookup rather than a bare Embedding: an out-of-range hour in a request lands in
    # the OOV bucket instead of failing the lookup on CPU.
    index = tf.keras.layers.IntegerLookup(
        vocabulary=list(range(size)), num_oov_indices=1, name=f"{name}_lookup"
    )(values)
    return tf.keras.layers.Embedding(size + 1, dim, name=f"{name}_embedding")(index)


def build_query_tower(
    users: Sequence[str],
    max_history: int,
    query_text_length: int,
    embedding_dim: int,
    id_embedding_dim: int = 32,
    history_encoder: tf.keras.Model | None = None,
    text_encoder: tf.keras.Model | None = None,
    use_user_ids: bool = True,
    use_time: bool = True,
    hidden_units: Sequence[int] = (128,),
    normalize: bool = True,
    name: str = "query_tower",
) -> tf.keras.Model:
    """Builds the query tower: one embedding per request, scored against item embeddings.

    Combines a user-id embedding (unknown users share the OOV bucket), the encoded recent
    events (`history_encoder`), hour-of-day and day-of-week embeddings, and the optional search
    query encoded by the SAME `text_encoder` as the candidate tower, so query words and item
    words share one space. An empty query (all token ids 0) encodes to zero and a user with no
    history too, so neither adds noise.

    Args:
        users: sequence of str. User-id vocabulary (`FeatureSpec.users`).
        max_history: int. History positions (`FeatureSpec.max_history`).
        query_text_length: int. Tokens per search query (`FeatureSpec.query_text_length`).
        embedding_dim: int. Output size, shared with the candidate tower.
        id_embedding_dim: int. Size of the user-id and time embeddings. Defaults to 32.
        history_encoder: Model or None. `[history_item_ids, history_event_types]` ->
            `[batch, dim]`, from `tfrec.layers.history_encoder.build_history_encoder`.
            None: history is ignored. Defaults to None.
        text_encoder: Model or None. The candidate tower's text encoder (a Functional model, or
            a `tfrec.layers.pretrained_text_encoder.PretrainedTextEncoder`, which encodes
            queries live). None: the search query is ignored. Defaults to None.
        use_user_ids: bool. Whether to embed user ids. Defaults to True.
        use_time: bool. Whether to embed hour of day and day of week. Defaults to True.
        hidden_units: sequence of int. ReLU layers before the output projection.
            Defaults to (128,).
        normalize: bool. L2-normalize the output (cosine scores). Defaults to True.
        name: str. Model name. Defaults to "query_tower".

    Returns:
        A Functional model: dict of `features.QUERY_FEATURES` (`user_id` tf.string `[batch]`,
        `history_item_ids` and `history_event_types` tf.string `[batch, max_history]`,
        `hour_of_day` and `day_of_week` int32 `[batch]`, `query_token_ids` int32
        `[batch, query_text_length]`) -> float32 `[batch, embedding_dim]`.

    Example:
        >>> tower = build_query_tower(["u1"], max_history=4, query_text_length=8, embedding_dim=16)
        >>> tower(batch_of_query_features).shape
        TensorShape([batch, 16])
    """
    if not (use_user_ids or use_time or history_encoder is not None or text_encoder is not None):
        raise ValueError(
            "the tower needs at least one input: received use_user_ids=False, use_time=False, "
            "history_encoder=None and text_encoder=None"
        )
    if not isinstance(embedding_dim, int) or embedding_dim < 1:
        raise ValueError(f"`embedding_dim` must be an int >= 1, received {embedding_dim!r}")
    inputs = _inputs(max_history, query_text_length)
    parts = []
    if use_user_ids:
        index = tf.keras.layers.StringLookup(
            vocabulary=list(users), num_oov_indices=1, name="user_lookup"
        )(inputs[features.USER_ID])
        parts.append(
            tf.keras.layers.Embedding(len(users) + 1, id_embedding_dim, name="user_embedding")(
                index
            )
        )
    if history_encoder is not None:
        parts.append(
            history_encoder(
                [inputs[features.HISTORY_ITEM_IDS], inputs[features.HISTORY_EVENT_TYPES]]
            )
        )
    if use_time:
        parts.append(_time_embedding(inputs[features.HOUR_OF_DAY], 24, id_embedding_dim, "hour"))
        parts.append(_time_embedding(inputs[features.DAY_OF_WEEK], 7, id_embedding_dim, "day"))
    if text_encoder is not None:
        parts.append(text_encoder(inputs[features.QUERY_TOKEN_IDS]))
    x = tower_head.tower_head(parts, hidden_units, embedding_dim, normalize, "query")
    return tf.keras.Model(inputs, x, name=name)
