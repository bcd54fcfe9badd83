"""Towers over a pretrained text model: modes scratch / frozen / finetune, config errors, a run."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tests import harness
from tests.models.conftest import random_batch
from tfrec import config, errors, features, precision
from tfrec.layers import pretrained_text_encoder
from tfrec.models import builders

TINY_CONFIG = str(Path(__file__).resolve().parents[2] / "configs" / "tiny.yaml")


def model_config(preset_dir, mode, trainable_layers=1):
    text = config.TextEncoderConfig(
        mode=mode,
        preset=str(preset_dir),
        trainable_layers=trainable_layers,
        num_layers=1,
        hidden_dim=8,
        intermediate_dim=16,
    )
    return config.ModelConfig(embedding_dim=8, id_embedding_dim=4, text_encoder=text)


def candidate_inputs(batch):
    return {name: batch[name] for name in features.CANDIDATE_FEATURES}


@pytest.mark.parametrize("mode", ["scratch", "frozen", "finetune"])
def test_each_mode_builds_and_trains_one_step(mode, preset, pretrained_spec, spec):
    # scratch keeps the learned vocabulary and a fresh BERT; the others read the preset's.
    used_spec = spec if mode == "scratch" else pretrained_spec
    cfg = model_config(preset, mode)
    if mode == "scratch":
        cfg = dataclasses.replace(cfg, text_encoder=config.TextEncoderConfig(num_layers=1))
    model = builders.build_retrieval_model(cfg, used_spec, [1] * len(used_spec.items))
    encoder = model.candidate_model.get_layer("text_encoder")
    assert encoder is model.query_model.get_layer("text_encoder")
    assert isinstance(encoder, pretrained_text_encoder.PretrainedTextEncoder) == (mode != "scratch")
    batch = random_batch(used_spec, 8)
    harness.run_fit_step(model.candidate_model, candidate_inputs(batch))
    assert np.isfinite(model.compute_loss(batch))


def test_frozen_trainable_weights_exclude_the_backbone(preset, pretrained_spec):
    model = builders.build_retrieval_model(
        model_config(preset, "frozen"), pretrained_spec, [1] * len(pretrained_spec.items)
    )
    encoder = model.candidate_model.get_layer("text_encoder")
    backbone = {w.ref() for w in encoder.backbone.weights}
    assert len(backbone) > 30
    trainable = {w.ref() for w in model.trainable_weights}
    assert not trainable & backbone
    assert encoder.projection.kernel.ref() in trainable
    assert encoder.item_cache.ref() not in trainable and encoder.item_cache.shape == (31, 32)


@pytest.mark.parametrize("trainable_layers", [1, 2])
def test_finetune_trains_exactly_the_top_layers(trainable_layers, preset, pretrained_spec):
    model = builders.build_retrieval_model(
        model_config(preset, "finetune", trainable_layers),
        pretrained_spec,
        [1] * len(pretrained_spec.items),
    )
    encoder = model.candidate_model.get_layer("text_encoder")
    layers = encoder.backbone.transformer_layers
    top = {w.ref() for layer in layers[len(layers) - trainable_layers :] for w in layer.weights}
    backbone = {w.ref() for w in encoder.backbone.weights}
    assert {w.ref() for w in model.trainable_weights} & backbone == top
    assert encoder.item_cache.shape == (31, pretrained_spec.text_length + 2, 32)


def test_finetune_under_mixed_precision(preset, pretrained_spec):
    previous = tf.keras.mixed_precision.global_policy()
    precision.set_policy("mixed_float16")
    try:
        model = builders.build_retrieval_model(
            model_config(preset, "finetune"), pretrained_spec, [1] * len(pretrained_spec.items)
        )
        optimizer = precision.wrap_optimizer(tf.keras.optimizers.Adam(1e-3), "mixed_float16")
        model.compile(optimizer=optimizer)
    finally:
        tf.keras.mixed_precision.set_global_policy(previous)
    batch = random_batch(pretrained_spec, 8)
    history = model.fit(tf.data.Dataset.from_tensors(batch), epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    encoder = model.candidate_model.get_layer("text_encoder")
    assert encoder.compute_dtype == "float16" and encoder.item_cache.dtype == tf.float32
    assert encoder.item_cached.numpy().sum() > 0  # training filled the rows it computed


def test_missing_default_preset_names_fetch_command(monkeypatch, tmp_path, pretrained_spec):
    monkeypatch.setenv("TFREC_CACHE", str(tmp_path))
    text = config.TextEncoderConfig(mode="frozen", preset="default")
    with pytest.raises(errors.ConfigError, match="`tfrec text fetch-default`"):
        builders.build_text_encoder(text, pretrained_spec, 8)
    missing = dataclasses.replace(text, preset=str(tmp_path / "nowhere"))
    with pytest.raises(errors.ConfigError, match="nowhere.*`tfrec text fetch-default`"):
        builders.build_text_encoder(missing, pretrained_spec, 8)


def test_spec_vocabulary_must_be_the_presets(preset, spec):
    with pytest.raises(ValueError, match="`spec.wordpiece` must be the vocabulary.*16 tokens"):
        builders.build_text_encoder(model_config(preset, "frozen").text_encoder, spec, 8)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["model.text_encoder.mode=cached"], "`model.text_encoder.mode` must be one of"),
        (["model.text_encoder.mode=frozen"], "`model.text_encoder.preset` is required"),
        (
            ["model.text_encoder.mode=finetune", "model.text_encoder.preset=x",
             "model.text_encoder.trainable_layers=0"],
            "`model.text_encoder.trainable_layers` must be an int >= 1.*received 0",
        ),
    ],
)  # fmt: skip
def test_config_checks(overrides, message):
    with pytest.raises(errors.ConfigError, match=message):
        config.load(TINY_CONFIG, overrides)
