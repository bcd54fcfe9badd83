"""`tfrec` as a separate process: quiet output, JSON-only stdout, exit codes that mean something."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Lines TensorFlow, Keras and KerasNLP print on their own when nobody silences them.
NOISE = ("Using TensorFlow backend", "oneDNN", "cuInit", "UserWarning", "WARNING:tensorflow")


def _tfrec(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1")
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the command itself must quiet TensorFlow
    return subprocess.run(
        [sys.executable, "-m", "tfrec.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_evaluate_json_is_pipeable_and_the_process_exits_zero(tiny_run, tmp_path):
    art = tiny_run.copy_artifact(tmp_path / "model")
    done = _tfrec("evaluate", "--workdir", str(art), "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)  # nothing but the document on stdout
    assert result["protocol"]["split"] == "temporal" and "tfrec" in result["models"]
    assert "[all]" in done.stderr  # the tables still reach the terminal, on stderr
    assert not [n for n in NOISE if n in done.stderr + done.stdout]

    exported = _tfrec("export", "--workdir", str(art), "--export-dir", str(tmp_path / "export"))
    assert exported.returncode == 0, exported.stderr[-2000:]
    assert json.loads(exported.stdout)["version"] == 1


def test_verbose_brings_the_library_logs_back_and_errors_exit_two(tmp_path):
    done = _tfrec("evaluate", "--workdir", str(tmp_path), "--verbose")
    assert done.returncode == 2
    assert f"`{tmp_path}` holds no model artifact" in done.stderr
    assert "Using TensorFlow backend" in done.stdout + done.stderr
    quiet = _tfrec("evaluate", "--workdir", str(tmp_path))
    assert quiet.returncode == 2 and "Using TensorFlow backend" not in quiet.stdout + quiet.stderr


def test_recommend_against_no_server_is_one_clean_error_line():
    done = _tfrec("recommend", "--server", "127.0.0.1:1", "--user", "u1", "--k", "3")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]  # one line
    assert done.stderr.startswith("tfrec: error: UNAVAILABLE")
