"""Every bad request gets the right status code and a message naming the field; serving goes on."""

from __future__ import annotations

import http.client
import json

import pytest

from tfrec.serving import Client, ServingError

GOOD = {"query": ["ab"], "item_ids": [[1, 2]]}

# (inputs, signature, version, label, model, expected code, message pattern)
CASES = [
    pytest.param(
        {"query": ["a"]},
        "serving_default",
        None,
        None,
        "toy",
        "INVALID_ARGUMENT",
        # Not a tfrec signature: no request-schema note after the expected inputs.
        r"missing input `item_ids` of signature `serving_default`; expected \['item_ids', "
        r"'query'\], received \['query'\]$",
        id="missing-input",
    ),
    pytest.param(
        {**GOOD, "extra": ["x"]},
        "serving_default",
        None,
        None,
        "toy",
        "INVALID_ARGUMENT",
        r"unknown input `extra`",
        id="extra-input",
    ),
    pytest.param(
        {"query": ["a"], "item_ids": [[1.5, 2.5]]},
        "serving_default",
        None,
        None,
        "toy",
        "INVALID_ARGUMENT",
        r"`inputs.item_ids`.*int64.*received",
        id="wrong-dtype",
    ),
    pytest.param(
        {"query": [7], "item_ids": [[1]]},
        "serving_default",
        None,
        None,
        "toy",
        "INVALID_ARGUMENT",
        r"`inputs\.query(\[0\])?`",
        id="number-for-string",
    ),
    pytest.param(
        {"x": [[1.0, 2.0]]},
        "rank",
        None,
        None,
        "toy",
        "INVALID_ARGUMENT",
        r"`inputs.x`: expected shape \[None, 3\], received \[1, 2\]",
        id="wrong-shape",
    ),
    pytest.param(
        {"query": ["a", "b", "c"], "item_ids": [[1], [2]]},
        "serving_default",
        None,
        None,
        "toy",
        "INVALID_ARGUMENT",
        r"`inputs`: signature `serving_default` failed",
        id="mismatched-batch",
    ),
    pytest.param(
        GOOD,
        "nope",
        None,
        None,
        "toy",
        "INVALID_ARGUMENT",
        r"`signature_name`: unknown signature `nope`",
        id="signature",
    ),
    pytest.param(
        GOOD,
        "serving_default",
        None,
        None,
        "ghost",
        "NOT_FOUND",
        r"`model_spec.name`: model `ghost`",
        id="model",
    ),
    pytest.param(
        GOOD,
        "serving_default",
        9,
        None,
        "toy",
        "NOT_FOUND",
        r"`model_spec.version`: version 9",
        id="version",
    ),
    pytest.param(
        GOOD,
        "serving_default",
        None,
        "beta",
        "toy",
        "NOT_FOUND",
        r"`model_spec.version_label`: unknown label `beta`",
        id="label",
    ),
]


@pytest.mark.parametrize("protocol", ["grpc", "rest"])
@pytest.mark.parametrize("inputs,signature,version,label,model,code,pattern", CASES)
def test_bad_predict(toy_server, protocol, inputs, signature, version, label, model, code, pattern):
    target = toy_server.grpc_target if protocol == "grpc" else toy_server.rest_target
    client = Client(target, protocol)
    with pytest.raises(ServingError, match=pattern) as caught:
        client.predict(model, inputs, signature_name=signature, version=version, label=label)
    assert caught.value.code == code
    # The server keeps serving after the error.
    assert client.predict("toy", GOOD)["score"].tolist() == [5.0]


def test_unknown_output_filter(toy_server):
    with pytest.raises(ServingError, match=r"`output_filter`: unknown output `nope`") as caught:
        Client(toy_server.grpc_target).predict("toy", GOOD, output_filter=["nope"])
    assert caught.value.code == "INVALID_ARGUMENT"


@pytest.mark.parametrize("protocol", ["grpc", "rest"])
def test_status_and_metadata_errors(toy_server, protocol):
    target = toy_server.grpc_target if protocol == "grpc" else toy_server.rest_target
    client = Client(target, protocol)
    for call in (client.status, client.metadata):
        with pytest.raises(ServingError, match=r"`model_spec.name`: model `ghost`") as caught:
            call("ghost")
        assert caught.value.code == "NOT_FOUND"
    with pytest.raises(ServingError, match=r"`model_spec.version`: version 4") as caught:
        client.status("toy", version=4)
    assert caught.value.code == "NOT_FOUND"


def _raw_post(server, path, body: bytes, headers=None):
    host, port = server.rest_target.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("POST", path, body=body, headers=headers or {})
    response = conn.getresponse()
    payload = json.loads(response.read())
    conn.close()
    return response.status, payload


@pytest.mark.parametrize(
    "body,pattern",
    [
        (b"{not json", r"malformed JSON"),
        (b"[1, 2]", r"expected a JSON object"),
        (b"{}", r"exactly one of `instances` or `inputs`"),
        (b'{"instances": []}', r"`instances`: expected a non-empty list"),
        (b'{"instances": [1], "inputs": [1]}', r"exactly one of"),
        (b'{"inputs": {"query": ["a"]}, "extra": 1}', r"unknown field `extra`"),
        (b'{"instances": [{"query": "a", "item_ids": [1]}, {"query": "b"}]}', r"`instances\[1\]`"),
        (b'{"inputs": {"query": ["a"], "item_ids": [[1], [2, 3]]}}', r"`inputs.item_ids`"),
        (
            b'{"inputs": {"query": [{"b64": "!!"}], "item_ids": [[1]]}}',
            r"`inputs.query\[0\]`.*base64",
        ),
        (
            b'{"inputs": {"query": ["a"], "item_ids": [["x"]]}}',
            r"`inputs.item_ids`: expected int64",
        ),
        (b'{"instances": ["a"]}', r"values must be objects naming them"),
        (b'{"signature_name": 3, "inputs": {}}', r"`signature_name`: expected a string"),
    ],
)
def test_rest_malformed_bodies_are_400(toy_server, body, pattern):
    code, payload = _raw_post(toy_server, "/v1/models/toy:predict", body)
    assert code == 400
    assert set(payload) == {"error"}
    assert pytest.importorskip("re").search(pattern, payload["error"]), payload


def test_rest_unknown_paths_are_404(toy_server):
    code, payload = _raw_post(toy_server, "/v2/whatever", b"{}")
    assert code == 404 and "`path`" in payload["error"]
    code, payload = _raw_post(toy_server, "/v1/models/ghost:predict", b'{"inputs": [1]}')
    assert code == 404 and "`model_spec.name`" in payload["error"]


def test_grpc_requests_without_name_or_metadata_field(toy_server):
    import grpc
    from tensorflow_serving.apis import (
        get_model_metadata_pb2,
        predict_pb2,
        prediction_service_pb2_grpc,
    )

    with grpc.insecure_channel(toy_server.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.Predict(predict_pb2.PredictRequest(), timeout=10)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "`model_spec.name`" in caught.value.details()
        request = get_model_metadata_pb2.GetModelMetadataRequest()
        request.model_spec.name = "toy"
        with pytest.raises(grpc.RpcError) as caught:
            stub.GetModelMetadata(request, timeout=10)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "`metadata_field`" in caught.value.details()
