"""The logged form of a Predict call: a PredictionLog with tfrec's request id and time.

Each record is a `tensorflow_serving.apis.prediction_log_pb2.PredictionLog` whose `predict_log`
holds the request (user ids pseudonymised) and the response the client received, and whose
`log_metadata` names the model, the version that answered, the signature, the sampling rate
and the serving time (`timestamp_secs`). tfrec adds three inputs to the logged copy of the
request; their names hold a `/`, which no input of a SavedModel exported from Python can
(input names are argument names), so they never clash with a model input:

    tfrec/request_id [1] string: the request id returned to the client (`x-request-id`).
    tfrec/served_at_us [1] int64: when the answer was produced, microseconds since the epoch.
    tfrec/user_ids [1] string: how `user_id` values were logged, `raw` or
        `hmac-sha256:<key fingerprint>`.

Drop the inputs starting with `tfrec/` before replaying a logged request to a model (for
example as a warmup record).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Optional

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

from tfrec import request_schema
from tfrec.serving import tensors

PREFIX = "tfrec/"
REQUEST_ID = PREFIX + "request_id"
SERVED_AT_US = PREFIX + "served_at_us"
USER_IDS = PREFIX + "user_ids"
RAW = "raw"
USER_ID = request_schema.USER_ID.name
ITEM_IDS = "item_ids"  # the output of the returned lists (`retrieve`, `recommend`)


def request_from_arrays(
    model: str,
    signature_name: str,
    inputs: Mapping[str, np.ndarray],
    version: Optional[int] = None,
    label: Optional[str] = None,
) -> predict_pb2.PredictRequest:
    """The PredictRequest equivalent to a REST request's decoded inputs."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature_name
    if version is not None:
        request.model_spec.version.value = version
    elif label is not None:
        request.model_spec.version_label = label
    for key, value in inputs.items():
        request.inputs[key].CopyFrom(tensors.to_proto(np.asarray(value)))
    return request


def response_from_arrays(
    model: str, version: int, signature_name: str, outputs: Mapping[str, np.ndarray]
) -> predict_pb2.PredictResponse:
    """The PredictResponse carrying the outputs a REST client received."""
    response = predict_pb2.PredictResponse()
    response.model_spec.name = model
    response.model_spec.version.value = version
    response.model_spec.signature_name = signature_name
    for key, value in outputs.items():
        response.outputs[key].CopyFrom(tensors.to_proto(np.asarray(value)))
    return response


def build(
    request: predict_pb2.PredictRequest,
    response: predict_pb2.PredictResponse,
    *,
    request_id: str,
    served_at: float,
    sample_rate: float,
    pseudonymise: Optional[Callable[[bytes], bytes]] = None,
    scheme: str = RAW,
) -> prediction_log_pb2.PredictionLog:
    """One log record; `request` and `response` are copied, never changed.

    Args:
        request: PredictRequest. As received (gRPC) or rebuilt from JSON (REST).
        response: PredictResponse. As sent; its model_spec names the version that answered.
        request_id: str. The id returned to the client.
        served_at: float. Seconds since the epoch when the answer was produced.
        sample_rate: float. The sampling rate the record was drawn with.
        pseudonymise: callable of bytes to bytes, or None. Applied to every `user_id` value.
        scheme: str. How user ids were logged (`raw` or `hmac-sha256:<fingerprint>`).

    Returns:
        PredictionLog.
    """
    record = prediction_log_pb2.PredictionLog()
    logged = record.predict_log.request
    logged.CopyFrom(request)
    record.predict_log.response.CopyFrom(response)
    if pseudonymise is not None and USER_ID in logged.inputs:
        _pseudonymise(logged.inputs[USER_ID], pseudonymise)
    logged.inputs[REQUEST_ID].CopyFrom(tf.make_tensor_proto([request_id.encode("utf-8")]))
    logged.inputs[SERVED_AT_US].CopyFrom(
        tf.make_tensor_proto([round(served_at * 1e6)], dtype=tf.int64)
    )
    logged.inputs[USER_IDS].CopyFrom(tf.make_tensor_proto([scheme.encode("ascii")]))
    metadata = record.log_metadata
    metadata.model_spec.CopyFrom(response.model_spec)
    if not metadata.model_spec.signature_name:
        metadata.model_spec.signature_name = request.model_spec.signature_name
    metadata.sampling_config.sampling_rate = sample_rate
    metadata.timestamp_secs = int(served_at)
    return record


