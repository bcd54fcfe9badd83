"""Hypothesis fuzzing of the request decoders (functions, not sockets): 4xx or bounded arrays."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, configuration, example, given, settings
from hypothesis import strategies as st
from tensorflow_serving.apis import predict_pb2

from tests.adversarial.conftest import request
from tfrec.serving import ServingError, grpc_server, limits, rest_json, servable

# Hypothesis caches under its home folder; keep it out of the working tree.
configuration.set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "tfrec-hypothesis")
LIMITS = limits.RequestLimits(max_rows=8, max_history=8, max_string_bytes=64)
FIELDS = list(request())
SETTINGS = settings(
    max_examples=200,
    deadline=2000,
    database=None,  # failures print their example; nothing is stored
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def signature(tfrec_toy):
    return servable.read_signature_defs(tfrec_toy / "tfrec" / "1")["recommend"]


def _bounded(inputs: dict) -> None:
    """Every decoded array is within the limits, whatever the request declared."""
    for name, array in inputs.items():
        assert isinstance(array, np.ndarray), name
        if array.ndim:
            assert array.shape[0] <= LIMITS.max_rows
            assert all(d <= LIMITS.max_history for d in array.shape[1:])
        assert array.size <= LIMITS.max_rows * LIMITS.max_history
        if array.dtype.kind == "O":
            assert all(len(v) <= LIMITS.max_string_bytes for v in array.reshape(-1))


def _refused_as_client_error(error: ServingError) -> None:
    assert error.code == "INVALID_ARGUMENT", error
    assert 400 <= error.http_status < 500


scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=80)
json_values = st.recursive(
    scalars | st.fixed_dictionaries({"b64": st.text(max_size=12)}),
    lambda children: (
        st.lists(children, max_size=12)
        | st.dictionaries(st.sampled_from([*FIELDS, "x"]), children, max_size=4)
    ),
    max_leaves=60,
)
bodies = st.fixed_dictionaries(
    {},
    optional={
        "signature_name": st.sampled_from(["recommend", "", 3]),
        "inputs": json_values | st.dictionaries(st.sampled_from(FIELDS), json_values),
        "instances": st.lists(st.dictionaries(st.sampled_from(FIELDS), json_values), max_size=12)
        | json_values,
    },
)


@SETTINGS
@given(body=bodies | json_values)
@example(body={"inputs": {"user_id": {"b64": "\x80"}}})  # once a 500: non-ASCII base64
def test_rest_json_decoder(signature, body):
    raw = json.dumps(body).encode()
    try:
        decoded = rest_json.decode_body(raw)
        inputs, _ = rest_json.parse_predict(decoded, signature, LIMITS)
    except ServingError as e:
        _refused_as_client_error(e)
        return
    _bounded(inputs)


@SETTINGS
@given(raw=st.binary(max_size=300))
def test_rest_raw_bytes(signature, raw):
    try:
        inputs, _ = rest_json.parse_predict(rest_json.decode_body(raw), signature, LIMITS)
    except ServingError as e:
        _refused_as_client_error(e)
        return
    _bounded(inputs)


dtypes = st.sampled_from([0, 1, 3, 7, 9, 10, 19, 20, 21, 100, 2**20])
tensor_protos = st.builds(
    dict,
    dtype=dtypes,
    dims=st.lists(st.integers(-2, 2**40), max_size=4),
    strings=st.lists(st.binary(max_size=100), max_size=20),
    ints=st.lists(st.integers(-(2**31), 2**31 - 1), max_size=20),
    content=st.binary(max_size=64),
)


def _request_bytes(tensors: dict) -> bytes:
    message = predict_pb2.PredictRequest()
    message.model_spec.name = "tfrec"
    for name, spec in tensors.items():
        proto = message.inputs[name]
        proto.dtype = spec["dtype"]
        for size in spec["dims"]:
            proto.tensor_shape.dim.add(size=size)
        proto.string_val.extend(spec["strings"])
        proto.int_val.extend(spec["ints"])
        proto.tensor_content = spec["content"]
    return message.SerializeToString()


@SETTINGS
@given(tensors=st.dictionaries(st.sampled_from(FIELDS), tensor_protos, max_size=3))
def test_grpc_request_decoder(tensors):
    try:
        _, inputs = grpc_server.decode_predict(_request_bytes(tensors), LIMITS)
    except ServingError as e:
        _refused_as_client_error(e)
        return
    _bounded(inputs)


@SETTINGS
@given(raw=st.binary(max_size=300))
def test_grpc_raw_bytes(raw):
    try:
        _, inputs = grpc_server.decode_predict(raw, LIMITS)
    except ServingError as e:
        _refused_as_client_error(e)
        return
    _bounded(inputs)
