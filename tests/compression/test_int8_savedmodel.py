"""int8 SavedModel: int8 variables with float16 scales, core ops only, the graph once, only the
weights served, compact lookup tables, <= 30% of float32 on disk when weights dominate, same
rankings, clear errors."""

import math

import numpy as np
import pytest
import tensorflow as tf
from scipy import stats
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.python.framework import op_def_registry

from tests.compression import standins
from tfrec.compression import (
    artifacts,
    compact_tables,
    int8_round_trip,
    int8_savedmodel,
    sizes,
    weight_quantization,
)

# Embedding-heavy: a 10k x 256 item table. Per item, float32 stores 4 * DIM bytes and int8
# DIM + 2 (its float16 scale); the inline StringLookup vocabulary (~10 bytes per id: the
# string, its int64 index made at load time) is the same in both, the graph smaller in int8
# (packed weights). Measured: 26.3% here (26.5% with float32 scales, 27.9% before packing).
NUM_ITEMS, DIM, K = 10_000, 256, 20


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    model = standins.tower(num_items=NUM_ITEMS, dim=DIM)
    rng = np.random.default_rng(1)
    candidates = rng.normal(size=(2_000, DIM)).astype(np.float32)
    ids = [f"item{i}" for i in range(len(candidates))]
    paths, modules = {}, {}
    for quantize in (False, True):
        modules[quantize] = int8_savedmodel.Int8Model(
            model, candidates=candidates, candidate_ids=ids, k=K, quantize=quantize
        )
        paths[quantize] = int8_savedmodel.save(
            modules[quantize], tmp_path_factory.mktemp("int8" if quantize else "float32")
        )
    return model, paths, modules


def test_variables_are_packed_int8(exports):
    _, paths, modules = exports
    reader = tf.train.load_checkpoint(paths[True] + "/variables/variables")
    dtypes = reader.get_variable_to_dtype_map()
    shapes = reader.get_variable_to_shape_map()

    def variables(dtype):
        return {"/".join(n.split("/")[:2]): shapes[n] for n, d in dtypes.items() if d == dtype}

    # The model's int8 weights in one flat variable (the item table and more), the candidate
    # index in its own.
    int8 = variables(tf.int8)
    assert int8.keys() == {"int8_values/.ATTRIBUTES", "candidates/values"}
    assert len(int8["int8_values/.ATTRIBUTES"]) == 1
    assert int8["int8_values/.ATTRIBUTES"][0] > (NUM_ITEMS + 1) * DIM
    assert int8["candidates/values"] == [2_000, DIM]
    # Every scale is float16: the model's in one flat variable, the index's in its own.
    quantized = [w for w in modules[True].packed_weights if w.axis is not None]
    scales = sum(math.prod(w.scales_shape) for w in quantized)
    assert variables(tf.float16) == {
        "float16_values/.ATTRIBUTES": [scales],
        "candidates/scales": [2_000],
    }
    # The small float weights (biases, norms): one flat float32 variable, no float32 matrix.
    assert variables(tf.float32).keys() == {"float_values/.ATTRIBUTES"}
    # Few variables, so few fixed bytes: the saver's functions grow with them.
    assert len(dtypes) == 7, sorted(dtypes)  # + candidate ids and the checkpoint's object graph


