"""Which variables a Keras model's layers hold, and which of them a traced call really reads."""

from __future__ import annotations

from typing import Any

import tensorflow as tf


def held_variables(model: tf.keras.Model) -> dict[int, list[tuple[tf.keras.layers.Layer, str]]]:
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
