"""`tfrec promote` and `tfrec rollback` while `tfrec serve` answers live traffic by label."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time

from tests.serving.conftest import GOOD, toy_version, wait_for
from tfrec import cli
from tfrec.exporting import labels, server_configs
from tfrec.serving import Client, ServingError, loadtest
from tfrec.serving import server_process as server_process_lib

POLL_S = 0.2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(base, log_path) -> tuple[subprocess.Popen, str]:
    """`tfrec serve` on `base` re-reading its models.config every POLL_S seconds."""
    grpc, rest = _free_port(), _free_port()
    command = [
        sys.executable, "-m", "tfrec", "serve", "--model-base-path", str(base),
        "--grpc-port", str(grpc), "--rest-port", str(rest),
        "--file-system-poll-wait-seconds", str(POLL_S),
        "--model-config-file-poll-wait-seconds", str(POLL_S),
    ]  # fmt: skip
    env = dict(os.environ, **server_process_lib.server_env())
    with open(log_path, "w") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    return proc, f"127.0.0.1:{grpc}"


def test_no_request_fails_across_promotion_and_rollback(toy_versions, tmp_path):
    base = tmp_path / "export"
    state = labels.LabelState()
    for version in (1, 2):  # what two exports leave: stable 1, canary 2
        shutil.copytree(toy_versions / str(version), base / "toy" / str(version))
        labels.record_export(state, ["toy"], version, "test export")
    labels.save(base, state)
    server_configs.write_models_config(base, None, state)
    proc, target = _serve(base, tmp_path / "server.log")
    client = Client(target, timeout_s=5)
    try:
        ready = wait_for(lambda: _answers(client, "stable") == 1, timeout_s=120)
        assert ready, (tmp_path / "server.log").read_text()[-2000:]
        assert toy_version(client, label="canary") == 2
        results = {}

        def load() -> None:
            results["load"] = loadtest.run(
                target,
                lambda i: {"model": "toy", "inputs": GOOD, "label": ("stable", "canary")[i % 2]},
                concurrency=3,
                duration_s=6.0,
            )

        thread = threading.Thread(target=load)
        thread.start()
        time.sleep(1.0)
        assert cli.main(["promote", "--export-dir", str(base)]) == 0
        assert wait_for(lambda: toy_version(client, label="stable") == 2, 5 * POLL_S + 5)
        assert {toy_version(client, label="stable") for _ in range(20)} == {2}
        time.sleep(1.0)
        assert cli.main(["rollback", "--export-dir", str(base)]) == 0
        assert wait_for(lambda: toy_version(client, label="stable") == 1, 5 * POLL_S + 5)
        assert {toy_version(client, label="stable") for _ in range(20)} == {1}
        thread.join()
        result = results["load"]
        assert result.failures == 0, result.errors
        assert result.requests > 100, result.summary()
        assert toy_version(client, label="canary") == 2
    finally:
        client.close()
        proc.terminate()
        proc.wait(timeout=30)


def _answers(client: Client, label: str):
    try:
        return toy_version(client, label=label)
    except ServingError:
        return None  # still starting
