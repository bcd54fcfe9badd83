"""The IVF item index: recall against exact search, forced rows, SavedModel and fingerprint."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tfrec import config as config_lib
from tfrec import errors
from tfrec.exporting import ivf_build, ivf_index, ivf_store
from tfrec.pipelines import bench_index

N, DIM, K = 5000, 16, 20


@pytest.fixture(scope="module")
def data():
    items, queries = bench_index.synthetic_items(N, dim=DIM, seed=3, queries=64)
    exact = np.argsort(-(queries @ items.T), axis=1, kind="stable")[:, :K]
    return items, queries, exact


@pytest.fixture(scope="module")
def indexes(data):
    items = data[0]
    return {
        "float32": ivf_build.build_ivf(items, config_lib.IndexConfig(nlist=50, nprobe=8)),
        "int8": ivf_build.build_ivf(
            items, config_lib.IndexConfig(nlist=50, nprobe=8, quantisation="int8", rescore=64)
        ),
    }


def _recall(rows, exact) -> float:
    return bench_index.recall(np.asarray(rows), exact)


@pytest.mark.parametrize("kind", ["float32", "int8"])
def test_every_partition_probed_is_exact_search(data, indexes, kind):
    items, queries, exact = data
    index = indexes[kind]
    index.nprobe.assign(50)
    index.rescore.assign(N)  # int8: every candidate re-scored from float vectors
    try:
        scores, rows = index.search(queries, K)
    finally:
        index.nprobe.assign(8)
        index.rescore.assign(64)
    assert _recall(rows, exact) == 1.0
    expected = np.take_along_axis(queries @ items.T, exact, axis=1)
    np.testing.assert_allclose(scores.numpy(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["float32", "int8"])
def test_moderate_nprobe_recall_is_high_on_clustered_items(data, indexes, kind):
    _, queries, exact = data
    _, rows = indexes[kind].search(queries, K)
    assert _recall(rows, exact) >= 0.9
    # One partition of fifty cannot hold most of every query's neighbours: the probe matters.
    indexes[kind].nprobe.assign(1)
    try:
        _, few = indexes[kind].search(queries, K)
    finally:
        indexes[kind].nprobe.assign(8)
    assert _recall(few, exact) < _recall(rows, exact)


def _far_rows(index, query: np.ndarray, count: int) -> np.ndarray:
    """Rows of items outside the one partition probed for `query` (nprobe = 1)."""
    best = int(np.argmax(index.centroids.numpy() @ query))
    offsets = index.offsets.numpy()
    outside = np.ones(N, bool)
    outside[index.row_of_position.numpy()[offsets[best] : offsets[best + 1]]] = False
    return np.flatnonzero(outside)[:count]


@pytest.mark.parametrize("kind", ["float32", "int8"])
def test_forced_rows_are_always_candidates_with_their_bonus(data, indexes, kind):
    items, queries, _ = data
    index = indexes[kind]
    far = _far_rows(index, queries[0], 3)
    forced = np.array([[far[0], far[1], far[0], -1, far[2]]], np.int64)
    bonus = np.array([[0.5, 0.0, 0.25, 9.0, 0.0]], np.float32)
    index.nprobe.assign(1)
    try:
        scores, rows = index.search_forced(queries[:1], N, forced, bonus)
        _, plain = index.search(queries[:1], N)
    finally:
        index.nprobe.assign(8)
    rows, scores = rows.numpy()[0], scores.numpy()[0]
    assert not set(far) & set(plain.numpy()[0])  # not found without forcing
    assert set(far) <= set(rows)
    assert len(set(rows[rows >= 0])) == (rows >= 0).sum()  # a repeated forced row counts once
    exact = items[far] @ queries[0] + np.array([0.75, 0.0, 0.0], np.float32)  # repeats add up
    got = [scores[list(rows).index(r)] for r in far]
    np.testing.assert_allclose(got, exact, atol=1e-2 if kind == "int8" else 1e-5)


def test_forced_search_with_every_partition_matches_brute_force(data, indexes):
    items, queries, _ = data
    forced = np.tile(np.array([[7, 4000, 7, -1]], np.int64), (len(queries), 1))
    bonus = np.tile(np.array([[2.0, 0.2, 1.0, 5.0]], np.float32), (len(queries), 1))
    brute = ivf_index.BruteForceIndex(items, "x")
    index = indexes["float32"]
    index.nprobe.assign(50)
    try:
        ivf_scores, ivf_rows = index.search_forced(queries, K, forced, bonus)
    finally:
        index.nprobe.assign(8)
    bf_scores, bf_rows = brute.search_forced(queries, K, forced, bonus)
    np.testing.assert_allclose(ivf_scores.numpy(), bf_scores.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(ivf_rows.numpy(), bf_rows.numpy())
    assert (bf_rows.numpy()[:, 0] == 7).all()  # a bonus of 3 beats every unit-vector dot product


def test_slots_without_candidates_are_padding(data, indexes):
    _, queries, _ = data
    index = indexes["float32"]
    index.nprobe.assign(1)
    try:
        scores, rows = index.search(queries[:2], N + 10)
    finally:
        index.nprobe.assign(8)
    assert rows.shape == (2, N)  # k is capped at the catalog size
    rows, scores = rows.numpy(), scores.numpy()
    assert (rows == -1).any(axis=1).all()
    assert (scores[rows == -1] == ivf_index.LOWEST).all()
    assert (rows[:, :10] >= 0).all()


def test_choose_keeps_brute_force_for_small_catalogs(data):
    items = data[0]
    config = config_lib.IndexConfig(min_items=N + 1)
    assert ivf_build.choose(N, config) == ivf_build.BRUTE_FORCE
    assert ivf_build.choose(N + 1, config) == ivf_build.IVF
    assert isinstance(ivf_build.build(items[:100], config), ivf_index.BruteForceIndex)
    assert isinstance(
        ivf_build.build(items, config_lib.IndexConfig(min_items=N, nlist=10)), ivf_index.IVFIndex
    )


IDS = [f"item{i}" for i in range(N)]


@pytest.fixture(scope="module")
def saved(data, indexes, tmp_path_factory):
    """Each kind of index, fingerprinted with the item ids, and the folder it was saved to."""
    items = data[0]
    out = {}
    for kind in ("float32", "int8", "brute_force"):
        if kind == "brute_force":
            index = ivf_index.BruteForceIndex(items, ivf_store.fingerprint(items, IDS))
        else:
            index = indexes[kind]
            index.fingerprint.assign(ivf_store.fingerprint(items, IDS))
        out[kind] = index, ivf_store.save(index, tmp_path_factory.mktemp(kind) / "index")
    return out


@pytest.mark.parametrize("kind", ["float32", "int8", "brute_force"])
def test_savedmodel_round_trip_answers_identically(data, saved, kind):
    items, queries, _ = data
    index, directory = saved[kind]
    loaded = ivf_store.load(directory, items, IDS)
    forced = np.tile(np.array([[1, 2, -1]], np.int64), (len(queries), 1))
    bonus = np.full(forced.shape, 0.1, np.float32)
    for before, after in [
        (index.search(queries, K), loaded.search(queries, K)),
        (
            index.search_forced(queries, K, forced, bonus),
            loaded.search_forced(queries, K, forced, bonus),
        ),
    ]:
        np.testing.assert_array_equal(before[0].numpy(), after[0].numpy())
        np.testing.assert_array_equal(before[1].numpy(), after[1].numpy())
    served = loaded.signatures["serving_default"](
        queries=tf.constant(queries), k=tf.constant(K, tf.int32)
    )
    np.testing.assert_array_equal(served["rows"].numpy(), index.search(queries, K)[1].numpy())


def test_index_for_other_items_refuses_to_load(data, saved):
    items = data[0]
    directory = saved["float32"][1]
    retrained = items.copy()
    retrained[17, 3] += 1e-3  # a new model version moves item vectors
    with pytest.raises(errors.WorkdirError, match=r"built for other items .*5000 items of dim 16"):
        ivf_store.load(directory, retrained, IDS)
    with pytest.raises(errors.WorkdirError, match="built for other items"):
        ivf_store.load(directory, items, [f"other{i}" for i in range(N)])
    with pytest.raises(errors.WorkdirError, match="built for other items"):
        ivf_store.load(directory, items)  # built with ids, checked without
    with pytest.raises(errors.ConfigError, match="`vectors` or `expected_fingerprint`"):
        ivf_store.load(directory)
    with pytest.raises(errors.WorkdirError, match="no item index"):
        ivf_store.load(directory.parent / "missing", items)
    fingerprint = ivf_store.fingerprint(items, IDS)
    loaded = ivf_store.load(directory, expected_fingerprint=fingerprint)
    assert loaded.fingerprint.numpy().decode() == fingerprint


def test_bad_inputs_are_named(data, indexes):
    items, queries, _ = data
    with pytest.raises(errors.ConfigError, match="`index.quantisation`"):
        config_lib.IndexConfig(quantisation="int4")
    with pytest.raises(errors.ConfigError, match="`index.nprobe`"):
        config_lib.IndexConfig(nprobe=0)
    bad = items[:100].copy()
    bad[42, 0] = np.nan
    with pytest.raises(errors.DataError, match="row 42"):
        ivf_build.build_ivf(bad)
    with pytest.raises(tf.errors.InvalidArgumentError, match="`forced_rows` must be row numbers"):
        indexes["float32"].search_forced(
            queries[:1], K, np.array([[N]], np.int64), np.zeros([1, 1], np.float32)
        )
    with pytest.raises(tf.errors.InvalidArgumentError, match="`k` must be >= 1"):
        indexes["float32"].search(queries[:1], 0)
