"""Approximate item search in core TensorFlow ops: an inverted-file (IVF) index, and brute force.

Serving scores every request against every item vector; at a million items that product and
its top-k dominate the request. An IVF index clusters the item vectors (k-means, see
`tfrec.exporting.ivf_build`), stores them grouped by cluster ("partition"), and scores a query
only against the `nprobe` partitions whose centroids score best. Everything here is core TF
(matmul, top_k, gather, ragged range, searchsorted), so the index runs in stock TF Serving,
which has none of ScaNN's custom ops.

Both index classes answer the same calls, in memory and after `tf.saved_model.load`:

    search(queries [b, d] float32, k [] int32) -> (scores [b, w] float32, rows [b, w] int64)
    search_forced(queries, k, forced_rows [b, f] int64, forced_bonus [b, f] float32)

`w = min(k, n)`; rows are the original row numbers of the item matrix the index was built
from; slots without an item hold row -1 and the lowest float32 score.

Forced rows are always candidates, whatever partitions are probed, and `forced_bonus` is added
to their score (duplicate rows add up; -1 = padding). This is how the serving graph keeps its
repeat prior exact: it passes the request's recent items as `forced_rows` and the prior's
per-event weights as `forced_bonus`, the same sum `RepeatPrior.tf_bonus` scatters over the whole
catalog. To drop items (e.g. `exclude_recent`), ask for `k` plus the number dropped and filter.
"""

from __future__ import annotations

import json
from typing import Optional

import numpy as np
import tensorflow as tf

from tfrec import errors

LOWEST = float(np.finfo(np.float32).min)  # the serving graph's score of an empty slot


class _SearchModule(tf.Module):
    """The calls and SavedModel signatures both indexes share (see the module docstring)."""

    def __init__(self, dim: int, num_items: int, fingerprint: str, metadata: dict, name: str):
        super().__init__(name=name)
        self.dim, self.num_items = int(dim), int(num_items)
        self.fingerprint = tf.Variable(fingerprint, trainable=False, name="fingerprint")
        self.metadata = tf.Variable(
            json.dumps(dict(metadata, fingerprint=fingerprint, n=num_items, dim=dim)),
            trainable=False,
            name="metadata",
        )
        queries = tf.TensorSpec([None, self.dim], tf.float32, name="queries")
        k = tf.TensorSpec([], tf.int32, name="k")
        forced = tf.TensorSpec([None, None], tf.int64, name="forced_rows")
        bonus = tf.TensorSpec([None, None], tf.float32, name="forced_bonus")
        self.search = tf.function(self._search_plain, input_signature=[queries, k])
        self.search_forced = tf.function(self._search, input_signature=[queries, k, forced, bonus])

    def _search_plain(self, queries, k):
        batch = tf.shape(queries)[0]
        return self._search(
            queries, k, tf.zeros([batch, 0], tf.int64), tf.zeros([batch, 0], tf.float32)
        )

    def _search(self, queries, k, forced_rows, forced_bonus):
        checks = [
            tf.debugging.assert_positive(k, message="`k` must be >= 1"),
            tf.debugging.assert_equal(
                tf.shape(forced_rows),
                tf.shape(forced_bonus),
                message="`forced_bonus` must have the shape of `forced_rows` [batch, f]",
            ),
            tf.debugging.assert_equal(
                tf.shape(forced_rows)[0],
                tf.shape(queries)[0],
                message="`forced_rows` must have one row per query",
            ),
            tf.debugging.assert_less(
                forced_rows,
                tf.constant(self.num_items, tf.int64),
                message=f"`forced_rows` must be row numbers below {self.num_items} (or -1)",
            ),
        ]
        with tf.control_dependencies(checks):
            width = tf.minimum(k, self.num_items)
            return self._top(queries, width, forced_rows, forced_bonus)

    def _top(self, queries, width, forced_rows, forced_bonus):
        raise NotImplementedError

    def vectors_of(self, rows):
        """Item vectors [..., d] float32 of rows [...] int (zeros where rows < 0), as the index
        scores them (int8 codes without kept vectors: centroid plus dequantised residual)."""
        flat = tf.reshape(tf.cast(rows, tf.int64), [-1])
        found = self._vectors_of_rows(tf.maximum(flat, 0))
        found = tf.where((flat >= 0)[:, None], found, tf.zeros_like(found))
        return tf.reshape(found, tf.concat([tf.shape(rows), [self.dim]], axis=0))

    def _vectors_of_rows(self, rows):
        raise NotImplementedError

    def signatures(self) -> dict:
        """SavedModel signatures: `search` (the default) and `search_forced`, dict outputs."""

        def named(fn):
            def serve(*args):
                scores, rows = fn(*args)
                return {"scores": scores, "rows": rows}

            return serve

        plain = tf.function(named(self.search), input_signature=self.search.input_signature)
        forced = tf.function(
            named(self.search_forced), input_signature=self.search_forced.input_signature
        )
        return {
            "serving_default": plain.get_concrete_function(),
            "search": plain.get_concrete_function(),
            "search_forced": forced.get_concrete_function(),
        }