def test_packed_layout_and_alignment():
    model = standins.tower(num_items=30, dim=8)
    module = int8_savedmodel.Int8Model(model, min_elements=64)
    table = next(w for w in module.packed_weights if w.name.endswith("item_embedding/embeddings"))
    assert table.shape == (31, 8) and table.axis == (0,) and table.gathered
    sizes = module._sizes
    # Every piece read in place fills whole 64-byte units, so `tf.split` aliases the variable
    # (no copy); gathered tables come first in the int8 variable.
    assert all(n % 64 == 0 for n in sizes["rows"] + sizes["int8"])
    assert all(n % 16 == 0 for n in sizes["float32"])
    assert module.int8_values.shape == (sum(sizes["rows"]) + sum(sizes["int8"]),)
    # A gathered table's piece holds whole rows: 31 * 8 = 248 values padded to 256.
    assert sizes["rows"][table.values] == 256
    # float16 scales are cast at once, then split: no padding.
    quantized = [w for w in module.packed_weights if w.axis is not None]
    assert {w.scales_group for w in quantized} == {"float16"}
    assert sum(sizes["float16"]) == sum(math.prod(w.scales_shape) for w in quantized)
    assert module.float16_values.dtype == tf.float16
    # Every weight layers hold is packed but BERT's pooled-output layer, which the tower does
    # not read: none is left as a variable of its own.
    assert module.unserved == ("bert/pooled_dense/kernel", "bert/pooled_dense/bias")
    assert not module.float_weights
    assert len(module.packed_weights) + len(module.unserved) == len(model.weights)


def test_outputs_equal_float32_model_of_dequantized_weights():
    # The packed int8 function computes exactly what the float32 model computes over its
    # weights' int8 round trip (`int8_round_trip`, gathered table rows included), bit for bit;
    # the float weights come back after the block.
    model = standins.tower(num_items=300, dim=16)
    module = int8_savedmodel.Int8Model(model, min_elements=64)
    features = standins.as_tensors(standins.features(64, num_items=300))
    before = [w.numpy() for w in model.weights]
    with int8_round_trip.int8_weights(model, min_elements=64) as replaced:
        baseline = int8_savedmodel.Int8Model(model, quantize=False)
        want = baseline.signatures()["serving_default"](features)["output"].numpy()
    got = module.signatures()["serving_default"](features)["output"].numpy()
    np.testing.assert_array_equal(got, want)
    # Every weight the int8 module packs as int8 was replaced (and the pooler it never reads).
    assert replaced >= sum(w.axis is not None for w in module.packed_weights) > 0
    for weight, value in zip(model.weights, before, strict=True):
        np.testing.assert_array_equal(weight.numpy(), value)


def test_attention_kernels_per_channel_and_close_to_float32():
    model = standins.tower()
    module = int8_savedmodel.Int8Model(model, min_elements=64)
    shapes = {w.shape: w.scales_shape for w in module.packed_weights if w.axis is not None}
    # The attention projections [16, 2, 8] get one scale per head and dim, the output
    # projection [2, 8, 16] one per output unit.
    assert shapes[(16, 2, 8)] == (2, 8) and shapes[(2, 8, 16)] == (16,)
    features = standins.as_tensors(standins.features(32))
    got = module.signatures()["serving_default"](features)["output"].numpy()
    assert standins.cosine(got, model(features).numpy()).min() > 0.999


def test_graph_holds_the_model_once(exports):
    _, paths, _ = exports
    for path in paths.values():
        saved = saved_model_pb2.SavedModel()
        with open(path + "/saved_model.pb", "rb") as f:
            saved.ParseFromString(f.read())
        library = saved.meta_graphs[0].graph_def.library.function
        # `retrieve` calls the serving function; neither is saved a second time.
        tracing = [f.signature.name for f in library if any("hidden" in n.name for n in f.node_def)]
        assert len(tracing) == 1, tracing


def test_only_core_ops(exports):
    _, paths, _ = exports
    saved = saved_model_pb2.SavedModel()
    with open(paths[True] + "/saved_model.pb", "rb") as f:
        saved.ParseFromString(f.read())
    graph_def = saved.meta_graphs[0].graph_def
    functions = {f.signature.name for f in graph_def.library.function}
    ops = {n.op for n in graph_def.node}
    ops |= {n.op for f in graph_def.library.function for n in f.node_def}
    unknown = sorted(op for op in ops - functions if op_def_registry.get(op) is None)
    assert not unknown
    assert {"Cast", "Mul"} <= ops


