"""Fixtures for tower and model tests: a tiny hand-built feature spec and random batches.

Also makes the repository root importable so test modules can `from tests import harness`.
"""

import tfrec  # noqa: I001, F401  (first: it selects Keras 2 before TensorFlow loads)
import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tfrec import features

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

NUM_ITEMS, NUM_USERS, VOCAB = 30, 10, 50


@pytest.fixture
def spec() -> features.FeatureSpec:
    """A tiny feature spec, built by hand (the data pipeline is tested elsewhere)."""
    return features.FeatureSpec(
        max_history=5,
        text_length=8,
        query_text_length=4,
        event_types=("view", "cart", "purchase"),
        users=[f"u{i}" for i in range(NUM_USERS)],
        items=[f"i{i}" for i in range(NUM_ITEMS)],
        categories=["toys", "books", "garden"],
        wordpiece=list(features.SPECIAL_TOKENS) + [f"w{i}" for i in range(VOCAB - 5)],
    )


def random_batch(spec: features.FeatureSpec, batch: int, seed: int = 0) -> dict:
    """Random query and candidate features: some padding, empty queries, OOV ids."""
    rng = np.random.default_rng(seed)
    items = np.array(spec.items + ["never-seen"])
    history_length = rng.integers(0, spec.max_history + 1, size=batch)
    positions = np.arange(spec.max_history)[None, :]
    real = positions < history_length[:, None]
    history = np.where(real, rng.choice(items, size=(batch, spec.max_history)), "")
    events = np.where(real, rng.choice(spec.event_types, size=(batch, spec.max_history)), "")
    query_tokens = rng.integers(5, len(spec.wordpiece), size=(batch, spec.query_text_length))
    query_tokens[: batch // 2] = 0  # half the requests carry no search query
    item_tokens = rng.integers(5, len(spec.wordpiece), size=(batch, spec.text_length))
    item_tokens[:, spec.text_length // 2 :] = 0
    return {
        features.USER_ID: tf.constant(rng.choice(spec.users + ["stranger"], size=batch)),
        features.HISTORY_ITEM_IDS: tf.constant(history),
        features.HISTORY_EVENT_TYPES: tf.constant(events),
        features.HOUR_OF_DAY: tf.constant(rng.integers(0, 24, size=batch), tf.int32),
        features.DAY_OF_WEEK: tf.constant(rng.integers(0, 7, size=batch), tf.int32),
        features.QUERY_TOKEN_IDS: tf.constant(query_tokens, tf.int32),
        features.ITEM_ID: tf.constant(rng.choice(items, size=batch)),
        features.ITEM_TOKEN_IDS: tf.constant(item_tokens, tf.int32),
        features.ITEM_CATEGORY: tf.constant(rng.choice(spec.categories + [""], size=batch)),
        features.ITEM_PRICE: tf.constant(rng.normal(size=batch), tf.float32),
    }


@pytest.fixture
def make_batch(spec):
    return lambda batch, seed=0: random_batch(spec, batch, seed)


@pytest.fixture
def pretrained_spec(spec):
    """`spec` over the tiny checkpoint's WordPiece vocabulary."""
    from tests.text import tiny_checkpoint

    return dataclasses.replace(spec, wordpiece=list(tiny_checkpoint.VOCAB))
