"""Rebuilding Functional Keras-2 models layer by layer: copy, wrap, inline sub-models, cut inputs."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Optional

import tensorflow as tf

# `LayerFn(copy, original) -> layer`: receives a built copy of `original` holding its weights and
# returns the layer to place in the new graph: the copy itself, or a wrapper around it.
LayerFn = Callable[[tf.keras.layers.Layer, tf.keras.layers.Layer], tf.keras.layers.Layer]


def is_functional(layer: tf.keras.layers.Layer) -> bool:
    """True for Functional (graph-network) models, including subclasses such as `BertBackbone`."""
    return isinstance(layer, tf.keras.Model) and bool(getattr(layer, "_is_graph_network", False))


def check_functional(model: Any, argument: str = "model") -> None:
    """Raises a ValueError naming `argument` unless `model` is a Functional Keras-2 model."""
    if not isinstance(model, tf.keras.Model):
        raise ValueError(
            f"`{argument}` must be a Functional tf.keras (Keras 2) model, "
            f"received {type(model).__module__}.{type(model).__name__}"
        )
    if not is_functional(model):
        raise ValueError(
            f"`{argument}` must be a Functional tf.keras model (built from `tf.keras.Input`s); "
            f"subclassed models cannot be rewritten layer by layer, received "
            f"{type(model).__name__} `{model.name}`"
        )


def _copy_layer(
    layer: tf.keras.layers.Layer, name: Optional[str], float32: bool
) -> tf.keras.layers.Layer:
    config = layer.get_config()
    if name is not None:
        config["name"] = name
    policy = getattr(layer, "dtype_policy", None)
    # TF-MOT wrappers assume float32 variables and activations: a mixed-precision layer becomes
    # a float32 one (its variables are already float32, so its weights carry over unchanged).
    if float32 and policy is not None and policy.name.startswith("mixed"):
        config["dtype"] = "float32"
    try:
        return layer.__class__.from_config(config)
    except Exception as e:  # noqa: BLE001 - any failure means the layer cannot be copied
        raise ValueError(
            f"`model` layer `{layer.name}` ({type(layer).__name__}) cannot be copied through "
            f"`get_config`/`from_config`; expected a serializable layer, received error: {e}"
        ) from e


class _Rebuilder:
    """Replays a Functional graph on new `tf.keras.Input`s (see `rebuild`)."""

    def __init__(
        self,
        layer_fn: LayerFn,
        flatten: bool,
        cut: Optional[Callable[[tf.keras.layers.Layer], bool]],
        float32: bool,
    ) -> None:
        self.layer_fn = layer_fn
        self.flatten = flatten
        self.cut = cut
        self.float32 = float32
        self.memo: dict[int, tf.keras.layers.Layer] = {}
        self.cut_inputs: list[tf.Tensor] = []

    def call_layer(
        self,
        layer: tf.keras.layers.Layer,
        prefix: str,
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
    ) -> Any:
        """Calls the new version of `layer` on `args`, creating it on first use."""
        if id(layer) in self.memo:
            return self.memo[id(layer)](*args, **kwargs)
        copy = _copy_layer(layer, f"{prefix}{layer.name}" if prefix else None, self.float32)
        # Calling the copy builds it as the original was built, sub-layers included (tf-keras's
        # MultiHeadAttention creates its projections only on first call), so weights can be
        # copied now and `layer_fn` sees every variable.
        outputs = copy(*args, **kwargs)
        copy.set_weights(layer.get_weights())
        new = self.layer_fn(copy, layer)
        self.memo[id(layer)] = new
        if new is copy:
            return outputs
        args, kwargs = positional_as_keywords(copy, args, kwargs)
        return new(*args, **kwargs)

    def submodel_for(self, model: tf.keras.Model) -> tf.keras.layers.Layer:
        if id(model) not in self.memo:
            inner = _Rebuilder(self.layer_fn, False, self.cut, self.float32)
            inputs = [_new_input(x) for x in model.inputs]
            outputs = inner.replay(model, inputs, prefix="")
            new = tf.keras.Model(
                tf.nest.pack_sequence_as(model._nested_inputs, inputs), outputs, name=model.name
            )
            self.cut_inputs.extend(inner.cut_inputs)
            self.memo[id(model)] = new
        return self.memo[id(model)]

    def replay(self, model: tf.keras.Model, inputs: Sequence[tf.Tensor], prefix: str) -> Any:
        """Runs `model`'s nodes on `inputs` (flat, in `model.inputs` order); returns its outputs."""
        usage = model._tensor_usage_count
        tensors: dict[str, list[tf.Tensor]] = {}
        for ref, new in zip(model.inputs, inputs, strict=True):
            tensors[str(id(ref))] = [new] * usage[str(id(ref))]
        for depth in sorted(model._nodes_by_depth, reverse=True):
            for node in model._nodes_by_depth[depth]:
                if node.is_input or any(i not in tensors for i in node.flat_input_ids):
                    continue
                layer = node.layer
                if self.cut is not None and self.cut(layer):
                    # The cut layer's outputs become inputs of the new model, one per call node
                    # (a lookup shared by the candidate and the history items is cut twice).
                    ordinal = call_nodes(model, layer).index(node)
                    name = prefix + cut_input_name(layer.name, ordinal)
                    outputs = tf.nest.map_structure(
                        lambda t, n=name: _new_input(t, name=n), node.outputs
                    )
                    self.cut_inputs.extend(tf.nest.flatten(outputs))
                else:
                    args, kwargs = node.map_arguments(tensors)
                    if is_functional(layer) and self.flatten:
                        flat = layer._flatten_to_reference_inputs(args[0])
                        outputs = self.replay(layer, flat, prefix=f"{prefix}{layer.name}_")
                    elif is_functional(layer):
                        outputs = self.submodel_for(layer)(*args, **kwargs)
                    else:
                        outputs = self.call_layer(layer, prefix, args, kwargs)
                for ref_id, new in zip(node.flat_output_ids, tf.nest.flatten(outputs), strict=True):
                    tensors[ref_id] = [new] * usage[ref_id]
        flat = [tensors[str(id(x))].pop() for x in model.outputs]
        return tf.nest.pack_sequence_as(model._nested_outputs, flat)


