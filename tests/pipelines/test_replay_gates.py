"""A replayed month's release: gates, export as canary, promotion only when both gates pass."""

from __future__ import annotations

import json

from tests import harness
from tfrec.exporting import labels
from tfrec.pipelines import replay_gates


def test_a_passing_candidate_is_promoted_and_a_failing_one_keeps_the_champion(tiny_run, tmp_path):
    held = tmp_path / "held-out.csv"
    harness.later_window(tiny_run.artifact, rows=1500).to_csv(held, index=False)
    release = replay_gates.Release(tiny_run.artifact, tmp_path / "export")
    assert release.stable == 1 and release.champion == tiny_run.artifact.resolve()
    # The same towers under another folder: level with the champion, so the quality gate
    # passes; the data gate reads the held-out events as the update's window.
    good = tiny_run.copy_artifact(tmp_path / "good")
    passed = release.decide(good, tiny_run.artifact, (held, None), (held, None), tmp_path / "g1")
    assert passed["passed"] and passed["promoted"], passed
    assert (passed["version"], passed["champion_before"], release.stable) == (2, 1, 2)
    assert release.champion == good.resolve()
    # No window can have an event volume within [0, 0] of the training window's: the data
    # gate fails, the candidate is not exported and `stable` stays.
    never = ["gates.data.min_volume_ratio=0", "gates.data.max_volume_ratio=0"]
    bad = tiny_run.copy_artifact(tmp_path / "bad")
    failed = release.decide(bad, good, (held, None), (held, None), tmp_path / "g2", never)
    assert not failed["passed"] and not failed["promoted"]
    assert failed["quality"]["passed"] and not failed["data"]["passed"]
    assert any(r.startswith("volume_ratio") for r in failed["data"]["reasons"]), failed
    assert (failed["version"], release.stable) == (None, 2) and release.champion == good.resolve()
    state = labels.load(tmp_path / "export").labels(replay_gates.MODEL)
    assert state == {labels.STABLE: 2, labels.CANARY: 2}
    verdict = json.loads((tmp_path / "g2" / "data-gate.json").read_text(encoding="utf-8"))
    assert verdict["passed"] is False and verdict["reasons"] == failed["data"]["reasons"]
    assert release.summary()["versions"] == {
        "1": str(tiny_run.artifact.resolve()),
        "2": str(good.resolve()),
    }
