"""tf.data input pipelines: retrieval training pairs, evaluation queries and the candidate catalog."""

from __future__ import annotations

from typing import Union

import numpy as np
import pandas as pd
import tensorflow as tf

from tfrec import errors, features
from tfrec.data import examples as examples_lib
from tfrec.data import vocab

QuerySource = Union[examples_lib.RetrievalExamples, examples_lib.EvalQueries]

# Search queries are drawn from at most this many leading title words (bits of an int64 mask).
_MAX_QUERY_WORDS = 62


def _strings(values: np.ndarray) -> tuple[tf.Tensor, tf.Tensor]:
    """int32 codes (same shape) and a tf.string vocabulary, so tf.data gathers strings by id.

    Capturing millions of Python strings as a tf.string tensor is slow and large; the distinct
    values are few (items, users), so the pipeline keeps codes and looks strings up per batch.
    """
    values = np.asarray(values, dtype=object)
    codes, uniques = pd.factorize(values.ravel(), sort=False)
    vocabulary = np.asarray(uniques, dtype=object).astype(str)
    if len(vocabulary) == 0:
        vocabulary = np.asarray([""])
    return (
        tf.constant(codes.astype(np.int32).reshape(values.shape)),
        tf.constant(vocabulary.astype(object), tf.string),
    )


def _check_batch_size(batch_size: int) -> None:
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise errors.ConfigError(f"`batch_size` must be a positive int, received {batch_size!r}")


class QueryPreprocessor:
    """Turns example indices into the query features of the towers' signature.

    Works on a scalar index (features of one example) or a vector (a batch), so the same function
    serves eager checks, `ds.map` before batching and `ds.map` after batching.

    Args:
        source: RetrievalExamples or EvalQueries.
        spec: FeatureSpec. Supplies `max_history` and `query_text_length`.
    """

    def __init__(self, source: QuerySource, spec: features.FeatureSpec):
        history = np.asarray(source.history_item_ids)
        if history.ndim != 2 or history.shape[1] != spec.max_history:
            raise errors.DataError(
                f"`history_item_ids` must have shape [n, {spec.max_history}] "
                f"(spec.max_history), received {list(history.shape)}"
            )
        self.spec = spec
        self.size = len(source.user_id)
        self._user, self._user_vocab = _strings(source.user_id)
        self._history, self._history_vocab = _strings(history)
        self._events, self._events_vocab = _strings(source.history_event_types)
        self._hour = tf.constant(np.asarray(source.hour_of_day, np.int32))
        self._day = tf.constant(np.asarray(source.day_of_week, np.int32))

    def _query(self, index: tf.Tensor) -> dict:
        batch = tf.shape(index)[0]
        return {
            features.USER_ID: tf.gather(self._user_vocab, tf.gather(self._user, index)),
            features.HISTORY_ITEM_IDS: tf.gather(
                self._history_vocab, tf.gather(self._history, index)
            ),
            features.HISTORY_EVENT_TYPES: tf.gather(
                self._events_vocab, tf.gather(self._events, index)
            ),
            features.HOUR_OF_DAY: tf.gather(self._hour, index),
            features.DAY_OF_WEEK: tf.gather(self._day, index),
            features.QUERY_TOKEN_IDS: tf.zeros([batch, self.spec.query_text_length], tf.int32),
        }

    def _features(self, index: tf.Tensor) -> dict:
        return self._query(index)

    # Plain tensor code with no data-dependent Python control flow: skipping AutoGraph
    # (here and in the tokenizer it calls) makes tracing several times faster.
    @tf.autograph.experimental.do_not_convert
    def __call__(self, index) -> dict:
        """Features for `index` (int64 [] or [batch]); shapes follow spec.tensor_specs()."""
        index = tf.convert_to_tensor(index, tf.int64)
        out = self._features(tf.reshape(index, [-1]))
        if index.shape.rank == 0:
            out = {name: tf.squeeze(value, axis=0) for name, value in out.items()}
        return out