def call_nodes(model: tf.keras.Model, layer: tf.keras.layers.Layer) -> list[Any]:
    """The nodes at which `layer` is called inside Functional `model`, in call order.

    A layer also used in other models has inbound nodes outside `model`; they are skipped, so
    the ordinals (and the cut input names built from them) depend on `model` alone.

    Args:
        model: tf.keras.Model. A Functional model holding `layer` (not nested deeper).
        layer: tf.keras.layers.Layer. One of `model.layers`.

    Returns:
        List of `Node`s, in the order `layer` was called.
    """
    own = {id(n) for nodes in model._nodes_by_depth.values() for n in nodes}
    return [node for node in layer._inbound_nodes if id(node) in own]


def cut_input_name(layer_name: str, ordinal: int) -> str:
    """Name of the input replacing call `ordinal` (0-based, see `call_nodes`) of a cut layer.

    The first call keeps the layer's name (what single-call lookups were always called), later
    ones get `_<ordinal>`: `item_vector_lookup`, `item_vector_lookup_1`.

    Args:
        layer_name: str. The cut layer's name (with its sub-model prefix when inlined).
        ordinal: int. Index of the call among `call_nodes`.

    Returns:
        str.
    """
    return layer_name if ordinal == 0 else f"{layer_name}_{ordinal}"


