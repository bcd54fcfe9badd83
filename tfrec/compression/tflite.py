"""TFLite conversion (full-integer or dynamic-range int8) and a runner that reports what it got."""

from __future__ import annotations

import collections
import contextlib
import os
import sys
import tempfile
import warnings
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Optional, Union

import numpy as np
import tensorflow as tf

from tfrec.compression import tflite_ops

MODES = ("full_int8", "dynamic_range", "float")
_OpsSet = tf.lite.OpsSet
# Ops kept in float in `full_int8` by default:
# - BROADCAST_TO: TFLite's int8 kernel copies bytes, but the quantizer gives its output another
#   scale and zero point than its input: keras-nlp's `PositionEmbedding` (a broadcast of the
#   position table) came out scaled by ~2 and shifted (demo query tower: input scale 0.0029,
#   output 0.0053), which cost 5% Recall@50 on its own.
# - DIV: the int8 kernel refuses a zero divisor (`div.cc data[i] != 0`), which masked mean
#   pooling divides by for an empty sequence (`divide_no_nan`): a UCI query tower, whose
#   requests carry no search text, failed on every request.
DEFAULT_FLOAT_OPS = ("BROADCAST_TO", "DIV")


def _samples(representative_data: Iterable, limit: int) -> Iterator[Any]:
    """Yields single-example feeds (dict or list of arrays with batch 1) from batched data."""
    count = 0
    for item in representative_data:
        flat = tf.nest.flatten(item)
        arrays = [np.asarray(x.numpy() if hasattr(x, "numpy") else x) for x in flat]
        batch = arrays[0].shape[0] if arrays[0].ndim else 1
        for row in range(batch):
            rows = [a[row : row + 1] if a.ndim else a for a in arrays]
            yield tf.nest.pack_sequence_as(item, rows)
            count += 1
            if count >= limit:
                return


def _converter(model_or_fn: Any, trackable_obj: Optional[tf.Module]) -> tf.lite.TFLiteConverter:
    if isinstance(model_or_fn, tf.keras.Model):
        return tf.lite.TFLiteConverter.from_keras_model(model_or_fn)
    fn = model_or_fn
    if hasattr(fn, "get_concrete_function"):
        fn = fn.get_concrete_function()
    if not hasattr(fn, "structured_input_signature"):
        raise ValueError(
            "`model_or_concrete_fn` must be a tf.keras.Model, a ConcreteFunction or a "
            f"tf.function with an `input_signature`, received {type(model_or_fn).__name__}"
        )
    return tf.lite.TFLiteConverter.from_concrete_functions([fn], trackable_obj)


def _string_lookups_on_sequences(model_or_fn: Any) -> list[str]:
    """Lookup layers (or ops) of `model_or_fn` reading `[batch, n]` strings (see `to_tflite`)."""
    if isinstance(model_or_fn, tf.keras.Model):
        found = []
        for layer in model_or_fn._flatten_layers(include_self=False, recursive=True):
            if isinstance(layer, tf.keras.layers.StringLookup):
                for node in layer._inbound_nodes:
                    keys = tf.nest.flatten(node.keras_inputs)[0]
                    if keys.dtype == tf.string and keys.shape.rank is not None:
                        if keys.shape.rank >= 2:
                            found.append(layer.name)
        return sorted(set(found))
    fn = model_or_fn
    if hasattr(fn, "get_concrete_function"):
        fn = fn.get_concrete_function()
    ops = [op for op in getattr(fn, "graph", tf.Graph()).get_operations()]
    return sorted(
        op.name
        for op in ops
        if op.type == "LookupTableFindV2"
        and op.inputs[1].dtype == tf.string
        and (op.inputs[1].shape.rank is None or op.inputs[1].shape.rank >= 2)
    )


