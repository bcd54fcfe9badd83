"""Re-reading models.config while serving (`--model-config-file-poll-wait-seconds`)."""

from __future__ import annotations

import logging
import os
import shutil
import threading

import pytest

from tests.serving.conftest import GOOD, toy_version, wait_for
from tfrec.serving import Client, ServingError, loadtest

TOY = """
model_config_list {{
  config {{
    name: "toy"
    base_path: "toy"
    model_version_policy {{ specific {{ {versions} }} }}
    {labels}
  }}
  {extra}
}}
"""


def write_config(path, versions=(1, 2), labels=None, extra=""):
    """Writes models.config atomically, as an operator's deploy step should."""
    labels = labels or {}
    text = TOY.format(
        versions=" ".join(f"versions: {v}" for v in versions),
        labels=" ".join(f'version_labels {{ key: "{k}" value: {v} }}' for k, v in labels.items()),
        extra=extra,
    )
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


@pytest.fixture
def setup(make_export, start_server):
    base = make_export((1, 2))
    config = base / "models.config"
    write_config(config, labels={"stable": 1, "canary": 2})

    def start(**kwargs):
        kwargs.setdefault("model_config_poll_seconds", 0.1)
        return start_server(base, model_config_file=config, **kwargs)

    return base, config, start


def test_label_moves_without_restart_and_in_flight_requests_succeed(setup):
    base, config, start = setup
    server = start()
    client = Client(server.grpc_target)
    assert toy_version(client, label="stable") == 1
    results = {}

    def load():
        results["load"] = loadtest.run(
            server.grpc_target,
            lambda i: {"model": "toy", "inputs": GOOD, "label": "stable"},
            concurrency=3,
            duration_s=2.0,
        )

    thread = threading.Thread(target=load)
    thread.start()
    write_config(config, labels={"stable": 2, "canary": 2})  # promote the canary
    assert wait_for(lambda: toy_version(client, label="stable") == 2), "label did not move"
    thread.join()
    assert results["load"].failures == 0, results["load"].errors
    assert server.store.labels("toy") == {"stable": 2, "canary": 2}


def test_invalid_config_is_logged_and_the_previous_one_kept(setup, caplog):
    base, config, start = setup
    server = start()
    client = Client(server.rest_target, "rest")
    caplog.set_level(logging.ERROR, logger="tfrec.serving.model_store")
    for broken in ("model_config_list { config { nam: 'toy' } }", "not a config"):
        tmp = config.with_name("broken.tmp")
        tmp.write_text(broken)
        os.replace(tmp, config)
        assert wait_for(lambda: "not applied, the previous config keeps serving" in caplog.text)
        assert "not a valid ModelServerConfig" in caplog.text
        assert toy_version(client, label="stable") == 1 and toy_version(client, label="canary") == 2
        caplog.clear()
    config.unlink()  # a missing file is as invalid
    assert wait_for(lambda: "does not exist" in caplog.text)
    assert toy_version(client, label="stable") == 1


def test_label_waits_for_its_version_to_be_available(setup, caplog, toy_versions):
    base, config, start = setup
    server = start(poll_seconds=0.1)
    client = Client(server.grpc_target)
    caplog.set_level(logging.ERROR, logger="tfrec.serving.model_store")
    # Version 3 is not on disk yet: the new labels wait, the old ones keep serving.
    write_config(config, versions=(1, 2, 3), labels={"stable": 2, "canary": 3})
    assert wait_for(lambda: "`canary` names version 3" in caplog.text)
    assert "keeping {'canary': 2, 'stable': 1}" in caplog.text
    assert toy_version(client, label="stable") == 1
    shutil.copytree(toy_versions / "3", base / "toy" / "3")
    assert wait_for(lambda: server.store.labels("toy") == {"stable": 2, "canary": 3})
    assert toy_version(client, label="canary") == 3 and toy_version(client, label="stable") == 2


def test_models_are_added_and_removed(setup):
    base, config, start = setup
    server = start()
    client = Client(server.grpc_target)
    extra = 'config { name: "twin" base_path: "toy" model_version_policy { all {} } }'
    write_config(config, labels={"stable": 1}, extra=extra)

    def twin_states():
        try:
            return [s.state for s in server.store.status("twin")]
        except ServingError:  # not configured yet
            return []

    assert wait_for(lambda: twin_states() == ["AVAILABLE"] * 2), "model was not added"
    assert int(client.predict("twin", GOOD, version=1)["version"][0]) == 1
    old = server.store.acquire("twin", version=2)  # an in-flight request on the removed model
    write_config(config, labels={"stable": 1})
    assert wait_for(lambda: "twin" not in server.store.model_names()), "model was not removed"
    with pytest.raises(ServingError, match="model `twin` is not served") as caught:
        client.predict("twin", GOOD)
    assert caught.value.code == "NOT_FOUND"
    assert not old.unloaded  # still answering the request that holds it
    old.release()
    assert old.unloaded
    with pytest.raises(ServingError, match="unknown label `canary`"):
        client.predict("toy", GOOD, label="canary")


def test_without_the_option_the_config_is_read_at_start_only(setup):
    base, config, start = setup
    server = start(model_config_poll_seconds=0, poll_seconds=0.1)
    write_config(config, labels={"stable": 2})
    assert not wait_for(lambda: server.store.labels("toy") != {"stable": 1, "canary": 2}, 1.0)