def test_size_and_rankings(exports):
    model, paths, _ = exports
    float_size = sizes.size_on_disk(paths[False])
    int8_size = sizes.size_on_disk(paths[True])
    assert int8_size["raw_bytes"] <= 0.30 * float_size["raw_bytes"], (int8_size, float_size)
    features = standins.as_tensors(standins.features(64, num_items=NUM_ITEMS))
    results = {}
    for quantize, path in paths.items():
        loaded = tf.saved_model.load(path)
        results[quantize] = (
            loaded.signatures["serving_default"](**features)["output"].numpy(),
            loaded.signatures["retrieve"](**features)["ids"].numpy(),
        )
    np.testing.assert_allclose(results[False][0], model(features).numpy(), atol=1e-5)
    assert standins.cosine(results[True][0], results[False][0]).min() > 0.999
    overlap = [
        len(set(a) & set(b)) / K for a, b in zip(results[False][1], results[True][1], strict=True)
    ]
    # Measured: mean top-20 overlap 0.99.
    assert np.mean(overlap) >= 0.9 and min(overlap) >= 0.7, overlap
    candidates = tf.saved_model.load(paths[False]).candidates.numpy()
    scores_float = results[False][0] @ candidates.T
    scores_int8 = results[True][0] @ candidates.T
    rho = [stats.spearmanr(a, b).statistic for a, b in zip(scores_float, scores_int8, strict=True)]
    assert min(rho) > 0.99, min(rho)


def test_bad_inputs_are_refused():
    model = standins.tower()
    candidates = np.zeros((5, 8), np.float32)
    with pytest.raises(ValueError, match=r"`candidates` must be \[num_candidates >= k=10, dim\]"):
        int8_savedmodel.Int8Model(model, candidates=candidates)
    with pytest.raises(ValueError, match=r"`candidates` must be .*received shape \(40,\)"):
        int8_savedmodel.Int8Model(model, candidates=np.zeros(40, np.float32), k=3)
    with pytest.raises(ValueError, match=r"`candidate_ids` must have one id per candidate \(5\)"):
        int8_savedmodel.Int8Model(model, candidates=candidates, candidate_ids=["a"], k=3)
    with pytest.raises(ValueError, match=r"`min_elements` must be >= 1, received 0"):
        int8_savedmodel.Int8Model(model, min_elements=0)
    with pytest.raises(ValueError, match=r"`model` must be a Functional tf.keras \(Keras 2\)"):
        int8_savedmodel.Int8Model(object())


def _lookups_model() -> tf.keras.Model:
    """A string id through StringLookups with every way of numbering OOV, and the inverse."""
    words = [f"w{i}" for i in range(40)]
    inputs = tf.keras.Input(shape=(), dtype=tf.string, name="word")
    outputs = {
        "one_oov": tf.keras.layers.StringLookup(vocabulary=words)(inputs),
        "three_oov": tf.keras.layers.StringLookup(vocabulary=words, num_oov_indices=3)(inputs),
        "masked": tf.keras.layers.StringLookup(vocabulary=words, mask_token="")(inputs),
    }
    outputs["inverse"] = tf.keras.layers.StringLookup(vocabulary=words, invert=True)(
        outputs["one_oov"]
    )
    return tf.keras.Model(inputs, outputs)


@pytest.mark.parametrize("quantize", [True, False])
def test_lookup_ranges_are_made_at_load_time(tmp_path, quantize):
    model = _lookups_model()
    path = int8_savedmodel.save(int8_savedmodel.Int8Model(model, quantize=quantize), tmp_path)
    words = tf.constant(["w0", "w7", "w39", "oov", "other", "", "w12"])
    got = tf.saved_model.load(path).signatures["serving_default"](word=words)
    for name, want in model(words).items():
        np.testing.assert_array_equal(got[name].numpy(), want.numpy(), err_msg=name)
    # Only the keys are stored: no int64 index vector beside them in saved_model.pb.
    saved = saved_model_pb2.SavedModel()
    with open(path + "/saved_model.pb", "rb") as f:
        saved.ParseFromString(f.read())
    constants = [n.attr["value"].tensor for n in saved.meta_graphs[0].graph_def.node]
    assert not [t for t in constants if t.dtype == tf.int64.as_datatype_enum and t.tensor_shape.dim]