class RetrievalPreprocessor(QueryPreprocessor):
    """Query features plus the target's candidate features and an optional search query.

    Args:
        examples: RetrievalExamples.
        table: ItemTable. Candidate features are gathered at each target's catalog row.
        spec: FeatureSpec.
        query_text_rate: float in [0, 1]. Share of examples whose QUERY_TOKEN_IDS hold a search
            query made of a random non-empty subset of the target's title words (in title order).
        seed: int. Seeds which examples get a query and which words; the draw is fixed per
            example, so it does not depend on batching or shuffling.
    """

    def __init__(
        self,
        examples: examples_lib.RetrievalExamples,
        table: vocab.ItemTable,
        spec: features.FeatureSpec,
        query_text_rate: float = 0.0,
        seed: int = 0,
    ):
        super().__init__(examples, spec)
        if not 0.0 <= query_text_rate <= 1.0:
            raise errors.ConfigError(
                f"`query_text_rate` must lie in [0, 1], received {query_text_rate!r}"
            )
        tokens = table[features.ITEM_TOKEN_IDS]
        if tokens.shape[1:] != (spec.text_length,):
            raise errors.DataError(
                f"`table` token ids must have shape [n, {spec.text_length}] (spec.text_length), "
                f"received {list(tokens.shape)}"
            )
        rows = table.index_of(examples.item_id)
        if (rows < 0).any():
            raise errors.DataError(
                f"`examples.item_id` must be in the item table, received "
                f"{examples.item_id[rows < 0][0]!r} and {int((rows < 0).sum()) - 1} more"
            )
        # Keep only the catalog rows some target uses: the captured tensors stay small.
        used, row = np.unique(rows, return_inverse=True)
        self._row = tf.constant(row.astype(np.int32))
        self._item_id = tf.constant(table[features.ITEM_ID][used].astype(str).astype(object))
        self._tokens = tf.constant(tokens[used].astype(np.int32))
        self._category = tf.constant(table[features.ITEM_CATEGORY][used].astype(str).astype(object))
        self._price = tf.constant(table[features.ITEM_PRICE][used].astype(np.float32))
        self.query_text_rate = float(query_text_rate)
        if self.query_text_rate > 0:
            self._titles = tf.constant(table.titles[used].astype(str).astype(object))
            self._words = self._draw_words(seed)
            self._tokenizer = spec.tokenizer(spec.query_text_length)

    def _draw_words(self, seed: int) -> tf.Tensor:
        """Per example an int64 bit mask of the title words in its query (0: no query)."""
        n_words = tf.strings.split(self._titles).row_lengths().numpy()
        n_words = np.minimum(n_words[self._row.numpy()], _MAX_QUERY_WORDS).astype(np.int64)
        rng = np.random.default_rng(seed)
        has_query = (rng.random(self.size) < self.query_text_rate) & (n_words > 0)
        # Each of the first n_words bits is an independent fair coin: keep that word or not.
        bits = rng.integers(0, 2**_MAX_QUERY_WORDS, self.size, dtype=np.int64)
        bits &= (np.int64(1) << n_words) - 1
        # An empty draw would mean "no query": keep one random word instead.
        one = (rng.random(self.size) * np.maximum(n_words, 1)).astype(np.int64)
        bits = np.where(bits == 0, np.int64(1) << one, bits)
        return tf.constant(np.where(has_query, bits, 0).astype(np.int64))

    def _query_text(self, index: tf.Tensor, row: tf.Tensor) -> tf.Tensor:
        words = tf.strings.split(tf.gather(self._titles, row))  # ragged [batch, (words)]
        position = tf.minimum(tf.ragged.range(words.row_lengths()).flat_values, _MAX_QUERY_WORDS)
        mask = tf.gather(tf.gather(self._words, index), words.value_rowids())
        keep = tf.bitwise.bitwise_and(tf.bitwise.right_shift(mask, position), 1) > 0
        kept = tf.ragged.boolean_mask(words, words.with_flat_values(keep))
        return tf.strings.reduce_join(kept, axis=-1, separator=" ")

    @tf.autograph.experimental.do_not_convert
    def query_text(self, index) -> tf.Tensor:
        """The search query strings of examples `index` (int64 [batch]); "" means no query."""
        index = tf.reshape(tf.convert_to_tensor(index, tf.int64), [-1])
        if self.query_text_rate == 0:
            return tf.fill(tf.shape(index), "")
        return self._query_text(index, tf.gather(self._row, index))

    def _features(self, index: tf.Tensor) -> dict:
        out = self._query(index)
        row = tf.gather(self._row, index)
        out[features.ITEM_ID] = tf.gather(self._item_id, row)
        out[features.ITEM_TOKEN_IDS] = tf.gather(self._tokens, row)
        out[features.ITEM_CATEGORY] = tf.gather(self._category, row)
        out[features.ITEM_PRICE] = tf.gather(self._price, row)
        if self.query_text_rate > 0:
            text = self._query_text(index, row)
            # "" tokenizes to all [PAD] = 0, the "no query" encoding.
            out[features.QUERY_TOKEN_IDS] = tf.cast(self._tokenizer(text), tf.int32)
        return out


