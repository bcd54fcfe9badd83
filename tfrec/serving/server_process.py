"""`tfrec serve` in a child process on free loopback ports, ready once its models load."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from tfrec import errors
from tfrec.serving import client as client_lib
from tfrec.serving import status


def server_env() -> dict[str, str]:
    """Environment of the server process: oneDNN off unless TF_ENABLE_ONEDNN_OPTS is set.

    With TF 2.20's oneDNN kernels on, the query tower run concurrently on different batch
    sizes (what request batching produces) corrupts the heap and the server aborts
    ("free(): invalid next size"); with them off it does not.
    """
    return {
        "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "0"),
        "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """`tfrec serve` on an export folder in a child process, on free loopback ports.

    A separate process, so that clients measuring it do not share its interpreter. The
    constructor returns once every model in `models` has an AVAILABLE version; use it as a
    context manager so the server is stopped (SIGTERM: drain and unload) however the block
    ends.

    Args:
        export_dir: str or path-like. Model base path with `models.config`.
        batching: bool. Start with request batching on.
        models: sequence of str. Models to wait for.
        log_path: str or path-like. File receiving the server's stdout and stderr.
        ready_timeout_s: float. Longest wait for the models to load. Defaults to 600.
    """

    def __init__(
        self,
        export_dir: os.PathLike | str,
        batching: bool,
        models: Sequence[str],
        log_path: os.PathLike | str,
        ready_timeout_s: float = 600.0,
    ) -> None:
        self.grpc_target = f"127.0.0.1:{_free_port()}"
        self.rest_target = f"127.0.0.1:{_free_port()}"
        self.log_path = Path(log_path)
        command = [
            sys.executable,
            "-m",
            "tfrec",
            "serve",
            "--model-base-path",
            str(export_dir),
            "--grpc-port",
            self.grpc_target.rpartition(":")[2],
            "--rest-port",
            self.rest_target.rpartition(":")[2],
            "--file-system-poll-wait-seconds",
            "0",
            "--enable-batching" if batching else "--no-enable-batching",
        ]
        self._log = open(self.log_path, "w", encoding="utf-8")  # noqa: SIM115 (closed in stop)
        env = dict(os.environ, **server_env())
        self.proc = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        try:
            self._wait_ready(models, ready_timeout_s)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, models: Sequence[str], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        with client_lib.Client(self.grpc_target, timeout_s=5) as client:
            pending = list(models)
            while pending:
                if self.proc.poll() is not None:
                    raise errors.TfrecError(
                        f"the server exited with code {self.proc.returncode}; its log ends "
                        f"with: {self._tail()}"
                    )
                if time.monotonic() > deadline:
                    raise errors.TfrecError(f"the server did not load {pending} in {timeout_s} s")
                try:
                    versions = client.status(pending[0]).get("model_version_status", [])
                    if any(v.get("state") == "AVAILABLE" for v in versions):
                        pending.pop(0)
                        continue
                except status.ServingError:
                    pass  # still starting: the port is not open yet
                time.sleep(0.5)

    def _tail(self) -> str:
        self._log.flush()
        lines = self.log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        return " | ".join(lines[-5:]) or "(empty)"

    def exit_code(self) -> int | None:
        """The server's exit code, or None while it runs."""
        return self.proc.poll()

    def peak_rss_mb(self) -> float | None:
        """The server's peak resident memory so far in MB (`VmHWM`), or None where the
        platform does not report it (no /proc) or the server has exited."""
        try:
            status = Path(f"/proc/{self.proc.pid}/status").read_text(encoding="utf-8")
        except OSError:
            return None
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)  # reported in kB
        return None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # drains and unloads
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
