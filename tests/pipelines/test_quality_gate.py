"""`tfrec gate quality`: paired comparison of a candidate with the champion on held-out events."""

from __future__ import annotations

import json
import shutil

import pytest

from tests import harness
from tfrec import artifact, cli, errors
from tfrec.pipelines import quality_gate


@pytest.fixture(scope="module")
def window(tiny_run, tmp_path_factory):
    path = tmp_path_factory.mktemp("held-out") / "events.csv"
    harness.later_window(tiny_run.artifact, rows=1500).to_csv(path, index=False)
    return path


def test_a_model_against_itself_passes_with_zero_differences(tiny_run, window, tmp_path):
    verdict = quality_gate.run(
        tiny_run.artifact, tiny_run.artifact, window, out=tmp_path / "quality.json"
    )
    assert verdict["passed"], verdict["reasons"]
    for metric in ("recall@50", "ndcg@10"):
        r = verdict["overall"][metric]
        assert r["difference"] == 0.0 and r["queries"] > 0
    assert quality_gate.NEW_ITEMS in verdict["slices"]
    assert any(name.startswith("category:") for name in verdict["slices"])
    written = json.loads((tmp_path / "quality.json").read_text(encoding="utf-8"))
    assert written["passed"] and written["values"]["candidate"] == written["values"]["champion"]


def test_a_worse_candidate_fails(tiny_run, window, tmp_path, capsys):
    # The same towers with a repeat prior that buries every recently seen item: on a shop
    # where people come back to items, that loses on both metrics.
    worse = tmp_path / "worse"
    shutil.copytree(artifact.resolve(tiny_run.artifact), worse)
    (worse / "repeat_prior.json").write_text(json.dumps({"beta": -50.0, "decay": 1.0}))
    code = cli.main(
        [
            "gate", "quality", "--candidate", str(worse), "--champion",
            str(tiny_run.artifact), "--events", str(window), "--out", str(tmp_path / "q.json"),
        ]
    )  # fmt: skip
    assert code == 1
    verdict = json.loads((tmp_path / "q.json").read_text(encoding="utf-8"))
    assert not verdict["passed"]
    assert verdict["overall"]["recall@50"]["high"] < 0  # significantly worse
    assert any(r.startswith("recall@50") for r in verdict["reasons"])
    assert "FAILED" in capsys.readouterr().out


def test_a_window_that_is_not_held_out_is_refused(tiny_run, tmp_path):
    inter = artifact.Artifact(tiny_run.artifact).dataset().interactions
    events = tmp_path / "events.csv"
    inter.tail(100).to_csv(events, index=False)
    with pytest.raises(errors.DataError, match="it is not held out"):
        quality_gate.run(tiny_run.artifact, tiny_run.artifact, events)