def _indexed(
    size: int,
    batch_size: int,
    preprocess,
    drop_remainder: bool = False,
    shuffle: bool = False,
    seed: int = 0,
    repeat: bool = False,
) -> tf.data.Dataset:
    _check_batch_size(batch_size)
    ds = tf.data.Dataset.range(size)
    if shuffle and size > 0:
        ds = ds.shuffle(size, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    # Batch first, then map: one vectorized gather per batch instead of one per example.
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    ds = ds.map(preprocess, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def retrieval_dataset(
    examples: examples_lib.RetrievalExamples,
    table: vocab.ItemTable,
    spec: features.FeatureSpec,
    batch_size: int,
    shuffle: bool = True,
    seed: int = 0,
    query_text_rate: float = 0.0,
    repeat: bool = False,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """Batches of (query, positive candidate) features for two-tower retrieval training.

    Args:
        examples: RetrievalExamples.
        table: ItemTable. Source of the targets' candidate features.
        spec: FeatureSpec.
        batch_size: int. Examples per batch.
        shuffle: bool. Reshuffle every epoch (deterministic given `seed`). Defaults to True.
        seed: int. Seeds the shuffle and the search-query draw. Defaults to 0.
        query_text_rate: float. Share of examples given a search query. Defaults to 0.0.
        repeat: bool. Repeat forever. Defaults to False.
        drop_remainder: bool. Drop the last partial batch. Defaults to False.

    Returns:
        tf.data.Dataset of dicts with every name of QUERY_FEATURES and CANDIDATE_FEATURES,
        each shaped [batch] + spec.tensor_specs()[name].shape.
    """
    preprocess = RetrievalPreprocessor(examples, table, spec, query_text_rate, seed)
    return _indexed(len(examples), batch_size, preprocess, drop_remainder, shuffle, seed, repeat)


def query_dataset(
    queries_or_examples: QuerySource, spec: features.FeatureSpec, batch_size: int
) -> tf.data.Dataset:
    """Batches of QUERY_FEATURES in source order, without search text (QUERY_TOKEN_IDS zeros)."""
    preprocess = QueryPreprocessor(queries_or_examples, spec)
    return _indexed(len(queries_or_examples), batch_size, preprocess)


def candidate_dataset(table: vocab.ItemTable, batch_size: int) -> tf.data.Dataset:
    """Batches of CANDIDATE_FEATURES of every catalog item, in catalog order."""
    _check_batch_size(batch_size)
    tensors = {}
    for name in features.CANDIDATE_FEATURES:
        value = table[name]
        tensors[name] = value.astype(str).astype(object) if value.dtype == object else value
    ds = tf.data.Dataset.from_tensor_slices(tensors).batch(batch_size)
    return ds.prefetch(tf.data.AUTOTUNE)
