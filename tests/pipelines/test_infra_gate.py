"""`tfrec gate infra`: the exported version served by `tfrec serve`, timed against a budget."""

from __future__ import annotations

import json
import shutil

import pytest

from tfrec import cli, errors
from tfrec.exporting import labels
from tfrec.pipelines import export as export_run
from tfrec.pipelines import infra_gate, promote


@pytest.fixture(scope="module")
def two_exports(tiny_run, tmp_path_factory):
    """`tfrec export --no-text` of the suite's tiny model, run twice: stable 1, canary 2."""
    export_dir = tmp_path_factory.mktemp("gate") / "export"
    trained = export_run.load(tiny_run.artifact)
    for _ in range(2):
        export_run.export(tiny_run.artifact, export_dir, trained=trained, with_text=False)
    return export_dir


@pytest.fixture
def labelled_export(two_exports, tmp_path):
    return shutil.copytree(two_exports, tmp_path / "export")


@pytest.fixture
def fake_export(tmp_path):
    """Versions 1 and 2 of `tfrec` with a saved_model.pb but no warmup requests, labelled."""
    export_dir = tmp_path / "fake"
    for version in (1, 2):
        (export_dir / "tfrec" / str(version)).mkdir(parents=True)
        (export_dir / "tfrec" / str(version) / "saved_model.pb").write_bytes(b"pb")
    state = labels.LabelState()
    labels.adopt(state, export_dir)
    labels.save(export_dir, state)
    return export_dir


def _gate(export_dir, *args) -> tuple[int, dict]:
    code = cli.main(["gate", "infra", "--export-dir", str(export_dir), *args])
    return code, json.loads((export_dir / "gates" / "infra-2.json").read_text())


@pytest.mark.slow  # ~30 s on 2 busy cores: `tfrec serve` starts and loads the model
def test_the_gate_passes_a_good_export_and_promote_accepts_its_verdict(labelled_export, capsys):
    code, verdict = _gate(labelled_export, "--requests", "20")
    out = capsys.readouterr().out
    assert code == 0, out
    assert verdict["passed"] and verdict["budget_ms"] == infra_gate.DEFAULT_BUDGET_MS
    [entry] = verdict["models"]
    assert (entry["model"], entry["version"], entry["passed"]) == ("tfrec", 2, True)  # the canary
    assert entry["requests"] == 20 and entry["errors"] == 0 and entry["warmup_records"] == 3
    assert 0 < entry["p50_ms"] <= entry["p99_ms"] <= verdict["budget_ms"]
    assert "tfrec version 2: p50" in out and "passed" in out
    gate_file = labelled_export / "gates" / "infra-2.json"
    assert promote.promote(labelled_export, require_gates=[gate_file])[0]["to"] == 2
    # The same measurements against a budget below them fail, and say why.
    judged = infra_gate.judge(entry, budget_ms=entry["p99_ms"] / 2)
    assert not judged["passed"]
    assert judged["reasons"] == [
        f"p99 latency {entry['p99_ms']:.2f} ms is over the budget of {entry['p99_ms'] / 2:g} ms"
    ]


@pytest.mark.slow
def test_the_gate_fails_on_a_too_small_budget(labelled_export, capsys):
    code, verdict = _gate(labelled_export, "--budget-ms", "0.001", "--requests", "10")
    assert code == 1
    [entry] = verdict["models"]
    assert not verdict["passed"] and not entry["passed"] and entry["errors"] == 0
    assert entry["reasons"] == [
        f"p99 latency {entry['p99_ms']:.2f} ms is over the budget of 0.001 ms"
    ]
    assert "FAILED: p99 latency" in capsys.readouterr().out
    with pytest.raises(errors.WorkdirError, match=r"did not pass: p99 latency .* 0.001 ms"):
        promote.promote(labelled_export, require_gates=[labelled_export / "gates/infra-2.json"])


def test_a_version_without_warmup_requests_fails_without_a_server(fake_export, tmp_path):
    verdict = infra_gate.run(fake_export, out=tmp_path / "v.json")
    assert json.loads((tmp_path / "v.json").read_text()) == verdict
    assert not verdict["passed"] and verdict["models"][0]["version"] == 2  # the canary
    assert verdict["models"][0]["reasons"] == [
        "no warmup requests in `assets.extra/tf_serving_warmup_requests`"
    ]


def test_bad_arguments_are_refused(fake_export):
    (fake_export / "tfrec" / "3").mkdir()
    with pytest.raises(
        errors.WorkdirError, match=r"model `tfrec` version 3 cannot be gated: .* is incomplete"
    ):
        infra_gate.run(fake_export, version=3)
    with pytest.raises(errors.WorkdirError, match=r"model `tfrec` version 5 cannot be gated"):
        infra_gate.run(fake_export, version=5)
    with pytest.raises(errors.ConfigError, match=r"`--budget-ms` must be > 0, received 0"):
        infra_gate.run(fake_export, budget_ms=0)
    with pytest.raises(errors.ConfigError, match=r"`--model` 'nope' has no version"):
        infra_gate.run(fake_export, models=["nope"])
    assert not (fake_export / "gates").exists()
