"""Ranker TFLite: a lookup shared by two call sites is cut twice, and the flatbuffers rank alike."""

import types

import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from tests.ranking import conftest as ranking
from tfrec.compression import artifacts, graph, ranker_data, ranker_tflite, tflite_ops
from tfrec.ranking import metrics

ROWS = 512
# Agreement of the TFLite rankers with the Keras network on the same rows, every head (untrained
# tiny network; measured: float within 4e-7; dynamic range and full-int8 Spearman >= 0.999,
# AUC within 1e-3).
FLOAT_ATOL = 1e-5
MIN_SPEARMAN = 0.95
AUC_TOLERANCE = 0.02


def _shared_lookup_model() -> tf.keras.Model:
    """One `StringLookup` (and `Embedding`) called on a candidate id and on a history."""
    item = tf.keras.Input(shape=(), dtype=tf.string, name="item_id")
    history = tf.keras.Input(shape=(3,), dtype=tf.string, name="history")
    lookup = tf.keras.layers.StringLookup(vocabulary=["a", "b", "c"], name="lookup")
    table = tf.keras.layers.Embedding(4, 2, name="table")
    candidate = table(lookup(item))
    pooled = tf.reduce_sum(table(lookup(history)), axis=1)
    return tf.keras.Model({"item_id": item, "history": history}, candidate * pooled)


def test_cut_of_a_lookup_called_twice_gives_one_input_per_call():
    tf.keras.utils.set_random_seed(0)
    model = _shared_lookup_model()
    features = {
        "item_id": np.array(["a", "c", "zz"], dtype=object),
        "history": np.array([["b", "", "a"], ["c", "c", "zz"], ["", "", ""]], dtype=object),
    }
    expected = model({k: tf.constant(v.astype(str)) for k, v in features.items()}).numpy()
    cut = graph.rebuild(model, cut=lambda layer: isinstance(layer, tf.keras.layers.StringLookup))
    # The first call keeps the layer's name (as single-call lookups always did), then `_1`.
    assert sorted(cut.input) == ["lookup", "lookup_1"]
    lookup = model.get_layer("lookup")
    got = cut(
        {"lookup": lookup(features["item_id"]), "lookup_1": lookup(features["history"])}
    ).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-6)
    # The feed maps each cut input to the model input its call reads.
    assert {n: s for n, (_, s) in artifacts._cut_lookups(model).items()} == {
        "lookup": "item_id",
        "lookup_1": "history",
    }
    ready, feed = artifacts.tflite_ready(model)
    np.testing.assert_allclose(ready(feed(features)).numpy(), expected, atol=1e-6)


def test_numpy_feed_matches_the_lookup_layers():
    # The feed looks ids up in NumPy from the vocabularies: same indices as the Keras layers
    # for known ids, OOV, the mask token, `str` or `bytes`, and out-of-range integers.
    network = ranking.make_network()
    _, feed = artifacts.tflite_ready(network)
    batch = ranking.make_batch(64, seed=1)
    fed = feed(batch)
    as_bytes = {
        k: np.array([x.encode() for x in v.ravel()], dtype=object).reshape(v.shape)
        if v.dtype == object
        else v
        for k, v in batch.items()
    }
    for name, (layer, source) in artifacts._cut_lookups(network).items():
        expected = layer(tf.constant(batch[source].tolist())).numpy()
        np.testing.assert_array_equal(fed[name], expected, err_msg=name)
        np.testing.assert_array_equal(feed(as_bytes)[name], expected, err_msg=name)


def _dataset(n: int, seed: int, network) -> tf.data.Dataset:
    """(features, labels) batches; labels drawn from the network's own purchase probability."""
    batch = ranking.make_batch(n, seed=seed)
    logits = network({k: tf.constant(v.tolist()) for k, v in batch.items()})
    rng = np.random.default_rng(seed)
    labels = {
        h: (rng.random(n) < tf.sigmoid(logits[h]).numpy()[:, 0]).astype(np.float32)[:, None]
        for h in ranking.HEADS
    }
    return tf.data.Dataset.from_tensor_slices((batch, labels)).batch(128)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """`ranker_tflite.tflite_variants` on the tiny ranking network: variants found and their callables."""
    tf.keras.utils.set_random_seed(0)
    network = ranking.make_network()
    train, test = _dataset(256, 1, network), _dataset(ROWS, 2, network)
    root = tmp_path_factory.mktemp("ranker")
    keras_quality = ranker_data.auc(lambda f: network(f), test, ranking.HEADS)
    found = {"ranker_float32": {"notes": [], "quality": keras_quality}}
    callables = ranker_tflite.tflite_variants(
        network,
        train,
        root / "compression",
        types.SimpleNamespace(root=root),
        found,
        test,
        ranking.HEADS,
    )
    return network, test, root, found, callables


