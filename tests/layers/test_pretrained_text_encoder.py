"""PretrainedTextEncoder: [CLS]/[SEP] wrapping, cached rows vs live and a NumPy BERT, freezing."""

import keras_nlp
import numpy as np
import pytest
import tensorflow as tf

from tests import harness
from tests.text import numpy_bert, tiny_checkpoint
from tfrec import precision
from tfrec.layers import pretrained_text_encoder, text_encoder
from tfrec.text import hf_import

CLS, SEP = 2, 3  # ids in tiny_checkpoint.VOCAB
ITEMS = ["a", "b", "c"]
TEXT_LENGTH = 6
# Item texts as the pipelines give them: WordPiece ids, real tokens first, 0 padding; "c" has
# no text. Ids index tiny_checkpoint.VOCAB ("the dog ##gy food", "puppy kib ##ble", "").
TOKENS = np.array([[5, 6, 7, 8, 0, 0], [11, 12, 13, 0, 0, 0], [0, 0, 0, 0, 0, 0]], np.int32)


@pytest.fixture(scope="module")
def preset(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    src = tiny_checkpoint.write(root / "src")
    return src, hf_import.import_hf(src, root / "preset")


def make_encoder(preset_dir, trainable_layers=0, output_dim=8):
    backbone = keras_nlp.models.BertBackbone.from_preset(str(preset_dir))
    return pretrained_text_encoder.PretrainedTextEncoder(
        backbone, output_dim, ITEMS, TEXT_LENGTH, CLS, SEP, trainable_layers=trainable_layers
    )


def numpy_sentence_vectors(src, token_ids):
    """Independent reference: sentence-transformers' mean over `[CLS] tokens [SEP]`."""
    wrapped = []
    for row in token_ids:
        real = [int(t) for t in row if t]
        ids = [CLS, *real, SEP] if real else []
        wrapped.append(ids + [0] * (len(row) + 2 - len(ids)))
    wrapped = np.array(wrapped)
    tensors = numpy_bert.load_tensors(src / "model.safetensors")
    real = wrapped.any(axis=1)  # an empty text pools to zero (no NaN from all-masked rows)
    vectors = np.zeros([len(wrapped), 32])
    states = numpy_bert.encode(tensors, wrapped[real], num_layers=2, num_heads=4)
    vectors[real] = numpy_bert.mean_pool(states, wrapped[real])
    return vectors


def test_bert_inputs_wrap_non_empty_texts():
    layer = text_encoder.BertInputs(cls_token_id=CLS, sep_token_id=SEP)
    out = layer(tf.constant([[5, 6, 0, 0], [0, 0, 0, 0], [7, 8, 9, 10]]))
    np.testing.assert_array_equal(
        out["token_ids"], [[2, 5, 6, 3, 0, 0], [0, 0, 0, 0, 0, 0], [2, 7, 8, 9, 10, 3]]
    )
    np.testing.assert_array_equal(out["padding_mask"], out["token_ids"].numpy() != 0)
    assert text_encoder.BertInputs.from_config(layer.get_config()).sep_token_id == SEP
    with pytest.raises(ValueError, match="`cls_token_id` and `sep_token_id` must be given"):
        text_encoder.BertInputs(cls_token_id=CLS)


def test_frozen_cache_equals_live_encoder_and_numpy_bert(preset):
    src, preset_dir = preset
    encoder = make_encoder(preset_dir)
    assert encoder.fill(ITEMS + ["unknown"], np.vstack([TOKENS, TOKENS[:1]])) == 3
    want = numpy_sentence_vectors(src, TOKENS)
    np.testing.assert_allclose(encoder.item_cache.numpy()[1:], want, rtol=0, atol=1e-5)
    assert not encoder.item_cache.numpy()[0].any()  # the OOV row is never written
    np.testing.assert_array_equal(encoder.item_cached.numpy(), [0, 1, 1, 1])
    cached = encoder({"token_ids": TOKENS, "item_ids": tf.constant(ITEMS)})
    # Unknown ids and the query path (no ids) both run the live encoder on the same texts.
    live = encoder({"token_ids": TOKENS, "item_ids": tf.constant(["x", "y", "z"])})
    query = encoder(tf.constant(TOKENS))
    np.testing.assert_allclose(cached, live, rtol=0, atol=1e-5)
    np.testing.assert_allclose(query, live, rtol=0, atol=1e-6)
    np.testing.assert_allclose(live, want @ encoder.projection.kernel.numpy(), rtol=0, atol=1e-5)
    assert not np.asarray(cached)[2].any()  # no text: exactly zero


def test_cache_reads_its_rows_not_the_text(preset):
    # Proves the cached path is taken: a poisoned row changes the output of its item only.
    encoder = make_encoder(preset[1])
    encoder.fill(ITEMS, TOKENS)
    before = encoder({"token_ids": TOKENS, "item_ids": tf.constant(ITEMS)}).numpy()
    encoder.item_cache.assign(encoder.item_cache + 1.0)
    after = encoder({"token_ids": TOKENS, "item_ids": tf.constant(ITEMS)}).numpy()
    assert not np.allclose(before[0], after[0])
    live = encoder({"token_ids": TOKENS, "item_ids": tf.constant(["x", "y", "z"])}).numpy()
    np.testing.assert_allclose(before, live, atol=1e-5)


def test_training_fills_rows_inference_does_not(preset):
    encoder = make_encoder(preset[1])
    inputs = {"token_ids": TOKENS[:2], "item_ids": tf.constant(["b", "new"])}
    encoder(inputs, training=False)
    np.testing.assert_array_equal(encoder.item_cached.numpy(), [0, 0, 0, 0])
    out = encoder(inputs, training=True)
    np.testing.assert_array_equal(encoder.item_cached.numpy(), [0, 0, 1, 0])  # "b" is row 2
    np.testing.assert_allclose(
        encoder.item_cache.numpy()[2], numpy_sentence_vectors(preset[0], TOKENS[:1])[0], atol=1e-5
    )
    np.testing.assert_allclose(out, encoder(inputs), atol=1e-5)


def test_frozen_trains_only_the_projection(preset):
    encoder = make_encoder(preset[1])
    inputs = {"token_ids": tf.constant(TOKENS), "item_ids": tf.constant(ITEMS)}
    encoder(inputs)
    assert [w.ref() for w in encoder.trainable_weights] == [encoder.projection.kernel.ref()]
    model = harness.as_model(encoder, inputs)
    backbone_before = [w.numpy().copy() for w in encoder.backbone.weights]
    harness.run_fit_step(model, inputs)
    for before, after in zip(backbone_before, encoder.backbone.weights, strict=True):
        np.testing.assert_array_equal(before, after.numpy())
    # The fit step filled every known item with text ("c" has none: it reads zeros).
    np.testing.assert_array_equal(encoder.item_cached.numpy(), [0, 1, 1, 0])


def test_finetune_trains_exactly_the_top_layers(preset):
    src, preset_dir = preset
    encoder = make_encoder(preset_dir, trainable_layers=1)
    inputs = {"token_ids": tf.constant(TOKENS), "item_ids": tf.constant(ITEMS)}
    encoder(inputs)
    top = encoder.backbone.transformer_layers[1]
    assert {w.ref() for w in encoder.trainable_weights} == {
        w.ref() for w in [*top.trainable_weights, encoder.projection.kernel]
    }
    # Split backbone (cached lower layer, live top layer) == the whole backbone == NumPy.
    np.testing.assert_allclose(
        encoder(inputs),
        numpy_sentence_vectors(src, TOKENS) @ encoder.projection.kernel.numpy(),
        atol=1e-5,
    )
    encoder.fill(ITEMS, TOKENS)
    assert encoder.item_cache.shape == (4, TEXT_LENGTH + 2, 32)
    live = encoder({"token_ids": TOKENS, "item_ids": tf.constant(["x", "y", "z"])})
    np.testing.assert_allclose(encoder(inputs), live, atol=1e-5)
    before = [w.numpy().copy() for w in encoder.backbone.weights]
    harness.run_fit_step(harness.as_model(encoder, inputs), inputs)
    moved = {
        w.ref()
        for w, b in zip(encoder.backbone.weights, before, strict=True)
        if not np.array_equal(b, w)
    }
    assert moved and moved <= {w.ref() for w in top.weights}


@pytest.mark.parametrize("trainable_layers", [0, 1])
def test_layer_harness(preset, trainable_layers, tmp_path):
    # Shapes, config round trip, a fit step, both mixed policies and a SavedModel round trip.
    inputs = {"token_ids": tf.constant(TOKENS), "item_ids": tf.constant(["a", "new", "c"])}
    harness.run_layer_test(
        lambda: make_encoder(preset[1], trainable_layers),
        inputs,
        expected_shape=(3, 8),
        # The projection kernel, plus a transformer layer's 16 tensors when one trains.
        num_trainable_weights=1 if trainable_layers == 0 else 1 + 16,
        saved_model_dir=tmp_path,
    )


def test_mixed_precision_fit_step(preset):
    previous = tf.keras.mixed_precision.global_policy()
    precision.set_policy("mixed_float16")
    try:
        encoder = make_encoder(preset[1], trainable_layers=1)
        inputs = {"token_ids": tf.constant(TOKENS), "item_ids": tf.constant(ITEMS)}
        assert encoder(inputs, training=True).dtype == tf.float16
        assert encoder.item_cache.dtype == tf.float32
        np.testing.assert_array_equal(encoder.item_cached.numpy(), [0, 1, 1, 0])  # "c": no text
        harness.run_fit_step(harness.as_model(encoder, inputs), inputs)
        assert np.isfinite(encoder(inputs).numpy().astype(np.float32)).all()
    finally:
        tf.keras.mixed_precision.set_global_policy(previous)


def test_config_round_trip_and_validation(preset):
    encoder = make_encoder(preset[1], trainable_layers=1)
    inputs = {"token_ids": tf.constant(TOKENS), "item_ids": tf.constant(ITEMS)}
    encoder(inputs)
    clone = pretrained_text_encoder.PretrainedTextEncoder.from_config(encoder.get_config())
    clone(inputs)
    clone.set_weights(encoder.get_weights())
    np.testing.assert_allclose(clone(inputs), encoder(inputs), atol=1e-6)
    backbone = encoder.backbone
    with pytest.raises(ValueError, match=r"`trainable_layers` must be an int in \[0, 2\].*3"):
        pretrained_text_encoder.PretrainedTextEncoder(backbone, 8, ITEMS, 6, CLS, SEP, 3)
    with pytest.raises(ValueError, match="max_sequence_length 16, received 15"):
        pretrained_text_encoder.PretrainedTextEncoder(backbone, 8, ITEMS, 15, CLS, SEP)
