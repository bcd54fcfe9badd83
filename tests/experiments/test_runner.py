"""Runs in subprocesses: finished runs are skipped, a failure is recorded and the rest go on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tfrec.experiments import runner

_OK = "import json, pathlib, sys; pathlib.Path(sys.argv[1], 'done.json').write_text('{}')"


def _job(tmp_path, name, code):
    wd = tmp_path / name
    return runner.Job(name, wd, (sys.executable, "-c", code, str(wd)))


def test_failures_are_recorded_and_others_finish(tmp_path):
    jobs = [_job(tmp_path, "bad", "raise SystemExit(3)"), _job(tmp_path, "good", _OK)]
    states = runner.run_jobs(jobs, max_parallel=2, progress=False)
    assert states == {"bad": "failed", "good": "done"}
    failed = runner.read_json(tmp_path / "bad" / runner.FAILED)
    assert failed is not None and "exited with code 3" in failed["error"]


def test_finished_runs_are_never_run_again(tmp_path):
    job = _job(tmp_path, "a", "raise SystemExit(1)")
    job.workdir.mkdir()
    (job.workdir / runner.DONE).write_text("{}")
    assert runner.run_jobs([job], progress=False) == {"a": "done"}
    assert not (job.workdir / runner.LOG).exists()  # not started


def test_failed_runs_are_retried(tmp_path):
    job = _job(tmp_path, "a", _OK)
    runner.mark_failed(job.workdir, "earlier error")
    assert runner.status(job.workdir) == "failed"
    assert runner.run_jobs([job], progress=False) == {"a": "done"}
    assert not (job.workdir / runner.FAILED).exists()


def test_epochs_done_reads_the_latest_checkpoint(tmp_path):
    assert runner.epochs_done(tmp_path) == 0
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "checkpoint").write_text('model_checkpoint_path: "ckpt-3"\n')
    assert runner.epochs_done(tmp_path) == 3


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in status  # a zombie has ended; only its parent has not reaped it


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="parent-death signal is Linux-only"
)
def test_killing_the_experiment_ends_its_runs(tmp_path):
    """No run outlives a SIGKILL of the process that started it: the next `run` owns the workdir."""
    pid_file = tmp_path / "child.pid"
    child_code = tmp_path / "child.py"
    child_code.write_text(
        f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(60)\n"
    )
    parent_code = tmp_path / "parent.py"
    parent_code.write_text(
        "import pathlib, sys\nfrom tfrec.experiments import runner\n"
        f"job = runner.Job('a', pathlib.Path({str(tmp_path / 'a')!r}), "
        f"(sys.executable, {str(child_code)!r}))\n"
        "runner.run_jobs([job], progress=False)\n"
    )
    parent = subprocess.Popen([sys.executable, str(parent_code)])
    deadline = time.monotonic() + 60
    while not pid_file.is_file() or not pid_file.read_text():
        assert time.monotonic() < deadline, "the run did not start"
        time.sleep(0.1)
    child = int(pid_file.read_text())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while _alive(child):
        if time.monotonic() > deadline:
            os.kill(child, signal.SIGKILL)
            raise AssertionError("the run outlived the experiment's process")
        time.sleep(0.1)
