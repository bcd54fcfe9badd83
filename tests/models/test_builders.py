"""Tests for builders.py: config -> towers and models, local presets, the id-only baseline."""

import dataclasses

import numpy as np
import pytest

from tfrec import config, features
from tfrec.layers import text_encoder
from tfrec.models import builders

TINY = config.ModelConfig(
    embedding_dim=8,
    id_embedding_dim=4,
    text_encoder=config.TextEncoderConfig(num_layers=1, hidden_dim=8, intermediate_dim=16),
)


def layer_names(model):
    return {layer.name for layer in model.layers}


@pytest.mark.parametrize("kind", ["pooling", "attention", "gru"])
def test_history_encoder_choice(kind, spec, make_batch):
    model_config = dataclasses.replace(TINY, history_encoder=kind, use_text=False)
    model = builders.build_retrieval_model(model_config, spec, [1] * len(spec.items))
    assert "text_encoder" not in layer_names(model.query_model)
    assert "category_embedding" not in layer_names(model.candidate_model)
    assert np.isfinite(model.compute_loss(make_batch(4))).all()


def test_main_model_shares_text_encoder(spec):
    model = builders.build_retrieval_model(
        dataclasses.replace(TINY, use_item_ids=False), spec, [1] * len(spec.items)
    )
    shared = model.query_model.get_layer("text_encoder")
    assert shared is model.candidate_model.get_layer("text_encoder")
    assert "item_lookup" not in layer_names(model.candidate_model)
    assert model.temperature == TINY.temperature and model.logq_correction


def test_text_encoder_from_local_preset(spec, make_batch, tmp_path):
    backbone = text_encoder.build_bert_backbone(
        len(spec.wordpiece), spec.text_length, 1, 2, 8, 16, dropout=0.0
    )
    text_encoder.save_backbone_preset(backbone, tmp_path)
    text_config = dataclasses.replace(TINY.text_encoder, preset=str(tmp_path))
    model = builders.build_retrieval_model(
        dataclasses.replace(TINY, text_encoder=text_config), spec, [1] * len(spec.items)
    )
    encoder = model.candidate_model.get_layer("text_encoder")
    (loaded,) = [x for x in encoder.layers if isinstance(x, type(backbone))]
    for got, want in zip(loaded.get_weights(), backbone.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="handles 8 tokens, expected at least 12"):
        builders.build_text_encoder(text_config, dataclasses.replace(spec, text_length=12), 8)


def test_id_two_tower_baseline(spec, make_batch):
    model = builders.build_id_two_tower(spec, 6, [1] * len(spec.items))
    assert [w.name for w in model.query_model.trainable_weights] == ["user_embedding/embeddings:0"]
    assert [w.name for w in model.candidate_model.trainable_weights] == [
        "item_embedding/embeddings:0"
    ]
    batch = make_batch(4)
    # The output IS the id embedding (TFRS tutorial), unnormalized.
    embedding = model.candidate_model.get_layer("item_embedding").embeddings.numpy()
    index = model.candidate_model.get_layer("item_lookup")(batch[features.ITEM_ID]).numpy()
    candidates = model.candidate_model(
        {name: batch[name] for name in features.CANDIDATE_FEATURES}
    ).numpy()
    np.testing.assert_allclose(candidates, embedding[index])
    assert np.isfinite(model.compute_loss(batch))


def test_item_counts_must_align(spec):
    with pytest.raises(ValueError, match="expected 30 counts, received 2"):
        builders.build_retrieval_model(TINY, spec, [1, 2])
