"""Many weights in few variables: int8, float16 and float32 pieces packed flat, split in graphs."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Optional

import numpy as np
import tensorflow as tf

from tfrec.compression import weight_quantization

# TF splits or slices a 1-D tensor without copying when each piece starts and ends on this
# many bytes (EIGEN_MAX_ALIGN_BYTES; the CPU allocator aligns buffers to it).
_ALIGN_BYTES = 64

# Where packed pieces go: group -> dtype of its variable. int8 pieces of gathered tables
# ("rows") and of dequantized weights ("int8") share the int8 variable, rows first.
_GROUPS = {"rows": np.int8, "int8": np.int8, "float16": np.float16, "float32": np.float32}


@dataclasses.dataclass(frozen=True)
class PackedWeight:
    """Where one model weight lies in `Int8Model`'s packed variables.

    Attributes:
        name: str. The weight's name (`pruning.named_weights`).
        shape: tuple of int. The weight's shape.
        axis: tuple of int, or None. Axes with one scale per index (`channel_axes`); None for
            a weight stored as float32.
        values: int. Index of its values piece in its group (`values_group`).
        scales: int or None. Index of its scales piece in `scales_group`.
        gathered: bool. A plain `Embedding` table: its piece is padded to whole rows, so rows
            are gathered from it without copying the table.
        scales_group: str or None. "float16", or "float32" for scales float16 cannot hold
            (`stored_scales`).
    """

    name: str
    shape: tuple[int, ...]
    axis: Optional[tuple[int, ...]]
    values: int
    scales: Optional[int]
    gathered: bool
    scales_group: Optional[str] = None

    @property
    def values_group(self) -> str:
        if self.axis is None:
            return "float32"
        return "rows" if self.gathered else "int8"

    @property
    def scales_shape(self) -> tuple[int, ...]:
        return tuple(self.shape[i] for i in self.axis) if self.axis is not None else ()


class Packer:
    """Collects arrays into one flat vector per group (`_GROUPS`).

    Pieces read in place (int8 and float32) are padded to whole `_ALIGN_BYTES` units; float16
    pieces are not: the graph casts their whole vector to float32 before splitting it.
    """

    def __init__(self) -> None:
        self.pieces: dict[str, list[np.ndarray]] = {group: [] for group in _GROUPS}

    def add(self, array: np.ndarray, group: str, row: int = 1) -> int:
        """Appends `array`, zero-padded to a whole number of aligned units and rows.

        Args:
            array: np.ndarray. The values.
            group: str. A `_GROUPS` key: the packed vector it goes to.
            row: int. Values per row: the padded piece holds whole rows (a gathered table).

        Returns:
            The index of its piece in the group.
        """
        dtype = _GROUPS[group]
        flat = np.ravel(np.asarray(array, dtype=dtype))
        unit = 1 if group == "float16" else _ALIGN_BYTES // np.dtype(dtype).itemsize
        unit = math.lcm(unit, row)
        padded = -(-max(flat.size, 1) // unit) * unit
        self.pieces[group].append(np.pad(flat, (0, padded - flat.size)))
        return len(self.pieces[group]) - 1

    def variable(self, groups: tuple[str, ...], name: str) -> Optional[tf.Variable]:
        """The pieces of `groups`, in that order, as one non-trainable variable (None if none)."""
        pieces = [piece for group in groups for piece in self.pieces[group]]
        if not pieces:
            return None
        return tf.Variable(np.concatenate(pieces), trainable=False, name=name)

    def sizes(self) -> dict[str, tuple[int, ...]]:
        return {group: tuple(p.size for p in pieces) for group, pieces in self.pieces.items()}


def _split(tensor: Optional[tf.Tensor], sizes: Sequence[int]) -> list[tf.Tensor]:
    if not sizes:
        return []
    return [tensor] if len(sizes) == 1 else tf.split(tensor, list(sizes))


class Unpacked:
    """The weights of the packed variables as tensors, split once per traced function."""

    def __init__(
        self, variables: dict[str, Optional[tf.Variable]], sizes: dict[str, tuple[int, ...]]
    ) -> None:
        # The int8 variable splits once into the gathered tables and one segment of every other
        # int8 weight; that segment is cast to float32 at once (one op instead of one per
        # weight, the same values cast), then split. Pieces start and end aligned, so splits
        # alias their input: reading costs no copy beyond the cast.
        rows, dense = sizes["rows"], sizes["int8"]
        int8 = _split(variables["int8"], rows + ((sum(dense),) if dense else ()))
        self.pieces = {
            "rows": int8[: len(rows)],
            "int8": _split(tf.cast(int8[-1], tf.float32), dense) if dense else [],
            # Scales are float16 on disk and float32 in the graph: one cast for all of them.
            "float16": _split(_cast(variables["float16"]), sizes["float16"]),
            "float32": _split(variables["float32"], sizes["float32"]),
        }
        self._constants: dict[tuple[int, ...], tf.Tensor] = {}

    def tensor(self, weight: PackedWeight) -> tf.Tensor:
        """The weight as float32: dequantized if stored as int8."""
        values = self._exact(self.pieces[weight.values_group][weight.values], weight.shape)
        if weight.axis is None:
            return values
        # `dequantize`, on values already cast: scales over the last axis broadcast as they
        # are, others get size-1 axes (through shape constants shared by equal shapes).
        scales, rank = self.scales(weight), len(weight.shape)
        if weight.axis != (rank - 1,):
            shape = tuple(weight.shape[i] if i in weight.axis else 1 for i in range(rank))
            scales = tf.reshape(scales, self._constant(shape))
        return values * scales

    def scales(self, weight: PackedWeight) -> tf.Tensor:
        """Its scales as float32, flat (`dequantize` reshapes them)."""
        if weight.scales_group is None or weight.scales is None:
            raise ValueError(f"`weight` `{weight.name}` is stored as float32: it has no scales")
        piece = self.pieces[weight.scales_group][weight.scales]
        return self._exact(piece, (math.prod(weight.scales_shape),))

    def rows(self, weight: PackedWeight) -> tf.Tensor:
        """A gathered table's int8 values `[rows, dim]`, zero rows of padding included."""
        piece = self.pieces["rows"][weight.values]
        return tf.reshape(piece, self._constant((-1,) + weight.shape[1:]))

    def _exact(self, piece: tf.Tensor, shape: tuple[int, ...]) -> tf.Tensor:
        """A padded piece cut to the `shape` it stores (a copy only when it has padding)."""
        size = math.prod(shape)
        if piece.shape[0] != size:
            piece = tf.slice(piece, self._constant((0,)), self._constant((size,)))
        return piece if len(shape) == 1 else tf.reshape(piece, self._constant(shape))

    def _constant(self, shape: tuple[int, ...]) -> tf.Tensor:
        # Weights of the same shape share one shape constant in the graph.
        if shape not in self._constants:
            self._constants[shape] = tf.constant(shape, tf.int32)
        return self._constants[shape]


