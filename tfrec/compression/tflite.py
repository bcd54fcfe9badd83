"""TFLite conversion (full-integer or dynamic-range int8) and a runner that reports what it got."""

from __future__ import annotations

import collections
from collections.abc import Iterable
from typing import Any, Optional, Union

import numpy as np
import tensorflow as tf

MODES = ("full_int8", "dynamic_range", "float")
_OpsSet = tf.lite.OpsSet


def _samples(representative_data: Iterable, limit: int):
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


def _converter(model_or_fn, trackable_obj):
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


def to_tflite(
    model_or_concrete_fn: Any,
    representative_data: Optional[Iterable] = None,
    mode: str = "full_int8",
    *,
    allow_select_tf_ops: bool = False,
    num_calibration_samples: int = 200,
    trackable_obj: Optional[tf.Module] = None,
) -> bytes:
    """Converts a model or function to a TFLite flatbuffer with int8 weights.

    `full_int8` calibrates activation ranges on `representative_data` and asks for int8 kernels
    only; if some op has none, it falls back to int8 where possible and float elsewhere. Inputs
    and outputs stay float32 (and strings/ints stay as they are), so callers feed the same
    arrays as to the Keras model. Check what was achieved with `TFLiteRunner(...).mode`.

    `StringLookup` layers (and `tf.lookup` tables) need no Flex ops: the converter maps them to
    TFLite's builtin `HASHTABLE`/`HASHTABLE_FIND`, so a tower taking raw string ids converts
    whole. To feed integer indices instead, convert `graph.rebuild(model, cut=...)`.

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
    extra = [_OpsSet.SELECT_TF_OPS] if allow_select_tf_ops else []
    if mode == "full_int8":
        attempts = [
            [_OpsSet.TFLITE_BUILTINS_INT8],
            [_OpsSet.TFLITE_BUILTINS_INT8, _OpsSet.TFLITE_BUILTINS],
        ]
        attempts = [ops + extra for ops in attempts]
    else:
        attempts = [[_OpsSet.TFLITE_BUILTINS] + extra]
    errors = []
    for ops in attempts:
        converter = _converter(model_or_concrete_fn, trackable_obj)
        converter.target_spec.supported_ops = ops
        if mode != "float":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if mode == "full_int8":
            converter.representative_dataset = lambda: _samples(
                representative_data, num_calibration_samples
            )
        try:
            return converter.convert()
        except Exception as e:  # noqa: BLE001 - ConverterError or op errors: try the next set
            errors.append(f"{[o.name for o in ops]}: {e}")
    raise ValueError(f"TFLite conversion failed in mode `{mode}`:\n" + "\n".join(errors))


def op_dtypes(model_bytes: bytes) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    """(op name, input dtypes, output dtypes) of every op, before delegates rewrite the graph."""
    resolver = tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interpreter = tf.lite.Interpreter(
        model_content=model_bytes, experimental_op_resolver_type=resolver
    )
    tensors = {t["index"]: np.dtype(t["dtype"]).name for t in interpreter.get_tensor_details()}

    def names(indices):
        return tuple(tensors[i] for i in indices if i >= 0)

    return [
        (op["op_name"], names(op["inputs"]), names(op["outputs"]))
        for op in interpreter._get_ops_details()
    ]


def achieved_mode(model_bytes: bytes) -> str:
    """What quantization a flatbuffer really holds, read from its tensor dtypes.

    An op computes in float if it reads and writes float32. Casts from integer inputs (masks,
    ids) and the QUANTIZE/DEQUANTIZE ops at the float32 edges do not count.

    Returns:
        `full_int8` (int8 ops and no float op), `mixed` (int8 ops and float ops),
        `dynamic_range` (int8 weights, float ops: no op outputs int8) or `float`.
    """
    ops = [op for op in op_dtypes(model_bytes) if op[0] not in ("QUANTIZE", "DEQUANTIZE")]
    int8_ops = [op for op in ops if "int8" in op[2] or "int16" in op[2]]
    float_ops = [op for op in ops if "float32" in op[2] and ("float32" in op[1] or not op[1])]
    weights_int8 = any("int8" in op[1] for op in float_ops)
    if int8_ops and not float_ops:
        return "full_int8"
    if int8_ops:
        return "mixed"
    return "dynamic_range" if weights_int8 else "float"


class TFLiteRunner:
    """Runs a TFLite flatbuffer like the Keras model it came from.

    Args:
        model_bytes: bytes. A flatbuffer, e.g. from `to_tflite`.
        signature_key: str or None. Signature to run. Defaults to the only/first one.
        num_threads: int or None. Interpreter threads. Defaults to TFLite's choice.

    Attributes:
        mode: str. `achieved_mode(model_bytes)`.
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
    ):
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
        self.mode = achieved_mode(self.model_bytes)

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
        feed = collections.OrderedDict()
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