def positional_as_keywords(
    layer: tf.keras.layers.Layer, args: Sequence[Any], kwargs: Mapping[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """`layer`'s call arguments with only the first positional: the others named.

    TF-MOT wrappers define `call(inputs, training=None, **kwargs)`: a layer called with two
    positional tensors (`MultiHeadAttention(query, value)`, DCN `Cross(x0, x)`) would get its
    second tensor as `training`. Passed by the names of `layer.call`'s parameters, they reach
    the wrapped layer's `call` through `**kwargs`.

    Args:
        layer: tf.keras.layers.Layer. The layer about to be called.
        args: sequence. Its positional call arguments.
        kwargs: mapping. Its keyword call arguments.

    Returns:
        (args, kwargs): the first positional argument alone, and every other one by name.
    """
    if len(args) <= 1:
        return tuple(args), dict(kwargs)
    parameters = list(inspect.signature(layer.call).parameters.values())
    named = [p.name for p in parameters[1 : len(args)] if p.kind is p.POSITIONAL_OR_KEYWORD]
    if len(named) != len(args) - 1 or set(named) & set(kwargs):
        raise ValueError(
            f"`model` layer `{layer.name}` ({type(layer).__name__}) is called with "
            f"{len(args)} positional inputs that cannot be passed by name to a wrapper; "
            f"expected named parameters after the first, received "
            f"`call{inspect.signature(layer.call)}`"
        )
    return (args[0],), {**dict(zip(named, args[1:], strict=True)), **kwargs}


def _new_input(tensor: Any, name: Optional[str] = None, dtype: Any = None) -> tf.Tensor:
    """A `tf.keras.Input` with the type of (Keras) tensor `tensor` (or its shape and `dtype`)."""
    history = getattr(tensor, "_keras_history", None)
    name = name or (history.layer.name if history is not None else None)
    spec = tensor.type_spec
    if isinstance(spec, tf.TensorSpec):
        # Not `type_spec=`: that path drops `name` from the input's spec, and SavedModel and
        # TFLite signatures would call the input `args_0`.
        shape = tensor.shape
        dtype = dtype or spec.dtype
        return tf.keras.Input(shape=shape[1:], batch_size=shape[0], dtype=dtype, name=name)
    if dtype is not None:
        raise ValueError(f"`input_dtypes` must name dense inputs, received `{name}` ({spec})")
    return tf.keras.Input(type_spec=spec, name=name)


def rebuild(
    model: tf.keras.Model,
    layer_fn: Optional[LayerFn] = None,
    *,
    flatten: bool = False,
    cut: Optional[Callable[[tf.keras.layers.Layer], bool]] = None,
    float32: bool = True,
    name: Optional[str] = None,
    input_dtypes: Optional[dict] = None,
) -> tf.keras.Model:
    """Copies a Functional model layer by layer, optionally wrapping, inlining or cutting layers.

    `tf.keras.models.clone_model` shares no weights but loses them; TF-MOT's own wrappers share
    the original layers (fine-tuning then edits the original model). This copies every layer
    from its config, builds it on the new graph, copies the original weights into it and passes
    it through `layer_fn`, so the result is independent of `model` and computes the same
    function.

    Args:
        model: tf.keras.Model. A Functional model; nested Functional sub-models (e.g. a
            keras-nlp `BertBackbone`) are rebuilt too.
        layer_fn: callable `(copy, original) -> layer`. Decides what replaces each
            non-model layer, e.g. a pruning wrapper around `copy` (built, with the original
            weights). Defaults to the copy.
        flatten: bool. Inline nested sub-models into one flat graph (TF-MOT's `quantize_apply`
            refuses nested models). Inlined layers are renamed `<submodel>_<layer>`.
            Defaults to False (sub-models stay nested, renamed plain `tf.keras.Model`s).
        cut: callable `layer -> bool`. Layers for which it is true are removed and their outputs
            become new inputs named after the layer (e.g. `StringLookup`s, so the numeric core
            takes integer indices). A layer called at several nodes gives one input per call,
            named by `cut_input_name` (`<layer>`, then `<layer>_1`, ...). Original inputs that
            only fed cut layers are dropped, and the new model takes a dict keyed by input
            name. Implies `flatten=True`.
        float32: bool. Give mixed-precision layers a float32 policy. Defaults to True.
        name: str. The new model's name. Defaults to `model.name`.
        input_dtypes: dict input name -> dtype. Inputs recreated with another dtype, same
            shape, e.g. int64 codes for string ids that only equality tests read (the TFLite
            calibrator mishandles string inputs); the layers reading them must accept it.
            Defaults to None (every input keeps its dtype).

    Returns:
        A new, built Functional model with the original weights (wrappers add their own).

    Example:
        >>> flat = rebuild(tower, flatten=True)
    """
    check_functional(model)
    layer_fn = layer_fn or (lambda copy, original: copy)
    # A cut inside a nested sub-model must surface as an input of the outer model.
    builder = _Rebuilder(layer_fn, flatten or cut is not None, cut, float32)
    input_dtypes = dict(input_dtypes or {})
    unknown = sorted(set(input_dtypes) - {_input_name(x) for x in model.inputs})
    if unknown:
        raise ValueError(
            f"`input_dtypes` must name inputs of `model` {[_input_name(x) for x in model.inputs]}"
            f", received {unknown}"
        )
    inputs = [_new_input(x, dtype=input_dtypes.get(_input_name(x))) for x in model.inputs]
    outputs = builder.replay(model, inputs, prefix="")
    if cut is None:
        new_inputs = tf.nest.pack_sequence_as(model._nested_inputs, inputs)
    else:
        new_inputs = _named_inputs(_used_inputs(inputs, outputs) + builder.cut_inputs)
    return tf.keras.Model(new_inputs, outputs, name=name or model.name)


def _input_name(tensor: tf.Tensor) -> str:
    return tensor._keras_history.layer.name


def _named_inputs(tensors: list[tf.Tensor]) -> dict[str, tf.Tensor]:
    """`tensors` keyed by input name; a name given twice is an error, not a dropped input."""
    named: dict[str, tf.Tensor] = {}
    for tensor in tensors:
        name = _input_name(tensor)
        if name in named:
            raise ValueError(
                f"`cut` must leave inputs with distinct names, received `{name}` twice (a cut "
                "input named like a model input or another layer's cut input)"
            )
        named[name] = tensor
    return named


def _used_inputs(inputs: list[tf.Tensor], outputs: Any) -> list[tf.Tensor]:
    """The tensors of `inputs` on which `outputs` depend (walking the Keras history back)."""
    wanted = {id(x): x for x in inputs}
    seen: set[int] = set()
    used: dict[int, tf.Tensor] = {}
    stack = list(tf.nest.flatten(outputs))
    while stack:
        tensor = stack.pop()
        if id(tensor) in seen:
            continue
        seen.add(id(tensor))
        if id(tensor) in wanted:
            used[id(tensor)] = tensor
            continue
        history = getattr(tensor, "_keras_history", None)
        if history is None:
            continue
        node = history.layer._inbound_nodes[history.node_index]
        stack.extend(tf.nest.flatten(node.keras_inputs))
    return [x for x in inputs if id(x) in used]
