"""Batch inference with trained towers: item and query embeddings, and their scores."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf

from tfrec import features
from tfrec.data import pipeline, vocab


def _embed(model: tf.keras.Model, ds: tf.data.Dataset) -> np.ndarray:
    # The model is called per batch: Model.predict would wrap the loop in its own progress bar.
    parts = [np.asarray(model(batch, training=False), dtype=np.float32) for batch in ds]
    return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)


def item_embeddings(
    candidate_model: tf.keras.Model, table: vocab.ItemTable, batch_size: int = 4096
) -> np.ndarray:
    """[num_items, dim] embeddings of the whole catalog, in catalog order.

    An item the tower knows nothing about (`ItemTable.informed` false: an id it never trained
    on, no text, no known category, no price) gets the zero vector, so it scores 0 against
    every query: no evidence for or against it. Left to the tower, all such items would share
    one vector that training never shaped, which can put every one of them at the top of every
    list.
    """
    vectors = _embed(candidate_model, pipeline.candidate_dataset(table, batch_size))
    if table.informed is not None and len(vectors):
        vectors[~table.informed] = 0.0
    return vectors


def query_embeddings(
    query_model: tf.keras.Model,
    queries: pipeline.QuerySource,
    spec: features.FeatureSpec,
    batch_size: int = 1024,
) -> np.ndarray:
    """[num_queries, dim] embeddings of evaluation queries (no search text)."""
    return _embed(query_model, pipeline.query_dataset(queries, spec, batch_size))


def dot_score_fn(queries: np.ndarray, items: np.ndarray) -> Callable[[int, int], np.ndarray]:
    """A score function for the evaluation protocol: dot products against the full catalog."""

    def score(start: int, end: int) -> np.ndarray:
        return queries[start:end] @ items.T

    return score
