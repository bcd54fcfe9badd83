"""What the server serves when the disk misleads it: dangling labels and empty base paths."""

from __future__ import annotations

import logging
import shutil
import threading
import time

import pytest

from tests.serving.conftest import toy_version, wait_for
from tfrec import errors
from tfrec.serving import Client
from tfrec.serving import server as server_lib

CONFIG = """
model_config_list {
  config {
    name: "toy"
    base_path: "toy"
    model_version_policy { specific { versions: 1 versions: 2 } }
    version_labels { key: "stable" value: 1 }
    version_labels { key: "canary" value: %d }
  }
}
"""


def test_a_label_whose_version_is_removed_warns_once_and_serves_the_newest(
    make_export, start_server, caplog
):
    base = make_export((1, 2))
    (base / "models.config").write_text(CONFIG % 2)
    server = start_server(base, poll_seconds=0.05)
    client = Client(server.grpc_target)
    assert toy_version(client, label="stable") == 1
    with caplog.at_level(logging.WARNING, logger="tfrec.serving.model_store"):
        shutil.rmtree(base / "toy" / "1")
        assert wait_for(lambda: _live(server) == [2])
        time.sleep(0.3)  # several more polls: still one warning
        for _ in range(3):
            assert toy_version(client, label="stable") == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "model toy: label `stable` names version 1, which is no longer available; requests "
        "for `stable` are served by the newest available version 2 until the label is moved "
        "or version 1 returns"
    ]
    assert toy_version(client, label="canary") == 2


def _live(server) -> list:
    return sorted(v for _, v, state in server.store.version_states() if state == "AVAILABLE")


def test_a_label_on_a_missing_version_is_refused_naming_both(make_export, start_server, caplog):
    base = make_export((1, 2))
    (base / "models.config").write_text(CONFIG % 9)
    with caplog.at_level(logging.ERROR, logger="tfrec.serving.model_store"):
        server = start_server(base)
    assert "`canary` names version 9" in caplog.text
    assert server.store.labels("toy") == {}


def test_nothing_to_serve_is_an_error_naming_where_and_the_layout(tmp_path, start_server):
    (tmp_path / "export" / "toy").mkdir(parents=True)  # a model folder without versions
    with pytest.raises(errors.ConfigError) as caught:
        start_server(tmp_path / "export")
    message = str(caught.value)
    assert f"nothing to serve under `--model-base-path` '{tmp_path / 'export'}'" in message
    assert "<model-base-path>/<model>/<version>/saved_model.pb" in message
    assert "`--wait-for-models`" in message


def test_nothing_to_serve_from_the_command_line_exits_non_zero(tmp_path, capsys):
    argv = ["--model-base-path", str(tmp_path), "--grpc-port", "0", "--rest-port", "0"]
    result = {}
    # In a thread, bounded: a server that waits for models would block here forever.
    thread = threading.Thread(target=lambda: result.update(code=server_lib.main(argv)))
    thread.daemon = True
    thread.start()
    thread.join(30)
    assert result.get("code") == 2
    out = capsys.readouterr().out
    assert "nothing to serve" in out and "found no model folder" in out


def test_wait_for_models_starts_empty_and_loads_an_export(tmp_path, start_server, toy_versions):
    base = tmp_path / "export"
    base.mkdir()
    server = start_server(base, wait_for_models=True, poll_seconds=0.05)
    assert server.store.model_names() == []
    shutil.copytree(toy_versions / "1", base / "toy" / "1")
    client = Client(server.grpc_target)
    assert wait_for(lambda: "toy" in server.store.model_names())
    assert wait_for(lambda: _live(server) == [1])
    assert toy_version(client) == 1


def test_limits_come_from_the_config_flags_and_set(tmp_path):
    import argparse

    parser = argparse.ArgumentParser()
    server_lib.add_arguments(parser)
    config = tmp_path / "serve.yaml"
    config.write_text("serving:\n  max_rows: 64\n  max_k: 20\n")
    args = parser.parse_args(
        ["--config", str(config), "--set", "serving.max_k=30", "--max-history", "16"]
    )
    limits = server_lib.limits_from_args(args)
    assert (limits.max_rows, limits.max_k, limits.max_history) == (64, 30, 16)
    args = parser.parse_args(["--set", "serving.max_rows=0"])
    with pytest.raises(errors.ConfigError, match=r"`serving.max_rows` must be > 0, received 0"):
        server_lib.limits_from_args(args)
