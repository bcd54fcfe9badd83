"""The repeat prior: NumPy and TF bonuses agree with a hand-computed case; tuning on validation."""

import numpy as np
import tensorflow as tf

from tfrec.models import repeat_prior


def test_hand_computed_bonus_numpy_and_tf_agree():
    prior = repeat_prior.RepeatPrior(beta=0.5, decay=0.5)
    # Query 0 saw item 2 (most recent), item 0, then item 2 again; query 1 has only padding.
    history = np.array([[2, 0, 2], [-1, -1, -1]])
    expected = np.array([[0.5 * 0.5, 0.0, 0.5 * (1 + 0.25), 0.0], [0.0, 0.0, 0.0, 0.0]])
    np.testing.assert_allclose(prior.weights(history, 4), expected)
    np.testing.assert_allclose(prior.tf_bonus(tf.constant(history), 4).numpy(), expected)


def test_apply_adds_to_base_scores_and_zero_beta_is_identity():
    base = lambda s, e: np.ones((e - s, 3), np.float32)  # noqa: E731
    history = np.array([[1, -1], [0, 0]])
    out = repeat_prior.RepeatPrior(1.0, 1.0).apply(base, history)(0, 2)
    np.testing.assert_allclose(out, [[1, 2, 1], [3, 1, 1]])
    np.testing.assert_allclose(repeat_prior.RepeatPrior().apply(base, history)(0, 2), 1.0)


def test_tune_picks_the_best_and_prefers_no_prior_on_ties(tmp_path):
    best, tried = repeat_prior.tune(lambda p: -abs(p.beta - 0.2) - abs(p.decay - 0.9))
    assert (best.beta, best.decay) == (0.2, 0.9)
    assert len(tried) == 1 + (len(repeat_prior.BETAS) - 1) * len(repeat_prior.DECAYS)
    flat, _ = repeat_prior.tune(lambda p: 1.0)
    assert flat == repeat_prior.RepeatPrior()
    best.save(tmp_path / "prior.json")
    assert repeat_prior.RepeatPrior.load(tmp_path / "prior.json") == best
    assert repeat_prior.RepeatPrior.load(tmp_path / "missing.json") == repeat_prior.RepeatPrior()


def test_tf_bonus_inside_a_saved_function_with_a_batch_and_duplicates():
    prior = repeat_prior.RepeatPrior(beta=2.0, decay=0.5)
    history = np.array([[1, 1, -1], [0, 3, 1]])

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int64)])
    def bonus(h):
        return prior.tf_bonus(h, 4)

    np.testing.assert_allclose(bonus(tf.constant(history)).numpy(), prior.weights(history, 4))


def test_tune_can_choose_a_penalty_where_repeats_do_not_happen():
    # Validation prefers lowering seen items: the grid holds negative weights to find it.
    best, _ = repeat_prior.tune(lambda p: -p.beta)
    assert best.beta < 0
    history = np.array([[1, -1]])
    assert repeat_prior.RepeatPrior(best.beta, 1.0).weights(history, 3)[0, 1] < 0