def test_compact_table_keeps_other_tables():
    keys = tf.constant(["a", "b", "c"])
    ranged = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(keys, tf.constant([5, 6, 7], tf.int64)), -1
    )
    compact = compact_tables.compact_table(ranged)
    assert compact is not ranged
    query = tf.constant(["c", "a", "z"])
    np.testing.assert_array_equal(compact.lookup(query), ranged.lookup(query))
    shuffled = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(keys, tf.constant([2, 0, 1], tf.int64)), -1
    )
    assert compact_tables.compact_table(shuffled) is shuffled


def test_quantize_candidates_and_runner_in_every_layout(tmp_path):
    model = standins.tower(num_items=200)  # a 201 x 8 item table: int8 (>= 1024 values)
    items = np.random.default_rng(2).normal(size=(30, 8)).astype(np.float32)
    features = standins.as_tensors(standins.features(4, num_items=200))
    layouts = {"float32": (False, None), "int8_index": (False, True), "int8": (True, None)}
    expected_int8 = {
        "float32": set(),
        "int8_index": {"candidates"},
        "int8": {"int8_values", "candidates"},
    }
    for name, (quantize, candidates) in layouts.items():
        # Positional `quantize`, as the existing callers pass it.
        path = artifacts.save_savedmodel(
            model, items, range(30), tmp_path / name, quantize, quantize_candidates=candidates
        )
        runner = artifacts.SavedModelRunner(path)
        index = runner.item_index()
        int8 = {n.split("/")[0] for n in runner.int8_tensors()}
        assert int8 == expected_int8[name], name
        assert index.dtype == np.float32
        if name == "float32":
            np.testing.assert_array_equal(index, items)
        else:
            # Per-row int8: within half a step of the row's scale, plus what the float16 scale
            # moves the largest value (127 * 2**-11 of a step).
            step = np.abs(items).max(axis=1, keepdims=True) / 127
            assert np.all(np.abs(index - items) <= step * (0.5 + 127 * 2**-11) + 1e-7)
        # A float32 tower keeps one variable per weight, whatever its index.
        assert (len(runner.module.float_weights) > 10) == (not quantize), name
        assert runner.retrieve(features)["ids"].shape == (4, 30)  # k = min(100, 30 items)


FRESH = """
import json, sys
import numpy as np
import tensorflow as tf

path, features = sys.argv[1], json.loads(sys.stdin.read())
feeds = {k: np.array(v, dtype=object if isinstance(v[0], str) else np.int32)
         for k, v in features.items()}
sigs = tf.saved_model.load(path).signatures
eager = {s: {k: v.numpy().tolist() for k, v in sigs[s](**feeds).items()} for s in sigs}
# As TF Serving's C++ loader does: the saver's restore op, the init op, tensors by name.
graph = tf.Graph()
with graph.as_default(), tf.compat.v1.Session(graph=graph) as session:
    meta = tf.compat.v1.saved_model.loader.load(session, ["serve"], path)
    by_name = {}
    for s in ("serving_default", "retrieve"):
        signature = meta.signature_def[s]
        fetches = {k: v.name for k, v in signature.outputs.items()}
        fed = {signature.inputs[k].name: v for k, v in feeds.items()}
        by_name[s] = {k: v.tolist() for k, v in session.run(fetches, fed).items()}
leaked = sorted(m for m in sys.modules if m.split(".")[0] in ("tfrec", "tf_keras", "keras_nlp"))
json.dump({"eager": eager, "session": by_name, "leaked": leaked}, sys.stdout,
          default=lambda b: b.decode())
"""


