"""Served artifacts of a variant (SavedModel with index, TFLite with index) and how to run them."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Optional

import numpy as np
import tensorflow as tf

from tfrec.compression import graph, int8_savedmodel, tflite, tflite_ops, weight_quantization

# Top-k of the `retrieve` signature (and of the TFLite scoring step timed with it).
RETRIEVE_K = 100
TFLITE_FILE = "query_tower.tflite"
INDEX_FILE = "item_index.npz"

# A feed: raw feature batch -> the arrays a model without its lookups takes (`tflite_ready`).
Feed = Callable[[Mapping[str, Any]], dict[str, np.ndarray]]


def save_savedmodel(
    query: tf.keras.Model,
    items: np.ndarray,
    item_ids: Iterable[Any],
    path: os.PathLike | str,
    quantize: bool,
    quantize_candidates: Optional[bool] = None,
) -> str:
    """Query tower + candidate index as one SavedModel version (`serving_default`, `retrieve`).

    `quantize=False` keeps the same layout in float32, so float32, pruned and QAT variants and
    the int8 one differ only in how their weights are stored.

    Args:
        query: tf.keras.Model. The query tower (Functional).
        items: np.ndarray. Candidate embeddings `[num_items, dim]`.
        item_ids: iterable (e.g. an array). One id per candidate row.
        path: str or PathLike. The version directory to write.
        quantize: bool. int8 weights (packed, `int8_savedmodel.Int8Model`) or float32 ones.
        quantize_candidates: bool or None. int8 candidate index; None follows `quantize`, True
            gives a float32 tower (e.g. a pruned one) an int8 index.

    Returns:
        The path, as a string.
    """
    module = int8_savedmodel.Int8Model(
        query,
        candidates=items,
        candidate_ids=[str(i) for i in item_ids],
        k=min(RETRIEVE_K, len(items)),
        quantize=quantize,
        quantize_candidates=quantize_candidates,
    )
    return int8_savedmodel.save(module, path)


class SavedModelRunner:
    """A saved variant loaded back: query embeddings, its item index, and one retrieve call."""

    def __init__(self, path: os.PathLike | str) -> None:
        self.path = str(path)
        self.module = tf.saved_model.load(self.path)
        self._serve = self.module.signatures["serving_default"]
        self._retrieve = self.module.signatures["retrieve"]

    def embed(self, batch: Mapping[str, Any]) -> np.ndarray:
        """Query embeddings `[batch, dim]` of a batch of query features."""
        outputs = self._serve(**batch)
        return np.asarray(next(iter(outputs.values())), np.float32)

    def retrieve(self, batch: Mapping[str, Any]) -> dict[str, tf.Tensor]:
        """The `retrieve` signature's top-k `scores` and `ids` for a batch of query features."""
        return self._retrieve(**batch)

    def item_index(self) -> np.ndarray:
        """The stored index as float32 (int8 values times their row scales when quantized)."""
        stored = self.module.candidates
        if isinstance(stored, tf.Variable):
            return stored.numpy()
        return weight_quantization.dequantize(stored.values, stored.scales, axis=0).numpy()

    def int8_tensors(self) -> dict[str, list[int]]:
        """Shapes of the int8 variables in the SavedModel's checkpoint, by name.

        `Int8Model` packs the model's int8 weights into one flat variable (`int8_values`); the
        int8 candidate index has its own (`candidates/values`). Empty for float32 layouts.
        """
        reader = tf.train.load_checkpoint(str(Path(self.path) / "variables" / "variables"))
        shapes = reader.get_variable_to_shape_map()
        return {n: shapes[n] for n, d in reader.get_variable_to_dtype_map().items() if d == tf.int8}


_LOOKUPS = (tf.keras.layers.StringLookup, tf.keras.layers.IntegerLookup)


def _cut_lookups(model: tf.keras.Model) -> dict[str, tuple[tf.keras.layers.Layer, str]]:
    """Name the cut inputs get (`graph.rebuild`) -> (lookup layer, name of the input it reads).

    A lookup called at several nodes (the ranker's item-vector lookup reads the candidate id
    and the history ids) has one entry per call, named as `graph.rebuild` names its inputs.
    """
    found: dict[str, tuple[tf.keras.layers.Layer, str]] = {}

    def walk(layer: tf.keras.Model, prefix: str) -> None:
        for sub in layer.layers:
            if isinstance(sub, _LOOKUPS):
                for ordinal, node in enumerate(graph.call_nodes(layer, sub)):
                    source = tf.nest.flatten(node.keras_inputs)[0]
                    name = prefix + graph.cut_input_name(sub.name, ordinal)
                    found[name] = (sub, source._keras_history.layer.name)
            elif graph.is_functional(sub):
                walk(sub, f"{prefix}{sub.name}_")

    walk(model, "")
    return found


