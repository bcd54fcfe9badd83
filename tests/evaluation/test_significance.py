"""Paired bootstrap intervals and Holm's correction against hand-computable cases."""

import numpy as np
import pytest

from tfrec.evaluation import significance


def test_holm_matches_the_step_down_by_hand():
    # Sorted p: 0.01, 0.03, 0.04 -> x3, x2, x1 = 0.03, 0.06, 0.04 -> running max 0.03, 0.06, 0.06.
    adjusted = significance.holm({"a": 0.01, "b": 0.04, "c": 0.03})
    assert adjusted == pytest.approx({"a": 0.03, "b": 0.06, "c": 0.06})


def test_a_clear_paired_gain_is_significant_and_ignores_uncounted_queries():
    rng = np.random.default_rng(0)
    base = rng.uniform(0, 1, 500)
    better = base + 0.05 + rng.normal(0, 0.01, 500)
    better[3] = np.nan  # a query one model does not count is left out of the pair
    r = significance.paired_difference(better, base)
    assert r["queries"] == 499
    assert r["low"] < r["difference"] < r["high"]
    assert 0.04 < r["low"] and r["high"] < 0.06 and r["p_value"] < 1e-6 and r["better"] > 0.99
    # Paired: the shared per-query variation (uniform over [0, 1]) does not widen the interval.
    assert r["high"] - r["low"] < 0.01


def test_no_difference_is_not_significant():
    values = np.linspace(0, 1, 50)
    r = significance.compare({"m": values}, {"m": values.copy()}, ("m",))["m"]
    assert (r["difference"], r["low"], r["high"], r["p_value"]) == (0.0, 0.0, 0.0, 1.0)
    assert not r["significant"]
    noisy = np.random.default_rng(1).normal(0, 1, 400)
    r = significance.compare({"m": noisy}, {"m": noisy[::-1].copy()}, ("m",))["m"]
    assert r["low"] < 0 < r["high"] and not r["significant"]


def test_compare_corrects_across_metrics_and_checks_inputs():
    rng = np.random.default_rng(2)
    base = rng.uniform(0, 1, 300)
    out = significance.compare(
        {"x": base + 0.1, "y": base + rng.normal(0, 0.3, 300)}, {"x": base, "y": base}, ("x", "y")
    )
    assert out["x"]["significant"] and out["x"]["p_holm"] >= out["x"]["p_value"]
    with pytest.raises(ValueError, match="same queries"):
        significance.paired_difference(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="at least 2 queries"):
        significance.paired_difference(np.array([1.0, np.nan]), np.array([0.0, 0.0]))