def _check_in_a_fresh_process(path: str, features: dict) -> None:
    """Both signatures of `path`, loaded eagerly and through a session in a process without
    tfrec, give what they give here."""
    import json
    import subprocess
    import sys

    request = {k: v.tolist() for k, v in features.items()}
    done = subprocess.run(
        [sys.executable, "-c", FRESH, path],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        check=True,
        env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"},
    )
    result = json.loads(done.stdout)
    assert result["leaked"] == []
    loaded = tf.saved_model.load(path).signatures
    tensors = standins.as_tensors(features)
    for name in ("serving_default", "retrieve"):
        want = {k: v.numpy() for k, v in loaded[name](**tensors).items()}
        for key, value in want.items():
            if value.dtype == object:  # ids: bytes here, str through JSON
                value = np.vectorize(bytes.decode)(value)
            for how in ("eager", "session"):
                got = np.array(result[how][name][key], dtype=value.dtype)
                np.testing.assert_array_equal(got, value, err_msg=f"{how} {name} {key}")


def test_loads_in_a_fresh_process_without_tfrec(exports):
    _, paths, _ = exports
    _check_in_a_fresh_process(paths[True], standins.features(8, num_items=NUM_ITEMS))


def _ids_model(items: list, users: list) -> tf.keras.Model:
    """Item ids and numeric user ids through StringLookups and embeddings, one output."""
    item = tf.keras.Input(shape=(), dtype=tf.string, name="item_id")
    user = tf.keras.Input(shape=(), dtype=tf.string, name="user_id")
    vectors = [
        tf.keras.layers.Embedding(len(vocab) + 1, 8)(
            tf.keras.layers.StringLookup(vocabulary=vocab)(x)
        )
        for x, vocab in ((item, items), (user, users))
    ]
    output = tf.keras.layers.Dense(8, name="output")(tf.keras.layers.Concatenate()(vectors))
    return tf.keras.Model({"item_id": item, "user_id": user}, output)


@pytest.mark.parametrize("quantize", [True, False])
def test_item_and_numeric_keys_are_made_at_load_time(tmp_path, quantize):
    rng = np.random.default_rng(3)
    ids = [f"sku{i}" for i in range(300)]
    items = [str(i) for i in rng.permutation(ids)[:200]]  # frequency order: not the index's
    users = [str(u) for u in rng.choice(10**9, 150, replace=False)]
    model = _ids_model(items, users)
    candidates = rng.normal(size=(300, 8)).astype(np.float32)
    module = int8_savedmodel.Int8Model(
        model, candidates=candidates, candidate_ids=ids, k=5, quantize=quantize, min_elements=64
    )
    path = int8_savedmodel.save(module, tmp_path)
    # Known ids, unknown ones, and numbers that only print like a user id ("0" + id).
    features = {
        "item_id": np.array(items[:5] + ["sku999", "other", ""], dtype=object),
        "user_id": np.array(users[:5] + ["0" + users[0], "12", "x"], dtype=object),
    }
    got = tf.saved_model.load(path).signatures["serving_default"](**standins.as_tensors(features))
    want = module.signatures()["serving_default"](standins.as_tensors(features))
    np.testing.assert_array_equal(got["output"], want["output"])
    if not quantize:
        np.testing.assert_allclose(got["output"], model(features), atol=1e-6)
    # Neither vocabulary is stored as strings: items as int16 positions among the candidate
    # ids, users as int32 numbers.
    saved = saved_model_pb2.SavedModel()
    with open(path + "/saved_model.pb", "rb") as f:
        saved.ParseFromString(f.read())
    constants = [n.attr["value"].tensor for n in saved.meta_graphs[0].graph_def.node]
    sizes_by_dtype = {
        (tf.as_dtype(t.dtype).name, t.tensor_shape.dim[0].size)
        for t in constants
        if len(t.tensor_shape.dim) == 1
    }
    assert ("string", 200) not in sizes_by_dtype and ("string", 150) not in sizes_by_dtype
    assert {("int16", 200), ("int32", 150)} <= sizes_by_dtype
    if quantize:
        _check_in_a_fresh_process(path, features)