def tflite_ready(model: tf.keras.Model) -> tuple[tf.keras.Model, Feed]:
    """A copy of `model` without its vocabulary lookups, and the function that feeds it.

    Lookups are cut out (`graph.rebuild(cut=...)`) and run by the feed function, from the
    layers' vocabularies (`_numpy_lookup`) or with the Keras layers: full-integer calibration
    crashes on lookups of `[batch, n]` strings (segfault or `basic_string::_M_create` in the
    calibrator; `tflite.to_tflite` refuses them), int64 -> int64 tables have no TFLite kernel,
    and a lookup's unranked output blocks einsum legalization. The flatbuffer then takes integer indices (and the raw strings that
    only padding masks or exact-match layers read); the vocabularies travel beside it. A
    lookup called at several nodes feeds one input per call (`graph.cut_input_name`).

    Args:
        model: tf.keras.Model. A Functional model taking raw features.

    Returns:
        (model, feed): `feed(features dict) -> dict of arrays` for the converted model.
    """
    copy = graph.rebuild(model, cut=lambda layer: isinstance(layer, _LOOKUPS))
    lookups = {n: v for n, v in _cut_lookups(model).items() if n in copy.input}
    missing = sorted(n for n in copy.input if n not in model.input and n not in lookups)
    if missing:
        raise ValueError(f"`model` lookups {missing} read no model input; cannot feed them")
    maybe_numpy = {n: _numpy_lookup(layer) for n, (layer, _) in lookups.items()}
    in_numpy = {n: fn for n, fn in maybe_numpy.items() if fn is not None}
    traced = {n: v for n, v in lookups.items() if n not in in_numpy}
    look_up = _lookup_function(traced)

    def feed(features: Mapping[str, Any]) -> dict[str, np.ndarray]:
        out = {k: np.asarray(v) for k, v in features.items() if k in copy.input}
        for name, (_, source) in lookups.items():
            if source not in features:
                raise ValueError(f"`features` must hold `{source}` (read by `{name}`)")
        for name, fn in in_numpy.items():
            out[name] = fn(features[lookups[name][1]])
        if traced:
            sources = {source for _, source in traced.values()}
            indices = look_up({s: tf.convert_to_tensor(features[s]) for s in sources})
            out.update({name: value.numpy() for name, value in indices.items()})
        return out

    return copy, feed


def _numpy_lookup(layer: tf.keras.layers.Layer) -> Optional[Callable[[Any], np.ndarray]]:
    """`layer` (a `StringLookup`/`IntegerLookup`) as a dict lookup on NumPy arrays.

    What an app beside the flatbuffer would do with the vocabulary, and what keeps the feed's
    cost out of the TFLite latency: the UCI ranker's eight lookups took 8 ms per request as
    eager Keras calls and 1.7 ms as one `tf.function`, against 0.3 ms for its flatbuffer.
    Indices are the layer's own (`get_vocabulary` order; mask token 0, unknown keys the OOV
    index).

    Returns:
        `fn(array) -> int array of the same shape`, or None for a layer only TF reproduces
        (hashed OOV buckets, no OOV index, inverted or non-`int` output, non-UTF-8 strings).
    """
    if layer.invert or layer.output_mode != "int" or layer.num_oov_indices != 1:
        return None
    if getattr(layer, "encoding", "utf-8") != "utf-8":
        return None
    index: dict[Any, int] = {}
    for i, token in enumerate(layer.get_vocabulary()):
        token = token.item() if isinstance(token, np.generic) else token
        index[token] = i
        if isinstance(token, str):
            # Requests carry `bytes` (from tf.data) or `str` (from Python): both hit.
            index[token.encode("utf-8")] = i
    oov, dtype = layer._oov_start_index(), np.dtype(layer.dtype)

    def look_up(values: Any) -> np.ndarray:
        values = np.asarray(values)
        flat = [index.get(v, oov) for v in values.ravel().tolist()]
        return np.asarray(flat, dtype).reshape(values.shape)

    return look_up


