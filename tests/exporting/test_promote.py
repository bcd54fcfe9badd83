"""`tfrec promote` and `tfrec rollback` on an exported model: moves, refusals, gate verdicts.

Here rather than under tests/pipelines/ to reuse the exporting tests' exported tiny model.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import types

import pytest

from tfrec import cli, errors
from tfrec.exporting import labels, writer
from tfrec.pipelines import export as export_run
from tfrec.pipelines import promote
from tfrec.serving import model_config

NAMES = ("tfrec", "tfrec_text")


@pytest.fixture(scope="module")
def two_versions(run, tmp_path_factory):
    """The shared export (version 1 of both models) plus one `tfrec export --no-text`: version
    2 of `tfrec` only. Read-only: tests that move labels use a copy (`labelled_export`)."""
    export_dir = tmp_path_factory.mktemp("two-versions") / "export"
    shutil.copytree(run.export_dir, export_dir)
    export_run.export(run.workdir, export_dir, trained=run.trained, with_text=False)
    return export_dir


@pytest.fixture
def labelled_export(two_versions, tmp_path):
    return shutil.copytree(two_versions, tmp_path / "export")


def _served(export_dir) -> dict:
    """Model -> (versions served, labels) as a server reads the export's models.config."""
    text = (export_dir / "models.config").read_text()
    specs = model_config.parse_models_config(text, export_dir)
    for spec in specs:
        assert spec.base_path == export_dir.resolve() / spec.name
    return {s.name: (s.versions, s.labels) for s in specs}


