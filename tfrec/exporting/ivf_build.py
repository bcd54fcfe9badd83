"""Builds an item index from an [n, d] float32 item matrix: k-means partitions, codes, layout.

k-means runs here in NumPy rather than with `scipy.cluster.vq.kmeans2`: vq's distance loop does
not use BLAS and takes seconds per iteration already at 64k vectors and 1k centroids, while
the same assignment as a matrix product (`|c|^2 - 2 x.c`, in chunks) takes a fraction of that.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import numpy as np
import scipy.sparse

from tfrec import config as config_lib
from tfrec import errors
from tfrec.exporting import ivf_index, ivf_store

BRUTE_FORCE, IVF = "brute_force", "ivf"
_CHUNK_ROWS = 1 << 15  # rows per assignment product: [chunk, nlist] float32 stays small


def choose(n: int, config: config_lib.IndexConfig) -> str:
    """The index for `n` items: `config.kind`, or with "auto" "brute_force" below
    `config.min_items` items, else "ivf"."""
    if config.kind != "auto":
        return config.kind
    return BRUTE_FORCE if n < config.min_items else IVF


def lists_for(n: int, config: config_lib.IndexConfig) -> int:
    """Partitions for `n` items: `nlist`, or `nlist_factor * sqrt(n)`; never more than n."""
    wanted = config.nlist if config.nlist is not None else round(config.nlist_factor * n**0.5)
    return int(max(1, min(wanted, n)))


def assign(vectors: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """[n] int32: the nearest centroid (Euclidean) of each vector, computed in chunks."""
    norms = np.einsum("ij,ij->i", centroids, centroids)
    labels = np.empty(len(vectors), np.int32)
    for start in range(0, len(vectors), _CHUNK_ROWS):
        chunk = vectors[start : start + _CHUNK_ROWS]
        labels[start : start + len(chunk)] = np.argmin(norms - 2.0 * chunk @ centroids.T, axis=1)
    return labels


def kmeans(sample: np.ndarray, nlist: int, iterations: int, seed: int) -> np.ndarray:
    """[nlist, d] float32 centroids by Lloyd's iterations from `nlist` random sample points.

    A centroid left without points restarts at a random sample point.
    """
    rng = np.random.default_rng(seed)
    centroids = sample[rng.choice(len(sample), size=nlist, replace=False)].copy()
    for _ in range(iterations):
        labels = assign(sample, centroids)
        members = scipy.sparse.csr_matrix(
            (np.ones(len(sample), np.float32), (labels, np.arange(len(sample)))),
            shape=(nlist, len(sample)),
        )
        counts = np.bincount(labels, minlength=nlist)
        sums = np.asarray(members @ sample, dtype=np.float32)
        empty = counts == 0
        centroids = sums / np.maximum(counts, 1)[:, None]
        centroids[empty] = sample[rng.choice(len(sample), size=int(empty.sum()))]
    return centroids.astype(np.float32)


def _int8_residuals(
    vectors: np.ndarray, centroids: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """int8 codes [n, d] and scales [n] of each vector's residual to its centroid."""
    codes = np.empty(vectors.shape, np.int8)
    scales = np.empty(len(vectors), np.float32)
    for start in range(0, len(vectors), _CHUNK_ROWS):
        stop = start + _CHUNK_ROWS
        residual = vectors[start:stop] - centroids[labels[start:stop]]
        scale = np.abs(residual).max(axis=1) / 127.0
        scale[scale == 0] = 1.0
        codes[start:stop] = np.clip(np.rint(residual / scale[:, None]), -127, 127)
        scales[start:stop] = scale
    return codes, scales


def build_ivf(
    vectors: np.ndarray,
    config: config_lib.IndexConfig = config_lib.IndexConfig(),
    item_ids: Optional[Sequence[str] | np.ndarray] = None,
) -> ivf_index.IVFIndex:
    """An IVF index over `vectors` [n, d] float32 (row i = item i), whatever the catalog size."""
    vectors = _checked(vectors)
    n = len(vectors)
    nlist = lists_for(n, config)
    rng = np.random.default_rng(config.seed)
    if n > config.train_sample:
        sample = vectors[np.sort(rng.choice(n, size=config.train_sample, replace=False))]
    else:
        sample = vectors
    centroids = kmeans(sample, nlist, config.kmeans_iterations, config.seed)
    labels = assign(vectors, centroids)
    order = np.argsort(labels, kind="stable").astype(np.int32)
    offsets = np.concatenate([[0], np.cumsum(np.bincount(labels, minlength=nlist))])
    if config.quantisation == "int8":
        codes, scales = _int8_residuals(vectors, centroids, labels)
        codes, scales = codes[order], scales[order]
        kept = vectors if config.rescore > 0 else None
    else:
        codes, scales, kept = vectors[order], None, None
    return ivf_index.IVFIndex(
        centroids=centroids,
        offsets=offsets,
        row_of_position=order,
        codes=codes,
        scales=scales,
        vectors=kept,
        nprobe=config.nprobe,
        rescore=config.rescore,
        fingerprint=ivf_store.fingerprint(vectors, item_ids),
    )


def build(
    vectors: np.ndarray,
    config: config_lib.IndexConfig = config_lib.IndexConfig(),
    item_ids: Optional[Sequence[str] | np.ndarray] = None,
) -> ivf_index.IVFIndex | ivf_index.BruteForceIndex:
    """The index `choose` picks for `vectors` [n, d] float32: brute force or IVF."""
    vectors = _checked(vectors)
    if choose(len(vectors), config) == BRUTE_FORCE:
        return ivf_index.BruteForceIndex(vectors, ivf_store.fingerprint(vectors, item_ids))
    return build_ivf(vectors, config, item_ids)


def _checked(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors)
    if vectors.ndim != 2 or len(vectors) == 0 or vectors.shape[1] == 0:
        raise errors.DataError(
            f"`vectors` must be a non-empty [n, dim] matrix, received {list(vectors.shape)}"
        )
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if not np.isfinite(vectors).all():
        row = int(np.argwhere(~np.isfinite(vectors))[0, 0])
        raise errors.DataError(f"`vectors` must be finite, received NaN or inf in row {row}")
    return vectors
