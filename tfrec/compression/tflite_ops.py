"""What a TFLite flatbuffer computes in: op dtypes, int8 vs float ops, the achieved mode."""

from __future__ import annotations

import collections

import numpy as np
import tensorflow as tf


def _op_details(
    model_bytes: bytes,
) -> tuple[list[tuple[str, list[int], list[int]]], dict[int, str], set[int]]:
    resolver = tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interpreter = tf.lite.Interpreter(
        model_content=model_bytes, experimental_op_resolver_type=resolver
    )
    dtypes = {t["index"]: np.dtype(t["dtype"]).name for t in interpreter.get_tensor_details()}
    inputs = {d["index"] for d in interpreter.get_input_details()}
    ops = [
        (op["op_name"], [i for i in op["inputs"] if i >= 0], list(op["outputs"]))
        for op in interpreter._get_ops_details()
    ]
    return ops, dtypes, inputs


def op_dtypes(model_bytes: bytes) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    """(op name, input dtypes, output dtypes) of every op, before delegates rewrite the graph."""
    ops, dtypes, _ = _op_details(model_bytes)
    return [
        (name, tuple(dtypes[i] for i in ins), tuple(dtypes[i] for i in outs))
        for name, ins, outs in ops
    ]


def _classify(model_bytes: bytes) -> tuple[list[str], list[str], bool]:
    """(ops computing on int8/int16 activations, ops computing in float, any int8 weight)."""
    ops, dtypes, inputs = _op_details(model_bytes)
    # Activations are model inputs and op outputs; constants (weights, tables) are neither.
    activations = inputs | {i for _, _, outs in ops for i in outs}
    consumers: dict[int, list[str]] = collections.defaultdict(list)
    for name, ins, _ in ops:
        for i in ins:
            consumers[i].append(name)
    quantized = ("int8", "int16")
    int8_ops, float_ops = [], []
    for name, ins, outs in ops:
        if name in ("QUANTIZE", "DEQUANTIZE"):
            continue
        reads = any(dtypes[i] in quantized and i in activations for i in ins)
        # A GATHER of int8 rows that only DEQUANTIZE reads is a weight lookup (dynamic range).
        feeds = any(
            dtypes[o] in quantized and any(c != "DEQUANTIZE" for c in consumers[o]) for o in outs
        )
        if reads or feeds:
            int8_ops.append(name)
        elif any(dtypes[o] == "float32" for o in outs) and (
            not ins or any(dtypes[i] == "float32" for i in ins)
        ):
            float_ops.append(name)
    weights_int8 = any(d == "int8" and i not in activations for i, d in dtypes.items())
    return int8_ops, float_ops, weights_int8


def float_compute_ops(model_bytes: bytes) -> list[str]:
    """Sorted op types that compute in float32 (casts and the float32 edges not counted)."""
    return sorted(set(_classify(model_bytes)[1]))


def achieved_mode(model_bytes: bytes) -> str:
    """What quantization a flatbuffer really holds, read from its tensor dtypes.

    An op computes in int8 if it reads int8 activations (not weights) or writes int8 that
    another op than DEQUANTIZE reads; in float if it reads and writes float32. Casts from
    integer inputs (masks, ids) and the QUANTIZE/DEQUANTIZE ops at the float32 edges do not
    count.

    Returns:
        `full_int8` (int8 ops and no float op), `mixed` (int8 ops and float ops),
        `dynamic_range` (int8 weights, float ops only) or `float`.
    """
    int8_ops, float_ops, weights_int8 = _classify(model_bytes)
    if int8_ops and not float_ops:
        return "full_int8"
    if int8_ops:
        return "mixed"
    return "dynamic_range" if weights_int8 else "float"
