"""The DCN ranker made ready for TFLite: integer codes for raw ids, shared tables gathered once."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from tfrec.compression import graph

# A feed: raw feature batch -> what the cut network (or flatbuffer) takes.
Feed = Callable[[Mapping[str, Any]], dict[str, Any]]
# Layers that only test their string inputs for equality: request-local codes can replace them.
_EQUALITY_ONLY = ("HistoryRepeats",)


def code_string_ids(model: tf.keras.Model, feed: Feed) -> tuple[tf.keras.Model, Feed]:
    """The cut ranker taking int64 codes for its raw string ids, and the feed that codes them.

    The TFLite calibrator mishandles string inputs: calibrating the tiny ranker, its
    `HistoryRepeats` saw no repeat, so full-int8 gave the repeat counts a scale near zero and
    served them as ~1e-6 (every repeat feature lost; on UCI the full-int8 AUC fell 3.7%, with
    codes 0.2%). That layer only tests ids for equality, so codes numbering each request's
    distinct ids compute the same counts.

    Args:
        model: tf.keras.Model. `artifacts.tflite_ready`'s cut ranker (dict inputs).
        feed: callable. Its feed.

    Returns:
        (model, feed), unchanged when a string input reaches another layer.
    """
    strings = sorted(n for n, x in model.input.items() if x.dtype == tf.string)
    readers = {
        type(node.layer).__name__ for n in strings for node in model.get_layer(n)._outbound_nodes
    }
    if not strings or not readers <= set(_EQUALITY_ONLY):
        return model, feed
    coded = graph.rebuild(model, input_dtypes={n: tf.int64 for n in strings})

    def coded_feed(features: Mapping[str, Any]) -> dict[str, Any]:
        fed, codes = feed(features), dict[Any, int]()
        for name in strings:
            values = np.asarray(fed[name])
            flat = [v.encode() if isinstance(v, str) else v for v in values.ravel().tolist()]
            numbered = [codes.setdefault(v, len(codes)) for v in flat]
            fed[name] = np.asarray(numbered, np.int64).reshape(values.shape)
        return fed

    return coded, coded_feed


def gather_once(model: tf.keras.Model, feed: Feed) -> tuple[tf.keras.Model, Feed]:
    """The cut ranker gathering each shared embedding table once, and the feed for it.

    The TFLite quantizer gives each GATHER its own int8 scale, so a table called at two sites
    is stored twice in a full-int8 flatbuffer: the UCI ranker's item vectors (candidate and
    history) made it 41% of the float flatbuffer instead of 27%. Here the table's ids from all
    its calls arrive as one input `<table>_ids` `[batch, total]`: one gather, split back into
    the vectors each call site read. Same table, same vectors.

    Args:
        model: tf.keras.Model. The cut ranker (dict inputs), ids from lookups as inputs.
        feed: callable. Its feed.

    Returns:
        (model, feed), unchanged when no table is shared or a shared one reads computed ids
        (or ids of unknown width).
    """
    shared = {
        layer.name: graph.call_nodes(model, layer)
        for layer in model.layers
        if isinstance(layer, tf.keras.layers.Embedding) and len(graph.call_nodes(model, layer)) > 1
    }
    sources = {
        name: [tf.nest.flatten(node.keras_inputs)[0] for node in nodes]
        for name, nodes in shared.items()
    }
    if not shared or any(
        x._keras_history.layer.name not in model.input or None in x.shape[1:]
        for ids in sources.values()
        for x in ids
    ):
        return model, feed
    core = graph.rebuild(model, cut=lambda layer: layer.name in shared)
    cut = {graph.cut_input_name(t, i) for t, nodes in shared.items() for i in range(len(nodes))}
    inputs = {n: x for n, x in core.input.items() if n not in cut}
    fed_to_core = dict(inputs)
    for name, ids in sources.items():
        widths = [int(np.prod(x.shape[1:])) for x in ids]
        merged = tf.keras.Input(shape=(sum(widths),), dtype=tf.int64, name=f"{name}_ids")
        inputs[f"{name}_ids"] = merged
        original = model.get_layer(name)
        table = type(original).from_config(original.get_config())
        vectors = table(merged)
        table.set_weights(original.get_weights())
        parts = tf.split(vectors, widths, axis=1)
        for i, (part, x) in enumerate(zip(parts, ids, strict=True)):
            shape = [-1, *x.shape[1:], vectors.shape[-1]]
            fed_to_core[graph.cut_input_name(name, i)] = tf.reshape(part, shape)
    merged_model = tf.keras.Model(inputs, core(fed_to_core), name=model.name)

    def merged_feed(features: Mapping[str, Any]) -> dict[str, Any]:
        fed = feed(features)
        for name, ids in sources.items():
            arrays = [np.asarray(fed[x._keras_history.layer.name]) for x in ids]
            flat = [np.reshape(a, [a.shape[0], -1]) for a in arrays]
            fed[f"{name}_ids"] = np.concatenate(flat, axis=1).astype(np.int64)
        return fed

    return merged_model, merged_feed


def stack_heads(model: tf.keras.Model, heads: Sequence[str]) -> tf.keras.Model:
    """`model` with one `[batch, heads]` output in head order: TFLite renames a dict's outputs."""
    columns = [tf.keras.layers.Reshape((1,), name=f"{h}_column")(model.output[h]) for h in heads]
    stacked = tf.keras.layers.Concatenate(name="heads")(columns) if len(heads) > 1 else columns[0]
    return tf.keras.Model(model.input, stacked)
