"""A Keras layer run over the values its int8 SavedModel would hold, to measure what int8 costs.

`int8_savedmodel.Int8Model` stores every weight of at least `min_elements` values as int8
with per-channel scales (`packing.pack_weight`) and dequantizes it in the graph, so its
outputs are those of the float model with each such weight replaced by
`dequantize(quantize(weight))`. Setting those values in place gives the same outputs from any
code path that calls the layer (e.g. a query student scored on a search benchmark), without
exporting it first.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import tensorflow as tf

from tfrec.compression import weight_quantization, weight_reads


@contextlib.contextmanager
def int8_weights(layer: tf.keras.layers.Layer, min_elements: int = 1024) -> Iterator[int]:
    """Within the block, every weight `layer` holds with >= `min_elements` values carries its
    int8 round trip (per-channel scales as stored, `weight_quantization.stored_scales`); the
    float values come back afterwards, however the block ends.

    Args:
        layer: tf.keras.layers.Layer. Its own and its sublayers' weights are replaced.
        min_elements: int >= 1. As `Int8Model`'s. Defaults to 1024.

    Yields:
        int. How many weights were replaced.
    """
    if int(min_elements) < 1:
        raise ValueError(f"`min_elements` must be >= 1, received {min_elements!r}")
    held = weight_reads.held_variables(layer)
    saved: list[tuple[tf.Variable, tf.Tensor]] = []
    try:
        for weight in layer.weights:
            holders = held.get(id(weight))
            if not holders or weight.shape.num_elements() < min_elements:
                continue
            values, scales, axis = weight_quantization.quantize_held(weight.numpy(), *holders[0])
            saved.append((weight, tf.identity(weight)))
            weight.assign(
                tf.cast(weight_quantization.dequantize(values, scales, axis), weight.dtype)
            )
        yield len(saved)
    finally:
        for weight, value in reversed(saved):
            weight.assign(value)
