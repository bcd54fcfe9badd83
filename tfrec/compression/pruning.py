"""Magnitude pruning of Functional Keras-2 models with TF-MOT, down into nested keras-nlp BERTs."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Optional

import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot
from tensorflow_model_optimization.python.core.quantization.keras import quantize_wrapper
from tensorflow_model_optimization.python.core.sparsity.keras import pruning_wrapper

from tfrec import precision
from tfrec.compression import graph

_KERNEL_LAYERS = (tf.keras.layers.Dense, tf.keras.layers.EinsumDense)


def prunable_weights(layer: tf.keras.layers.Layer) -> list[tf.Variable]:
    """The weights `prune` sparsifies in `layer`: dense kernels and embedding tables.

    `Dense` and `EinsumDense` give their `kernel`, `Embedding` (and subclasses such as keras-nlp's
    `ReversibleEmbedding`) its `embeddings`. Any other layer gives the kernels and tables of the
    layers it holds, e.g. a keras-nlp `TransformerEncoder` gives the query/key/value/output
    `EinsumDense` kernels of its attention and its two feed-forward `Dense` kernels. Biases,
    normalization and position embeddings are never pruned.

    Args:
        layer: tf.keras.layers.Layer. A built layer.

    Returns:
        The variables, in a stable order (empty if there is nothing to prune).
    """
    if isinstance(layer, _KERNEL_LAYERS):
        return [layer.kernel]
    if isinstance(layer, tf.keras.layers.Embedding):
        return [layer.embeddings]
    found: dict[int, tf.Variable] = {}
    for sub in layer._flatten_layers(include_self=False, recursive=True):
        for weight in prunable_weights(sub) if isinstance(sub, _KERNEL_LAYERS) else []:
            found[id(weight)] = weight
        if isinstance(sub, tf.keras.layers.Embedding):
            found[id(sub.embeddings)] = sub.embeddings
    return list(found.values())


def _check_schedule(
    target_sparsity: float, begin_step: int, end_step: int, frequency: int, initial_sparsity: float
) -> None:
    if not 0.0 < float(target_sparsity) < 1.0:
        raise ValueError(
            f"`target_sparsity` must be in (0, 1) (the share of weights set to zero), "
            f"received {target_sparsity!r}"
        )
    if not 0.0 <= float(initial_sparsity) <= float(target_sparsity):
        raise ValueError(
            f"`initial_sparsity` must be in [0, target_sparsity={target_sparsity}], "
            f"received {initial_sparsity!r}"
        )
    if int(begin_step) < 0 or int(end_step) <= int(begin_step):
        raise ValueError(
            f"`end_step` must be greater than `begin_step` >= 0, received "
            f"begin_step={begin_step!r}, end_step={end_step!r}"
        )
    if int(frequency) < 1 or (int(end_step) - int(begin_step)) % int(frequency):
        # TF-MOT only updates masks every `frequency` steps inside [begin, end]: otherwise the last
        # update falls short of `end_step` and the target sparsity is never reached.
        raise ValueError(
            f"`frequency` must be >= 1 and divide `end_step - begin_step` = "
            f"{int(end_step) - int(begin_step)}, received {frequency!r}"
        )


def prune(
    model: tf.keras.Model,
    target_sparsity: float,
    begin_step: int = 0,
    end_step: int = 1000,
    *,
    frequency: int = 100,
    initial_sparsity: float = 0.0,
    layer_filter: Optional[Callable[[tf.keras.layers.Layer], bool]] = None,
) -> tf.keras.Model:
    """Wraps every prunable layer of a Functional model in `prune_low_magnitude`.

    Sparsity rises from `initial_sparsity` at `begin_step` to `target_sparsity` at `end_step`
    (TF-MOT `PolynomialDecay`, cubic), masks updated every `frequency` steps. Fine-tune the result
    for more than `end_step` steps with `callbacks()`, then `strip` it.

    TF-MOT's own `prune_low_magnitude(model)` refuses layers it does not know (keras-nlp's
    `TransformerEncoder`, `ReversibleEmbedding`, ...) and wraps the original layers in place. Here
    the model is copied (`graph.rebuild`, nested sub-models such as `BertBackbone` included) and
    each layer with `prunable_weights` is wrapped with a `get_prunable_weights` method, the hook
    `PruneLowMagnitude` accepts for custom layers. Layers called with two positional tensors
    (`MultiHeadAttention(query, value)`, DCN `Cross(x0, x)`) get the second by name
    (`graph.positional_as_keywords`), so they are pruned too. `model` itself is left untouched.
    Pruning runs in float32: mixed-precision layers become float32 layers.

    Args:
        model: tf.keras.Model. A Functional model.
        target_sparsity: float. Final share of zeros in each pruned weight, in (0, 1).
        begin_step: int. Optimizer step of the first mask update. Defaults to 0.
        end_step: int. Step at which `target_sparsity` is reached. Defaults to 1000.
        frequency: int. Steps between mask updates; must divide `end_step - begin_step`.
            Defaults to 100.
        initial_sparsity: float. Sparsity of the first update. Defaults to 0.
        layer_filter: callable `layer -> bool`. Only layers for which it returns True are
            pruned (e.g. skip small tables). Defaults to every layer with prunable weights.

    Returns:
        A new Functional model holding `PruneLowMagnitude` wrappers, not compiled.

    Example:
        >>> pruned = prune(tower, 0.8, begin_step=0, end_step=200, frequency=50)
        >>> pruned.compile("adam", "mse")
        >>> pruned.fit(ds, epochs=2, callbacks=callbacks(log_dir))
        >>> sparse = strip(pruned)
    """
    _check_schedule(target_sparsity, begin_step, end_step, frequency, initial_sparsity)
    schedule = tfmot.sparsity.keras.PolynomialDecay(
        initial_sparsity=float(initial_sparsity),
        final_sparsity=float(target_sparsity),
        begin_step=int(begin_step),
        end_step=int(end_step),
        frequency=int(frequency),
    )

    def wrap(copy: tf.keras.layers.Layer, original: tf.keras.layers.Layer) -> tf.keras.layers.Layer:
        if not prunable_weights(original) or (layer_filter and not layer_filter(original)):
            return copy
        # Read lazily: the copy creates its (sub-)layers and variables only when built.
        copy.get_prunable_weights = lambda: prunable_weights(copy)
        return tfmot.sparsity.keras.prune_low_magnitude(copy, pruning_schedule=schedule)

    # TF-MOT wrappers take the global policy when created; they need float32.
    with precision.float32_scope():
        pruned = graph.rebuild(model, wrap)
    if not pruned_weight_names(pruned):
        raise ValueError(
            f"`model` `{model.name}` has no prunable weights (Dense/EinsumDense kernels or "
            "Embedding tables) selected by `layer_filter`"
        )
    return pruned


def callbacks(log_dir: Optional[str] = None) -> list[tf.keras.callbacks.Callback]:
    """The callbacks a pruning fine-tune needs: step counter and, with `log_dir`, summaries.

    Args:
        log_dir: str or None. TensorBoard directory for per-layer sparsity summaries.

    Returns:
        `[UpdatePruningStep()]` plus `PruningSummaries(log_dir)` when `log_dir` is given.
    """
    result: list[tf.keras.callbacks.Callback] = [tfmot.sparsity.keras.UpdatePruningStep()]
    if log_dir is not None:
        result.append(tfmot.sparsity.keras.PruningSummaries(log_dir=str(log_dir)))
    return result


def _wrappers(model: tf.keras.Model) -> list[pruning_wrapper.PruneLowMagnitude]:
    return pruning_wrapper.collect_prunable_layers(model)


def named_weights(model: tf.keras.Model) -> dict[str, tf.Variable]:
    """Every weight of `model` under a unique, path-like name, TF-MOT wrappers made transparent.

    Variable names are not unique (tf-keras names both feed-forward kernels of a keras-nlp
    `TransformerEncoder` `transformer_layer_0/kernel:0`), so names are built from layer names:
    `bert/transformer_layer_0/feedforward_intermediate_dense/kernel`. A pruned model and its
    stripped version give the same names; masks and quantizer variables are left out.

    Args:
        model: tf.keras.Model. Any Keras model.

    Returns:
        Name to variable, in layer order.
    """
    result: dict[str, tf.Variable] = {}
    seen: set[int] = set()

    def walk(
        layer: tf.keras.layers.Layer, path: list[str], moved: Sequence[tf.Variable] = ()
    ) -> None:
        if isinstance(layer, pruning_wrapper.PruneLowMagnitude):
            walk(layer.layer, path)
            return
        if isinstance(layer, quantize_wrapper.QuantizeWrapper):
            # QAT swaps the layer's weight attributes for fake-quantized tensors, which untracks
            # the variables from the layer; the wrapper holds them in `_weight_vars`.
            walk(layer.layer, path, [w for w, _, _ in layer._weight_vars])
            return
        path = path + [layer.name]
        for weight in list(moved) + layer._trainable_weights + layer._non_trainable_weights:
            if id(weight) not in seen:
                seen.add(id(weight))
                short = weight.name.split("/")[-1].split(":")[0]
                result["/".join(path + [short])] = weight
        for sub in layer._flatten_layers(include_self=False, recursive=False):
            walk(sub, path)

    for layer in model.layers:
        walk(layer, [])
    return result


def pruned_weight_names(model: tf.keras.Model) -> list[str]:
    """`named_weights` names of the weights the `PruneLowMagnitude` wrappers in `model` prune."""
    pruned = {id(w) for wrapper in _wrappers(model) for w, _, _ in wrapper.pruning_vars}
    return [name for name, weight in named_weights(model).items() if id(weight) in pruned]


def strip(model: tf.keras.Model) -> tf.keras.Model:
    """Removes the pruning wrappers, keeping the sparse weights (for export or conversion).

    Masks are applied once more first: a custom training loop may have moved masked weights
    after the last mask application (`UpdatePruningStep` does this only at epoch ends).

    Args:
        model: tf.keras.Model. A model returned by `prune` (or TF-MOT), after fine-tuning.

    Returns:
        The same architecture without wrappers; its layers are shared with `model`.
    """
    graph.check_functional(model)
    for wrapper in _wrappers(model):
        for weight, mask, _ in getattr(wrapper, "pruning_vars", []):
            weight.assign(weight * tf.cast(mask, weight.dtype))
    return tfmot.sparsity.keras.strip_pruning(model)


def measure_sparsity(model: tf.keras.Model) -> dict[str, float]:
    """Share of exact zeros in every matrix-shaped weight (kernels, tables) of `model`.

    Works on pruned (wrapped), stripped and QAT models alike.

    Args:
        model: tf.keras.Model. Any Keras model.

    Returns:
        `named_weights` name (e.g. `bert/transformer_layer_0/self_attention_layer/query/kernel`)
        to sparsity in [0, 1]; vectors (biases, norms) and scalars are left out.
    """
    result: dict[str, float] = {}
    for name, weight in named_weights(model).items():
        if len(weight.shape) >= 2:
            result[name] = float(np.mean(np.asarray(weight.numpy()) == 0))
    return result


def zero_counts(model: tf.keras.Model, names: Optional[Iterable[str]] = None) -> tuple[int, int]:
    """(exact zeros, values) over the weights of `model`: every weight, or those in `names`.

    With every weight (biases, normalization and position embeddings included) this is the
    whole model's share of zeros, the figure a pruned export's size follows.

    Args:
        model: tf.keras.Model. Any Keras model.
        names: iterable of `named_weights` names, or None for every weight.

    Returns:
        `(zeros, total)`.
    """
    weights = named_weights(model)
    selected = weights.values() if names is None else [weights[n] for n in names]
    zeros = total = 0
    for weight in selected:
        values = np.asarray(weight.numpy())
        zeros += int(np.sum(values == 0))
        total += values.size
    return zeros, total