def _unique_forced(forced_rows, forced_bonus):
    """Forced rows with later duplicates set to -1, each kept row carrying its summed bonus."""
    valid = forced_rows >= 0
    same = tf.equal(forced_rows[:, :, None], forced_rows[:, None, :])
    same = same & valid[:, :, None] & valid[:, None, :]
    total = tf.reduce_sum(tf.where(same, forced_bonus[:, None, :], 0.0), axis=2)
    f = tf.shape(forced_rows)[1]
    earlier = tf.linalg.band_part(tf.ones([f, f], tf.bool), -1, 0) & ~tf.eye(f, dtype=tf.bool)
    duplicate = tf.reduce_any(same & earlier[None], axis=2)
    keep = valid & ~duplicate
    return tf.where(keep, forced_rows, -1), tf.where(keep, total, 0.0)


def _finish(scores, rows, width):
    """Top `width` of candidate scores [b, m] and rows [b, m] (-1 = none; m >= width)."""
    scores = tf.where(rows >= 0, scores, LOWEST)
    best, at = tf.math.top_k(scores, k=width)
    rows = tf.gather(rows, at, batch_dims=1)
    return best, tf.where(best > LOWEST, rows, tf.constant(-1, tf.int64))


class BruteForceIndex(_SearchModule):
    """Exact search: every item scored, for catalogs too small to need partitions.

    Args:
        vectors: np.ndarray [n, d] float32. Item vectors; row i is item i.
        fingerprint: str. Identifies the item matrix (`ivf_store.fingerprint`).
    """

    def __init__(self, vectors: np.ndarray, fingerprint: str):
        vectors = np.asarray(vectors, np.float32)
        super().__init__(
            vectors.shape[1], len(vectors), fingerprint, {"kind": "brute_force"}, "brute_force"
        )
        self.vectors = tf.Variable(vectors, trainable=False, name="vectors")

    def _top(self, queries, width, forced_rows, forced_bonus):
        scores = tf.matmul(queries, self.vectors, transpose_b=True)
        batch = tf.shape(queries)[0]
        batch_rows = tf.broadcast_to(
            tf.range(tf.cast(batch, tf.int64))[:, None], tf.shape(forced_rows)
        )
        valid = forced_rows >= 0
        at = tf.stack([batch_rows, tf.where(valid, forced_rows, 0)], axis=-1)
        scores = tf.tensor_scatter_nd_add(scores, at, tf.where(valid, forced_bonus, 0.0))
        rows = tf.broadcast_to(tf.range(self.num_items, dtype=tf.int64), tf.shape(scores))
        return _finish(scores, rows, width)

    def _vectors_of_rows(self, rows):
        return tf.gather(self.vectors, rows)


