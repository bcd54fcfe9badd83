"""Hostile requests against a real server on loopback: each is refused cheaply and precisely."""

from __future__ import annotations

import http.client
import json
import socket
import struct
import time

import grpc
import numpy as np
import pytest
from tensorflow_serving.apis import predict_pb2

from tests.adversarial.conftest import CATALOG, request
from tfrec import request_schema
from tfrec.serving import Client, ServingError, batching, limits, tensors

MB = 1 << 20


@pytest.fixture
def server(tfrec_toy, start_server):
    return start_server(tfrec_toy, enable_batching=False)


def _rest(server, method: str, path: str, body: bytes = b"", headers=None):
    host, port = server.rest_target.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=20)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        raw = response.read()
        return response.status, response.getheader("Content-Type"), raw
    finally:
        conn.close()


def _json_error(raw: bytes) -> str:
    payload = json.loads(raw)
    assert set(payload) == {"error"}, payload
    return payload["error"]


def _recommend_body(**kwargs) -> bytes:
    return json.dumps({"signature_name": "recommend", "inputs": request(**kwargs)}).encode()


def _huge_history_request() -> bytes:
    """A ~200-byte Predict declaring history lists of shape [1, 5000000] with one value each."""
    message = predict_pb2.PredictRequest()
    message.model_spec.name = "tfrec"
    message.model_spec.signature_name = "recommend"
    for name, value in request().items():
        array = np.asarray(value, dtype=request_schema.BY_NAME[name].numpy_dtype)
        message.inputs[name].CopyFrom(tensors.to_proto(array))
    for name in request_schema.HISTORY_PAIR:
        proto = message.inputs[name]
        del proto.string_val[1:]
        proto.tensor_shape.dim[1].size = 5_000_000  # make_ndarray repeats the last value
    return message.SerializeToString()


def _grpc_raw(server, raw: bytes, method="/tensorflow.serving.PredictionService/Predict"):
    with grpc.insecure_channel(server.grpc_target) as channel:
        call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        return call(raw, timeout=20)


def test_oversized_requests_are_refused_without_growing_memory(server, peak_rss):
    rows_body = _recommend_body(rows=10_000)
    huge = _huge_history_request()
    assert len(huge) < 400
    idle = peak_rss.reset()
    for _ in range(3):
        code, _, raw = _rest(server, "POST", "/v1/models/tfrec:predict", rows_body)
        assert code == 400
        assert "`inputs.user_id`: expected at most 512 rows (`serving.max_rows`)" in _json_error(
            raw
        )
        with pytest.raises(grpc.RpcError) as caught:
            _grpc_raw(server, huge)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "`inputs.history_event_types`" in caught.value.details() or (
            "`inputs.history_item_ids`" in caught.value.details()
        )
        assert "at most 128 values (`serving.max_history`)" in caught.value.details()
    grown = peak_rss.peak() - idle
    assert grown < 200 * MB, f"peak RSS grew by {grown / MB:.0f} MB"
    # The server still answers ordinary requests.
    out = Client(server.grpc_target).predict("tfrec", request(), signature_name="recommend")
    assert out["scores"][0].tolist() == [22.0, 21.0, 20.0, 19.0, 18.0]


def test_content_length_over_the_limit_is_refused_unread(tfrec_toy, start_server):
    server = start_server(tfrec_toy, enable_batching=False, max_message_bytes=1000)
    host, port = server.rest_target.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        # Headers only: the server must answer without waiting for 1 GB that never comes.
        sock.sendall(
            b"POST /v1/models/tfrec:predict HTTP/1.1\r\nHost: x\r\n"
            b"Content-Length: 1000000000\r\n\r\n"
        )
        began = time.monotonic()
        reply = sock.makefile("rb").read()
    assert time.monotonic() - began < 5
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    assert b"application/json" in head
    assert "`request`: expected at most 1000 bytes" in _json_error(body)