def _lookup_function(
    lookups: dict[str, tuple[tf.keras.layers.Layer, str]],
) -> Callable[[dict[str, tf.Tensor]], dict[str, tf.Tensor]]:
    """One `tf.function` running the cut lookups `_numpy_lookup` cannot: name -> indices.

    Traced once, they cost one call instead of a Python dispatch each; `reduce_retracing`
    keeps a new batch size from tracing again after the second.
    """

    @tf.function(reduce_retracing=True)
    def look_up(sources: dict) -> dict:
        return {name: layer(sources[source]) for name, (layer, source) in lookups.items()}

    return look_up


def save_tflite(
    query: tf.keras.Model,
    items: np.ndarray,
    directory: os.PathLike | str,
    representative_data: Optional[Iterable[Mapping[str, Any]]],
    mode: str,
    calibration_examples: int = 200,
    ready: Optional[tuple[tf.keras.Model, Feed]] = None,
) -> tuple[str, str]:
    """Query tower as TFLite plus its item index (`.npz`) in `directory`.

    `mode` is a `tflite.MODES` conversion: `float` (the baseline: float32 tower and index),
    `dynamic_range` (int8 weights and tables, float activations) or `full_int8` (activations
    calibrated on `representative_data` and computed in int8, `tflite.DEFAULT_FLOAT_OPS`
    excepted). The quantized modes store the index int8 with per-row scales. Vocabulary lookups
    run outside the flatbuffer (see `tflite_ready`).

    Args:
        query: tf.keras.Model. The query tower (raw features in, as `tflite_ready` feeds).
        items: np.ndarray. Item index `[num_items, dim]`.
        directory: str or path-like. Created if needed.
        representative_data: iterable of raw feature batches (calibration of `full_int8`),
            or None.
        mode: str. One of `tflite.MODES`.
        calibration_examples: int. Examples of `representative_data` the calibrator reads.
            Defaults to 200.
        ready: (model, feed) or None. `tflite_ready(query)`, when the caller has it already
            (several modes of one tower). Defaults to None: made here.

    Returns:
        (directory, achieved mode read back from the flatbuffer).
    """
    if mode not in tflite.MODES:
        raise ValueError(f"`mode` must be one of {tflite.MODES}, received {mode!r}")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    query, feed = tflite_ready(query) if ready is None else ready
    calibration = None
    if mode == "full_int8" and representative_data is not None:
        calibration = [feed(batch) for batch in representative_data]
    blob = tflite.to_tflite(
        query, calibration, mode=mode, num_calibration_samples=calibration_examples
    )
    if mode == "float":
        np.savez(out / INDEX_FILE, values=np.asarray(items, np.float32))
    else:
        values, scales = weight_quantization.quantize_tensor(items, axis=0)
        np.savez(out / INDEX_FILE, values=values, scales=scales)
    (out / TFLITE_FILE).write_bytes(blob)
    return str(out), tflite_ops.achieved_mode(blob)


class TFLiteVariantRunner:
    """A TFLite variant loaded back: interpreter(s) plus the dequantized index.

    One interpreter per batch size: resizing a single interpreter between calls would
    reallocate its tensors and time the allocation, not the model.
    """

    def __init__(self, directory: os.PathLike | str, feed: Feed) -> None:
        path = Path(directory)
        self.feed = feed
        self.blob = (path / TFLITE_FILE).read_bytes()
        self.mode = tflite_ops.achieved_mode(self.blob)
        stored = np.load(path / INDEX_FILE)
        if "scales" in stored:
            self.index = stored["values"].astype(np.float32) * stored["scales"][:, None]
        else:
            self.index = stored["values"]
        self._runners: dict[int, tflite.TFLiteRunner] = {}
        self.k = min(RETRIEVE_K, len(self.index))

    def _runner(self, batch_size: Optional[int]) -> tflite.TFLiteRunner:
        key = batch_size or 0
        if key not in self._runners:
            self._runners[key] = tflite.TFLiteRunner(self.blob)
        return self._runners[key]

    def embed(self, batch: Mapping[str, Any], batch_size: Optional[int] = None) -> np.ndarray:
        """Query embeddings `[batch, dim]`, on the interpreter kept for `batch_size`."""
        return np.asarray(self._runner(batch_size).predict(self.feed(batch)), np.float32)

    def retrieve(self, batch: Mapping[str, Any], batch_size: int) -> np.ndarray:
        """Query embedding, full-catalog scores and top-k ids, like the `retrieve` signature."""
        scores = self.embed(batch, batch_size) @ self.index.T
        return np.argpartition(-scores, self.k - 1, axis=1)[:, : self.k]
