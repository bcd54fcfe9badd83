"""Tests of the multi-task RankingModel: weighted losses, training, and the config builder."""

import numpy as np
import pytest
import tensorflow as tf

import tfrec  # noqa: F401
from tests.ranking import conftest
from tfrec import config as config_lib
from tfrec import errors, features, precision
from tfrec.ranking import builder, model


def _bce(labels, logits):
    return np.mean(np.logaddexp(0.0, logits) - labels * logits)


def _model(loss_weights, heads=("cart", "purchase", "view")):
    net = conftest.make_network(heads=list(heads))
    tasks = {h: model.make_task(h) for h in heads}
    return model.RankingModel(net, tasks, loss_weights)


def _labels(n, heads, seed=0):
    rng = np.random.default_rng(seed)
    return {h: rng.integers(0, 2, (n, 1)).astype(np.float32) for h in heads}


def test_weighted_total_equals_hand_sum_and_zero_weight_is_left_out():
    ranker = _model({"cart": 0.5, "purchase": 0.0, "view": 2.0})
    batch, labels = conftest.make_batch(8), _labels(8, conftest.HEADS)
    logits = {h: v.numpy().astype(np.float64) for h, v in ranker.network(batch).items()}
    per_head = {h: _bce(labels[h], logits[h]) for h in conftest.HEADS}
    losses = ranker.head_losses((batch, labels))
    for head in conftest.HEADS:
        np.testing.assert_allclose(losses[head].numpy(), per_head[head], rtol=1e-5)
    total = ranker.compute_loss((batch, labels)).numpy()
    np.testing.assert_allclose(total, 0.5 * per_head["cart"] + 2.0 * per_head["view"], rtol=1e-5)
    assert total.dtype == np.float32


def test_rating_head_is_regression_with_mse():
    ranker = _model({}, heads=("rating",))
    batch = conftest.make_batch(4)
    labels = {"rating": np.array([[1.0], [2.0], [3.0], [5.0]], np.float32)}
    prediction = ranker.network(batch)["rating"].numpy()
    expected = np.mean((labels["rating"] - prediction) ** 2)
    np.testing.assert_allclose(ranker.compute_loss((batch, labels)).numpy(), expected, rtol=1e-5)


def test_a_few_training_steps_decrease_the_loss():
    tf.keras.utils.set_random_seed(0)
    ranker = _model({"purchase": 2.0})
    ranker.compile(optimizer=tf.keras.optimizers.Adam(0.05))
    batch = conftest.make_batch(64, seed=3)
    # A learnable rule: the candidate is engaged with iff it is item "a" or "b".
    target = np.isin(batch[features.ITEM_ID], ["a", "b"]).astype(np.float32)[:, None]
    labels = {h: target for h in conftest.HEADS}
    ds = tf.data.Dataset.from_tensors((batch, labels)).repeat(6)
    losses = ranker.fit(ds, epochs=5, verbose=0).history["loss"]
    assert all(np.isfinite(losses)) and losses[-1] < 0.5 * losses[0], losses
    result = ranker.evaluate(
        tf.data.Dataset.from_tensors((batch, labels)), return_dict=True, verbose=0
    )
    assert result["purchase_auc"] > 0.95 and "view_log_loss" in result


def test_mismatched_tasks_and_weights_are_rejected():
    net = conftest.make_network(heads=["view"])
    with pytest.raises(ValueError, match="one task per key of the network's output dict"):
        model.RankingModel(net, {"cart": model.binary_task("cart")})
    with pytest.raises(ValueError, match="`loss_weights` keys must be heads"):
        model.RankingModel(net, {"view": model.binary_task("view")}, {"cart": 1.0})
    with pytest.raises(ValueError, match=r"`loss_weights\['view'\]` must be a number >= 0"):
        model.RankingModel(net, {"view": model.binary_task("view")}, {"view": -1.0})


def _spec():
    return features.FeatureSpec(
        max_history=conftest.MAX_HISTORY,
        text_length=4,
        query_text_length=2,
        event_types=tuple(conftest.EVENT_TYPES),
        users=conftest.USERS,
        items=conftest.ITEMS,
        categories=conftest.CATEGORIES,
        wordpiece=["[PAD]"],
    )


def test_builder_maps_config_to_a_compiled_ranker():
    cfg = config_lib.RankingConfig(
        heads=("view", "purchase"),
        loss_weights={"view": 0.0},
        cross_layers=3,
        projection_dim=2,
        mlp=(8, 4),
        learning_rate=0.01,
    )
    ranker = builder.build_ranker(
        cfg, _spec(), conftest.ITEMS, conftest.VECTORS, heads=("view", "cart", "purchase")
    )
    assert ranker.heads == ("purchase", "view")
    assert ranker.loss_weights == {"purchase": 1.0, "view": 0.0}
    assert ranker.network.get_layer("cross_2").get_config()["projection_dim"] == 2
    assert ranker.network.get_layer("mlp_1").units == 4
    np.testing.assert_allclose(ranker.optimizer.learning_rate.numpy(), 0.01)


def test_builder_tasks_compute_in_float32_under_a_mixed_policy():
    with precision.float32_scope():
        tf.keras.mixed_precision.set_global_policy("mixed_float16")
        ranker = builder.build_ranker(
            config_lib.RankingConfig(mlp=(8,)),
            _spec(),
            conftest.ITEMS,
            conftest.VECTORS,
            heads=("view",),
        )
        batch, labels = conftest.make_batch(4), _labels(4, ["view"])
        assert ranker.network.get_layer("mlp_0").compute_dtype == "float16"
        assert ranker.compute_loss((batch, labels)).dtype == tf.float32
        assert ranker.tasks["view"].compute_dtype == "float32"


def test_builder_rejects_bad_heads_and_weights():
    spec = _spec()
    with pytest.raises(errors.ConfigError, match="`ranking.heads` must be event types"):
        builder.build_ranker(
            config_lib.RankingConfig(heads=("click",)),
            spec,
            conftest.ITEMS,
            conftest.VECTORS,
            heads=(),
        )
    with pytest.raises(errors.ConfigError, match="`ranking.loss_weights` keys must be heads"):
        builder.build_ranker(
            config_lib.RankingConfig(loss_weights={"cart": 1.0}),
            spec,
            conftest.ITEMS,
            conftest.VECTORS,
            heads=("view",),
        )
