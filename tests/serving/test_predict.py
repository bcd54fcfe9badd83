"""Predict, metadata and status over gRPC and REST on a toy SavedModel; both agree."""

from __future__ import annotations

import base64
import json
import urllib.request

import numpy as np
import pytest

from tfrec.serving import Client

QUERY = {"query": ["ab", "c"], "item_ids": [[1, 2], [3, 4]]}


def _post(server, path, body):
    request = urllib.request.Request(
        f"http://{server.rest_target}{path}", data=json.dumps(body).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _get(server, path):
    with urllib.request.urlopen(f"http://{server.rest_target}{path}", timeout=10) as response:
        return json.loads(response.read())


@pytest.mark.parametrize("protocol", ["grpc", "rest"])
def test_predict_string_and_int_inputs(toy_server, protocol):
    target = toy_server.grpc_target if protocol == "grpc" else toy_server.rest_target
    with Client(target, protocol) as client:
        out = client.predict("toy", QUERY)
    # score = sum(item_ids) + len(query): [1+2+2, 3+4+1]
    np.testing.assert_allclose(out["score"], [5.0, 8.0])
    assert out["score"].dtype == np.float32
    assert out["greeting"].tolist() == [b"hi ab", b"hi c"]
    assert out["version"].tolist() == [1, 1]
    assert out["version"].dtype == np.int64


def test_grpc_and_rest_give_the_same_results(toy_server):
    grpc_client = Client(toy_server.grpc_target, "grpc")
    rest_client = Client(toy_server.rest_target, "rest")
    binary = {"query": [b"\xff\x00caf\xc3\xa9"], "item_ids": [[7]]}
    for inputs, signature in [
        (QUERY, "serving_default"),
        (binary, "serving_default"),
        ({"tokens": ["a", "bb", "ccc", "d"]}, "count"),
        ({"tokens": ["solo"]}, "count"),
        ({"x": [[1.0, 1.0, 1.0], [0.5, 0.0, 2.0]]}, "rank"),
    ]:
        a = grpc_client.predict("toy", inputs, signature_name=signature)
        b = rest_client.predict("toy", inputs, signature_name=signature)
        assert sorted(a) == sorted(b)
        for key in a:
            assert a[key].dtype == b[key].dtype, key
            assert a[key].shape == b[key].shape, key
            assert a[key].tolist() == b[key].tolist(), key
    assert grpc_client.metadata("toy") == rest_client.metadata("toy")
    assert grpc_client.status("toy") == rest_client.status("toy")
    filtered = grpc_client.predict("toy", QUERY, output_filter=["score"])
    assert list(filtered) == ["score"]
    assert list(rest_client.predict("toy", QUERY, output_filter=["score"])) == ["score"]


def test_variable_length_string_lists(toy_server):
    client = Client(toy_server.grpc_target)
    for tokens in (["a"], ["a", "b", "c"], ["x"] * 17, []):
        out = client.predict("toy", {"tokens": tokens}, signature_name="count")
        assert int(out["n"]) == len(tokens)
        assert out["joined"].item() == " ".join(tokens).encode()


def test_rest_row_format(toy_server):
    reply = _post(
        toy_server,
        "/v1/models/toy:predict",
        {"instances": [{"query": "ab", "item_ids": [1, 2]}, {"query": "c", "item_ids": [3, 4]}]},
    )
    rows = reply["predictions"]
    assert [r["score"] for r in rows] == [5.0, 8.0]
    assert [r["greeting"] for r in rows] == ["hi ab", "hi c"]
    # Outputs named *_bytes are base64 objects, as in TF Serving.
    assert rows[0]["echo_bytes"] == {"b64": base64.b64encode(b"ab").decode()}
    # A single-input signature takes bare values per row and returns bare values.
    reply = _post(
        toy_server, "/v1/models/toy:predict", {"signature_name": "rank", "instances": [[1, 1, 1]]}
    )
    assert reply == {"predictions": [6.0]}


def test_rest_columnar_format_and_b64_inputs(toy_server):
    binary = b"\x00\xfe"
    reply = _post(
        toy_server,
        "/v1/models/toy/versions/1:predict",
        {"inputs": {"query": [{"b64": base64.b64encode(binary).decode()}], "item_ids": [[1]]}},
    )
    outputs = reply["outputs"]
    assert outputs["score"] == [3.0]  # 1 + len(b"\x00\xfe")
    assert outputs["echo_bytes"] == [{"b64": base64.b64encode(binary).decode()}]
    # Not valid UTF-8, so even an output not named *_bytes comes back as base64.
    assert outputs["greeting"] == [{"b64": base64.b64encode(b"hi " + binary).decode()}]
    # A bare value for a single-input signature; a scalar output stays a bare value.
    reply = _post(
        toy_server, "/v1/models/toy:predict", {"signature_name": "count", "inputs": ["a", "b"]}
    )
    assert reply == {"outputs": {"joined": "a b", "n": 2}}


def test_rest_status_and_metadata_shapes(toy_server):
    status = _get(toy_server, "/v1/models/toy")
    assert status == {
        "model_version_status": [
            {
                "version": "1",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }
    assert _get(toy_server, "/v1/models/toy/versions/1") == status
    metadata = _get(toy_server, "/v1/models/toy/metadata")
    assert metadata["model_spec"]["name"] == "toy"
    assert metadata["model_spec"]["version"] == "1"
    signatures = metadata["metadata"]["signature_def"]["signature_def"]
    default = signatures["serving_default"]
    assert default["method_name"] == "tensorflow/serving/predict"
    assert default["inputs"]["query"]["dtype"] == "DT_STRING"
    assert default["inputs"]["item_ids"]["dtype"] == "DT_INT64"
    assert [d["size"] for d in default["inputs"]["item_ids"]["tensor_shape"]["dim"]] == ["-1", "-1"]
    assert set(signatures["rank"]["outputs"]) == {"y"}


def test_grpc_metadata_is_packed_signature_def_map(toy_server):
    import grpc
    from tensorflow_serving.apis import get_model_metadata_pb2, prediction_service_pb2_grpc

    with grpc.insecure_channel(toy_server.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        request.model_spec.name = "toy"
        response = stub.GetModelMetadata(request, timeout=10)
    assert response.model_spec.version.value == 1
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signature_map)
    assert set(signature_map.signature_def["count"].inputs) == {"tokens"}
