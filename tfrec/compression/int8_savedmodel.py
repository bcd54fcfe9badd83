"""SavedModels for stock TF Serving whose large weights are stored as int8 plus float16 scales.

The parts: `weight_quantization` (int8 values and scales), `packing` (the few flat variables
they are stored in), `weight_reads` (which weights the served outputs read) and `weight_swaps`
(tracing the Keras model over them). This module ties them into one `tf.Module` and saves it.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Sequence
from typing import Any, Optional, Union

import numpy as np
import tensorflow as tf

from tfrec.compression import (
    compact_tables,
    graph,
    packing,
    pruning,
    weight_quantization,
    weight_reads,
    weight_swaps,
)


class Int8Model(tf.Module):
    """A Keras model's function over int8 weights, ready for `tf.saved_model.save`.

    Every weight with at least `min_elements` values (embedding tables, dense and attention
    kernels, BERT's included) is stored as int8 with float16 scales
    (`weight_quantization.channel_axes`: per row for tables, per output channel for kernels;
    float32 for a weight whose scales float16 cannot hold, `stored_scales`). The serving
    function is traced with those weights swapped, in the Keras layers, for
    `tf.cast(int8) * scale`, so the graph uses only core TF ops and stock TF Serving runs it. A
    plain `Embedding` gathers int8 rows before dequantizing, so a lookup costs its rows, not
    the table. The Keras model itself is not tracked, so its float copies of the big weights
    are not saved.

    Packing (`packing`): the int8 values of all those weights are one flat int8 variable, their
    scales one flat float16 variable, and the model's other weights (biases, norms, small
    tables) one flat float32 variable; the graph splits each once and reshapes the pieces. A
    SavedModel's fixed costs grow with its variables (the saver's save and restore functions,
    the object graph, the captures of every function), and int8 would double them (values and
    scales per weight). int8 and float32 pieces are padded to whole 64-byte units, so
    splitting aliases the variable instead of copying it; the float16 scales and the int8
    weights other than gathered tables are cast to float32 in one op each, then split.

    Only the weights the serving function reads are saved (`weight_reads.unserved_weights`), in
    both layouts: an unread weight is swapped for zeros while tracing, and the ops reading it
    are never run.

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
        self._pack(
            model,
            int(min_elements) if quantize else None,
            weight_reads.unserved_weights(model, specs),
        )
        # Not tracked attributes: `tf.saved_model.save` would save a tracked tf.function again,
        # re-traced in its save context, beside the signatures (two more copies of the graph).
        functions = {"serving_default": tf.function(self._serve, input_signature=[specs])}
        object.__setattr__(self, "_functions", functions)
        self.k = int(k)
        self.candidates: Optional[weight_quantization.Int8Weight | tf.Variable] = None
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
        held = weight_reads.held_variables(model)
        packer, layout, swaps, big, done = packing.Packer(), [], [], [], set()
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
                packed = packing.pack_weight(packer, name, weight, quantized, held[id(weight)])
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
            self.candidates = weight_quantization.Int8Weight(candidates, 0, "candidates")
        else:
            self.candidates = tf.Variable(candidates, trainable=False, name="candidates")
        self.candidate_ids = tf.Variable(np.array(ids, dtype=object), trainable=False)

    def _packed_weights_in_layers(self) -> contextlib.AbstractContextManager[None]:
        """Swaps variables for tensors of the packed ones, and tables for compact ones, while
        the function is traced."""
        variables = {"int8": self.int8_values, "float16": self.float16_values}
        unpacked = packing.Unpacked({**variables, "float32": self.float_values}, self._sizes)
        return weight_swaps.swapped(self._swaps, self._table_swaps, unpacked)

    def _serve(self, inputs: Any) -> dict[str, tf.Tensor]:
        with self._packed_weights_in_layers(), weight_swaps.without_name_scope(self._model):
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
        if isinstance(self.candidates, weight_quantization.Int8Weight):
            # query @ (int8 * scale)^T == (query @ int8^T) * scale: scale after the matmul.
            raw = tf.matmul(query, tf.cast(self.candidates.values, tf.float32), transpose_b=True)
            scores = raw * tf.cast(self.candidates.scales, tf.float32)  # broadcast over rows
        else:
            scores = tf.matmul(query, self.candidates, transpose_b=True)
        top = tf.math.top_k(scores, k=self.k)
        return {"scores": top.values, "ids": tf.gather(self.candidate_ids, top.indices)}


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
