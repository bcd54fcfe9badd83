"""The DCN-v2 ranking network: a Functional model from raw request features to one logit per head."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

from tfrec import features
from tfrec.ranking import similarity

# Inputs the ranker reads, with their per-example shape (None: [max_history]) and dtype.
RANKING_FEATURES = (
    features.USER_ID,
    features.ITEM_ID,
    features.HOUR_OF_DAY,
    features.DAY_OF_WEEK,
    features.HISTORY_ITEM_IDS,
    features.HISTORY_EVENT_TYPES,
    features.ITEM_CATEGORY,
    features.ITEM_PRICE,
    features.RETRIEVAL_SCORE,
)
ITEM_VECTORS_LAYER = "item_vectors"
# What `tf.keras.models.load_model` / `Model.from_config` need besides built-in layers.
CUSTOM_OBJECTS = {
    "Cross": tfrs.layers.dcn.Cross,
    "HistorySimilarity": similarity.HistorySimilarity,
    "HistoryRepeats": similarity.HistoryRepeats,
}


def _vocabulary(values: Sequence[str], name: str, allow_empty: bool = False) -> list:
    values = [str(v) for v in values]
    if not values and not allow_empty:
        raise ValueError(f"`{name}` must hold at least one id, received an empty list")
    if "" in values:
        raise ValueError(f"`{name}` must not contain the empty string (it means padding)")
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"`{name}` must be unique, received {value!r} twice")
        seen.add(value)
    return values


def _inputs(max_history: int) -> dict:
    string, int32 = tf.string, tf.int32
    shapes = {
        features.USER_ID: ((), string),
        features.ITEM_ID: ((), string),
        features.HOUR_OF_DAY: ((), int32),
        features.DAY_OF_WEEK: ((), int32),
        features.HISTORY_ITEM_IDS: ((max_history,), string),
        features.HISTORY_EVENT_TYPES: ((max_history,), string),
        features.ITEM_CATEGORY: ((), string),
        features.ITEM_PRICE: ((), tf.float32),
        features.RETRIEVAL_SCORE: ((), tf.float32),
    }
    return {n: tf.keras.Input(shape=s, dtype=d, name=n) for n, (s, d) in shapes.items()}


def _id_embedding(ids: tf.Tensor, vocabulary: list, dim: int, name: str) -> tf.Tensor:
    # One OOV index (0): ids unseen in training share a learned "unknown" vector.
    lookup = tf.keras.layers.StringLookup(vocabulary=vocabulary, name=f"{name}_lookup")
    return tf.keras.layers.Embedding(len(vocabulary) + 1, dim, name=f"{name}_embedding")(
        lookup(ids)
    )


def _int_embedding(values: tf.Tensor, size: int, dim: int, name: str) -> tf.Tensor:
    # IntegerLookup keeps an out-of-range hour or weekday from a request OOV-safe.
    lookup = tf.keras.layers.IntegerLookup(vocabulary=list(range(size)), name=f"{name}_lookup")
    return tf.keras.layers.Embedding(size + 1, dim, name=f"{name}_embedding")(lookup(values))


def build_ranking_network(
    *,
    users: Sequence[str],
    items: Sequence[str],
    categories: Sequence[str],
    event_types: Sequence[str],
    item_ids: Sequence[str],
    item_vectors: np.ndarray,
    max_history: int,
    heads: Sequence[str],
    id_embedding_dim: int = 16,
    context_embedding_dim: int = 4,
    cross_layers: int = 2,
    projection_dim: Optional[int] = None,
    mlp: Sequence[int] = (128, 64),
    name: str = "ranking_network",
) -> tf.keras.Model:
    """Builds the DCN-v2 network that scores one (request, candidate item) pair per row.

    Every lookup from raw string ids happens inside the graph, so a served `rank` signature
    takes the request as it arrives. The candidate's frozen item vector (from the retrieval
    item tower, carrying the item's text) is both a feature and the basis of the candidate's
    pooled similarity to the user's recent events (see `HistorySimilarity`); exact repeats of
    the candidate in those events are counted (`HistoryRepeats`), and the first stage's own
    score of the candidate (`retrieval_score`) is an input, so the ranker learns a correction
    of the retrieval order rather than a new order from scratch. All features are
    concatenated, crossed `cross_layers` times with `tfrs.layers.dcn.Cross`, passed through a
    ReLU MLP and projected to one float32 logit per head.

    Args:
        users: list of str. User ids with a learned embedding; others share the OOV vector.
        items: list of str. Item ids with a learned embedding; others share the OOV vector.
        categories: list of str. Item categories with a learned embedding (may be empty).
        event_types: list of str. Event types of the history (others count as unknown).
        item_ids: list of str. Ids of the rows of `item_vectors`.
        item_vectors: np.ndarray [num_items, dim]. Frozen item embeddings; unknown ids -> 0.
        max_history: int. Length of the history inputs.
        heads: list of str. One output logit per head, e.g. ("view", "cart", "purchase").
        id_embedding_dim: int. Width of user, item and category embeddings. Defaults to 16.
        context_embedding_dim: int. Width of hour and weekday embeddings. Defaults to 4.
        cross_layers: int. Number of DCN-v2 cross layers. Defaults to 2.
        projection_dim: int or None. Low-rank cross layers when set. Defaults to None.
        mlp: list of int. Hidden ReLU layer widths after the cross layers. Defaults to (128, 64).
        name: str. Model name. Defaults to "ranking_network".

    Returns:
        A Functional tf.keras.Model from the dict of `RANKING_FEATURES` (batched, shapes
        [batch] or [batch, max_history]) to a dict head -> float32 logits [batch, 1].

    Example:
        >>> net = build_ranking_network(users=["u1"], items=["a", "b"], categories=["shoes"],
        ...     event_types=["view"], item_ids=["a", "b"], item_vectors=np.eye(2, dtype="f4"),
        ...     max_history=3, heads=["view"], mlp=(8,))
    """
    users = _vocabulary(users, "users")
    items = _vocabulary(items, "items")
    categories = _vocabulary(categories, "categories", allow_empty=True)
    event_types = _vocabulary(event_types, "event_types")
    item_ids = _vocabulary(item_ids, "item_ids")
    heads = _vocabulary(heads, "heads")
    item_vectors = np.asarray(item_vectors, dtype=np.float32)
    if item_vectors.ndim != 2 or item_vectors.shape[0] != len(item_ids):
        raise ValueError(
            f"`item_vectors` must be [len(item_ids), dim] = [{len(item_ids)}, dim], "
            f"received shape {item_vectors.shape}"
        )
    for arg, value in (
        ("max_history", max_history),
        ("id_embedding_dim", id_embedding_dim),
        ("context_embedding_dim", context_embedding_dim),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"`{arg}` must be a positive int, received {value!r}")
    if isinstance(cross_layers, bool) or not isinstance(cross_layers, int) or cross_layers < 0:
        raise ValueError(f"`cross_layers` must be an int >= 0, received {cross_layers!r}")

    inputs = _inputs(max_history)
    # A catalog without categories still needs a non-empty vocabulary; every real category is
    # then OOV, which is what "no category information" should mean.
    category_vocab = categories or ["<no categories>"]
    parts = [
        _id_embedding(inputs[features.USER_ID], users, id_embedding_dim, "user"),
        _id_embedding(inputs[features.ITEM_ID], items, id_embedding_dim, "item"),
        _id_embedding(inputs[features.ITEM_CATEGORY], category_vocab, id_embedding_dim, "category"),
        _int_embedding(inputs[features.HOUR_OF_DAY], 24, context_embedding_dim, "hour"),
        _int_embedding(inputs[features.DAY_OF_WEEK], 7, context_embedding_dim, "weekday"),
        tf.keras.layers.Reshape((1,), name="price")(inputs[features.ITEM_PRICE]),
        # The first stage's verdict: the ranker corrects it rather than starting from nothing.
        tf.keras.layers.Reshape((1,), name="retrieval")(inputs[features.RETRIEVAL_SCORE]),
    ]

    # Frozen table: row 0 (OOV and "" padding) is zeros, so unknown items relate to nothing.
    vector_lookup = tf.keras.layers.StringLookup(vocabulary=item_ids, name="item_vector_lookup")
    vector_table = tf.keras.layers.Embedding(
        len(item_ids) + 1,
        item_vectors.shape[1],
        embeddings_initializer="zeros",
        trainable=False,
        name=ITEM_VECTORS_LAYER,
    )
    candidate_vector = vector_table(vector_lookup(inputs[features.ITEM_ID]))
    history_vectors = vector_table(vector_lookup(inputs[features.HISTORY_ITEM_IDS]))
    event_lookup = tf.keras.layers.StringLookup(
        vocabulary=event_types, mask_token="", name="event_type_lookup"
    )
    event_index = event_lookup(inputs[features.HISTORY_EVENT_TYPES])
    history_similarity = similarity.HistorySimilarity(len(event_types), name="history_similarity")
    history_repeats = similarity.HistoryRepeats(len(event_types), name="history_repeats")
    parts += [
        candidate_vector,
        history_similarity([candidate_vector, history_vectors, event_index]),
        history_repeats([inputs[features.ITEM_ID], inputs[features.HISTORY_ITEM_IDS], event_index]),
    ]

    x0 = tf.keras.layers.Concatenate(name="features")(parts)
    x = x0
    for i in range(cross_layers):
        x = tfrs.layers.dcn.Cross(projection_dim=projection_dim, name=f"cross_{i}")(x0, x)
    for i, units in enumerate(mlp):
        x = tf.keras.layers.Dense(units, activation="relu", name=f"mlp_{i}")(x)
    # float32 logits even under a mixed policy: the losses and AUC need them.
    outputs = {
        head: tf.keras.layers.Dense(1, dtype="float32", name=f"{head}_logit")(x) for head in heads
    }
    model = tf.keras.Model(inputs=inputs, outputs=outputs, name=name)
    table = np.concatenate([np.zeros_like(item_vectors[:1]), item_vectors], axis=0)
    model.get_layer(ITEM_VECTORS_LAYER).set_weights([table])
    return model
