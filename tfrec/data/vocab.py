"""Vocabularies and the item feature table, learned from the training split only."""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np
import pandas as pd

from tfrec import config as config_lib
from tfrec import errors, features
from tfrec.data import schema

_TOKENIZE_BATCH = 8192


def _by_frequency(values: pd.Series) -> list:
    """Distinct non-empty values, most frequent first; ties by value so the order is stable."""
    counts = values[values != ""].value_counts(sort=False)
    frame = pd.DataFrame({"value": counts.index.astype(str), "count": counts.to_numpy()})
    frame = frame.sort_values(["count", "value"], ascending=[False, True], kind="stable")
    return frame["value"].tolist()


def _log_price(price: np.ndarray) -> np.ndarray:
    """log1p(price), NaN where the price is unknown or negative."""
    price = np.asarray(price, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.where(price >= 0, np.log1p(np.where(price >= 0, price, 0.0)), np.nan)


def _word_piece(texts: np.ndarray, vocab_size: int) -> list:
    """A lowercase WordPiece vocabulary over `texts`, SPECIAL_TOKENS first."""
    import keras_nlp
    import tensorflow as tf

    non_empty = [t for t in texts.tolist() if t]
    if not non_empty:
        return list(features.SPECIAL_TOKENS)
    data = tf.data.Dataset.from_tensor_slices(non_empty).batch(1024)
    vocab = keras_nlp.tokenizers.compute_word_piece_vocabulary(
        data,
        vocabulary_size=vocab_size,
        lowercase=True,
        strip_accents=True,  # as the tokenizer of FeatureSpec does
        reserved_tokens=list(features.SPECIAL_TOKENS),
    )
    if tuple(vocab[: len(features.SPECIAL_TOKENS)]) != features.SPECIAL_TOKENS:
        raise errors.DataError(
            f"WordPiece vocabulary must start with {features.SPECIAL_TOKENS}, "
            f"received {vocab[: len(features.SPECIAL_TOKENS)]}"
        )
    return list(vocab)


def build_feature_spec(
    train: pd.DataFrame,
    items: pd.DataFrame,
    data: config_lib.DataConfig,
    text_encoder: config_lib.TextEncoderConfig | None = None,
) -> features.FeatureSpec:
    """Learns every vocabulary of the model inputs from the training interactions.

    Only training data is used, so validation and test ids and words stay out of vocabulary
    as they would for a freshly served model. A pretrained text model (`text_encoder.mode`
    frozen or finetune) reads text with the WordPiece vocabulary and casing it was trained
    with: the spec then holds the preset's tokenizer settings instead of learned ones, so the
    tf.data pipelines and the exported tokenizer produce the ids the model knows.

    Args:
        train: pd.DataFrame. Training interactions (canonical schema).
        items: pd.DataFrame. The item catalog (canonical schema).
        data: DataConfig. Supplies `max_history`, `text_length`, `query_text_length`,
            `vocab_size`.
        text_encoder: TextEncoderConfig or None. Its `mode` and `preset` decide where the
            WordPiece vocabulary comes from. None: learned (mode scratch).

    Returns:
        FeatureSpec with users and items by training frequency, categories of the trained
        items by item count, the WordPiece vocabulary of their text (or the preset's) and
        their log1p price moments.
    """
    if len(train) == 0:
        raise errors.DataError("`train` must hold at least one interaction, received 0 rows")
    if data.vocab_size <= len(features.SPECIAL_TOKENS):
        raise errors.ConfigError(
            f"`data.vocab_size` must exceed the {len(features.SPECIAL_TOKENS)} special tokens, "
            f"received {data.vocab_size}"
        )
    item_ids = _by_frequency(train["item_id"].astype(str))
    catalog = items.loc[items["item_id"].isin(item_ids)]
    log_price = _log_price(catalog["price"].to_numpy())
    log_price = log_price[np.isfinite(log_price)]
    price_mean = float(log_price.mean()) if len(log_price) else 0.0
    price_std = float(log_price.std()) if len(log_price) else 1.0
    if text_encoder is not None and text_encoder.mode != "scratch":
        from tfrec import presets

        pretrained = presets.vocabulary(presets.resolve(text_encoder.preset))
        wordpiece = list(pretrained.tokens)
        casing = {"lowercase": pretrained.lowercase, "strip_accents": pretrained.strip_accents}
    else:
        wordpiece = _word_piece(schema.item_text(catalog), data.vocab_size)
        casing = {"lowercase": True, "strip_accents": True}
    return features.FeatureSpec(
        max_history=data.max_history,
        text_length=data.text_length,
        query_text_length=data.query_text_length,
        event_types=tuple(schema.EVENT_TYPES),
        users=_by_frequency(train["user_id"].astype(str)),
        items=item_ids,
        categories=_by_frequency(catalog["category"].astype(str)),
        wordpiece=wordpiece,
        price_mean=price_mean,
        price_std=price_std if price_std > 1e-6 else 1.0,  # one price: avoid dividing by 0
        **casing,
    )


def item_counts(train: pd.DataFrame, spec: features.FeatureSpec) -> np.ndarray:
    """Training interaction count of each item of `spec.items` (int64 [len(spec.items)])."""
    codes = pd.Index(spec.items).get_indexer(train["item_id"].astype(str))
    return np.bincount(codes[codes >= 0], minlength=len(spec.items)).astype(np.int64)


@dataclasses.dataclass
class ItemTable:
    """Candidate features of every catalog item, in catalog order (the evaluation index).

    Args:
        features: dict of np.ndarray keyed by tfrec.features.CANDIDATE_FEATURES:
            ITEM_ID [n] object, ITEM_TOKEN_IDS [n, text_length] int32, ITEM_CATEGORY [n]
            object, ITEM_PRICE [n] float32.
        titles: np.ndarray [n] object. Item titles, the source of synthetic search queries.
        informed: np.ndarray [n] bool or None. Whether the item tower has anything to read for
            the item: an id it trained on, text, a known category or a price. None: every item.
    """

    features: dict
    titles: np.ndarray
    informed: Optional[np.ndarray] = None

    def __post_init__(self):
        self._index = pd.Index(self.features[features.ITEM_ID])

    def __len__(self) -> int:
        return len(self.titles)

    @property
    def item_ids(self) -> np.ndarray:
        """[n] object: the catalog item ids, row i is catalog index i."""
        return self.features[features.ITEM_ID]

    def __getitem__(self, name: str) -> np.ndarray:
        return self.features[name]

    def index_of(self, item_ids) -> np.ndarray:
        """Catalog rows of `item_ids` (int64, same shape), -1 for items not in the catalog."""
        ids = np.asarray(item_ids, dtype=object)
        rows = self._index.get_indexer(ids.ravel())
        return rows.astype(np.int64).reshape(ids.shape)


def tokenize(texts: np.ndarray, spec: features.FeatureSpec, length: int) -> np.ndarray:
    """WordPiece ids [len(texts), length] int32, 0 padding, tokenized in batches in tf.data."""
    import tensorflow as tf

    if len(texts) == 0:
        return np.zeros([0, length], np.int32)
    tokenizer = spec.tokenizer(length)
    data = (
        tf.data.Dataset.from_tensor_slices(np.asarray(texts, dtype=object).astype(str))
        .batch(_TOKENIZE_BATCH)
        .map(tokenizer, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    )
    return np.concatenate([batch.numpy() for batch in data]).astype(np.int32)


def build_item_table(items: pd.DataFrame, spec: features.FeatureSpec) -> ItemTable:
    """Tokenizes and standardizes the whole catalog, one row per item in `items` order.

    Args:
        items: pd.DataFrame. The item catalog (canonical schema), unique `item_id`.
        spec: FeatureSpec. Supplies the tokenizer, `text_length` and the price moments.

    Returns:
        ItemTable.
    """
    ids = items["item_id"].astype(str).to_numpy(dtype=object)
    if pd.Index(ids).has_duplicates:
        dup = pd.Index(ids)[pd.Index(ids).duplicated()][0]
        raise errors.DataError(f"`items.item_id` must be unique, received {dup!r} twice")
    price = (_log_price(items["price"].to_numpy()) - spec.price_mean) / spec.price_std
    table = {
        features.ITEM_ID: ids,
        features.ITEM_TOKEN_IDS: tokenize(schema.item_text(items), spec, spec.text_length),
        features.ITEM_CATEGORY: items["category"].fillna("").astype(str).to_numpy(dtype=object),
        features.ITEM_PRICE: np.nan_to_num(price, nan=0.0).astype(np.float32),
    }
    titles = items["title"].fillna("").astype(str).to_numpy(dtype=object)
    informed = (
        np.isin(ids, np.asarray(spec.items, dtype=object))
        | table[features.ITEM_TOKEN_IDS].any(axis=1)
        | (
            np.isin(table[features.ITEM_CATEGORY], np.asarray(spec.categories, dtype=object))
            & (table[features.ITEM_CATEGORY] != "")
        )
        | ~np.isnan(items["price"].to_numpy(dtype=np.float64))
    )
    return ItemTable(features=table, titles=titles, informed=informed)