def _cast(variable: Optional[tf.Variable]) -> Optional[tf.Tensor]:
    return None if variable is None else tf.cast(variable, tf.float32)


def pack_weight(
    packer: Packer,
    name: str,
    weight: tf.Variable,
    quantized: bool,
    layers: list[tuple[tf.keras.layers.Layer, str]],
) -> PackedWeight:
    """Adds one weight to `packer`: int8 values and scales if `quantized`, else float32."""
    array, shape = weight.numpy(), tuple(weight.shape)
    gathered = quantized and any(is_plain_embedding(*held) for held in layers)
    if not quantized:
        return PackedWeight(name, shape, None, packer.add(array, "float32"), None, False)
    values, scales, axis = weight_quantization.quantize_held(array, *layers[0])
    row = math.prod(shape[1:]) if gathered else 1
    scales_group = scales.dtype.name
    return PackedWeight(
        name,
        shape,
        axis,
        packer.add(values, "rows" if gathered else "int8", row),
        packer.add(scales, scales_group),
        gathered,
        scales_group,
    )


def is_plain_embedding(layer: tf.keras.layers.Layer, attribute: str) -> bool:
    """True for the table of a plain `Embedding`: its call can gather int8 rows, then scale."""
    return type(layer).call is tf.keras.layers.Embedding.call and attribute == "embeddings"
