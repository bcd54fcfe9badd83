"""The client suite against `tfrec serve`, and against `tensorflow_model_server` when on PATH."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import pytest

from tests.serving.client_suite import run_suite
from tfrec.serving import Client, ServingError

BINARY = "tensorflow_model_server"


def test_suite_against_tfrec_serve(toy_server):
    run_suite(toy_server.grpc_target, toy_server.rest_target)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_suite_against_official_binary(make_export):
    if shutil.which(BINARY) is None:
        pytest.skip(
            f"`{BINARY}` is not on PATH (it cannot be installed here); install TF Serving or "
            "run inside tensorflow/serving to check parity with the official server"
        )
    base = make_export((1,))
    grpc_port, rest_port = _free_port(), _free_port()
    command = [
        BINARY, f"--port={grpc_port}", f"--rest_api_port={rest_port}",
        "--rest_api_timeout_in_ms=10000", "--model_name=toy",
        f"--model_base_path={(base / 'toy').resolve()}",
    ]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = Client(f"127.0.0.1:{rest_port}", "rest", timeout_s=2)
        deadline = time.monotonic() + 60
        while True:
            try:
                if client.status("toy")["model_version_status"][0]["state"] == "AVAILABLE":
                    break
            except (ServingError, OSError, KeyError, IndexError):
                pass
            assert time.monotonic() < deadline, f"{BINARY} did not load the toy model in 60 s"
            assert proc.poll() is None, f"{BINARY} exited with {proc.returncode}"
            time.sleep(0.2)
        run_suite(f"127.0.0.1:{grpc_port}", f"127.0.0.1:{rest_port}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