@pytest.mark.parametrize("protocol", ["grpc", "rest"])
@pytest.mark.parametrize(
    "k,pattern",
    [
        (0, r"`inputs.k`: expected values in \[1, 50\] \(the catalog size\), received 0"),
        (
            CATALOG + 1,
            r"`inputs.k`: expected values in \[1, 50\] \(the catalog size\), received 51",
        ),
        (-(2**31), r"`inputs.k`: expected values in \[1, 50\]"),
    ],
)
def test_k_outside_one_to_the_catalog_size_is_invalid(server, protocol, k, pattern):
    target = server.grpc_target if protocol == "grpc" else server.rest_target
    client = Client(target, protocol)
    with pytest.raises(ServingError, match=pattern) as caught:
        client.predict("tfrec", request(k=k), signature_name="recommend")
    assert caught.value.code == "INVALID_ARGUMENT"


def test_k_that_does_not_fit_int32_is_not_wrapped(server):
    # Over REST, 2**32 + 10 used to be cast to int32 as 10 and answered.
    code, _, raw = _rest(server, "POST", "/v1/models/tfrec:predict", _recommend_body(k=2**32 + 10))
    assert code == 400
    assert _json_error(raw) == (
        "`inputs.k`: expected int32 values in [-2147483648, 2147483647], received 4294967306"
    )
    # The client does not wrap it either: the server names the field and the dtype.
    with pytest.raises(ServingError, match=r"`inputs.k`: expected dtype int32, received int64"):
        Client(server.grpc_target).predict("tfrec", request(k=2**32 + 10), "recommend")


@pytest.mark.parametrize("protocol", ["grpc", "rest"])
def test_missing_and_unknown_inputs_are_explained_by_the_request_schema(server, protocol):
    client = Client(server.grpc_target if protocol == "grpc" else server.rest_target, protocol)
    names = sorted(request())
    without_k = {n: v for n, v in request().items() if n != request_schema.K.name}
    with pytest.raises(ServingError) as caught:
        client.predict("tfrec", without_k, signature_name="recommend")
    assert caught.value.code == "INVALID_ARGUMENT"
    assert caught.value.message == (
        f"`inputs`: missing input `k` of signature `recommend`; expected {names}, received "
        f"{sorted(without_k)}; {request_schema.K.describe()}"
    )
    # `query_text` is an input of the `_text` variant only: the note says so.
    texted = dict(request(), query_text=["red shoes"])
    with pytest.raises(ServingError) as caught:
        client.predict("tfrec", texted, signature_name="recommend")
    assert caught.value.message == (
        f"`inputs`: unknown input `query_text` for signature `recommend`; expected {names}, "
        f"received {sorted(texted)}; {request_schema.QUERY_TEXT.describe()}"
    )


def test_wrong_dtype_is_explained_by_the_request_schema(server):
    inputs = dict(request(), exclude_recent=["no"])
    with pytest.raises(ServingError) as caught:
        Client(server.grpc_target).predict("tfrec", inputs, signature_name="recommend")
    assert caught.value.message == (
        "`inputs.exclude_recent`: expected dtype bool, received string; "
        + request_schema.EXCLUDE_RECENT.describe()
    )


@pytest.mark.parametrize("protocol", ["grpc", "rest"])
def test_history_lists_of_different_widths_are_invalid(server, protocol):
    target = server.grpc_target if protocol == "grpc" else server.rest_target
    inputs = request(width=3)
    inputs["history_event_types"] = [["view", "cart"]]
    with pytest.raises(ServingError) as caught:
        Client(target, protocol).predict("tfrec", inputs, signature_name="recommend")
    assert caught.value.code == "INVALID_ARGUMENT"
    assert caught.value.message == (
        "`inputs.history_event_types`: expected the shape of `history_item_ids` [1, 3], "
        "received [1, 2]"
    )


@pytest.mark.parametrize("protocol", ["grpc", "rest"])
def test_long_query_text_is_invalid(server, protocol):
    target = server.grpc_target if protocol == "grpc" else server.rest_target
    client = Client(target, protocol)
    inputs = {"query_text": ["é" * 1000], "k": [1]}
    assert client.predict("tfrec", inputs, signature_name="search")["length"].tolist() == [1000]
    with pytest.raises(
        ServingError, match=r"at most 1000 characters \(`serving.max_query_chars`\)"
    ):
        client.predict("tfrec", {"query_text": ["é" * 1001], "k": [1]}, signature_name="search")


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,  # past json's recursion limit
        b'{"inputs": {"user_id": ' + b"[" * 600 + b"]" * 600 + b"}}",  # past Python's stack
        b'{"inputs": {"user_id": [["a"], ' + b"[" * 600 + b"]" * 600 + b"]}}",  # not first
    ],
    ids=["json", "walk", "second-element"],
)
def test_deeply_nested_json_is_400_with_a_json_error(server, body):
    code, content_type, raw = _rest(server, "POST", "/v1/models/tfrec:predict", body)
    assert code == 400
    assert content_type == "application/json"
    assert "nested" in _json_error(raw)


