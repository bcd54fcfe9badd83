"""Tests for the query and candidate towers: shapes, dtypes, OOV, empty inputs, round trips."""

import numpy as np
import pytest
import tensorflow as tf

from tests import harness
from tfrec import features
from tfrec.layers import history_encoder, text_encoder
from tfrec.models import candidate_tower, query_tower

DIM = 16


def tiny_text_encoder(spec):
    backbone = text_encoder.build_bert_backbone(
        len(spec.wordpiece), spec.text_length, 1, 2, hidden_dim=8, intermediate_dim=16, dropout=0.0
    )
    return text_encoder.build_text_encoder(backbone, DIM)


def candidate(spec, text=None, **kwargs):
    return candidate_tower.build_candidate_tower(
        spec.items, spec.categories, spec.text_length, DIM, 8, text_encoder=text, **kwargs
    )


def query(spec, text=None, history=True):
    encoder = history_encoder.build_history_encoder(
        spec.items, spec.event_types, spec.max_history, DIM, kind="attention", dropout=0.0
    )
    return query_tower.build_query_tower(
        spec.users,
        spec.max_history,
        spec.query_text_length,
        DIM,
        8,
        history_encoder=encoder if history else None,
        text_encoder=text,
        hidden_units=(DIM,),
    )


def pick(batch, names):
    return {name: batch[name] for name in names}


def assert_unit_norm(embeddings):
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, rtol=1e-5)


def test_candidate_tower_harness(spec, make_batch, tmp_path):
    inputs = pick(make_batch(6), features.CANDIDATE_FEATURES)
    tower = harness.run_layer_test(
        lambda: candidate(spec, tiny_text_encoder(spec)),
        inputs,
        (6, DIM),
        mixed_dtype="float32",
        fit=False,  # the retrieval-model tests train the towers end to end
        saved_model_dir=tmp_path,
    )
    assert set(tower.input) == set(features.CANDIDATE_FEATURES)
    assert_unit_norm(tower(inputs))


def test_query_tower_harness(spec, make_batch, tmp_path):
    inputs = pick(make_batch(6), features.QUERY_FEATURES)
    tower = harness.run_layer_test(
        lambda: query(spec, tiny_text_encoder(spec)),
        inputs,
        (6, DIM),
        mixed_dtype="float32",
        fit=False,  # the retrieval-model tests train the towers end to end
        saved_model_dir=tmp_path,
    )
    assert set(tower.input) == set(features.QUERY_FEATURES)
    assert_unit_norm(tower(inputs))


def test_unseen_items_are_told_apart_by_text(spec, make_batch):
    inputs = pick(make_batch(4), features.CANDIDATE_FEATURES)
    inputs[features.ITEM_ID] = tf.constant(["new-a", "new-b", "new-c", "new-a"])
    inputs[features.ITEM_CATEGORY] = tf.constant(["toys"] * 4)
    inputs[features.ITEM_PRICE] = tf.zeros([4])
    tokens = inputs[features.ITEM_TOKEN_IDS].numpy()
    tokens[3] = tokens[0]
    inputs[features.ITEM_TOKEN_IDS] = tf.constant(tokens)
    with_text = candidate(spec, tiny_text_encoder(spec))(inputs).numpy()
    # Same text, category and price: same embedding; different text: different embeddings.
    np.testing.assert_allclose(with_text[0], with_text[3], atol=1e-6)
    assert np.abs(with_text[0] - with_text[1]).max() > 1e-3
    # Without text, unseen items with equal category and price are indistinguishable.
    ids_only = candidate(spec, None)(inputs).numpy()
    np.testing.assert_allclose(ids_only[0], ids_only[1], atol=1e-6)


def test_item_id_dropout_only_in_training(spec, make_batch):
    inputs = pick(make_batch(200, seed=3), features.CANDIDATE_FEATURES)
    inputs[features.ITEM_ID] = tf.constant(np.resize(spec.items, 200))
    as_oov = dict(inputs, **{features.ITEM_ID: tf.constant(["unknown"] * 200)})
    tower = candidate(spec, tiny_text_encoder(spec), item_id_dropout=0.5)
    oov = tower(as_oov, training=False).numpy()

    def share_dropped(training):
        out = tower(inputs, training=training).numpy()
        return np.mean(np.all(np.isclose(out, oov, atol=1e-6), axis=1))

    assert share_dropped(False) == 0.0
    assert 0.35 < share_dropped(True) < 0.65


def test_candidate_tower_options(spec, make_batch):
    inputs = pick(make_batch(3), features.CANDIDATE_FEATURES)
    no_ids = candidate(spec, tiny_text_encoder(spec), use_item_ids=False)
    assert "item_lookup" not in [layer.name for layer in no_ids.layers]
    assert no_ids(inputs).shape == (3, DIM)
    with pytest.raises(ValueError, match="needs at least one input"):
        candidate(spec, None, use_item_ids=False, use_category_and_price=False)


def test_query_tower_unknown_user_empty_history_and_query(spec, make_batch):
    inputs = pick(make_batch(4), features.QUERY_FEATURES)
    history_shape = inputs[features.HISTORY_ITEM_IDS].shape
    inputs[features.USER_ID] = tf.constant(["stranger", "u1", "stranger", "u2"])
    inputs[features.HISTORY_ITEM_IDS] = tf.fill(history_shape, "")
    inputs[features.HISTORY_EVENT_TYPES] = tf.fill(history_shape, "")
    inputs[features.QUERY_TOKEN_IDS] = tf.zeros_like(inputs[features.QUERY_TOKEN_IDS])
    text = tiny_text_encoder(spec)
    with_text = query(spec, text)
    out = with_text(inputs).numpy()
    assert np.isfinite(out).all()
    assert_unit_norm(out)
    # An empty query contributes nothing: the tower without text, given the same weights for
    # everything else, produces the same embedding.
    without_text = query(spec, None)
    for layer in without_text.layers:
        if layer.weights and layer.name != "query_hidden_0":
            layer.set_weights(with_text.get_layer(layer.name).get_weights())
    kernel, bias = with_text.get_layer("query_hidden_0").get_weights()
    without_text.get_layer("query_hidden_0").set_weights([kernel[:-DIM], bias])
    np.testing.assert_allclose(without_text(inputs), out, atol=1e-5)


def test_text_encoder_is_shared(spec):
    text = tiny_text_encoder(spec)
    q, c = query(spec, text), candidate(spec, text)
    assert q.get_layer("text_encoder") is c.get_layer("text_encoder")
    shared = {id(w) for w in text.trainable_weights}
    assert shared <= {id(w) for w in q.trainable_weights}
    assert shared <= {id(w) for w in c.trainable_weights}


def test_catalog_without_categories(spec, make_batch):
    # UCI Online Retail has no categories: the tower leaves the feature out instead of failing.
    inputs = pick(make_batch(3), features.CANDIDATE_FEATURES)
    tower = candidate_tower.build_candidate_tower(
        spec.items, [], spec.text_length, DIM, 8, text_encoder=tiny_text_encoder(spec)
    )
    assert "category_lookup" not in [layer.name for layer in tower.layers]
    assert_unit_norm(tower(inputs).numpy())
