"""Seed intervals, paired differences with Holm, the winner and the verdict."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from tfrec.experiments import results as results_lib


def test_seed_interval_is_the_t_interval():
    values = np.array([0.2, 0.3, 0.4])
    got = results_lib.seed_interval(values)
    half = stats.t.ppf(0.975, 2) * values.std(ddof=1) / np.sqrt(3)
    assert got["mean"] == pytest.approx(0.3)
    assert got["low"] == pytest.approx(0.3 - half)
    assert got["high"] == pytest.approx(0.3 + half)
    assert got["seeds"] == 3


def test_summary_marks_a_significant_winner(fake_experiment):
    gathered = results_lib.gather(fake_experiment)
    assert gathered.status("base") == "done"
    assert gathered.status("broken") == "failed"
    assert "towers diverged" in gathered.error("broken")
    summary = results_lib.summarize(gathered)
    d = summary["differences"]["better"]["recall@10"]
    assert d["difference"] > 0 and d["significant"]
    assert 0 <= d["p_value"] <= d["p_holm"] <= 1
    assert summary["winner"] == "better"
    assert summary["verdict"].startswith("Ship `better`")
    assert "broken" not in summary["metrics"]


def test_no_winner_without_significance(fake_experiment):
    gathered = results_lib.gather(fake_experiment)
    # `better` scored exactly as the reference: a zero difference is never significant.
    for seed in fake_experiment.seeds:
        gathered.runs[("better", seed)].per_query = gathered.runs[("base", seed)].per_query
    summary = results_lib.summarize(gathered)
    assert not summary["differences"]["better"]["recall@10"]["significant"]
    assert summary["winner"] is None
    assert "keep `base`" in summary["verdict"]


def test_recall_curve_covers_k_1_to_100(fake_experiment):
    curve = results_lib.recall_curve(results_lib.gather(fake_experiment), "base")
    assert curve.shape == (100,)
    assert np.all(np.isfinite(curve))
    assert curve[-1] >= curve[0]
