"""Tests of the Functional DCN-v2 ranking network: shapes, OOV safety, frozen table, round trips."""

import numpy as np
import pytest
import tensorflow as tf

import tfrec  # noqa: F401
from tests.ranking import conftest
from tfrec import features
from tfrec.ranking import network


def test_output_shape_and_dtype_per_head(tiny_network):
    out = tiny_network(conftest.make_batch(5))
    assert sorted(out) == sorted(conftest.HEADS)
    for head in conftest.HEADS:
        assert out[head].shape == (5, 1) and out[head].dtype == tf.float32
        assert np.all(np.isfinite(out[head].numpy()))
    symbolic = tiny_network.output
    assert all(symbolic[h].shape.as_list() == [None, 1] for h in conftest.HEADS)


def test_item_table_is_frozen_with_zero_oov_row(tiny_network):
    layer = tiny_network.get_layer(network.ITEM_VECTORS_LAYER)
    assert not layer.trainable and layer.trainable_weights == []
    table = layer.get_weights()[0]
    np.testing.assert_array_equal(table[0], [0, 0])  # unknown ids and "" padding
    np.testing.assert_array_equal(table[1:], conftest.VECTORS)


def test_history_similarity_features_inside_network(tiny_network):
    # Candidate "a" = [1, 0]; history b (view, sim 1), d (cart, sim -1), "" padding.
    probe = tf.keras.Model(tiny_network.input, tiny_network.get_layer("history_similarity").output)
    batch = conftest.make_batch(1)
    batch[features.ITEM_ID] = np.array(["a"], object)
    batch[features.HISTORY_ITEM_IDS] = np.array([["b", "d", ""]], object)
    batch[features.HISTORY_EVENT_TYPES] = np.array([["view", "cart", ""]], object)
    np.testing.assert_allclose(probe(batch).numpy(), [[1, 0, 1, 1, -1, -1, 0, 0]])


def test_get_config_round_trip_gives_equal_outputs(tiny_network):
    batch = conftest.make_batch(6, seed=1)
    clone = tf.keras.Model.from_config(tiny_network.get_config(), network.CUSTOM_OBJECTS)
    clone.set_weights(tiny_network.get_weights())
    expected, actual = tiny_network(batch), clone(batch)
    for head in conftest.HEADS:
        np.testing.assert_allclose(actual[head], expected[head], rtol=1e-6)


def test_saved_model_round_trip_gives_equal_outputs(tiny_network, tmp_path):
    batch = conftest.make_batch(6, seed=2)
    tiny_network.save(str(tmp_path / "net"))
    loaded = tf.keras.models.load_model(str(tmp_path / "net"), network.CUSTOM_OBJECTS)
    raw = tf.saved_model.load(str(tmp_path / "net"))  # no Python classes needed
    expected = tiny_network(batch)
    tensors = {k: tf.constant(v) for k, v in batch.items()}
    for out in (loaded(batch), raw(tensors, training=False)):
        for head in conftest.HEADS:
            # A traced graph may fuse ops in another order than eager mode: float32 rounding.
            np.testing.assert_allclose(out[head], expected[head], rtol=1e-5, atol=1e-7)


def test_low_rank_cross_and_no_categories():
    net = conftest.make_network(projection_dim=2, cross_layers=2, categories=[])
    assert net.get_layer("cross_1").get_config()["projection_dim"] == 2
    assert net(conftest.make_batch(2))["view"].shape == (2, 1)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"item_vectors": np.zeros([3, 2])}, r"`item_vectors` must be \[len\(item_ids\), dim\]"),
        ({"items": ["a", "a"]}, "`items` must be unique, received 'a' twice"),
        ({"heads": []}, "`heads` must hold at least one id"),
        ({"max_history": 0}, "`max_history` must be a positive int, received 0"),
    ],
)
def test_validation_messages(kwargs, message):
    with pytest.raises(ValueError, match=message):
        conftest.make_network(**kwargs)
