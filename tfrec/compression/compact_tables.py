"""Lookup tables that store less: their contents are rebuilt when the SavedModel loads.

A `StringLookup` table saved as is holds its keys as string constants and its values as an
int64 constant, though the values are a range and the item keys are the candidate ids the
SavedModel stores anyway (57 kB of the UCI tower's int64 ranges alone).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional

import numpy as np
import tensorflow as tf


class _CompactInitializer(tf.lookup.KeyValueTensorInitializer):
    """Table contents made when the table is initialized from what the SavedModel stores.

    `KeyValueTensorInitializer` captures its keys and values as constants in the SavedModel;
    here the traced initializer makes each side with `make_keys` and `make_values`
    (`_stored_side`), which read smaller constants or variables the SavedModel holds anyway.
    """

    def __init__(
        self,
        keys: tf.Tensor,
        values: tf.Tensor,
        make_keys: Callable[[], tf.Tensor],
        make_values: Callable[[], tf.Tensor],
    ) -> None:
        super().__init__(keys, values)
        self._make = (make_keys, make_values)

    def initialize(self, table: tf.lookup.StaticHashTable) -> tf.Operation:
        keys, values = (make() for make in self._make)
        return tf.raw_ops.LookupTableImportV2(
            table_handle=table.resource_handle, keys=keys, values=values
        )


def _range_start(tensor: tf.Tensor) -> Optional[int]:
    """`start` if `tensor` is the integer vector `start, start + 1, ...`, else None."""
    if not tensor.dtype.is_integer or tensor.shape.rank != 1 or tensor.shape[0] == 0:
        return None
    array = tensor.numpy()
    start = int(array[0])
    return start if np.array_equal(array, np.arange(start, start + array.size)) else None


def _positions(strings: list, candidate_ids: tf.Variable) -> Optional[tf.Tensor]:
    """Where each of `strings` is in `candidate_ids` (int16 when it fits), None if one is not."""
    ids = candidate_ids.numpy().tolist()
    where: dict[Any, int] = {}
    for i, id_ in enumerate(ids):
        where.setdefault(id_, i)
    if not all(s in where for s in strings):
        return None
    dtype = np.int16 if len(ids) <= np.iinfo(np.int16).max + 1 else np.int32
    return tf.constant(np.array([where[s] for s in strings], dtype))


def _decimal_integers(strings: list) -> Optional[tf.Tensor]:
    """`strings` as int32 (or int64) if each is exactly what `tf.strings.as_string` prints."""
    values = []
    for string in strings:
        try:
            text = string.decode("ascii")
            value = int(text)
        except (UnicodeDecodeError, ValueError):
            return None
        # "007", "+7", " 7" and "1_000" parse too, but do not print back.
        if str(value) != text:
            return None
        values.append(value)
    for dtype in (np.int32, np.int64):
        info = np.iinfo(dtype)
        if all(info.min <= v <= info.max for v in values):
            return tf.constant(np.array(values, dtype))
    return None


def _stored_side(
    tensor: tf.Tensor, candidate_ids: Optional[tf.Variable]
) -> Optional[Callable[[], tf.Tensor]]:
    """A function making `tensor` at initialization from less than `tensor`, or None.

    An integer range (a `StringLookup`'s indices) is made by `tf.range`: nothing stored.
    Strings that are all candidate ids (an item vocabulary) are gathered from `candidate_ids`
    by position: 2 bytes each instead of the string; the SavedModel stores the ids anyway.
    Strings that are all decimal integers (numeric user ids) are printed from int32 values
    with `tf.strings.as_string`: 4 bytes instead of the digits and 2 bytes of framing.

    Args:
        tensor: tf.Tensor. One side (keys or values) of a table, 1-D.
        candidate_ids: tf.Variable or None. The module's candidate ids (restored before
            tables are initialized, by TF Serving's loader and by `tf.saved_model.load`).

    Returns:
        A function of no argument returning a tensor equal to `tensor`, or None.
    """
    start = _range_start(tensor)
    if start is not None:
        count, dtype = int(tensor.shape[0]), tensor.dtype
        return lambda: tf.range(start, start + count, dtype=dtype)
    if tensor.dtype != tf.string or tensor.shape.rank != 1:
        return None
    strings = tensor.numpy().tolist()
    positions = _positions(strings, candidate_ids) if candidate_ids is not None else None
    if positions is not None:
        # A variable's gather takes int32 or int64 indices only.
        return lambda: tf.gather(candidate_ids, tf.cast(positions, tf.int32))
    integers = _decimal_integers(strings)
    if integers is not None:
        return lambda: tf.strings.as_string(integers)
    return None


def _constant(tensor: tf.Tensor) -> Callable[[], tf.Tensor]:
    return lambda: tensor


def compact_table(
    table: tf.lookup.StaticHashTable, candidate_ids: Optional[tf.Variable] = None
) -> tf.lookup.StaticHashTable:
    """`table`, or an equal `StaticHashTable` whose contents are made when it is initialized.

    Args:
        table: tf.lookup.StaticHashTable, or any lookup table resource (e.g. the one of a
            `StringLookup` layer).
        candidate_ids: tf.Variable or None. String ids the SavedModel stores anyway; keys
            that are all among them are stored as their positions.

    Returns:
        A new `StaticHashTable` with the same keys, values and default value whose
        `_CompactInitializer` makes its keys or values from less (`_stored_side`: an integer
        range, positions among `candidate_ids`, or decimal strings as integers) when it is
        initialized, if `table` is a `StaticHashTable` filled by a `KeyValueTensorInitializer`
        and one side can be; else `table` itself.
    """
    initializer = getattr(table, "_initializer", None)
    if (
        initializer is None
        or type(table) is not tf.lookup.StaticHashTable
        or type(initializer) is not tf.lookup.KeyValueTensorInitializer
    ):
        return table
    keys, values = initializer._keys, initializer._values
    make_keys, make_values = (_stored_side(side, candidate_ids) for side in (keys, values))
    if make_keys is None and make_values is None:
        return table
    compact = _CompactInitializer(
        keys, values, make_keys or _constant(keys), make_values or _constant(values)
    )
    return tf.lookup.StaticHashTable(compact, table.default_value)
