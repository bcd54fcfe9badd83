"""Tracing a Keras model over other weights: packed tensors and compact tables in its layers."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Union

import tensorflow as tf

from tfrec.compression import packing

# (layer, attribute, what replaces it while tracing): a packed weight read from `Unpacked`,
# or a variable no output reads (replaced by zeros, so it is not saved).
Swap = tuple[tf.keras.layers.Layer, str, Union[packing.PackedWeight, tf.Variable]]
# (layer, attribute, table): a lookup table replaced by its compact copy.
TableSwap = tuple[tf.keras.layers.Layer, str, Any]


@contextlib.contextmanager
def swapped(
    swaps: Sequence[Swap], table_swaps: Sequence[TableSwap], unpacked: packing.Unpacked
) -> Iterator[None]:
    """Swaps variables for tensors of the packed ones, and tables for compact ones, while
    a function is traced; restores the layers afterwards.

    Args:
        swaps: sequence of `Swap`. Weights to replace, in every layer holding them.
        table_swaps: sequence of `TableSwap`. Lookup tables to replace.
        unpacked: packing.Unpacked. The packed variables, split in the function being traced.
    """
    saved = []
    try:
        for layer, attribute, table in table_swaps:
            saved.append((layer, attribute, getattr(layer, attribute)))
            object.__setattr__(layer, attribute, table)
        for layer, attribute, packed in swaps:
            if isinstance(packed, tf.Variable):  # unread: no op the outputs need reads it
                value = tf.zeros(packed.shape, packed.dtype)
            elif packed.gathered and packing.is_plain_embedding(layer, attribute):
                saved.append((layer, "call", None))
                object.__setattr__(layer, "call", _gather_then_dequantize(unpacked, packed))
                continue
            else:
                value = unpacked.tensor(packed)
            saved.append((layer, attribute, getattr(layer, attribute)))
            # `object.__setattr__`: Keras's own would untrack the variable and reorder
            # the layer's weights.
            object.__setattr__(layer, attribute, value)
        yield
    finally:
        for layer, attribute, value in reversed(saved):
            if value is None:
                object.__delattr__(layer, attribute)
            else:
                object.__setattr__(layer, attribute, value)


@contextlib.contextmanager
def without_name_scope(model: tf.keras.Model) -> Iterator[None]:
    """Traces `model` without its own name scope: its layers' scopes start the node names.

    Keras prefixes every node of a model call with the model's name (`query_tower/...`), in
    node names and again in every input naming a node: ~10 kB of the UCI tower's graph, for no
    information (the SavedModel holds one model). Nested models keep their scopes.
    """
    # An empty scope name makes `tf.name_scope` start at the top level.
    object.__setattr__(model, "_name_scope", lambda: "")
    try:
        yield
    finally:
        object.__delattr__(model, "_name_scope")


def _gather_then_dequantize(
    unpacked: packing.Unpacked, weight: packing.PackedWeight
) -> Callable[..., tf.Tensor]:
    rows, scales = unpacked.rows(weight), unpacked.scales(weight)

    def call(inputs: tf.Tensor, *args: Any, **kwargs: Any) -> tf.Tensor:
        ids = tf.cast(inputs, tf.int32) if inputs.dtype not in (tf.int32, tf.int64) else inputs
        # The table's zero padding rows are never read: `scales` has exactly one row per id,
        # so an id out of range fails as it does in the Keras layer.
        found = tf.cast(tf.gather(rows, ids), tf.float32)
        return found * tf.gather(scales, ids)[..., tf.newaxis]

    return call
