"""Quantization-aware training (8-bit fake quantization) of Functional Keras-2 models with TF-MOT."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional

import tensorflow as tf
import tensorflow_model_optimization as tfmot
from tensorflow_model_optimization.python.core.quantization.keras import quantize_annotate
from tensorflow_model_optimization.python.core.quantization.keras.collab_opts.prune_preserve import (
    prune_preserve_quantize_registry as prune_preserve,
)

from tfrec import precision
from tfrec.compression import graph

_quantize = tfmot.quantization.keras


class EmbeddingQuantizeConfig(tfmot.quantization.keras.QuantizeConfig):
    """Fake-quantizes an `Embedding` table to 8 bits (weights only; TF-MOT has no default).

    Per-tensor symmetric, like TFLite's int8 tables; the looked-up rows are not quantized again.

    Args:
        preserve_sparsity: bool. Keep the zeros of a pruned table during fine-tuning (TF-MOT's
            `PrunePreserveDefaultWeightsQuantizer`). Defaults to False.
    """

    def __init__(self, preserve_sparsity: bool = False) -> None:
        self.preserve_sparsity = preserve_sparsity

    def get_weights_and_quantizers(
        self, layer: tf.keras.layers.Embedding
    ) -> list[tuple[tf.Variable, tfmot.quantization.keras.quantizers.Quantizer]]:
        quantizer_class = _quantize.quantizers.LastValueQuantizer
        if self.preserve_sparsity:
            quantizer_class = prune_preserve.PrunePreserveDefaultWeightsQuantizer
        quantizer = quantizer_class(num_bits=8, per_axis=False, symmetric=True, narrow_range=True)
        return [(layer.embeddings, quantizer)]

    def get_activations_and_quantizers(
        self, layer: tf.keras.layers.Embedding
    ) -> list[tuple[Callable, tfmot.quantization.keras.quantizers.Quantizer]]:
        return []

    def set_quantize_weights(
        self, layer: tf.keras.layers.Embedding, quantize_weights: list[tf.Tensor]
    ) -> None:
        # The wrapper calls the layer with the fake-quantized table in place of the variable.
        layer.embeddings = quantize_weights[0]

    def set_quantize_activations(
        self, layer: tf.keras.layers.Embedding, quantize_activations: list[Callable]
    ) -> None:
        pass

    def get_output_quantizers(
        self, layer: tf.keras.layers.Embedding
    ) -> list[tfmot.quantization.keras.quantizers.Quantizer]:
        return []

    def get_config(self) -> dict[str, Any]:
        return {"preserve_sparsity": self.preserve_sparsity}


class _PrunePreserveRegistry(prune_preserve.Default8bitPrunePreserveQuantizeRegistry):
    # TF-MOT's registry claims every weightless layer (e.g. a `TFOpLambda` feeding an annotated
    # layer) and then fails in the default registry: "`get_quantize_config()` called on an
    # unsupported layer <class '...TFOpLambda'>". Claim only what both registries support.
    def supports(self, layer: tf.keras.layers.Layer) -> bool:
        return _default_8bit_supported(layer) and super().supports(layer)


class _PrunePreserveScheme(tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme):
    def get_quantize_registry(self) -> _PrunePreserveRegistry:
        return _PrunePreserveRegistry()


def _default_8bit_supported(layer: tf.keras.layers.Layer) -> bool:
    return _quantize.default_8bit.Default8BitQuantizeRegistry().supports(layer)


def _fed_by_non_float_input(layer: tf.keras.layers.Layer) -> bool:
    """True if `layer` (just called in the new graph) reads a non-float model input directly."""
    node = layer._inbound_nodes[-1]
    for tensor in tf.nest.flatten(node.keras_inputs):
        source = tensor._keras_history.layer
        if isinstance(source, tf.keras.layers.InputLayer) and not tensor.dtype.is_floating:
            return True
    return False


def quantize_aware(
    model: tf.keras.Model,
    *,
    preserve_sparsity: bool = False,
    quantize_embeddings: bool = True,
    layer_filter: Optional[Callable[[tf.keras.layers.Layer], bool]] = None,
) -> tf.keras.Model:
    """Returns a copy of a Functional model with 8-bit fake quantization for fine-tuning.

    TF-MOT's `quantize_model` refuses nested models and any layer its registry does not know.
    Here the model is copied and flattened (`graph.rebuild(flatten=True)`, so a nested
    `BertBackbone` becomes part of one graph), then only layers TF-MOT can quantize are
    annotated before `quantize_apply`:

    - layers of TF-MOT's default 8-bit registry (`Dense`, `Concatenate`, activations, ...):
      weights and outputs fake-quantized;
    - `Embedding` (and subclasses): table fake-quantized with `EmbeddingQuantizeConfig` when
      `quantize_embeddings`, unless it reads an integer model input directly (e.g. BERT's
      `token_embedding` on `token_ids`): TF-MOT would put a float fake-quant layer on the ids;
    - left in float: keras-nlp `TransformerEncoder` (its attention `EinsumDense` and feed-forward
      `Dense` are created inside the layer and unbuilt when TF-MOT wraps a fresh clone),
      `MultiHeadAttention`, `LayerNormalization`, `PositionEmbedding`, `StringLookup` and TF op
      layers. TFLite conversion (`tflite.to_tflite`) still quantizes those from calibration.

    QAT only simulates int8: the weights stay float32 until TFLite conversion. It runs in
    float32 (mixed-precision layers are copied as float32 layers).

    Args:
        model: tf.keras.Model. A Functional model, or a pruned one (`pruning.strip`ped).
        preserve_sparsity: bool. Use TF-MOT's `Default8BitPrunePreserveQuantizeScheme` (with a
            registry fix, see `_PrunePreserveRegistry`) so fine-tuning keeps the zeros of a
            pruned model's Dense kernels and embedding tables. Defaults to False.
        quantize_embeddings: bool. Fake-quantize embedding tables. Defaults to True.
        layer_filter: callable `layer -> bool`. Only layers for which it returns True are
            annotated. Defaults to every supported layer.

    Returns:
        A new Functional model with `QuantizeWrapperV2` layers, not compiled.

    Example:
        >>> qat = quantize_aware(tower)
        >>> qat.compile("adam", "mse")
        >>> qat.fit(ds, epochs=1)
    """
    graph.check_functional(model)

    def annotate(
        copy: tf.keras.layers.Layer, original: tf.keras.layers.Layer
    ) -> tf.keras.layers.Layer:
        if layer_filter is not None and not layer_filter(original):
            return copy
        if isinstance(original, tf.keras.layers.Embedding):
            # `quantize_apply` puts a float fake-quant layer after every model input that feeds an
            # annotated layer: on int ids it fails ("Input 'inputs' of 'FakeQuantWithMinMaxVars'
            # Op has type int32 that does not match expected type of float32").
            if not quantize_embeddings or _fed_by_non_float_input(copy):
                return copy
            config = EmbeddingQuantizeConfig(preserve_sparsity=preserve_sparsity)
            return _quantize.quantize_annotate_layer(copy, config)
        if _default_8bit_supported(original):
            return _quantize.quantize_annotate_layer(copy)
        return copy

    with precision.float32_scope():
        return _apply(graph.rebuild(model, annotate, flatten=True), model, preserve_sparsity)


def _apply(
    annotated: tf.keras.Model, model: tf.keras.Model, preserve_sparsity: bool
) -> tf.keras.Model:
    if not any(isinstance(x, quantize_annotate.QuantizeAnnotate) for x in annotated.layers):
        raise ValueError(
            f"`model` `{model.name}` has no layer TF-MOT can quantize (e.g. Dense, Embedding); "
            f"received layers {[type(x).__name__ for x in model.layers]}"
        )
    scheme = _PrunePreserveScheme() if preserve_sparsity else None
    with scope():
        if scheme is None:
            return _quantize.quantize_apply(annotated)
        return _quantize.quantize_apply(annotated, scheme)


def scope() -> tf.keras.utils.CustomObjectScope:
    """`quantize_scope` with this module's configs: use it to load a saved QAT Keras model.

    Returns:
        A context manager (`tf.keras.utils.CustomObjectScope`) for `tf.keras.models.load_model`.
    """
    return _quantize.quantize_scope({"EmbeddingQuantizeConfig": EmbeddingQuantizeConfig})
