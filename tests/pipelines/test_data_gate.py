"""`tfrec gate data`: a window like the training one passes; shifted or unreadable ones fail."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tests import harness
from tfrec import cli
from tfrec import config as config_lib
from tfrec.data import drift
from tfrec.pipelines import data_gate


def test_a_window_like_training_passes(tiny_run, tmp_path):
    events = tmp_path / "events.csv"
    harness.later_window(tiny_run.artifact).to_csv(events, index=False)
    verdict = data_gate.run(tiny_run.artifact, events, out=tmp_path / "verdict.json")
    assert verdict["passed"], verdict["reasons"]
    names = [c["name"] for c in verdict["checks"]]
    assert names == [
        "dropped_share",
        "volume_ratio",
        "event_type_psi",
        "new_item_share",
        "price_ks",
    ]
    written = json.loads((tmp_path / "verdict.json").read_text(encoding="utf-8"))
    assert written["passed"] and written["thresholds"]["max_event_type_psi"] == 0.25


def test_a_shifted_window_fails_naming_each_check(tiny_run, tmp_path):
    later = harness.later_window(tiny_run.artifact)
    later["event_type"] = "purchase"  # the mix moves
    rng = np.random.default_rng(0)
    unknown = rng.random(len(later)) < 0.7
    later.loc[unknown, "item_id"] = [f"brand-new-{i}" for i in range(int(unknown.sum()))]
    later["price"] = later["price"] * 20  # and prices
    events = tmp_path / "events.csv"
    later.to_csv(events, index=False)
    verdict = data_gate.run(tiny_run.artifact, events)
    assert not verdict["passed"]
    failed = {c["name"] for c in verdict["checks"] if not c["passed"]}
    assert {"event_type_psi", "new_item_share", "price_ks"} <= failed
    assert any(r.startswith("new_item_share") for r in verdict["reasons"])
    # Thresholds come from the config and may be loosened for one check.
    loose = data_gate.run(
        tiny_run.artifact,
        events,
        overrides=[
            "gates.data.max_event_type_psi=100",
            "gates.data.max_new_item_share=1",
            "gates.data.max_price_ks=1",
        ],
    )
    assert loose["passed"], loose["reasons"]


def test_an_unreadable_window_fails_with_file_row_and_field(tiny_run, tmp_path, capsys):
    events = tmp_path / "events.csv"
    frame = harness.later_window(tiny_run.artifact).rename(columns={"event_type": "kind"})
    frame.to_csv(events, index=False)
    code = cli.main(["gate", "data", "--artifact", str(tiny_run.artifact), "--events", str(events)])
    assert code == 1
    out = capsys.readouterr().out
    assert "FAILED: unreadable window" in out and "events.csv" in out and "kind" in out
    verdict = json.loads((tmp_path / "events.csv.data-gate.json").read_text(encoding="utf-8"))
    assert not verdict["passed"] and "row 1" in verdict["reasons"][0]


def test_population_stability_index():
    same = pd.Series({"view": 70, "cart": 20, "purchase": 10})
    assert drift.population_stability_index(same, same * 3) == pytest.approx(0.0)
    moved = pd.Series({"view": 10, "cart": 20, "purchase": 70})
    # (0.1 - 0.7) ln(1/7) + 0 + (0.7 - 0.1) ln 7 = 1.2 ln 7
    assert drift.population_stability_index(same, moved) == pytest.approx(1.2 * np.log(7))
    with pytest.raises(Exception, match="`gates.data.min_volume_ratio`"):
        config_lib.DataGateConfig(min_volume_ratio=2.0, max_volume_ratio=1.0)