def _fingerprint(export_dir) -> dict:
    """Path -> (content hash, mtime) of every file in the published version folders."""
    return {
        str(p.relative_to(export_dir)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(export_dir.glob("*/[0-9]*/**/*"))
        if p.is_file()
    }  # fmt: skip


TEXT_V1 = ((1,), {"stable": 1, "canary": 1})  # `tfrec_text`: exported once, never moved


def test_a_second_export_is_canary_only(two_versions):
    state = labels.load(two_versions)
    assert state.models == {n: {"stable": 1, "canary": 2 if n == "tfrec" else 1} for n in NAMES}
    history = [(c.model, c.label, c.from_version, c.to_version, c.action) for c in state.history]
    assert history[-1] == ("tfrec", "canary", 1, 2, "export")
    assert sorted(history[:-1]) == [
        (n, label, None, 1, "export") for n in NAMES for label in ("canary", "stable")
    ]
    assert _served(two_versions) == {
        "tfrec": ((1, 2), {"stable": 1, "canary": 2}),
        "tfrec_text": TEXT_V1,
    }


def test_promote_then_rollback_via_the_command_line(labelled_export, capsys):
    before = _fingerprint(labelled_export)
    assert cli.main(["promote", "--export-dir", str(labelled_export), "--why", "ctr +3%"]) == 0
    assert capsys.readouterr().out == (
        "tfrec: stable 1 -> 2\ntfrec_text: stable already names version 1, nothing moved\n"
    )
    # Version 1 stays loaded: it is where a rollback goes.
    assert _served(labelled_export) == {
        "tfrec": ((1, 2), {"stable": 2, "canary": 2}),
        "tfrec_text": TEXT_V1,
    }
    last = labels.load(labelled_export).history[-1]
    assert (last.label, last.from_version, last.to_version, last.action, last.why) == (
        "stable", 1, 2, "promote", "ctr +3%"
    )  # fmt: skip

    assert cli.main(["rollback", "--export-dir", str(labelled_export), "--model", "tfrec"]) == 0
    assert capsys.readouterr().out == "tfrec: stable 2 -> 1\n"
    assert _served(labelled_export)["tfrec"] == ((1, 2), {"stable": 1, "canary": 2})
    assert labels.load(labelled_export).history[-1].action == "rollback"
    assert _fingerprint(labelled_export) == before  # no published version was touched


@pytest.mark.slow
def test_an_export_after_a_promotion_leaves_stable_where_it_is(run, labelled_export):
    promote.promote(labelled_export)
    result = export_run.export(run.workdir, labelled_export, trained=run.trained, with_text=False)
    assert result["version"] == 3
    assert labels.load(labelled_export).models["tfrec"] == {"stable": 2, "canary": 3}
    assert _served(labelled_export)["tfrec"] == ((1, 2, 3), {"stable": 2, "canary": 3})
    moved = promote.rollback(labelled_export, models=["tfrec"], to=1, why="incident 12")
    assert moved == [{"model": "tfrec", "label": "stable", "from": 2, "to": 1, "moved": True}]


def test_refusals_name_model_and_version_and_change_nothing(labelled_export, capsys):
    shutil.copytree(labelled_export / "tfrec" / "2", labelled_export / "tfrec" / "3")
    (labelled_export / "tfrec" / "3" / "saved_model.pb").unlink()  # incomplete
    files = {f: (labelled_export / f).read_bytes() for f in ("labels.json", "models.config")}
    cases = [
        (["promote", "--version", "3"], r"model `tfrec` cannot name version 3: .* is incomplete"),
        (["promote", "--version", "9"], r"model `tfrec` cannot name version 9: .* does not exist"),
        (["rollback", "--to", "9"], r"model `tfrec` cannot name version 9"),
        (["rollback"], r"model `tfrec`: `stable` \(version 1\) has no earlier version"),
        (["rollback", "--model", "tfrec_text"], r"model `tfrec_text`: `stable` \(version 1\)"),
        (["promote", "--model", "nope"], r"`--model` 'nope' is not a labelled model"),
        (["promote", "--version", "0"], r"`--version` must be a positive int, received 0"),
    ]
    for args, pattern in cases:
        assert cli.main([args[0], "--export-dir", str(labelled_export), *args[1:]]) == 2, args
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1, err
        assert re.search(pattern, err), (args, err)
    assert {f: (labelled_export / f).read_bytes() for f in files} == files


def test_one_writer_at_a_time(labelled_export):
    with writer.export_lock(labelled_export):
        with pytest.raises(errors.ConfigError, match="being written by another export, promote"):
            promote.promote(labelled_export)


def _verdict(path, export_dir, version, passed, reasons=()):
    path.write_text(
        json.dumps(
            {
                "gate": "infra",
                "passed": passed,
                "export_dir": str(export_dir),
                "models": [
                    {"model": "tfrec", "version": version, "passed": passed, "reasons": reasons}
                ],
            }
        )
    )
    return path


def test_promote_requires_a_passing_verdict_for_the_version(labelled_export, tmp_path):
    failed = _verdict(tmp_path / "f.json", labelled_export, 2, False, ["p99 latency 9 ms is over"])
    old = _verdict(tmp_path / "o.json", labelled_export, 1, True)
    other = _verdict(tmp_path / "x.json", tmp_path / "elsewhere", 2, True)
    good = _verdict(tmp_path / "g.json", labelled_export, 2, True)
    with pytest.raises(
        errors.WorkdirError, match=r"version 2: gate verdict .*f.json.* p99 latency"
    ):
        promote.promote(labelled_export, require_gates=[failed])
    with pytest.raises(errors.WorkdirError, match=r"version 2: none of the gate verdicts"):
        promote.promote(labelled_export, require_gates=[old])
    with pytest.raises(errors.WorkdirError, match=r"it gated `.*elsewhere`, not"):
        promote.promote(labelled_export, require_gates=[other])
    (tmp_path / "bad.json").write_text("[]")
    with pytest.raises(errors.WorkdirError, match=r"bad.json'.*expected a gate verdict"):
        promote.promote(labelled_export, require_gates=[tmp_path / "bad.json"])
    assert labels.load(labelled_export).models["tfrec"]["stable"] == 1
    # Every promoted model needs a verdict: `tfrec_text` has none.
    with pytest.raises(errors.WorkdirError, match=r"model `tfrec_text` version 1: none of"):
        promote.promote(labelled_export, require_gates=[good])
    moved = promote.promote(labelled_export, ["tfrec"], require_gates=[failed, good])
    assert moved == [{"model": "tfrec", "label": "stable", "from": 1, "to": 2, "moved": True}]


def test_a_models_config_behind_labels_json_is_rendered_again(labelled_export):
    # As a process killed between writing labels.json and models.config leaves it.
    (labelled_export / "models.config").write_text("model_config_list {}\n")
    assert not any(m["moved"] for m in promote.promote(labelled_export, version=1))
    assert _served(labelled_export) == {
        "tfrec": ((1, 2), {"stable": 1, "canary": 2}),
        "tfrec_text": TEXT_V1,
    }


def test_an_export_is_refused_while_stable_names_a_removed_version(run, labelled_export):
    shutil.rmtree(labelled_export / "tfrec" / "1")  # removed by hand
    with pytest.raises(
        errors.WorkdirError, match=r"`stable` of model `tfrec` cannot name version 1"
    ):
        # Refused before the model is used: a stand-in for the loaded model is enough.
        export_run.export(
            run.workdir, labelled_export, trained=types.SimpleNamespace(), with_text=False
        )
    assert writer.versions(labelled_export / "tfrec") == [2]
    promote.promote(labelled_export, ["tfrec"])  # the way out: stable to a version that exists
    assert labels.load(labelled_export).models["tfrec"] == {"stable": 2, "canary": 2}


def test_promote_and_rollback_start_without_tensorflow(tmp_path):
    # What an operator runs during an incident must not wait seconds for TensorFlow to load.
    for version in (1, 2):
        (tmp_path / "m" / str(version)).mkdir(parents=True)
        (tmp_path / "m" / str(version) / "saved_model.pb").write_bytes(b"pb")
    code = (
        "import sys; from tfrec import cli; "
        f"codes = [cli.main([c, '--export-dir', {str(tmp_path)!r}]) for c in ('promote', 'rollback')]; "
        "print(codes, 'tensorflow' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.splitlines() == ["m: stable 1 -> 2", "m: stable 2 -> 1", "[0, 0] False"], (
        done.stdout + done.stderr
    )
