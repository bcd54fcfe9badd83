"""Version policies, labels, hot swaps under load, removed versions and warmup records."""

from __future__ import annotations

import os
import shutil
import threading
import time

import numpy as np
import pytest

from tests.serving.conftest import GOOD, toy_version, wait_for, write_warmup
from tfrec.serving import Client, ServingError, loadtest


def test_latest_one_serves_the_newest(make_export, start_server):
    server = start_server(make_export((1, 2)))
    client = Client(server.grpc_target)
    assert toy_version(client) == 2
    assert toy_version(client, version=2) == 2
    with pytest.raises(ServingError, match="version 1 of model `toy` is not available") as caught:
        client.predict("toy", GOOD, version=1)
    assert caught.value.code == "NOT_FOUND"
    versions = client.status("toy")["model_version_status"]
    assert [(v["version"], v["state"]) for v in versions] == [("2", "AVAILABLE")]


MODELS_CONFIG = """
model_config_list {
  config {
    name: "toy"
    base_path: "/models/toy"  # container path: falls back to <model-base-path>/toy
    model_platform: "tensorflow"
    model_version_policy { specific { versions: 1 versions: 3 } }
    version_labels { key: "stable" value: 1 }
    version_labels { key: "canary" value: 3 }
  }
  config {
    name: "every"
    base_path: "toy"
    model_version_policy { all {} }
  }
}
"""


def test_specific_versions_labels_and_all_policy(make_export, start_server):
    base = make_export((1, 2, 3))
    (base / "models.config").write_text(MODELS_CONFIG)
    server = start_server(base)
    for protocol, target in (("grpc", server.grpc_target), ("rest", server.rest_target)):
        client = Client(target, protocol)
        assert toy_version(client) == 3
        assert toy_version(client, version=1) == 1
        assert toy_version(client, label="stable") == 1
        assert toy_version(client, label="canary") == 3
        with pytest.raises(ServingError, match=r"`model_spec.version`: version 2") as caught:
            client.predict("toy", GOOD, version=2)
        assert caught.value.code == "NOT_FOUND"
        status = client.status("toy", label="stable")["model_version_status"]
        assert [v["version"] for v in status] == ["1"]
        every = client.status("every")["model_version_status"]
        assert sorted(v["version"] for v in every) == ["1", "2", "3"]
        assert int(client.predict("every", GOOD, version=2)["version"][0]) == 2


def test_new_version_is_swapped_in_under_load_without_failures(
    make_export, start_server, toy_versions
):
    base = make_export((1,))
    server = start_server(base, poll_seconds=0.1)
    client = Client(server.grpc_target)
    old = server.store.acquire("toy")
    old.release()
    results = {}

    def load():
        results["grpc"] = loadtest.run(
            server.grpc_target,
            lambda i: {"model": "toy", "inputs": GOOD},
            concurrency=4,
            duration_s=3.0,
        )

    thread = threading.Thread(target=load)
    thread.start()
    time.sleep(0.5)
    # Writers export under a temporary name, then rename: the half-written folder is ignored.
    incoming = base / "toy" / "incoming-2"
    shutil.copytree(toy_versions / "2", incoming)
    os.rename(incoming, base / "toy" / "2")
    assert wait_for(lambda: toy_version(client) == 2), "version 2 was not picked up"
    thread.join()
    result = results["grpc"]
    assert result.failures == 0, result.errors
    assert result.requests > 20
    assert wait_for(lambda: old.unloaded), "version 1 was not unloaded after the swap"
    states = {v["version"]: v["state"] for v in client.status("toy")["model_version_status"]}
    assert states == {"2": "AVAILABLE", "1": "END"}
    # Removing the newest version brings the remaining one back.
    shutil.rmtree(base / "toy" / "2")
    assert wait_for(lambda: toy_version(client) == 1), "removal of version 2 was not noticed"


def test_in_flight_request_keeps_a_retired_version_loaded(make_export, start_server):
    server = start_server(make_export((1,)), enable_batching=False)
    servable = server.store.acquire("toy")
    servable.retire()
    assert not servable.unloaded  # one request still holds it
    inputs = {"query": np.array([b"ab"], dtype=object), "item_ids": np.array([[1, 2]])}
    assert servable.run("serving_default", inputs)["score"].tolist() == [5.0]
    servable.release()
    assert servable.unloaded


def test_warmup_records_run_before_the_version_goes_live(make_export, start_server):
    base = make_export((1,))
    records = [
        ("serving_default", {"query": ["w"], "item_ids": np.array([[1]], dtype=np.int64)}),
        ("count", {"tokens": ["a", "b"]}),
    ]
    write_warmup(base / "toy" / "1", records)
    server = start_server(base, warmup_iterations=2)
    servable = server.store.acquire("toy")
    servable.release()
    assert servable.num_calls == 4  # 2 records x 2 iterations, before any request


def test_failing_warmup_keeps_the_version_out(make_export, start_server):
    base = make_export((1,))
    write_warmup(base / "toy" / "1", [("serving_default", {"wrong": ["w"]})])
    server = start_server(base)
    client = Client(server.rest_target, "rest")
    (status,) = client.status("toy")["model_version_status"]
    assert status["state"] == "END"
    assert status["status"]["error_code"] == "UNKNOWN"
    assert "tf_serving_warmup_requests` record 0" in status["status"]["error_message"]
    assert "missing input `item_ids`" in status["status"]["error_message"]
    with pytest.raises(ServingError) as caught:
        client.predict("toy", GOOD)
    assert caught.value.code == "NOT_FOUND"