class IVFIndex(_SearchModule):
    """An inverted-file index: item vectors grouped by k-means partition, `nprobe` searched.

    Storage ("positions" are rows in partition order): partition p holds positions
    `offsets[p]:offsets[p + 1]`; `row_of_position` maps them back to item rows and
    `position_of_row` forward (forced rows). Per query: centroid scores, the top `nprobe`
    partitions, their positions as one ragged range (no Python loop), a gather of their codes,
    a batched matmul, then the top `max(k, rescore)` (plus forced rows) re-scored exactly when
    float vectors are kept, and the top k.

    `nprobe` and `rescore` are variables: assign to trade recall for speed without rebuilding
    (they are saved with the index).

    Args:
        centroids: np.ndarray [nlist, d] float32.
        offsets: np.ndarray [nlist + 1] int. Partition boundaries in positions.
        row_of_position: np.ndarray [n] int. Item row at each position.
        codes: np.ndarray [n, d]. float32 vectors, or int8 residuals to their centroid.
        scales: np.ndarray [n] float32 or None. Per-position scale of int8 codes.
        vectors: np.ndarray [n, d] float32 or None. Float vectors by row for the exact re-score
            of int8 candidates; None: scores stay approximate.
        nprobe: int. Partitions searched per query.
        rescore: int. Candidates re-scored exactly (with `vectors`).
        fingerprint: str. Identifies the item matrix (`ivf_store.fingerprint`).
    """

    def __init__(
        self,
        centroids: np.ndarray,
        offsets: np.ndarray,
        row_of_position: np.ndarray,
        codes: np.ndarray,
        scales: Optional[np.ndarray],
        vectors: Optional[np.ndarray],
        nprobe: int,
        rescore: int,
        fingerprint: str,
    ):
        quantised = codes.dtype == np.int8
        if quantised != (scales is not None):
            raise errors.ConfigError("`scales` must be given exactly when `codes` are int8")
        n, dim = codes.shape
        nlist = len(centroids)
        if len(offsets) != nlist + 1 or offsets[0] != 0 or offsets[-1] != n:
            raise errors.ConfigError(
                f"`offsets` must be [nlist + 1 = {nlist + 1}] from 0 to n = {n}, received "
                f"{len(offsets)} values from {offsets[0]} to {offsets[-1]}"
            )
        metadata = {
            "kind": "ivf",
            "nlist": nlist,
            "quantisation": "int8" if quantised else "float32",
            "rescore_vectors": vectors is not None,
        }
        super().__init__(dim, n, fingerprint, metadata, "ivf_index")
        self.quantised = quantised
        self.centroids = tf.Variable(np.asarray(centroids, np.float32), False, name="centroids")
        offsets = np.asarray(offsets, np.int32)
        self.offsets = tf.Variable(offsets, trainable=False, name="offsets")
        self.sizes = tf.Variable(np.diff(offsets).astype(np.int32), False, name="sizes")
        row_of_position = np.asarray(row_of_position, np.int32)
        position_of_row = np.empty(n, np.int32)
        position_of_row[row_of_position] = np.arange(n, dtype=np.int32)
        self.row_of_position = tf.Variable(row_of_position, False, name="row_of_position")
        self.position_of_row = tf.Variable(position_of_row, False, name="position_of_row")
        self.codes = tf.Variable(codes, trainable=False, name="codes")
        self.scales = None if scales is None else tf.Variable(scales, False, name="scales")
        self.vectors = None if vectors is None else tf.Variable(vectors, False, name="vectors")
        self.nprobe = tf.Variable(int(nprobe), trainable=False, name="nprobe", dtype=tf.int32)
        self.rescore = tf.Variable(int(rescore), trainable=False, name="rescore", dtype=tf.int32)

    def _vectors_of_rows(self, rows):
        if self.vectors is not None:
            return tf.gather(self.vectors, rows)
        positions = tf.gather(self.position_of_row, rows)
        codes = tf.cast(tf.gather(self.codes, positions), tf.float32)
        if not self.quantised:
            return codes
        # One leading 0 keeps the values non-empty (as in `_top`).
        lists = tf.searchsorted(self.offsets, tf.concat([[0], positions], 0), side="right")
        lists = lists[1:] - 1
        residual = tf.gather(self.scales, positions)[:, None] * codes
        return tf.gather(self.centroids, lists) + residual

    def _score(self, queries, positions, partition_scores):
        """Scores [b, m] of positions [b, m] (-1 = none); exact for float32 codes."""
        codes = tf.gather(self.codes, tf.maximum(positions, 0))
        dots = tf.squeeze(tf.matmul(tf.cast(codes, tf.float32), queries[:, :, None]), -1)
        if self.quantised:
            dots = partition_scores + tf.gather(self.scales, tf.maximum(positions, 0)) * dots
        return tf.where(positions >= 0, dots, LOWEST)

    def _probe(self, queries, centroid_scores):
        """Positions [b, m] of every item in each query's top nprobe partitions (-1 padded) and
        their partitions' centroid scores."""
        nprobe = tf.minimum(self.nprobe, tf.shape(self.centroids)[0])
        best, lists = tf.math.top_k(centroid_scores, k=nprobe)
        starts = tf.reshape(tf.gather(self.offsets, lists), [-1])
        sizes = tf.reshape(tf.gather(self.sizes, lists), [-1])
        per_query = tf.reduce_sum(tf.reshape(sizes, tf.shape(lists)), axis=1)
        positions = tf.ragged.range(starts, starts + sizes).values
        positions = tf.RaggedTensor.from_row_lengths(positions, per_query).to_tensor(-1)
        base = tf.repeat(tf.reshape(best, [-1]), sizes)
        base = tf.RaggedTensor.from_row_lengths(base, per_query).to_tensor(0.0)
        return positions, base

    def _top(self, queries, width, forced_rows, forced_bonus):
        centroid_scores = tf.matmul(queries, self.centroids, transpose_b=True)
        positions, base = self._probe(queries, centroid_scores)
        forced_rows, forced_bonus = _unique_forced(forced_rows, forced_bonus)
        forced = tf.where(
            forced_rows >= 0,
            tf.gather(self.position_of_row, tf.maximum(forced_rows, 0)),
            -1,
        )
        forced = tf.cast(forced, tf.int32)
        # The partition holding a position: the last boundary at or below it. One leading 0
        # keeps the values non-empty (searchsorted cannot reshape an empty batch).
        flat = tf.concat([[0], tf.reshape(tf.maximum(forced, 0), [-1])], axis=0)
        lists = tf.searchsorted(self.offsets, flat, side="right")[1:] - 1
        forced_base = tf.gather(centroid_scores, tf.reshape(lists, tf.shape(forced)), batch_dims=1)
        forced_scores = self._score(queries, forced, forced_base) + forced_bonus

        # Enough of the probed candidates that the top k survive removing the forced rows.
        f = tf.shape(forced)[1]
        rescoring = self.vectors is not None and self.quantised
        shortlist = (tf.maximum(width, self.rescore) if rescoring else width) + f
        scores = self._score(queries, positions, base)
        pad = tf.maximum(shortlist - tf.shape(scores)[1], 0)
        scores = tf.pad(scores, [[0, 0], [0, pad]], constant_values=LOWEST)
        positions = tf.pad(positions, [[0, 0], [0, pad]], constant_values=-1)
        scores, at = tf.math.top_k(scores, k=shortlist)
        positions = tf.gather(positions, at, batch_dims=1)
        positions = tf.where(scores > LOWEST, positions, -1)
        also_forced = tf.reduce_any(
            tf.equal(positions[:, :, None], forced[:, None, :]) & (forced >= 0)[:, None, :], axis=2
        )
        positions = tf.where(also_forced, -1, positions)

        positions = tf.concat([positions, forced], axis=1)
        scores = tf.concat([scores, forced_scores], axis=1)
        rows = tf.gather(self.row_of_position, tf.maximum(positions, 0))
        rows = tf.where(positions >= 0, tf.cast(rows, tf.int64), tf.constant(-1, tf.int64))
        if rescoring:
            bonus = tf.concat(
                [tf.zeros_like(scores[:, : tf.shape(scores)[1] - f]), forced_bonus], 1
            )

            def exact():
                vectors = tf.gather(self.vectors, tf.maximum(rows, 0))
                return tf.squeeze(tf.matmul(vectors, queries[:, :, None]), -1) + bonus

            scores = tf.cond(self.rescore > 0, exact, lambda: scores)
        return _finish(scores, rows, width)
