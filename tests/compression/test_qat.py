"""QAT: a quantize-aware copy trains a step, keeps pruned zeros, and round-trips a SavedModel."""

import numpy as np
import pytest
import tensorflow as tf

from tests.compression import standins
from tfrec.compression import pruning, qat


@pytest.fixture(scope="module")
def data():
    model = standins.tower()
    x = standins.as_tensors(standins.features(32))
    return model, x, model(x).numpy()


def test_qat_trains_and_exports(data, tmp_path):
    model, x, y = data
    quantized = qat.quantize_aware(model)
    wrapped = {x.name for x in quantized.layers if "QuantizeWrapper" in type(x).__name__}
    # Dense and embedding tables are quantized; the BERT token embedding reads int ids
    # straight from an input and stays float (see `quantize_aware`).
    assert {"quant_hidden", "quant_output", "quant_item_embedding"} <= wrapped
    assert "quant_bert_token_embedding" not in wrapped
    quantized.compile(tf.keras.optimizers.Adam(1e-3), "mse")
    history = quantized.fit(x, y, batch_size=32, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    tf.saved_model.save(quantized, str(tmp_path))
    reloaded = tf.saved_model.load(str(tmp_path)).signatures["serving_default"]
    got = reloaded(**x)["quant_output"].numpy()
    np.testing.assert_allclose(got, quantized(x).numpy(), atol=1e-5)


def test_prune_preserving_qat_keeps_zeros(data):
    model, x, y = data
    pruned = pruning.prune(model, 0.5, end_step=2, frequency=1)
    pruned.compile(tf.keras.optimizers.Adam(1e-3), "mse")
    pruned.fit(x, y, batch_size=8, epochs=1, callbacks=pruning.callbacks(), verbose=0)
    sparse = pruning.strip(pruned)
    quantized = qat.quantize_aware(sparse, preserve_sparsity=True)
    quantized.compile(tf.keras.optimizers.Adam(1e-2), "mse")
    quantized.fit(x, y, batch_size=8, epochs=1, verbose=0)
    sparsity = pruning.measure_sparsity(quantized)
    for name in ("hidden/kernel", "output/kernel", "item_embedding/embeddings"):
        assert sparsity[name] >= 0.49, (name, sparsity[name])


def test_model_without_quantizable_layers_is_refused():
    inputs = tf.keras.Input(shape=(4,), name="x")
    model = tf.keras.Model(inputs, tf.keras.layers.LayerNormalization()(inputs))
    with pytest.raises(ValueError, match="has no layer TF-MOT can quantize"):
        qat.quantize_aware(model)
