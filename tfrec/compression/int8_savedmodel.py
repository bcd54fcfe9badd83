"""SavedModels for stock TF Serving whose large weights are stored as int8 plus float16 scales."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Optional, Union

import numpy as np
import tensorflow as tf

from tfrec.compression import compact_tables, graph, pruning

_QMAX = 127.0  # symmetric, narrow range: -127..127 so that 0 stays exactly 0 (pruned weights)

# One axis or several: the dimensions that keep one scale per index.
Axis = Union[int, Sequence[int]]


def _axes(axis: Axis, ndim: int, shape: Any) -> tuple[int, ...]:
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
    axes = _axes(axis, x.ndim, x.shape)
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
    axes = _axes(axis, rank, values.shape)
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


# TF splits or slices a 1-D tensor without copying when each piece starts and ends on this
# many bytes (EIGEN_MAX_ALIGN_BYTES; the CPU allocator aligns buffers to it).
_ALIGN_BYTES = 64


class _Int8Weight(tf.Module):
    """The candidate index: int8 values and float16 row scales, variables of their own."""

    def __init__(self, array: np.ndarray, axis: Axis, name: str) -> None:
        super().__init__(name=None)
        values, scales = quantize_tensor(array, axis)
        scales = stored_scales(scales)
        self.values = tf.Variable(values, trainable=False, name=name + "/int8")
        self.scales = tf.Variable(scales, trainable=False, name=name + "/scale")


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


class _Packer:
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


class _Unpacked:
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


def _held_variables(model: tf.keras.Model) -> dict[int, list[tuple[tf.keras.layers.Layer, str]]]:
    """id of a variable -> the (layer, attribute) pairs holding it (shared ones: several)."""
    held: dict[int, list[tuple[tf.keras.layers.Layer, str]]] = {}
    for layer in model._flatten_layers(include_self=False, recursive=True):
        for attribute, value in list(vars(layer).items()):
            if isinstance(value, tf.Variable):
                held.setdefault(id(value), []).append((layer, attribute))
    return held


# Stateful ops without side effects. tf.function runs every stateful op (its control outputs,
# and control inputs of the outputs), a variable read included, but a read whose value no
# output uses changes nothing.
_READS = frozenset({"ReadVariableOp", "ResourceGather", "ResourceGatherNd"})


def _reached_ops(graph: tf.Graph) -> set[tf.Operation]:
    """The ops of `graph` its outputs or side effects depend on (control edges to reads aside)."""
    effects = [op for op in graph.control_outputs if op.type not in _READS]
    todo = [t.op for t in graph.outputs] + effects
    reached: set[tf.Operation] = set()
    while todo:
        op = todo.pop()
        if op not in reached:
            reached.add(op)
            todo += [t.op for t in op.inputs]
            todo += [c for c in op.control_inputs if c.type not in _READS]
    return reached


def unserved_weights(model: tf.keras.Model, specs: Any) -> set[int]:
    """ids of the `model` weights no output of `model(inputs)` reads, from one trace of it.

    A Functional model computes every node of its nested models, used or not: keras-nlp's
    `BertBackbone` computes its pooled output (a dense layer on the first token) for a tower
    that reads only its sequence output. Such a weight is captured by the trace, but no op
    the outputs depend on reads its handle. Only weights whose captured handle is found and
    proven unread are returned: a weight the trace does not capture by its handle (a wrapper,
    a distributed variable) counts as read.

    Args:
        model: tf.keras.Model. The model, called with `training=False`.
        specs: nest of tf.TensorSpec. Its inputs.

    Returns:
        The ids of the unread weights (`id(variable)`).
    """
    traced = tf.function(lambda inputs: model(inputs, training=False))
    graph = traced.get_concrete_function(specs).graph
    reached = _reached_ops(graph)
    placeholders = {id(external): internal.op for external, internal in graph.captures}
    unread: set[int] = set()
    for weight in model.weights:
        placeholder = placeholders.get(id(getattr(weight, "handle", None)))
        if placeholder is not None and placeholder not in reached:
            unread.add(id(weight))
    return unread


def _is_plain_embedding(layer: tf.keras.layers.Layer, attribute: str) -> bool:
    return type(layer).call is tf.keras.layers.Embedding.call and attribute == "embeddings"


class Int8Model(tf.Module):
    """A Keras model's function over int8 weights, ready for `tf.saved_model.save`.

    Every weight with at least `min_elements` values (embedding tables, dense and attention
    kernels, BERT's included) is stored as int8 with float16 scales (`channel_axes`: per row for
    tables, per output channel for kernels; float32 for a weight whose scales float16 cannot
    hold, `stored_scales`). The serving function is traced with those weights swapped, in the
    Keras layers, for `tf.cast(int8) * scale`, so the graph uses only core TF ops and stock TF
    Serving runs it. A plain `Embedding` gathers int8 rows before dequantizing, so a lookup
    costs its rows, not the table. The Keras model itself is not tracked, so its float copies
    of the big weights are not saved.

    Packing: the int8 values of all those weights are one flat int8 variable, their scales one
    flat float16 variable, and the model's other weights (biases, norms, small tables) one flat
    float32 variable; the graph splits each once and reshapes the pieces. A SavedModel's fixed
    costs grow with its variables (the saver's save and restore functions, the object graph,
    the captures of every function), and int8 would double them (values and scales per
    weight). int8 and float32 pieces are padded to `_ALIGN_BYTES`, so splitting aliases the
    variable instead of copying it; the float16 scales and the int8 weights other than gathered
    tables are cast to float32 in one op each, then split.

    Only the weights the serving function reads are saved (`unserved_weights`), in both
    layouts: an unread weight is swapped for zeros while tracing, and the ops reading it are
    never run.

    Lookup tables are saved with their contents made when the SavedModel is loaded
    (`compact_table`): a `StringLookup`'s index range by `tf.range`, item ids gathered from the
    candidate ids by position, numeric string keys printed from integers. This holds for both
    layouts.

    With `candidates`, a `retrieve` function scores the model's output (a query embedding)
    against a candidate matrix `[num_candidates, dim]` (int8 with per-row float16 scales, or
    float32) and returns the top `k`. The index keeps variables of its own, under
    `candidates/`. It calls the serving function, and neither function is a tracked attribute:
    the SavedModel holds the model's graph once (tracked tf.functions are saved again beside the signatures,
    and a second trace inside `retrieve` would copy the graph once more). After loading, use
    `signatures["serving_default"]` and `signatures["retrieve"]`.

    Args:
        model: tf.keras.Model. A Functional model (e.g. a query tower), float32.
        min_elements: int. Weights smaller than this stay float32. Defaults to 1024.
        candidates: np.ndarray or None. Candidate embeddings `[num_candidates, dim]`.
        candidate_ids: sequence of str or None. One id per candidate row. Defaults to row
            numbers as strings.
        k: int. Candidates returned by `retrieve`. Defaults to 10.
        quantize: bool. False keeps every weight float32, one variable each, as a float
            SavedModel stores them: the baseline for size and agreement comparisons. Defaults
            to True.
        quantize_candidates: bool or None. Whether the candidate index is int8. None (the
            default) follows `quantize`; True gives a float32-weight model (e.g. a pruned one)
            an int8 index.

    Example:
        >>> module = Int8Model(query_tower, candidates=item_embeddings, candidate_ids=ids)
        >>> save(module, "export/int8/1")
    """

    def __init__(
        self,
        model: tf.keras.Model,
        *,
        min_elements: int = 1024,
        candidates: Optional[np.ndarray] = None,
        candidate_ids: Optional[Sequence[str]] = None,
        k: int = 10,
        quantize: bool = True,
        quantize_candidates: Optional[bool] = None,
    ) -> None:
        super().__init__(name="int8_model")
        graph.check_functional(model)
        if int(min_elements) < 1:
            raise ValueError(f"`min_elements` must be >= 1, received {min_elements!r}")
        # `object.__setattr__` keeps the Keras model out of the SavedModel's object graph: its
        # float copies of the big weights must not be saved. Only the pieces below are.
        object.__setattr__(self, "_model", model)
        # The float32 layout (`quantize=False`) keeps one variable per weight: the baseline is
        # a float model as it ships (as Keras saves it), and pruned variants are read back
        # weight by weight. Packing is part of the int8 export, where it pays for the scales
        # that double the variables; a packed float32 would also shed fixed bytes (~5% on the
        # UCI tower), so int8-to-float32 ratios include what packing saves.
        specs = tf.nest.map_structure(
            lambda t: tf.TensorSpec(t.shape, t.dtype, name=t.name.split(":")[0]),
            model._nested_inputs,
        )
        self._pack(model, int(min_elements) if quantize else None, unserved_weights(model, specs))
        # Not tracked attributes: `tf.saved_model.save` would save a tracked tf.function again,
        # re-traced in its save context, beside the signatures (two more copies of the graph).
        functions = {"serving_default": tf.function(self._serve, input_signature=[specs])}
        object.__setattr__(self, "_functions", functions)
        self.k = int(k)
        self.candidates: Optional[_Int8Weight | tf.Variable] = None
        if candidates is not None:
            index_int8 = quantize if quantize_candidates is None else quantize_candidates
            self._init_candidates(candidates, candidate_ids, bool(index_int8))
            functions["retrieve"] = tf.function(self._retrieve, input_signature=[specs])
        # After the candidate ids: tables whose keys are among them store their positions.
        self._compact_tables(model, getattr(self, "candidate_ids", None))

    def signatures(self) -> dict[str, tf.types.experimental.ConcreteFunction]:
        """Signature name -> concrete function: `serving_default`, and `retrieve` if any."""
        return {name: fn.get_concrete_function() for name, fn in self._functions.items()}

    def _pack(self, model: tf.keras.Model, min_elements: Optional[int], unread: set[int]) -> None:
        """Packs the weights layers hold (all of them when quantizing; none for float32).

        Sets `packed_weights` (layout, not saved), the tracked variables `int8_values`,
        `float16_values`, `float_values` and `float_weights` (weights left as they are),
        `unquantized`, and `unserved` (names of the weights left out, `unread` ones that
        layers hold).
        """
        held = _held_variables(model)
        packer, layout, swaps, big, done = _Packer(), [], [], [], set()
        dropped = []
        for name, weight in pruning.named_weights(model).items():
            quantized = min_elements is not None and weight.shape.num_elements() >= min_elements
            if quantized:
                big.append((id(weight), name))
            if id(weight) in done or id(weight) not in held:
                continue
            if id(weight) in unread:
                # Swapped for zeros while tracing (in every layer holding it): not saved.
                dropped.append(name)
                swaps += [(layer, attribute, weight) for layer, attribute in held[id(weight)]]
            elif min_elements is None or not (quantized or weight.dtype == tf.float32):
                # The float32 layout, and other dtypes (e.g. an int64 counter), keep their
                # variable.
                continue
            else:
                packed = _pack_weight(packer, name, weight, quantized, held[id(weight)])
                layout.append(packed)
                # A variable shared by two layers is swapped in both, stored once.
                swaps += [(layer, attribute, packed) for layer, attribute in held[id(weight)]]
            done.add(id(weight))
        object.__setattr__(self, "packed_weights", tuple(layout))
        object.__setattr__(self, "unserved", tuple(dropped))
        object.__setattr__(self, "_swaps", swaps)
        self.int8_values = packer.variable(("rows", "int8"), "int8_values")
        self.float16_values = packer.variable(("float16",), "float16_values")
        self.float_values = packer.variable(("float32",), "float32_values")
        object.__setattr__(self, "_sizes", packer.sizes())
        self.float_weights = [w for w in model.weights if id(w) not in done]
        # Big weights no layer holds as an attribute (e.g. inside a QAT wrapper) stay float32.
        object.__setattr__(self, "unquantized", tuple(n for i, n in big if i not in held))
        if self.unquantized:
            warnings.warn(
                f"`model` weights {list(self.unquantized)} are not layer attributes and stay "
                "float32 in the int8 SavedModel",
                stacklevel=3,
            )

    def _compact_tables(self, model: tf.keras.Model, candidate_ids: Optional[tf.Variable]) -> None:
        """Lookup tables the layers hold, saved via `resources`, swapped by `compact_table`."""
        compact: dict[int, object] = {}
        swaps = []
        for layer in model._flatten_layers(include_self=False, recursive=True):
            for attribute, value in list(vars(layer).items()):
                if isinstance(value, tf.saved_model.experimental.TrackableResource):
                    if id(value) not in compact:
                        compact[id(value)] = compact_tables.compact_table(value, candidate_ids)
                    swaps.append((layer, attribute, compact[id(value)]))
        object.__setattr__(self, "_table_swaps", swaps)
        # The tables the serving function captures.
        self.resources = list(compact.values())

    def _init_candidates(
        self, candidates: np.ndarray, candidate_ids: Optional[Sequence[str]], quantize: bool
    ) -> None:
        candidates = np.asarray(candidates, dtype=np.float32)
        if candidates.ndim != 2 or not 1 <= self.k <= candidates.shape[0]:
            raise ValueError(
                f"`candidates` must be [num_candidates >= k={self.k}, dim], received shape "
                f"{candidates.shape}"
            )
        ids = [str(i) for i in range(len(candidates))] if candidate_ids is None else candidate_ids
        if len(ids) != len(candidates):
            raise ValueError(
                f"`candidate_ids` must have one id per candidate ({len(candidates)}), "
                f"received {len(ids)}"
            )
        if quantize:
            self.candidates = _Int8Weight(candidates, 0, "candidates")
        else:
            self.candidates = tf.Variable(candidates, trainable=False, name="candidates")
        self.candidate_ids = tf.Variable(np.array(ids, dtype=object), trainable=False)

    @contextlib.contextmanager
    def _packed_weights_in_layers(self) -> Iterator[None]:
        """Swaps variables for tensors of the packed ones, and tables for compact ones, while
        the function is traced."""
        variables = {"int8": self.int8_values, "float16": self.float16_values}
        unpacked = _Unpacked({**variables, "float32": self.float_values}, self._sizes)
        saved = []
        try:
            for layer, attribute, table in self._table_swaps:
                saved.append((layer, attribute, getattr(layer, attribute)))
                object.__setattr__(layer, attribute, table)
            for layer, attribute, packed in self._swaps:
                if isinstance(packed, tf.Variable):  # unread: no op the outputs need reads it
                    value = tf.zeros(packed.shape, packed.dtype)
                elif packed.gathered and _is_plain_embedding(layer, attribute):
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

    def _serve(self, inputs: Any) -> dict[str, tf.Tensor]:
        with self._packed_weights_in_layers(), _without_name_scope(self._model):
            outputs = self._model(inputs, training=False)
        if isinstance(outputs, dict):
            return outputs
        # Name outputs like the Keras model's SavedModel does (not `output_0`).
        return dict(zip(self._model.output_names, tf.nest.flatten(outputs), strict=True))

    def _retrieve(self, inputs: Any) -> dict[str, tf.Tensor]:
        # A call of the serving function rather than a second trace of the model: the
        # SavedModel holds the model's graph once.
        outputs = self._functions["serving_default"](inputs)
        if len(outputs) != 1:
            raise ValueError(
                f"`retrieve` needs a model with one output (the query embedding), the model has "
                f"{sorted(outputs)}"
            )
        query = tf.cast(next(iter(outputs.values())), tf.float32)
        if isinstance(self.candidates, _Int8Weight):
            # query @ (int8 * scale)^T == (query @ int8^T) * scale: scale after the matmul.
            raw = tf.matmul(query, tf.cast(self.candidates.values, tf.float32), transpose_b=True)
            scores = raw * tf.cast(self.candidates.scales, tf.float32)  # broadcast over rows
        else:
            scores = tf.matmul(query, self.candidates, transpose_b=True)
        top = tf.math.top_k(scores, k=self.k)
        return {"scores": top.values, "ids": tf.gather(self.candidate_ids, top.indices)}


def _pack_weight(
    packer: _Packer,
    name: str,
    weight: tf.Variable,
    quantized: bool,
    layers: list[tuple[tf.keras.layers.Layer, str]],
) -> PackedWeight:
    """Adds one weight to `packer`: int8 values and scales if `quantized`, else float32."""
    array, shape = weight.numpy(), tuple(weight.shape)
    gathered = quantized and any(_is_plain_embedding(*held) for held in layers)
    if not quantized:
        return PackedWeight(name, shape, None, packer.add(array, "float32"), None, False)
    axis = _axes(channel_axes(layers[0][0], layers[0][1], len(shape)), len(shape), shape)
    values, scales = quantize_tensor(array, axis)
    scales = stored_scales(scales)
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


@contextlib.contextmanager
def _without_name_scope(model: tf.keras.Model) -> Iterator[None]:
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


def _gather_then_dequantize(unpacked: _Unpacked, weight: PackedWeight) -> Callable[..., tf.Tensor]:
    rows, scales = unpacked.rows(weight), unpacked.scales(weight)

    def call(inputs: tf.Tensor, *args: Any, **kwargs: Any) -> tf.Tensor:
        ids = tf.cast(inputs, tf.int32) if inputs.dtype not in (tf.int32, tf.int64) else inputs
        # The table's zero padding rows are never read: `scales` has exactly one row per id,
        # so an id out of range fails as it does in the Keras layer.
        found = tf.cast(tf.gather(rows, ids), tf.float32)
        return found * tf.gather(scales, ids)[..., tf.newaxis]

    return call


def save(module: Int8Model, path: Union[str, os.PathLike]) -> str:
    """Writes `module` as a SavedModel with `serving_default` (and `retrieve` if it has one).

    Args:
        module: Int8Model. The module to export.
        path: str or PathLike. Target directory, e.g. a TF Serving version directory.

    Returns:
        The path, as a string.
    """
    tf.saved_model.save(module, str(path), signatures=module.signatures())
    return str(path)