@pytest.mark.parametrize(
    "raw",
    [b"\xff" * 64, b"\x0a\x05garbage", bytes(range(256))],
    ids=["ff", "truncated", "bytes"],
)
def test_undecodable_grpc_bytes_are_invalid_argument(server, raw):
    for method in (
        "/tensorflow.serving.PredictionService/Predict",
        "/tensorflow.serving.PredictionService/GetModelMetadata",
        "/tensorflow.serving.ModelService/GetModelStatus",
    ):
        with pytest.raises(grpc.RpcError) as caught:
            _grpc_raw(server, raw, method)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
        assert "`request`: expected a serialized" in caught.value.details()


@pytest.mark.parametrize(
    "method,path",
    [
        ("PUT", "/v1/models/tfrec:predict"),
        ("DELETE", "/v1/models/tfrec"),
        ("PATCH", "/v1/models/tfrec/metadata"),
        ("GET", "/v1/models/tfrec:predict"),
        ("POST", "/v1/models/tfrec"),
    ],
)
def test_wrong_methods_are_405_with_a_json_body(server, method, path):
    code, content_type, raw = _rest(server, method, path, b"{}")
    assert code == 405
    assert content_type == "application/json"
    assert _json_error(raw).startswith("`method`: expected")


def test_malformed_http_gets_a_json_error(server):
    host, port = server.rest_target.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        headers = b"".join(b"X-%d: 1\r\n" % i for i in range(200))  # http.server allows 100
        sock.sendall(b"GET /v1/models/tfrec HTTP/1.1\r\n" + headers + b"\r\n")
        reply = sock.makefile("rb").read()
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431"), head
    assert b"application/json" in head
    assert _json_error(body)


def _reset(sock: socket.socket) -> None:
    # SO_LINGER 0: close() sends RST, like a client process that died.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_client_disconnects_are_quiet_and_counted(tfrec_toy, start_server, capfd):
    params = batching.BatchingParameters(batch_timeout_micros=300_000)
    server = start_server(tfrec_toy, batching_parameters=params)
    host, port = server.rest_target.split(":")
    body = _recommend_body()
    head = (
        f"POST /v1/models/tfrec:predict HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    # 1) The body stops half-way. 2) The client leaves while its request waits for a batch.
    for payload in (head + body[: len(body) // 2], head + body):
        sock = socket.create_connection((host, int(port)), timeout=10)
        sock.sendall(payload)
        time.sleep(0.1)
        _reset(sock)
    deadline = time.monotonic() + 10
    while server.metrics.disconnects("rest") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.metrics.disconnects("rest") == 2
    assert 'disconnects_total{protocol="rest"} 2.0' in server.metrics.render()
    err = capfd.readouterr().err
    assert "Traceback" not in err and "BrokenPipe" not in err and "ConnectionReset" not in err
    out = Client(server.rest_target, "rest").predict("tfrec", request(), "recommend")
    assert out["scores"][0].tolist() == [22.0, 21.0, 20.0, 19.0, 18.0]


def test_idle_keep_alive_connections_time_out(tfrec_toy, start_server):
    server = start_server(tfrec_toy, request_limits=limits.RequestLimits(idle_timeout_seconds=0.5))
    host, port = server.rest_target.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    conn.request("GET", "/v1/models/tfrec")
    response = conn.getresponse()
    assert response.status == 200 and not response.will_close  # a keep-alive connection
    response.read()
    began = time.monotonic()
    assert conn.sock.recv(1) == b""  # the server closed it
    assert 0.3 < time.monotonic() - began < 3
    conn.close()
