"""Shared layer/model test harness: shapes, dtypes, fit, mixed precision, config, SavedModel."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf

from tfrec import precision

# The shipped configs, found from this file: tests pass from any working directory.
CONFIGS = Path(__file__).resolve().parents[1] / "configs"
TINY_CONFIG = str(CONFIGS / "tiny.yaml")

# A trained run that checks wiring, not quality: configs/tiny.yaml with one epoch per stage
# and a short candidate list (integration, exporting and serving-bench tests).
TINY_RUN_OVERRIDES = [
    "train.epochs=1",
    "train.histogram_freq=0",
    "ranking.epochs=1",
    "ranking.mlp=[16]",
    "recommend.retrieve_n=30",
]


def symbolic_inputs(inputs):
    """tf.keras.Input structure matching a batch of eager `inputs` (batch dimension unknown)."""
    return tf.nest.map_structure(lambda t: tf.keras.Input(shape=t.shape[1:], dtype=t.dtype), inputs)


def as_model(layer, inputs) -> tf.keras.Model:
    """`layer` itself if it is a Functional model, else a Functional model wrapping it."""
    if isinstance(layer, tf.keras.Model):
        return layer
    symbolic = symbolic_inputs(inputs)
    return tf.keras.Model(symbolic, layer(symbolic))


def assert_output(outputs, expected_shape, expected_dtype) -> None:
    """Checks shape (None = any) and dtype of a tensor or KerasTensor, and finiteness if eager."""
    assert outputs.dtype == tf.as_dtype(expected_dtype), (outputs.dtype, expected_dtype)
    shape = tuple(outputs.shape)
    assert len(shape) == len(expected_shape), (shape, expected_shape)
    for got, want in zip(shape, expected_shape, strict=True):
        assert want is None or got == want, (shape, expected_shape)
    if tf.is_tensor(outputs) and not tf.keras.backend.is_keras_tensor(outputs):
        values = tf.cast(outputs, tf.float32).numpy()
        assert np.isfinite(values).all(), "outputs hold NaN or inf"


def run_fit_step(model: tf.keras.Model, inputs) -> None:
    """One `fit` step on a regression to random targets: finite loss and every weight moves."""
    outputs = model(inputs)
    target = np.random.default_rng(0).normal(size=outputs.shape).astype(np.float32)
    model.compile(optimizer=tf.keras.optimizers.SGD(0.1), loss="mse")
    before = [w.numpy().copy() for w in model.trainable_weights]
    history = model.fit(inputs, target, batch_size=len(target), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    after = [w.numpy() for w in model.trainable_weights]
    moved = [not np.array_equal(b, a) for b, a in zip(before, after, strict=True)]
    assert any(moved), "no trainable weight changed after one fit step"


def run_serialization_test(layer, inputs) -> None:
    """get_config round trip: same config, and equal outputs once weights are copied over."""
    config = layer.get_config()
    if isinstance(layer, tf.keras.Model):
        clone = type(layer).from_config(config)
    else:
        clone = layer.__class__.from_config(config)
        assert clone.get_config() == config
    clone(inputs)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(
        tf.cast(clone(inputs), tf.float32), tf.cast(layer(inputs), tf.float32), rtol=1e-5
    )


def run_saved_model_test(model: tf.keras.Model, inputs, directory) -> None:
    """SavedModel round trip the way serving loads it: a `serving_default` signature, reloaded
    with `tf.saved_model.load` (no Keras, no tfrec classes needed), must give equal outputs."""
    expected = model(inputs, training=False)
    # Signatures take named tensors: name list or single inputs input_0, input_1, ...
    named = (
        inputs
        if isinstance(inputs, dict)
        else {f"input_{i}": t for i, t in enumerate(tf.nest.flatten(inputs))}
    )
    specs = {n: tf.TensorSpec([None, *t.shape[1:]], t.dtype, n) for n, t in named.items()}

    @tf.function(input_signature=[specs])
    def serve(batch):
        structured = (
            batch
            if isinstance(inputs, dict)
            else tf.nest.pack_sequence_as(inputs, [batch[n] for n in named])
        )
        return {"outputs": model(structured, training=False)}

    path = str(directory / "saved_model")
    tf.saved_model.save(model, path, signatures={"serving_default": serve})
    got = tf.saved_model.load(path).signatures["serving_default"](**named)["outputs"]
    np.testing.assert_allclose(
        tf.cast(got, tf.float32), tf.cast(expected, tf.float32), rtol=1e-5, atol=1e-6
    )


def run_mixed_precision_test(
    build: Callable[[], tf.keras.layers.Layer], inputs, expected_shape, expected_dtype
) -> None:
    """Builds under each mixed policy and checks output dtype, shape and finite values."""
    for policy in ("mixed_float16", "mixed_bfloat16"):
        previous = tf.keras.mixed_precision.global_policy()
        precision.set_policy(policy)
        try:
            layer = build()
            dtype = expected_dtype or tf.keras.mixed_precision.global_policy().compute_dtype
            assert_output(layer(inputs), expected_shape, dtype)
        finally:
            tf.keras.mixed_precision.set_global_policy(previous)


def run_layer_test(
    build: Callable[[], tf.keras.layers.Layer],
    inputs,
    expected_shape: tuple,
    expected_dtype: str = "float32",
    mixed_dtype: str | None = None,
    num_trainable_weights: int | None = None,
    fit: bool = True,
    saved_model_dir=None,
):
    """Runs the standard checks on the layer (or Functional model) that `build()` returns.

    Args:
        build: Zero-argument callable returning a fresh layer or model (called again under
            each mixed policy).
        inputs: Eager batch: tensor, list or dict of tensors.
        expected_shape: Output shape; None entries match any size (e.g. the batch).
        expected_dtype: Output dtype under float32. Defaults to "float32".
        mixed_dtype: Output dtype under a mixed policy; None: the policy's compute dtype
            (pass "float32" for towers that cast their output).
        num_trainable_weights: Expected count of trainable weight tensors, or None.
        fit: Whether to run one fit step (needs trainable weights).
        saved_model_dir: pathlib.Path (e.g. pytest `tmp_path`) for the SavedModel round trip,
            or None to skip it.

    Returns:
        The float32 layer, built.
    """
    layer = build()
    symbolic = symbolic_inputs(inputs)
    symbolic_shape = (None,) + tuple(expected_shape[1:])
    assert_output(layer(symbolic), symbolic_shape, expected_dtype)
    assert_output(layer(inputs), expected_shape, expected_dtype)
    if num_trainable_weights is not None:
        assert len(layer.trainable_weights) == num_trainable_weights, layer.trainable_weights
    run_serialization_test(layer, inputs)
    if fit:
        run_fit_step(as_model(build(), inputs), inputs)
    run_mixed_precision_test(build, inputs, expected_shape, mixed_dtype)
    if saved_model_dir is not None:
        run_saved_model_test(as_model(layer, inputs), inputs, saved_model_dir)
    return layer


def later_window(source, rows: int = 800) -> pd.DataFrame:
    """The artifact's last `rows` events, moved past its end: the same shop a little later."""
    from tfrec import artifact

    inter = artifact.Artifact(source).dataset().interactions
    later = inter.tail(rows).copy()
    later["timestamp"] += int(inter["timestamp"].max() - later["timestamp"].min()) + 1
    return later
