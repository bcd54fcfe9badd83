"""Distillation fine-tune: the KL is exact, and training moves a perturbed copy to its teacher."""

import numpy as np
import pytest

from tests import harness
from tfrec import config as config_lib
from tfrec.compression import distill, graph, variants
from tfrec.data import prepared as prepared_lib
from tfrec.models import builders


def test_in_batch_kl_matches_numpy():
    rng = np.random.default_rng(0)
    student, teacher = rng.normal(size=(2, 4, 5)).astype(np.float32)

    def softmax(x):
        e = np.exp(x - x.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    p, q = softmax(teacher), softmax(student)
    expected = np.mean(np.sum(p * (np.log(p) - np.log(q)), -1))
    assert float(distill.in_batch_kl(student, teacher)) == pytest.approx(expected, rel=1e-5)
    assert float(distill.in_batch_kl(teacher, teacher)) == pytest.approx(0.0, abs=1e-6)


def _perturbed(model, seed):
    copy = graph.rebuild(model)
    rng = np.random.default_rng(seed)
    copy.set_weights([w + rng.normal(0, 0.3, w.shape) * (w.ndim > 1) for w in copy.get_weights()])
    return copy


def test_distillation_pulls_the_student_to_the_teacher():
    config = config_lib.load(harness.TINY_CONFIG, [])
    prepared = prepared_lib.prepare(config)
    teacher = variants.Towers(*builders.build_towers(config.model, prepared.spec))
    query, candidate = _perturbed(teacher.query, 1), _perturbed(teacher.candidate, 2)
    model = distill.DistilledTowers(
        query, candidate, teacher.query, teacher.candidate, config.model.temperature
    )
    # The teacher is read, not trained or tracked.
    assert {id(v) for v in model.trainable_variables}.isdisjoint(
        id(v) for v in teacher.query.weights + teacher.candidate.weights
    )
    held_out = next(iter(variants.training_dataset(config, prepared, seed_offset=7)))
    before = float(model.compute_loss_on(held_out))
    teacher_weights = [w.numpy().copy() for w in teacher.query.weights]
    loss = variants.fine_tune(config, prepared, query, candidate, teacher, 30)
    after = float(model.compute_loss_on(held_out))
    assert np.isfinite(loss) and after < 0.7 * before, (before, after)
    for kept, weight in zip(teacher_weights, teacher.query.weights, strict=True):
        np.testing.assert_array_equal(kept, weight.numpy())