def _scores(fn, test) -> np.ndarray:
    return np.concatenate(
        [np.stack([np.reshape(fn(f)[h], [-1]) for h in ranking.HEADS], 1) for f, _ in test]
    )


def test_float_and_int8_rankers_are_converted_without_lookups_inside(converted):
    _, _, root, found, callables = converted
    assert {"ranker_float32_tflite", "ranker_int8_tflite"} <= set(callables)
    assert found["ranker_float32_tflite"]["tflite_mode"] == "float"
    assert found["ranker_int8_tflite"]["tflite_mode"] in ("full_int8", "mixed", "dynamic_range")
    for name in callables:
        blob = (root / found[name]["path"] / ranker_tflite.TFLITE_FILE).read_bytes()
        ops = {op for op, _, _ in tflite_ops.op_dtypes(blob)}
        # No fallback to lookups inside: no hash tables, and only numbers in (the raw ids that
        # `HistoryRepeats` compares arrive as codes: the calibrator mishandles strings).
        assert not ops & {"HASHTABLE", "HASHTABLE_FIND", "HASHTABLE_IMPORT"}, (name, ops)
        details = tf.lite.Interpreter(model_content=blob).get_input_details()
        assert all(np.dtype(d["dtype"]).kind in "if" for d in details), (name, details)
        # The shared item-vector table is gathered once, from the ids of both call sites.
        assert "item_vectors_ids" in callables[name]._runners[0].input_names
        assert found[name]["notes"][0].startswith("TFLite ranking network, achieved mode")
    # Full-int8 converts here (calibrated on integer ids): either chosen, or reported with why.
    if found["ranker_int8_tflite"]["tflite_mode"] == "dynamic_range":
        assert "ranker_int8_tflite_full" in found
        assert "not `ranker_int8_tflite`" in found["ranker_int8_tflite_full"]["notes"][1]
        assert "chosen as full-int8" in found["ranker_int8_tflite"]["notes"][1]
    full = "ranker_int8_tflite_full" if "ranker_int8_tflite_full" in found else "ranker_int8_tflite"
    blob = (root / found[full]["path"] / ranker_tflite.TFLITE_FILE).read_bytes()
    tables = [
        d
        for d in tf.lite.Interpreter(model_content=blob).get_tensor_details()
        if list(d["shape"]) == [len(ranking.ITEMS) + 1, ranking.VECTORS.shape[1]]
    ]
    assert len(tables) == 1, tables


def test_tflite_rankers_score_like_the_keras_ranker(converted):
    network, test, _, found, callables = converted
    expected = _scores(lambda f: network(f), test)
    labels = np.concatenate([np.concatenate([y[h] for h in ranking.HEADS], 1) for _, y in test])
    keras_auc = found["ranker_float32"]["quality"]["auc"]
    for name, fn in callables.items():
        got = _scores(lambda f, fn=fn: fn(**f), test)
        if name == "ranker_float32_tflite":
            np.testing.assert_allclose(got, expected, atol=FLOAT_ATOL)
        for j, head in enumerate(ranking.HEADS):
            rho = stats.spearmanr(got[:, j], expected[:, j]).statistic
            assert rho > MIN_SPEARMAN, (name, head, rho)
            gap = abs(
                metrics.auc(labels[:, j], got[:, j]) - metrics.auc(labels[:, j], expected[:, j])
            )
            assert gap <= AUC_TOLERANCE, (name, head, gap)
        assert abs(found[name]["quality"]["auc"] - keras_auc) <= AUC_TOLERANCE, name
    assert abs(found["ranker_float32_tflite"]["quality"]["auc"] - keras_auc) < 1e-4
    # Batches of another size get their own interpreter (no reallocation inside timed calls).
    features = next(iter(test))[0]
    one = callables["ranker_int8_tflite"](**{k: v[:1] for k, v in features.items()})
    assert set(one) == set(ranking.HEADS) and one["view"].shape == (1,)