def test_compact_table_prints_only_canonical_numbers():
    def table(keys, values):
        initializer = tf.lookup.KeyValueTensorInitializer(
            tf.constant(keys), tf.constant(values, tf.int64)
        )
        return tf.lookup.StaticHashTable(initializer, -1)

    numeric = table(["12", "5", "-3"], [2, 0, 1])
    compact = compact_tables.compact_table(numeric)
    assert compact is not numeric
    query = tf.constant(["5", "-3", "12", "05", "+5", "7"])
    np.testing.assert_array_equal(compact.lookup(query), numeric.lookup(query))
    # "007" would print back as "7": stored as it is.
    padded = table(["007", "5"], [1, 0])
    assert compact_tables.compact_table(padded) is padded


def _nested_model() -> tf.keras.Model:
    """A nested model with two outputs, of which the outer model reads one."""
    inner_input = tf.keras.Input(shape=(4,))
    inner = tf.keras.Model(
        inner_input,
        {
            "used": tf.keras.layers.Dense(3, name="used")(inner_input),
            "pooled": tf.keras.layers.Dense(5, name="pooled")(inner_input),
        },
        name="inner",
    )
    x = tf.keras.Input(shape=(4,), name="x")
    return tf.keras.Model(x, tf.keras.layers.Dense(2, name="head")(inner(x)["used"]))


@pytest.mark.parametrize("quantize", [True, False])
def test_weights_no_output_reads_are_not_saved(tmp_path, quantize):
    model = _nested_model()
    # Kernels (12 and 6 values) int8, biases float32.
    module = int8_savedmodel.Int8Model(model, min_elements=6, quantize=quantize)
    assert module.unserved == ("inner/pooled/kernel", "inner/pooled/bias")
    path = int8_savedmodel.save(module, tmp_path)
    reader = tf.train.load_checkpoint(path + "/variables/variables")
    shapes = {
        name.split("/.ATTRIBUTES")[0]: shape
        for name, shape in reader.get_variable_to_shape_map().items()
        if name != "_CHECKPOINTABLE_OBJECT_GRAPH"
    }
    if quantize:  # kernels padded to 64 values each, biases to 16, 3 + 2 scales
        assert shapes == {"int8_values": [128], "float16_values": [5], "float_values": [32]}
    else:  # 4 x 3 + 3 + 3 x 2 + 2: the pooled layer's 4 x 5 + 5 are left out
        assert sorted(shapes.values()) == [[2], [3], [3, 2], [4, 3]], shapes
    x = np.random.default_rng(4).normal(size=(6, 4)).astype(np.float32)
    got = tf.saved_model.load(path).signatures["serving_default"](x=tf.constant(x))
    np.testing.assert_allclose(got["head"], model(x), atol=1e-6 if not quantize else 0.05)


def test_scales_are_float16_unless_out_of_range():
    assert weight_quantization.stored_scales(np.array([1e-3, 2.0], np.float32)).dtype == np.float16
    # Below float16's smallest normal (6.1e-5) a scale would lose precision.
    assert weight_quantization.stored_scales(np.array([1e-6, 2.0], np.float32)).dtype == np.float32
    inputs = tf.keras.Input(shape=(8,), name="x")
    tiny = tf.keras.layers.Dense(16, name="tiny")
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(4, name="big")(tiny(inputs)))
    kernel = np.random.default_rng(5).normal(size=(8, 16)).astype(np.float32)
    tiny.kernel.assign(kernel * 1e-4)  # scales ~3e-6
    module = int8_savedmodel.Int8Model(model, min_elements=64)
    groups = {w.name: w.scales_group for w in module.packed_weights if w.axis is not None}
    assert groups == {"tiny/kernel": "float32", "big/kernel": "float16"}
    x = np.random.default_rng(6).normal(size=(5, 8)).astype(np.float32)
    got = module.signatures()["serving_default"](tf.constant(x))["big"].numpy()
    want = model(x).numpy()
    np.testing.assert_allclose(got, want, atol=0.02 * np.abs(want).max())
