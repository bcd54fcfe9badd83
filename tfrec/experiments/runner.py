"""Runs an experiment's jobs (one variant and seed each) in subprocesses, resumably.

Each job owns a workdir. A job whose workdir holds `done.json` finished and is never run
again; any other job is (re)started, and the trainer resumes from the workdir's checkpoints,
so a killed experiment continues where it stopped. A job that fails writes `failed.json` with
its error; the others go on. Jobs run in separate processes so that several fit on a machine
with cores to spare and a crash in one (even of TensorFlow itself) cannot take the others down.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

DONE = "done.json"
FAILED = "failed.json"
LOG = "log.txt"
_CKPT = re.compile(r'model_checkpoint_path: "ckpt-([0-9]+)"')


@dataclasses.dataclass(frozen=True)
class Job:
    """One training and evaluation run.

    Args:
        label: str. Shown in the progress bar, e.g. "gru/seed-1".
        workdir: Path. The run's folder; `done.json` there marks it finished.
        command: list of str. The process to start (its working directory is the caller's).
        epochs: int. Training epochs of the towers, for the progress bar.
    """

    label: str
    workdir: Path
    command: tuple
    epochs: int = 0


def status(workdir: Path) -> str:
    """`done`, `failed` (its last attempt failed) or `pending`."""
    if (workdir / DONE).is_file():
        return "done"
    if (workdir / FAILED).is_file():
        return "failed"
    return "pending"


def read_json(path: Path) -> Optional[dict[str, Any]]:
    """The JSON object at `path`, or None when the file is missing or unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomically: a reader sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    tmp.replace(path)


def epochs_done(workdir: Path) -> int:
    """Tower epochs checkpointed so far in `workdir` (the trainer saves one per epoch)."""
    try:
        text = (workdir / "checkpoints" / "checkpoint").read_text(encoding="utf-8")
    except OSError:
        return 0
    match = _CKPT.search(text)
    return int(match.group(1)) if match else 0


def mark_failed(workdir: Path, error: str, details: str = "") -> None:
    write_json(
        workdir / FAILED,
        {
            "error": error,
            "details": details,
            "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        },
    )


def run_jobs(jobs: Sequence[Job], max_parallel: int = 1, progress: bool = True) -> dict[str, str]:
    """Runs every unfinished job, at most `max_parallel` at a time; returns label -> status.

    The progress bar counts finished jobs and shows the running ones with their epochs. On
    Ctrl-C the running jobs are stopped; their checkpoints stay for the next run.
    """
    if max_parallel < 1:
        raise ValueError(f"`max_parallel` must be >= 1, received {max_parallel}")
    todo = [j for j in jobs if status(j.workdir) != "done"]
    bar = None
    if progress:
        import tqdm

        bar = tqdm.tqdm(total=len(jobs), initial=len(jobs) - len(todo), unit="run", desc="runs")
    running: dict[str, tuple[Job, subprocess.Popen, Any]] = {}
    shown = ""
    try:
        while todo or running:
            while todo and len(running) < max_parallel:
                job = todo.pop(0)
                job.workdir.mkdir(parents=True, exist_ok=True)
                (job.workdir / FAILED).unlink(missing_ok=True)
                log = open(job.workdir / LOG, "a", encoding="utf-8")  # noqa: SIM115
                log.write(f"\n=== {datetime.datetime.now(datetime.UTC).isoformat()} start\n")
                log.flush()
                proc = subprocess.Popen(
                    list(job.command),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=_child_env(),
                    preexec_fn=_end_with_parent,
                )
                running[job.label] = (job, proc, log)
            for label, (job, proc, log) in list(running.items()):
                code = proc.poll()
                if code is None:
                    continue
                log.close()
                del running[label]
                if code != 0 and status(job.workdir) != "failed":
                    mark_failed(job.workdir, f"process exited with code {code}", _tail(job))
                if bar is not None:
                    bar.update(1)
            if bar is not None:
                postfix = ", ".join(
                    f"{label} epoch {epochs_done(job.workdir)}/{job.epochs}"
                    for label, (job, _, _) in running.items()
                )
                if postfix != shown:  # redrawn on change only: logs stay short
                    bar.set_postfix_str(postfix)
                    shown = postfix
            if running:
                time.sleep(0.5)
    except BaseException:
        for _job, proc, log in running.values():
            proc.terminate()
            proc.wait()
            log.close()
        raise
    finally:
        if bar is not None:
            bar.close()
    return {j.label: status(j.workdir) for j in jobs}


def _end_with_parent() -> None:
    """In the child, before it runs: on Linux, end it when the experiment's process ends, even
    when that one is killed outright, so no orphan keeps training in a workdir that the next
    `run` resumes."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        pr_set_pdeathsig = 1
        ctypes.CDLL(None).prctl(pr_set_pdeathsig, int(signal.SIGTERM))


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["TF_USE_LEGACY_KERAS"] = "1"
    return env


def _tail(job: Job, lines: int = 30) -> str:
    try:
        text = (job.workdir / LOG).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def python_command(module: str, *args: str) -> tuple:
    """The command that runs `python -m module args` with this interpreter."""
    return (sys.executable, "-m", module, *args)
