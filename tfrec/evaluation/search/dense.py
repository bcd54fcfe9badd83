"""Embedding search scorers: one vector per item text, or an item's best single review."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Collection
from pathlib import Path
from typing import Protocol

import numpy as np


class Encoder(Protocol):
    """What the scorers need of a text encoder (`tfrec.text.sentence_encoder.SentenceEncoder`)."""

    preset: str
    max_length: int

    def encode(
        self, texts: Collection[str], progress: bool = ..., desc: str = ...
    ) -> np.ndarray: ...


def cached_encode(
    encoder: Encoder,
    texts: Collection[str],
    cache_dir: os.PathLike | str,
    name: str,
    progress: bool = True,
) -> np.ndarray:
    """`encoder.encode(texts)`, read from `cache_dir` when the same texts were encoded before.

    The cache key hashes the texts, the preset's folder and weights file (size and time) and
    `max_length`, so editing the data or the preset encodes again.

    Args:
        encoder: Encoder.
        texts: sequence of str [n].
        cache_dir: path. Folder of `<name>-<key>.npy` files (created).
        name: str. A readable prefix of the file name, e.g. "items".
        progress: bool. Show the encoder's progress bar when encoding. Defaults to True.

    Returns:
        float32 [n, dim].
    """
    digest = hashlib.sha256()
    weights = Path(encoder.preset) / "model.weights.h5"
    stat = weights.stat() if weights.exists() else None
    meta = [encoder.preset, encoder.max_length, stat and (stat.st_size, int(stat.st_mtime))]
    digest.update(json.dumps(meta).encode())
    for text in texts:
        digest.update(str(text).encode("utf-8") + b"\0")
    path = Path(cache_dir) / f"{name}-{digest.hexdigest()[:16]}.npy"
    if path.is_file():
        return np.load(path)
    vectors = np.asarray(encoder.encode(list(texts), progress=progress, desc=name), np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.npy")
    np.save(partial, vectors)
    partial.replace(path)  # a killed run leaves no truncated cache behind
    return vectors


def cosine_scores(query_vectors: np.ndarray, item_vectors: np.ndarray) -> np.ndarray:
    """float32 [num_queries, num_items] dot products of unit vectors."""
    return np.asarray(query_vectors @ item_vectors.T, dtype=np.float32)


def best_review_scores(
    query_vectors: np.ndarray,
    review_vectors: np.ndarray,
    review_items: np.ndarray,
    num_items: int,
    batch_size: int = 256,
) -> np.ndarray:
    """Each item's score: the best cosine between the query and any one of its reviews.

    Args:
        query_vectors: float [num_queries, dim], unit rows.
        review_vectors: float [num_reviews, dim], unit rows.
        review_items: int [num_reviews]. Catalog index of each review.
        num_items: int. Catalog size; an item with no review scores -1 (the lowest cosine).
        batch_size: int. Queries per matrix product.

    Returns:
        float32 [num_queries, num_items].
    """
    review_items = np.asarray(review_items, np.int64)
    order = np.argsort(review_items, kind="stable")
    starts = np.searchsorted(review_items[order], np.arange(num_items))
    has = np.bincount(review_items, minlength=num_items) > 0
    sorted_vectors = review_vectors[order]
    out = np.full([len(query_vectors), num_items], -1.0, np.float32)
    for a in range(0, len(query_vectors), batch_size):
        sims = query_vectors[a : a + batch_size] @ sorted_vectors.T
        # The max over each item's contiguous block of reviews.
        best = np.maximum.reduceat(sims, starts[has], axis=1)
        out[a : a + batch_size, has] = best
    return out