@contextlib.contextmanager
def _converter_stderr_captured() -> Iterator[None]:
    """Keeps the converter's C++ diagnostics (MLIR dumps of many kB) off the terminal.

    They are written straight to file descriptor 2, below Python's `sys.stderr`; what matters
    of them is also in the exception a failed conversion raises, which callers report.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _quantize_with_float_ops(converter: tf.lite.TFLiteConverter, float_ops: Sequence[str]) -> bytes:
    """Full-integer conversion that leaves the ops named in `float_ops` in float.

    TFLite's selective quantization: calibrate, then quantize with those ops deny-listed
    (`tf.lite.experimental.QuantizationDebugger`, which only needs the calibrated model here).
    """
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter,
        debug_dataset=lambda: iter(()),
        debug_options=tf.lite.experimental.QuantizationDebugOptions(denylisted_ops=list(float_ops)),
    )
    return debugger.get_nondebug_quantized_model()


def to_tflite(
    model_or_concrete_fn: Any,
    representative_data: Optional[Iterable] = None,
    mode: str = "full_int8",
    *,
    allow_select_tf_ops: bool = False,
    num_calibration_samples: int = 200,
    trackable_obj: Optional[tf.Module] = None,
    float_ops: Sequence[str] = DEFAULT_FLOAT_OPS,
) -> bytes:
    """Converts a model or function to a TFLite flatbuffer with int8 weights.

    `full_int8` calibrates activation ranges on `representative_data` and quantizes every
    op's activations to int8 except the op types in `float_ops` (by default `BROADCAST_TO` and
    `DIV`, see `DEFAULT_FLOAT_OPS`), which compute in float between QUANTIZE/DEQUANTIZE ops; if an op
    has no int8 kernel it falls back to float. `dynamic_range` stores weights (kernels and
    tables) as int8 and computes in float, quantizing activations on the fly inside the
    kernels. Inputs and outputs stay float32 (and strings/ints stay as they are), so callers
    feed the same arrays as to the Keras model. Check what was achieved with
    `tflite_ops.achieved_mode` (or `TFLiteRunner(...).mode`).

    `StringLookup` layers (and `tf.lookup` tables) need no Flex ops: the converter maps them to
    TFLite's builtin `HASHTABLE`/`HASHTABLE_FIND`, so a tower taking raw string ids converts
    whole in `float` and `dynamic_range` mode, and in `full_int8` mode when each lookup reads
    `[batch]` strings. The `full_int8` calibrator crashes on a lookup of `[batch, n]` strings
    (segfault, or `basic_string::_M_create`), so such models are refused with a ValueError:
    convert `graph.rebuild(model, cut=...)` instead, which takes integer indices (see
    `artifacts.tflite_ready`).

    Args:
        model_or_concrete_fn: tf.keras.Model, ConcreteFunction, or tf.function with an
            `input_signature`. A QAT model works too (its fake-quant ranges are used).
        representative_data: iterable of feeds (dict name -> array, or list of arrays, with
            a batch dimension), e.g. a batched `tf.data.Dataset` of features. Required for
            `full_int8`.
        mode: str. `full_int8`, `dynamic_range` (int8 weights, float activations) or `float`
            (no quantization; the baseline). Defaults to `full_int8`.
        allow_select_tf_ops: bool. Allow TF (Flex) kernels for ops TFLite lacks; the result
            then needs the Flex delegate (bundled with the `tensorflow` pip). Defaults to False.
        num_calibration_samples: int. Examples read from `representative_data`. Defaults to 200.
        trackable_obj: tf.Module. Object holding the variables of a concrete function.
        float_ops: sequence of str. TFLite op types (e.g. `SOFTMAX`) kept in float in
            `full_int8` mode. Defaults to `DEFAULT_FLOAT_OPS`; empty: int8 wherever possible.

    Returns:
        The flatbuffer bytes.

    Example:
        >>> blob = to_tflite(tower, ds.take(20), mode="full_int8")
        >>> TFLiteRunner(blob).mode
        'full_int8'
    """
    if mode not in MODES:
        raise ValueError(f"`mode` must be one of {MODES}, received {mode!r}")
    if mode == "full_int8" and representative_data is None:
        raise ValueError(
            "`representative_data` is required for `mode='full_int8'` (activation ranges are "
            "calibrated on it), received None; use `mode='dynamic_range'` without data"
        )
    if mode == "full_int8":
        sequences = _string_lookups_on_sequences(model_or_concrete_fn)
        if sequences:
            raise ValueError(
                f"`model_or_concrete_fn` must not look up `[batch, n]` strings in `full_int8` "
                f"mode (the TFLite calibrator crashes on them), received lookups {sequences}; "
                "cut the lookups out with `graph.rebuild(model, cut=...)` or use "
                "`mode='dynamic_range'`"
            )
    calibration: Iterable = () if representative_data is None else representative_data
    extra = [_OpsSet.SELECT_TF_OPS] if allow_select_tf_ops else []
    int8, builtins = _OpsSet.TFLITE_BUILTINS_INT8, _OpsSet.TFLITE_BUILTINS
    # (ops sets, ops kept in float): tried in order until one converts.
    if mode == "full_int8" and float_ops:
        attempts = [([int8, builtins], tuple(float_ops)), ([int8, builtins], ())]
    elif mode == "full_int8":
        attempts = [([int8], ()), ([int8, builtins], ())]
    else:
        attempts = [([builtins], ())]
    errors: list[str] = []
    for ops, keep_float in attempts:
        converter = _converter(model_or_concrete_fn, trackable_obj)
        converter.target_spec.supported_ops = ops + extra
        if mode != "float":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if mode == "full_int8":
            converter.representative_dataset = lambda: _samples(
                calibration, num_calibration_samples
            )
        try:
            if keep_float:
                with _converter_stderr_captured():
                    return _quantize_with_float_ops(converter, keep_float)
            if mode == "full_int8" and float_ops:
                # Selective quantization fails on some graphs (e.g. a lookup's unranked output
                # concatenated with int8 tensors): say so rather than drop `float_ops` quietly.
                warnings.warn(
                    f"`float_ops` {list(float_ops)} could not be kept in float, converting "
                    f"every op to int8 where possible: {errors[-1][:300]}",
                    stacklevel=2,
                )
            with _converter_stderr_captured():
                return converter.convert()
        except Exception as e:  # noqa: BLE001 - ConverterError or op errors: try the next set
            errors.append(f"{[o.name for o in ops]} float_ops={list(keep_float)}: {e}")
    raise ValueError(f"TFLite conversion failed in mode `{mode}`:\n" + "\n".join(errors))


class TFLiteRunner:
    """Runs a TFLite flatbuffer like the Keras model it came from.

    Args:
        model_bytes: bytes. A flatbuffer, e.g. from `to_tflite`.
        signature_key: str or None. Signature to run. Defaults to the only/first one.
        num_threads: int or None. Interpreter threads. Defaults to TFLite's choice.

    Attributes:
        mode: str. `tflite_ops.achieved_mode(model_bytes)`.
        input_names: list of str. The signature's input names.

    Example:
        >>> runner = TFLiteRunner(blob)
        >>> scores = runner.predict({"item_id": np.array([b"a"]), "token_ids": ids})
    """

    def __init__(
        self,
        model_bytes: bytes,
        signature_key: Optional[str] = None,
        num_threads: Optional[int] = None,
    ) -> None:
        if not isinstance(model_bytes, (bytes, bytearray)) or not model_bytes:
            raise ValueError(
                f"`model_bytes` must be a non-empty TFLite flatbuffer, received "
                f"{type(model_bytes).__name__}"
            )
        self.model_bytes = bytes(model_bytes)
        self._interpreter = tf.lite.Interpreter(
            model_content=self.model_bytes, num_threads=num_threads
        )
        signatures = self._interpreter.get_signature_list()
        if not signatures:
            raise ValueError("`model_bytes` holds no signature; convert with `to_tflite`")
        if signature_key is not None and signature_key not in signatures:
            raise ValueError(
                f"`signature_key` must be one of {sorted(signatures)}, received {signature_key!r}"
            )
        self.signature_key = signature_key or sorted(signatures)[0]
        self._runner = self._interpreter.get_signature_runner(self.signature_key)
        self._input_details = self._runner.get_input_details()
        self.input_names = list(self._input_details)
        self.mode = tflite_ops.achieved_mode(self.model_bytes)

    def predict(
        self, inputs: Union[dict, list, tuple, np.ndarray]
    ) -> Union[np.ndarray, dict[str, np.ndarray]]:
        """Runs one batch.

        Args:
            inputs: dict name -> array, a list in `input_names` order, or one array.

        Returns:
            The output array, or a dict name -> array when there are several.
        """
        if not isinstance(inputs, dict):
            flat = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
            if len(flat) != len(self.input_names):
                raise ValueError(
                    f"`inputs` must hold {len(self.input_names)} arrays {self.input_names}, "
                    f"received {len(flat)}"
                )
            inputs = dict(zip(self.input_names, flat, strict=True))
        missing = sorted(set(self.input_names) - set(inputs))
        if missing:
            raise ValueError(
                f"`inputs` must have keys {self.input_names}, received {sorted(inputs)}"
            )
        feed: collections.OrderedDict[str, np.ndarray] = collections.OrderedDict()
        for name in self.input_names:
            value = inputs[name]
            value = np.asarray(value.numpy() if hasattr(value, "numpy") else value)
            dtype = self._input_details[name]["dtype"]
            if value.dtype.kind in "USO":
                # TFLite string tensors take bytes; encode str so non-ASCII ids survive.
                encoded = [v.encode("utf-8") if isinstance(v, str) else v for v in value.ravel()]
                feed[name] = np.array(encoded, dtype=object).reshape(value.shape)
            else:
                feed[name] = value.astype(dtype)
        outputs = self._runner(**feed)
        if len(outputs) == 1:
            return next(iter(outputs.values()))
        return dict(outputs)
