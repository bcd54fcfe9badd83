"""One export of all models of an artifact as one atomic step, also when it is killed midway."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tfrec import errors
from tfrec.exporting import server_configs, writer
from tfrec.pipelines import export as export_run
from tfrec.serving import model_config
from tfrec.serving import server as server_lib
from tfrec.serving.client import Client

NAMES = ("tfrec", "tfrec_text")
REPO = Path(__file__).resolve().parents[2]


def _fake_saved_model(tmp: Path) -> None:
    (tmp / "saved_model.pb").write_bytes(b"pb")
    (tmp / "variables").mkdir()


def _complete_versions(model_dir: Path) -> list[int]:
    """Integer folders; each must be a complete SavedModel (saved_model.pb and variables/)."""
    found = []
    for child in model_dir.iterdir():
        if child.name.isdigit():
            assert (child / "saved_model.pb").is_file(), f"{child} has no saved_model.pb"
            assert (child / "variables").is_dir(), f"{child} has no variables/"
            found.append(int(child.name))
    return sorted(found)


def _assert_consistent(export_dir: Path, names=NAMES) -> list[int]:
    """The state a server sees: equal complete versions for all models, labels on disk.

    A journal means the kill hit the renames: every version was complete before the first
    rename, and the next export finishes them; the check applies to the state it leaves.
    """
    if (export_dir / writer.JOURNAL).is_file():
        writer.recover(export_dir)
    by_model = {
        name: _complete_versions(export_dir / name) if (export_dir / name).is_dir() else []
        for name in names
    }
    first = by_model[names[0]]
    assert all(v == first for v in by_model.values()), by_model
    if not first:  # killed before any version was in place: nothing to serve yet
        return first
    specs = model_config.parse_models_config((export_dir / "models.config").read_text(), export_dir)
    assert sorted(s.name for s in specs) == sorted(names)
    for spec in specs:
        assert spec.base_path == export_dir.resolve() / spec.name
        assert set(spec.labels) == {"stable", "canary"}
        for label, version in spec.labels.items():
            assert version in by_model[spec.name], (spec.name, label, version, by_model)
    return first


def _leftovers(export_dir: Path) -> list[Path]:
    return sorted(export_dir.glob(f"*/{writer.TMP_PREFIX}*")) + sorted(
        p for p in export_dir.iterdir() if p.name.startswith(("..", ".models.config."))
    )


def test_versions_are_staged_then_renamed_together(tmp_path):
    seen = []

    def fill(tmp):
        # While any model is still being written, no model has the new version in place.
        seen.append([writer.versions(tmp_path / n) for n in NAMES])
        _fake_saved_model(tmp)

    written = writer.write_versions(tmp_path, 1, {n: fill for n in NAMES})
    assert seen == [[[], []], [[], []]]
    assert written == {n: tmp_path / n / "1" for n in NAMES}
    assert [writer.versions(tmp_path / n) for n in NAMES] == [[1], [1]]
    assert not (tmp_path / writer.JOURNAL).exists() and _leftovers(tmp_path) == []


def test_a_failing_model_leaves_no_version_of_any_model(tmp_path):
    def broken(tmp):
        (tmp / "saved_model.pb").write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        writer.write_versions(tmp_path, 1, {"tfrec": _fake_saved_model, "tfrec_text": broken})
    assert os.listdir(tmp_path / "tfrec") == [] and os.listdir(tmp_path / "tfrec_text") == []


def test_recover_finishes_a_commit_and_removes_only_own_temporaries(tmp_path):
    for name in NAMES:
        (tmp_path / name / "1").mkdir(parents=True)
        _fake_saved_model(tmp_path / name / "1")
    # A kill after the journal and the first rename: tfrec/2 in place, tfrec_text/2 staged.
    (tmp_path / "tfrec" / "2").mkdir()
    _fake_saved_model(tmp_path / "tfrec" / "2")
    staged = tmp_path / "tfrec_text" / f"{writer.TMP_PREFIX}2-abc"
    staged.mkdir()
    _fake_saved_model(staged)
    renames = [
        ["tfrec/.tfrec-tmp-2-gone", "tfrec/2"],
        [f"tfrec_text/{staged.name}", "tfrec_text/2"],
    ]
    (tmp_path / writer.JOURNAL).write_text(json.dumps({"version": 2, "renames": renames}))
    # An earlier kill during staging, a config file being replaced, and foreign files.
    (tmp_path / "tfrec" / f"{writer.TMP_PREFIX}3-xyz" / "variables").mkdir(parents=True)
    (tmp_path / ".models.config.q1w2").write_text("half")
    (tmp_path / "tfrec" / ".tmp-3-mine").mkdir()
    (tmp_path / "notes.txt").write_text("")

    result = writer.recover(tmp_path)

    assert result["committed"] == ["tfrec_text/2"]
    assert len(result["removed"]) == 2
    assert [writer.versions(tmp_path / n) for n in NAMES] == [[1, 2], [1, 2]]
    assert _leftovers(tmp_path) == [] and not (tmp_path / writer.JOURNAL).exists()
    assert (tmp_path / "tfrec" / ".tmp-3-mine").is_dir() and (tmp_path / "notes.txt").is_file()


def test_one_export_at_a_time(tmp_path):
    with writer.export_lock(tmp_path):
        with pytest.raises(errors.ConfigError, match="being written by another export"):
            with writer.export_lock(tmp_path):
                pass
    with writer.export_lock(tmp_path):  # released
        pass


def test_models_config_paths_and_labels(tmp_path):
    for name, versions in (("tfrec", (1, 2, 3)), ("tfrec_text", (1, 2, 3)), ("empty", ())):
        (tmp_path / name).mkdir()
        for v in versions:
            (tmp_path / name / str(v)).mkdir()
            _fake_saved_model(tmp_path / name / str(v))
    (tmp_path / "tfrec" / "4").mkdir()  # not complete: no label may name it
    text = server_configs.models_config(tmp_path)
    specs = model_config.parse_models_config(text, "/nowhere")
    assert {s.name: (str(s.base_path), s.labels) for s in specs} == {
        n: (str(tmp_path.resolve() / n), {"stable": 2, "canary": 3}) for n in NAMES
    }
    docker = server_configs.models_config(tmp_path, "/models/")
    assert 'base_path: "/models/tfrec"' in docker and 'base_path: "/models/tfrec_text"' in docker
    # Not there locally: `tfrec serve` finds each model beside the config file.
    specs = model_config.parse_models_config(docker, tmp_path)
    assert {s.name: s.base_path for s in specs} == {n: tmp_path / n for n in NAMES}
    with pytest.raises(errors.ConfigError, match="`--base-prefix` must be an absolute path"):
        server_configs.models_config(tmp_path, "models")


def _run_export(artifact: Path, export_dir: Path) -> subprocess.Popen:
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2")
    command = [sys.executable, "-m", "tfrec.cli", "export", "--workdir", str(artifact)]
    return subprocess.Popen(
        command + ["--export-dir", str(export_dir)],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,  # a full pipe would stall the export
        stderr=subprocess.DEVNULL,
    )


def _wait_for_staging(process: subprocess.Popen, export_dir: Path) -> float:
    """Waits until the export creates its first temporary folder (or ends); the time then."""
    while process.poll() is None and not list(export_dir.glob(f"*/{writer.TMP_PREFIX}*")):
        time.sleep(0.01)
    return time.monotonic()


def _kill_export(artifact: Path, export_dir: Path, delay_s: float, meanwhile=None) -> int:
    """Runs `tfrec export` and kills it `delay_s` after it starts writing; leftovers count.

    `meanwhile()`, when given, runs while the export starts up.
    """
    process = _run_export(artifact, export_dir)
    if meanwhile is not None:
        meanwhile()
    _wait_for_staging(process, export_dir)
    time.sleep(delay_s)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    return len(_leftovers(export_dir))


def test_a_killed_export_leaves_a_consistent_state(tiny_run, tmp_path):
    export_dir = tmp_path / "export"
    # Saving one model takes seconds: this kill lands while the first models are written.
    delay_s = random.Random(time.time_ns()).uniform(0.0, 1.5)
    loaded = []  # the next export's model, loaded while the killed one starts up
    left = _kill_export(
        tiny_run.artifact,
        export_dir,
        delay_s,
        meanwhile=lambda: loaded.append(export_run.load(tiny_run.artifact)),
    )
    assert left, f"the kill after {delay_s:.2f}s left no temporary folder"
    assert _assert_consistent(export_dir) == []

    result = export_run.export(tiny_run.artifact, export_dir, trained=loaded[0])
    assert result["version"] == 1
    assert _leftovers(export_dir) == [] and not (export_dir / writer.JOURNAL).exists()
    assert _assert_consistent(export_dir) == [1]

    # The written models.config serves every model, wherever the server is started.
    with server_lib.start(
        tmp_path / "elsewhere",
        model_config_file=export_dir / "models.config",
        grpc_port=0,
        rest_port=0,
        poll_seconds=0,
        enable_batching=False,
        warmup_iterations=0,
    ) as server:
        client = Client(server.grpc_target)
        for name in NAMES:
            states = client.status(name)["model_version_status"]
            assert [(s["version"], s["state"]) for s in states] == [("1", "AVAILABLE")], name
            stable = client.status(name, label="stable")["model_version_status"]
            assert [s["version"] for s in stable] == ["1"]
        client.close()


@pytest.mark.slow
def test_killed_exports_at_random_points_leave_a_consistent_state(tiny_run, tmp_path):
    """Four kills spread over the writing (measured first), one in each quarter of it."""
    export_dir = tmp_path / "export"
    trained = export_run.load(tiny_run.artifact)
    staging = []
    real_stage = writer._stage

    def timed_stage(*args):
        staging.append(time.monotonic())
        return real_stage(*args)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(writer, "_stage", timed_stage)
        export_run.export(tiny_run.artifact, export_dir, trained=trained)
    writing_s = time.monotonic() - staging[0]  # from the first temporary folder to the end
    assert _assert_consistent(export_dir) == [1]

    rng = random.Random(time.time_ns())
    report = []
    for i in range(4):
        delay_s = writing_s * rng.uniform(i / 4, (i + 1) / 4)
        report.append((round(delay_s, 2), _kill_export(tiny_run.artifact, export_dir, delay_s)))
        versions = _assert_consistent(export_dir)
        assert versions == list(range(1, len(versions) + 1)), (versions, report)
    assert any(n for _, n in report), (writing_s, report)  # some kills hit the writing

    newest = _assert_consistent(export_dir)[-1]
    result = export_run.export(tiny_run.artifact, export_dir, trained=trained)
    assert result["version"] == newest + 1
    assert _leftovers(export_dir) == [] and not (export_dir / writer.JOURNAL).exists()
    assert _assert_consistent(export_dir)[-1] == newest + 1
    specs = model_config.parse_models_config((export_dir / "models.config").read_text())
    # A new export is the canary; stable stays on the first export until `tfrec promote`.
    assert {s.name: s.labels for s in specs} == {
        n: {"stable": 1, "canary": newest + 1} for n in NAMES
    }
