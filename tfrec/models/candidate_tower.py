"""Candidate (item) tower: item id, text, category and price -> an L2-normalized embedding."""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from tfrec import features
from tfrec.layers import id_dropout
from tfrec.models import tower_head


def _inputs(text_length: int) -> dict:
    return {
        features.ITEM_ID: tf.keras.Input(shape=(), dtype=tf.string, name=features.ITEM_ID),
        features.ITEM_TOKEN_IDS: tf.keras.Input(
            shape=(text_length,), dtype=tf.int32, name=features.ITEM_TOKEN_IDS
        ),
        features.ITEM_CATEGORY: tf.keras.Input(
            shape=(), dtype=tf.string, name=features.ITEM_CATEGORY
        ),
        features.ITEM_PRICE: tf.keras.Input(shape=(), dtype=tf.float32, name=features.ITEM_PRICE),
    }


def build_candidate_tower(
    items: Sequence[str],
    categories: Sequence[str],
    text_length: int,
    embedding_dim: int,
    id_embedding_dim: int = 32,
    text_encoder: tf.keras.Model | None = None,
    use_item_ids: bool = True,
    use_category_and_price: bool = True,
    item_id_dropout: float = 0.0,
    hidden_units: Sequence[int] = (128,),
    normalize: bool = True,
    name: str = "candidate_tower",
) -> tf.keras.Model:
    """Builds the item tower: one embedding per catalog item, comparable with query embeddings.

    Combines an item-id embedding (memorises popular items), the shared text encoder over the
    item's WordPiece ids (generalises to new and rare items), a category embedding and the
    standardized price. Item ids and categories outside the training vocabulary share an OOV
    bucket; with `item_id_dropout` the tower also learns to use that bucket, so an item first
    seen at serving time still gets a meaningful embedding from its text, category and price.

    Args:
        items: sequence of str. Item-id vocabulary (`FeatureSpec.items`).
        categories: sequence of str. Category vocabulary (`FeatureSpec.categories`).
        text_length: int. Tokens per item text (`FeatureSpec.text_length`).
        embedding_dim: int. Output size, shared with the query tower.
        id_embedding_dim: int. Size of the item-id and category embeddings. Defaults to 32.
        text_encoder: Model or None. Token ids `[batch, length]` -> `[batch, dim]`, usually from
            `tfrec.layers.text_encoder.build_text_encoder` and shared with the query tower; one
            with `reads_item_ids` (`PretrainedTextEncoder`) gets `{"token_ids", "item_ids"}`
            so it can read per-item cached states. None: no text. Defaults to None.
        use_item_ids: bool. Whether to embed item ids. Defaults to True.
        use_category_and_price: bool. Whether to embed the category and use the price.
            Defaults to True.
        item_id_dropout: float in [0, 1). Training-time probability of replacing an item id by
            the OOV id. Defaults to 0.0.
        hidden_units: sequence of int. ReLU layers before the output projection.
            Defaults to (128,).
        normalize: bool. L2-normalize the output (cosine scores). Defaults to True.
        name: str. Model name. Defaults to "candidate_tower".

    Returns:
        A Functional model: dict of `features.CANDIDATE_FEATURES` (`item_id` tf.string
        `[batch]`, `item_token_ids` int32 `[batch, text_length]`, `item_category` tf.string
        `[batch]`, `item_price` float32 `[batch]`) -> float32 `[batch, embedding_dim]`.

    Example:
        >>> tower = build_candidate_tower(["i1", "i2"], ["toys"], 8, embedding_dim=16)
        >>> tower({"item_id": tf.constant(["i1"]), "item_token_ids": tf.zeros([1, 8], tf.int32),
        ...        "item_category": tf.constant([""]), "item_price": tf.constant([0.0])}).shape
        TensorShape([1, 16])
    """
    if not (use_item_ids or use_category_and_price or text_encoder is not None):
        raise ValueError(
            "the tower needs at least one input: received use_item_ids=False, "
            "use_category_and_price=False and text_encoder=None"
        )
    if not isinstance(embedding_dim, int) or embedding_dim < 1:
        raise ValueError(f"`embedding_dim` must be an int >= 1, received {embedding_dim!r}")
    inputs = _inputs(text_length)
    parts = []
    if use_item_ids:
        # num_oov_indices=1, no mask token: unknown ids map to index 0, the OOV bucket.
        index = tf.keras.layers.StringLookup(
            vocabulary=list(items), num_oov_indices=1, name="item_lookup"
        )(inputs[features.ITEM_ID])
        index = id_dropout.IdDropout(item_id_dropout, oov_index=0, name="item_id_dropout")(index)
        parts.append(
            tf.keras.layers.Embedding(len(items) + 1, id_embedding_dim, name="item_embedding")(
                index
            )
        )
    if text_encoder is not None:
        tokens = inputs[features.ITEM_TOKEN_IDS]
        if getattr(text_encoder, "reads_item_ids", False):
            # A pretrained encoder reads its cached per-item part by item id (new items: live).
            parts.append(text_encoder({"token_ids": tokens, "item_ids": inputs[features.ITEM_ID]}))
        else:
            parts.append(text_encoder(tokens))
    if use_category_and_price:
        # "" (unknown category) is dropped from the vocabulary so it shares the OOV bucket.
        known = [c for c in categories if c]
        # A catalog without categories (UCI Online Retail) has nothing to embed: the feature is
        # left out rather than given an empty vocabulary, which StringLookup refuses.
        if known:
            category = tf.keras.layers.StringLookup(
                vocabulary=known, num_oov_indices=1, name="category_lookup"
            )(inputs[features.ITEM_CATEGORY])
            parts.append(
                tf.keras.layers.Embedding(
                    len(known) + 1, id_embedding_dim, name="category_embedding"
                )(category)
            )
        parts.append(tf.keras.layers.Reshape((1,), name="price")(inputs[features.ITEM_PRICE]))
    x = tower_head.tower_head(parts, hidden_units, embedding_dim, normalize, "item")
    return tf.keras.Model(inputs, x, name=name)
