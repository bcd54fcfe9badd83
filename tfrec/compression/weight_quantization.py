"""Symmetric int8 weights: one float scale per row or output channel, and back to float32."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Union

import numpy as np
import tensorflow as tf

_QMAX = 127.0  # symmetric, narrow range: -127..127 so that 0 stays exactly 0 (pruned weights)

# One axis or several: the dimensions that keep one scale per index.
Axis = Union[int, Sequence[int]]


def axes_of(axis: Axis, ndim: int, shape: Any) -> tuple[int, ...]:
    """`axis` as sorted, distinct, non-negative dimensions of an `ndim`-rank array `shape`."""
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    if ndim < 1 or not axes or any(not -ndim <= a < ndim for a in axes):
        raise ValueError(f"`axis` must index dimensions of `x` (shape {shape}), received {axis}")
    return tuple(sorted({int(a) % ndim for a in axes}))


def quantize_tensor(x: np.ndarray, axis: Axis = 0) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 quantization with one float32 scale per index of the `axis` dimensions.

    `axis=0` gives one scale per row (embedding tables, candidate indexes: each item keeps its
    own range); `axis=-1` one per output unit of a dense kernel; a tuple one per output
    channel of a kernel with several output axes (an attention projection `[in, heads, dim]`
    takes `axis=(1, 2)`).

    Args:
        x: np.ndarray. Float weights, rank >= 1.
        axis: int or tuple of int. The axes that keep one scale per index. Defaults to 0.

    Returns:
        `(values, scales)`: int8 array shaped like `x`, float32 array shaped like the `axis`
        dimensions of `x`, with `x ~= values * scales` broadcast along the other axes.

    Example:
        >>> q, s = quantize_tensor(np.array([[1.0, -2.0], [0.5, 0.25]]))
        >>> q.tolist(), s.tolist()  # rows scaled by 2/127 and 0.5/127
        ([[64, -127], [127, 64]], [0.015748031, 0.003937008])
    """
    x = np.asarray(x, dtype=np.float32)
    axes = axes_of(axis, x.ndim, x.shape)
    others = tuple(i for i in range(x.ndim) if i not in axes)
    peak = np.max(np.abs(x), axis=others, keepdims=True) if others else np.abs(x)
    # An all-zero slice (e.g. a fully pruned row) gets scale 1: its values are all 0 anyway.
    scales = np.where(peak > 0, peak / _QMAX, 1.0).astype(np.float32)
    values = np.clip(np.rint(x / scales), -_QMAX, _QMAX).astype(np.int8)
    return values, scales.reshape([x.shape[i] for i in axes])


def stored_scales(scales: np.ndarray) -> np.ndarray:
    """`quantize_tensor`'s scales as stored: float16 if they are all normal float16 numbers.

    Values stay those rounded against the float32 scales; a normal float16 scale is off by at
    most 2**-11 relative (0.05%), so a dequantized value moves by at most 127 * 2**-11 ~= 0.06
    of a step (the int8 rounding moves it by up to half a step). A scale below float16's
    smallest normal (~6.1e-5: a weight slice whose largest value is under ~0.008) would lose
    precision, one above its largest would overflow: then all stay float32.

    Args:
        scales: np.ndarray. float32 scales.

    Returns:
        The scales as float16, or as they are.
    """
    scales = np.asarray(scales, np.float32)
    info = np.finfo(np.float16)
    fits = np.all((np.abs(scales) >= info.tiny) & (np.abs(scales) <= info.max))
    return scales.astype(np.float16) if fits else scales


def dequantize(
    values: np.ndarray | tf.Tensor, scales: np.ndarray | tf.Tensor, axis: Axis = 0
) -> tf.Tensor:
    """Inverse of `quantize_tensor` with core TF ops (`tf.cast`, `tf.multiply`): float32.

    Args:
        values: np.ndarray or tf.Tensor. int8 values, rank >= 1.
        scales: np.ndarray or tf.Tensor. Scales shaped like the `axis` dimensions of `values`.
        axis: int or tuple of int. As given to `quantize_tensor`. Defaults to 0.

    Returns:
        A float32 tensor shaped like `values`.
    """
    values = tf.convert_to_tensor(values)
    scales = tf.cast(scales, tf.float32)
    rank = values.shape.rank
    axes = axes_of(axis, rank, values.shape)
    shape = [values.shape[i] if i in axes else 1 for i in range(rank)]
    # Scales over the last axis (dense kernels) broadcast as they are: no reshape in the graph.
    if axes != (rank - 1,) or scales.shape.rank != 1:
        scales = tf.reshape(scales, shape)
    return tf.cast(values, tf.float32) * scales


def channel_axes(layer: tf.keras.layers.Layer, attribute: str, rank: int) -> tuple[int, ...]:
    """The axes of `layer.<attribute>` that get one scale each: its output channels, or rows.

    Tables (`Embedding` and subclasses, keras-nlp's `PositionEmbedding`) get one scale per row:
    items and tokens keep their own range. An `EinsumDense` kernel gets one per output channel,
    i.e. per index of the kernel axes that appear in the equation's output (`[in, heads, dim]`
    projections: one per head and dim). Any other weight (`Dense` kernels) one per index of
    its last axis.
    """
    if isinstance(layer, tf.keras.layers.Embedding) or attribute.endswith("embeddings"):
        return (0,)
    if isinstance(layer, tf.keras.layers.EinsumDense) and attribute == "kernel":
        operands, output = layer.equation.split("->")
        kernel = operands.split(",")[-1]
        axes = tuple(i for i, letter in enumerate(kernel) if letter in output)
        if "." not in kernel and len(kernel) == rank and axes:
            return axes
    return (rank - 1,)


def quantize_held(
    array: np.ndarray, layer: tf.keras.layers.Layer, attribute: str
) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """A weight `layer.<attribute>` as the int8 SavedModel stores it.

    Args:
        array: np.ndarray. The weight's float values.
        layer: tf.keras.layers.Layer. A layer holding it (its kind picks the scale axes).
        attribute: str. The attribute it is held as.

    Returns:
        `(values, scales, axis)`: int8 values, scales as stored (`stored_scales`) and the
        axes with one scale each (`channel_axes`), for `dequantize`.
    """
    channels = channel_axes(layer, attribute, array.ndim)
    axis = axes_of(channels, array.ndim, array.shape)
    values, scales = quantize_tensor(array, axis)
    return values, stored_scales(scales), axis


class Int8Weight(tf.Module):
    """One int8 weight with its scales as two variables of its own (e.g. a candidate index).

    Args:
        array: np.ndarray. Float weights.
        axis: int or tuple of int. The axes with one scale per index (`quantize_tensor`).
        name: str. Prefix of the variable names (`<name>/int8`, `<name>/scale`).
    """

    def __init__(self, array: np.ndarray, axis: Axis, name: str) -> None:
        super().__init__(name=None)
        values, scales = quantize_tensor(array, axis)
        scales = stored_scales(scales)
        self.values = tf.Variable(values, trainable=False, name=name + "/int8")
        self.scales = tf.Variable(scales, trainable=False, name=name + "/scale")


# Where packed pieces go: group -> dtype of its variable. int8 pieces of gathered tables
