"""The export served by `tfrec serve`: gRPC and REST give identical results; latency numbers."""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.request
from pathlib import Path

import grpc
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import json_format
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tests.exporting.conftest import rank_request, request
from tfrec import request_schema
from tfrec.serving import Client, ServingError, batching
from tfrec.serving import server as server_lib

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server(run):
    with server_lib.start(run.export_dir, grpc_port=0, rest_port=0, poll_seconds=0) as running:
        yield running


def test_grpc_and_rest_agree_on_every_signature(run, server):
    user = run.prepared.spec.users[0]
    item = run.trained.catalog.item_ids[3]
    base = request([user, "nobody"], [[(item, "purchase"), (item, "view")], []], k=6)
    rank = rank_request(base, [[item, "x", item], [item, item, "y"]])
    text = request([user, "nobody"], [[(item, "view")], []], k=6, query_text=["bowl", ""])
    calls = [
        ("tfrec", "retrieve", base),
        ("tfrec", "recommend", base),
        ("tfrec", "rank", rank),
        ("tfrec_text", "retrieve", text),
        ("tfrec_text", "recommend", text),
    ]
    with Client(server.grpc_target) as grpc, Client(server.rest_target, "rest") as rest:
        for model, signature, inputs in calls:
            a = grpc.predict(model, inputs, signature)
            b = rest.predict(model, inputs, signature)
            assert sorted(a) == sorted(b)
            for key in a:
                if a[key].dtype.kind in "OSU":
                    assert a[key].tolist() == b[key].tolist(), (model, signature, key)
                else:
                    np.testing.assert_allclose(a[key], b[key], rtol=1e-6)
        labelled = grpc.predict("tfrec", base, "recommend", label="stable")
        assert (
            labelled["item_ids"].tolist()
            == grpc.predict("tfrec", base, "recommend")["item_ids"].tolist()
        )


def test_bad_request_is_invalid_argument(server):
    with Client(server.grpc_target) as client:
        # Refused by the server's request limits or by the graph's own check of `k`.
        with pytest.raises(ServingError, match=r"`(inputs\.)?k`") as caught:
            client.predict("tfrec", request(["u", "v"], [[], []], k=[2, 0]), "retrieve")
        assert caught.value.code == "INVALID_ARGUMENT"


@pytest.mark.parametrize("protocol", ["grpc", "rest"])
def test_k_and_exclude_recent_are_required_inputs(server, protocol):
    # As in tensorflow_model_server: a signature's inputs are all required, none has a default.
    target = server.grpc_target if protocol == "grpc" else server.rest_target
    with Client(target, protocol) as client:
        for spec in (request_schema.K, request_schema.EXCLUDE_RECENT):
            inputs = {key: v for key, v in request(["u"], [[]]).items() if key != spec.name}
            with pytest.raises(ServingError, match=f"missing input `{spec.name}`") as caught:
                client.predict("tfrec", inputs, "recommend")
            assert caught.value.code == "INVALID_ARGUMENT"
            # The served signature is the schema's, so the message explains the input.
            assert caught.value.message.endswith(spec.describe())


def test_client_repeats_scalar_inputs_per_row(run, server):
    user = run.prepared.spec.users[0]
    rows = request([user, "nobody"], [[], []], k=4)
    with Client(server.grpc_target) as client:
        expected = client.predict("tfrec", rows, "retrieve")
        # Callers written for the old scalar `k` / `exclude_recent` keep working.
        old_style = client.predict("tfrec", dict(rows, k=4, exclude_recent=False), "retrieve")
    assert old_style["item_ids"].tolist() == expected["item_ids"].tolist()


def test_requests_with_different_k_are_batched_together(run, tmp_path):
    config = tmp_path / "models.config"
    config.write_text(
        f'model_config_list {{ config {{ name: "tfrec" base_path: "{run.export_dir}/tfrec" }} }}'
    )
    params = batching.BatchingParameters(max_batch_size=64, batch_timeout_micros=500_000)
    user = run.prepared.spec.users[0]
    item = run.trained.catalog.item_ids[3]
    history = [(item, "view")]
    ks = [1, 3, 5, 2]
    with server_lib.start(
        run.export_dir,
        model_config_file=config,
        grpc_port=0,
        rest_port=0,
        poll_seconds=0,
        batching_parameters=params,
    ) as running:
        client = Client(running.rest_target, "rest")
        alone = [client.predict("tfrec", request([user], [history], k=k), "recommend") for k in ks]
        before = running.batcher.num_batches
        barrier = threading.Barrier(len(ks))
        results = [None] * len(ks)

        def call(i):
            barrier.wait()
            results[i] = client.predict("tfrec", request([user], [history], k=ks[i]), "recommend")

        threads = [threading.Thread(target=call, args=(i,)) for i in range(len(ks))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert running.batcher.num_batches > before, "requests with different k were not merged"
        client.close()
    for k, got, expected in zip(ks, results, alone, strict=True):
        assert got["item_ids"].shape == (1, k)  # the client cut the batch's width to k
        assert got["item_ids"].tolist() == expected["item_ids"].tolist()


def test_readme_request_examples_run(server):
    """The curl and grpcurl bodies of serving/README.md, sent as they are written there."""
    readme = (REPO / "serving" / "README.md").read_text()
    curls = re.findall(r"curl -s -X POST localhost:8501(\S+) -d '(.*?)'\n", readme, re.DOTALL)
    assert len(curls) == 2
    for path, body in curls:
        reply = urllib.request.urlopen(
            urllib.request.Request(f"http://{server.rest_target}{path}", body.encode()), timeout=30
        )
        out = json.loads(reply.read())
        if "predictions" in out:  # the row example: row 2 asked for 3 of 10 slots
            second = out["predictions"][1]
            assert len(second["item_ids"]) == 10 and second["item_ids"][3:] == [""] * 7
            assert second["scores"][3:] == [float(np.finfo(np.float32).min)] * 7
        else:
            assert len(out["outputs"]["item_ids"][0]) == 5
    (body,) = re.findall(r"<<'EOF'\n(.*?)\nEOF", readme, re.DOTALL)
    request = json_format.Parse(body, predict_pb2.PredictRequest())
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Predict(request, timeout=30)
    assert tf.make_ndarray(response.outputs["item_ids"]).shape == (1, 10)


def latency_ms(client, model, signature, inputs, n=20) -> float:
    """Median wall time of `n` sequential calls (after one warm call)."""
    client.predict(model, inputs, signature)
    times = []
    for _ in range(n):
        start = time.perf_counter()
        client.predict(model, inputs, signature)
        times.append((time.perf_counter() - start) * 1000)
    return float(np.median(times))
