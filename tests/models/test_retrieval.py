"""Tests for the retrieval model: golden losses (log-Q, accidental hits) and mixed-precision fits."""

import numpy as np
import pytest
import tensorflow as tf

from tfrec import config, features, precision
from tfrec.models import builders, retrieval


def softmax_loss(logits):
    """Sum over rows of the softmax cross-entropy with the diagonal as positives (NumPy)."""
    logits = np.asarray(logits, dtype=np.float64)
    log_z = np.log(np.exp(logits).sum(axis=1))
    return float(np.sum(log_z - np.diag(logits)))


def id_model(spec, counts, **kwargs):
    """Baseline towers with hand-set 2-d embeddings: u0 -> (1, 0), u1 -> (0, 1), same for i0, i1."""
    model = builders.build_id_two_tower(spec, 2, counts, **kwargs)
    users = np.zeros([len(spec.users) + 1, 2], np.float32)  # index 0 is the OOV bucket
    items = np.zeros([len(spec.items) + 1, 2], np.float32)
    users[1:3] = items[1:3] = np.eye(2)
    model.query_model.get_layer("user_embedding").set_weights([users])
    model.candidate_model.get_layer("item_embedding").set_weights([items])
    return model


def two_row_batch(make_batch, users, items):
    batch = make_batch(2)
    batch[features.USER_ID] = tf.constant(users)
    batch[features.ITEM_ID] = tf.constant(items)
    return batch


def test_sampling_probabilities():
    # counts (3, 1, 0 -> floored to 1): probabilities (.6, .2, .2); OOV gets the minimum.
    np.testing.assert_allclose(retrieval.sampling_probabilities([3, 1, 0]), [0.2, 0.6, 0.2, 0.2])


def test_logq_correction_golden(spec, make_batch):
    counts = [3, 1] + [0] * (len(spec.items) - 2)  # p(i0) = 3/(3+1+28), p(i1) = 1/32
    batch = two_row_batch(make_batch, ["u0", "u1"], ["i0", "i1"])
    plain = id_model(spec, counts, logq_correction=False).compute_loss(batch)
    corrected = id_model(spec, counts, logq_correction=True).compute_loss(batch)
    # scores = I (2x2); log-Q subtracts log p(item) from each column:
    # [[1 - log(3/32), -log(1/32)], [-log(3/32), 1 - log(1/32)]]
    p = np.array([3 / 32, 1 / 32])
    np.testing.assert_allclose(plain, softmax_loss(np.eye(2)), rtol=1e-5)
    np.testing.assert_allclose(corrected, softmax_loss(np.eye(2) - np.log(p)), rtol=1e-5)
    # The popular item's column is penalised less, so the rare item's row gets easier and
    # the popular item's row harder; here the total grows.
    assert corrected > plain


def test_unknown_item_gets_minimum_probability(spec):
    model = id_model(spec, list(range(1, len(spec.items) + 1)))
    probs = model.candidate_sampling_probability(tf.constant(["i0", "nope"])).numpy()
    assert probs[1] == pytest.approx(probs[0]) and probs[1] == pytest.approx(probs.min())


def test_accidental_hits_removed(spec, make_batch):
    # Both rows have item i0: without removal each row's other column is a false negative.
    batch = two_row_batch(make_batch, ["u0", "u1"], ["i0", "i0"])
    counts = [1] * len(spec.items)
    kept = id_model(spec, counts, logq_correction=False, remove_accidental_hits=False)
    removed = id_model(spec, counts, logq_correction=False, remove_accidental_hits=True)
    # scores: u0.i0 = 1, u1.i0 = 0 -> [[1, 1], [0, 0]]; removal leaves one logit per row.
    np.testing.assert_allclose(kept.compute_loss(batch), softmax_loss([[1, 1], [0, 0]]), rtol=1e-5)
    np.testing.assert_allclose(removed.compute_loss(batch), 0.0, atol=1e-5)


def test_validation(spec):
    query, candidate = builders.build_id_two_tower(spec, 4, [1] * len(spec.items)).query_model, None
    with pytest.raises(ValueError, match="`item_counts` must align"):
        retrieval.RetrievalModel(query, candidate, spec.items, [1, 2])
    with pytest.raises(ValueError, match="`temperature` must be > 0"):
        retrieval.RetrievalModel(query, candidate, logq_correction=False, temperature=0.0)


TINY = config.ModelConfig(
    embedding_dim=16,
    id_embedding_dim=8,
    history_encoder="attention",
    text_encoder=config.TextEncoderConfig(num_layers=1, hidden_dim=16, intermediate_dim=32),
    temperature=0.1,
    num_hard_negatives=6,
)


@pytest.mark.parametrize("policy", ["float32", "mixed_float16", "mixed_bfloat16"])
def test_fit_decreases_loss(policy, spec, make_batch):
    previous = tf.keras.mixed_precision.global_policy()
    precision.set_policy(policy)
    try:
        tf.keras.utils.set_random_seed(0)
        counts = np.arange(1, len(spec.items) + 1)
        model = builders.build_retrieval_model(TINY, spec, counts)
        optimizer = precision.wrap_optimizer(tf.keras.optimizers.Adam(0.01), policy)
        model.compile(optimizer=optimizer)
        if policy == "mixed_float16":
            assert isinstance(model.optimizer, tf.keras.mixed_precision.LossScaleOptimizer)
        batch = make_batch(16, seed=1)
        # 16 steps: under mixed_float16 the dynamic loss scale starts at 2**15 and the first
        # ~6 steps overflow and are skipped while it shrinks (measured: 2**15 -> 2**9).
        data = tf.data.Dataset.from_tensors(batch).repeat(16)
        losses = model.fit(data, epochs=1, verbose=0, callbacks=[_LossLog()]).model.loss_log
    finally:
        tf.keras.mixed_precision.set_global_policy(previous)
    assert np.isfinite(losses).all()
    if policy == "mixed_float16":
        # The loss really was scaled: the first scaled gradients overflowed and the dynamic
        # scale shrank (tfrs.Model's own train_step never scales, leaving it at 2**15).
        assert float(model.optimizer.loss_scale) < 2.0**15
    assert np.mean(losses[-3:]) < 0.8 * losses[0], losses
    assert model.compute_loss(batch).dtype == tf.float32


class _LossLog(tf.keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.model.loss_log = []

    def on_train_batch_end(self, batch, logs=None):
        self.model.loss_log.append(float(logs["loss"]))