def _pseudonymise(proto, pseudonymise: Callable[[bytes], bytes]) -> None:
    if proto.dtype == types_pb2.DT_STRING:
        # In place: a repeated string value maps to the same pseudonym, shape unchanged.
        for i, value in enumerate(proto.string_val):
            proto.string_val[i] = pseudonymise(value)
        return
    values = tf.make_ndarray(proto)  # numeric ids: pseudonyms of their decimal text
    out = np.array([pseudonymise(str(v).encode("ascii")) for v in values.reshape(-1)], object)
    proto.CopyFrom(tf.make_tensor_proto(out.reshape(values.shape), dtype=tf.string))


@dataclasses.dataclass
class Entry:
    """What `tfrec logs stats` reads from one record.

    Attributes:
        request_id: str.
        served_at: float. Seconds since the epoch.
        model: str.
        version: int.
        signature: str.
        sample_rate: float.
        user_scheme: str. `raw` or `hmac-sha256:<key fingerprint>`.
        user_ids: list of bytes. The logged `user_id` values, one per row (empty if none).
        lists: list of list of str. The returned `item_ids` per row, padding dropped.
    """

    request_id: str
    served_at: float
    model: str
    version: int
    signature: str
    sample_rate: float
    user_scheme: str
    user_ids: list
    lists: list


def parse(record: prediction_log_pb2.PredictionLog) -> Entry:
    """Reads a record written by `build`.

    Raises:
        ValueError: naming the field (`predict_log.request.inputs[...]`, ...) that is missing
            or malformed.
    """
    if record.WhichOneof("log_type") != "predict_log":
        raise ValueError(
            f"`log_type`: expected predict_log, received {record.WhichOneof('log_type')}"
        )
    inputs = record.predict_log.request.inputs
    for name in (REQUEST_ID, SERVED_AT_US, USER_IDS):
        if name not in inputs:
            raise ValueError(
                f"`predict_log.request.inputs[{name!r}]`: expected tfrec's logged input, "
                "received none (not written by `tfrec serve --log-dir`)"
            )
    try:
        request_id = _first(inputs[REQUEST_ID]).decode("utf-8")
        served_at = int(_first(inputs[SERVED_AT_US])) / 1e6
        scheme = _first(inputs[USER_IDS]).decode("ascii")
        users = (
            [_as_bytes(v) for v in tf.make_ndarray(inputs[USER_ID]).reshape(-1)]
            if USER_ID in inputs
            else []
        )
        lists = _lists(record.predict_log.response.outputs)
    except (TypeError, ValueError, UnicodeDecodeError, IndexError) as e:
        raise ValueError(f"`predict_log.request.inputs`: unreadable tfrec inputs ({e})") from e
    spec = record.log_metadata.model_spec
    return Entry(
        request_id=request_id,
        served_at=served_at,
        model=spec.name,
        version=spec.version.value,
        signature=spec.signature_name,
        sample_rate=record.log_metadata.sampling_config.sampling_rate,
        user_scheme=scheme,
        user_ids=users,
        lists=lists,
    )


def _first(proto):
    return tf.make_ndarray(proto).reshape(-1)[0]


def _as_bytes(value) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


def _lists(outputs) -> list:
    if ITEM_IDS not in outputs:
        return []
    array = tf.make_ndarray(outputs[ITEM_IDS])
    if array.ndim == 1:
        array = array[None]
    rows = array.reshape(array.shape[0], -1)
    return [[_as_bytes(v).decode("utf-8", "replace") for v in row if v] for row in rows]
