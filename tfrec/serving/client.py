"""`Client`: Predict, metadata and status over gRPC or REST with the same results from both."""

from __future__ import annotations

import base64
import http.client
import json
import threading
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Optional

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from tfrec import request_schema
from tfrec.serving import request_id as request_id_lib
from tfrec.serving import rest_json, status, tensors
from tfrec.serving.service import to_dict

_KINDS = {"string": "OSU", "int": "iu", "float": "iuf", "bool": "b"}
_REQUEST_ID = request_id_lib.HEADER


def _metadata_value(call, key: str) -> Optional[str]:
    try:
        pairs = call.initial_metadata() or ()
    except Exception:  # noqa: BLE001 (a call that failed before any metadata arrived)
        return None
    return next((v for k, v in pairs if k == key), None)


def _dtype(name: str) -> tf.DType:
    return tf.dtypes.as_dtype(types_pb2.DataType.Value(name))


def _dtype_kind(dtype: tf.DType) -> str:
    if dtype == tf.string:
        return "string"
    if dtype.is_bool:
        return "bool"
    return "int" if dtype.is_integer else "float"


class Client:
    """A client for TF Serving's API, spoken by `tfrec serve` and `tensorflow_model_server`.

    Inputs are cast to the dtypes the signature declares (read once from the model metadata),
    so plain lists work; values of an incompatible kind are sent as they are, and the server's
    error says which input is wrong. A scalar given for a per-row input (shape `[batch]`, such
    as tfrec's `k` and `exclude_recent`) is repeated once per row. When the request has a
    per-row `k`, `[batch, width]` outputs are cut to the request's largest k: a server that
    batched it with other requests answers the width of the whole batch (slots past a row's
    own k hold padding either way). Safe to share between threads.

    Args:
        host_port: str. `"127.0.0.1:8500"` for gRPC, `"127.0.0.1:8501"` for REST.
        protocol: str. `"grpc"` or `"rest"`. Defaults to `"grpc"`.
        timeout_s: float. Per-request deadline. Defaults to 30.
        max_message_bytes: int. Largest gRPC message sent or received. Defaults to 64 MiB.

    Example:
        >>> client = Client("127.0.0.1:8500")
        >>> client.predict("ranker", {"query": ["red shoes"]})["scores"]
    """

    def __init__(
        self,
        host_port: str,
        protocol: str = "grpc",
        timeout_s: float = 30.0,
        max_message_bytes: int = 64 << 20,
    ):
        if protocol not in ("grpc", "rest"):
            raise ValueError(f"`protocol` must be 'grpc' or 'rest', received {protocol!r}")
        self.host_port = host_port
        self.protocol = protocol
        self.timeout_s = timeout_s
        self._signatures: dict = {}
        self._local = threading.local()
        if protocol == "grpc":
            options = [
                ("grpc.max_send_message_length", max_message_bytes),
                ("grpc.max_receive_message_length", max_message_bytes),
            ]
            self._channel = grpc.insecure_channel(host_port, options=options)
            self._predict_stub = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
            self._model_stub = model_service_pb2_grpc.ModelServiceStub(self._channel)

    # -- public API ----------------------------------------------------------------------------

    def predict(
        self,
        model: str,
        inputs: Mapping[str, object],
        signature_name: str = "serving_default",
        version: Optional[int] = None,
        label: Optional[str] = None,
        output_filter: Sequence[str] = (),
        request_id: Optional[str] = None,
    ) -> dict:
        """Runs a signature; returns each output as a NumPy array (strings as bytes objects).

        `request_id` is sent as `x-request-id` (the server makes one when it is None); the id
        the server answered with is then `last_request_id`, the key for reporting outcomes.
        """
        signature = self._signature(model, signature_name, version, label)
        arrays = {k: self._cast(k, v, signature) for k, v in inputs.items()}
        arrays = _repeat_scalars(arrays, signature)
        outputs = self._send_predict(
            model, arrays, signature, signature_name, version, label, output_filter, request_id
        )
        return _trim_to_k(arrays, outputs)

    @property
    def last_request_id(self) -> Optional[str]:
        """The request id the server returned for this thread's last `predict` (or None)."""
        return getattr(self._local, "request_id", None)

    def report_outcomes(self, outcomes: Sequence[Mapping[str, object]]) -> int:
        """Sends outcomes (`request_id`, `item_id`, `event_type`, `timestamp`) to a server
        started with `--log-dir` (REST only); returns how many it accepted."""
        if self.protocol != "rest":
            raise ValueError("`report_outcomes` needs protocol 'rest' (POST /v1/outcomes)")
        reply = self._rest("POST", "/v1/outcomes", {"outcomes": list(outcomes)})
        return int(reply["accepted"])

    def metadata(self, model: str, version: Optional[int] = None, label=None) -> dict:
        """The model's SignatureDefs as JSON-style dicts, keyed by signature name."""
        if self.protocol == "grpc":
            request = get_model_metadata_pb2.GetModelMetadataRequest(
                metadata_field=["signature_def"]
            )
            self._fill_spec(request.model_spec, model, version, label)
            response = self._grpc(self._predict_stub.GetModelMetadata, request)
            signature_map = get_model_metadata_pb2.SignatureDefMap()
            response.metadata["signature_def"].Unpack(signature_map)
            return to_dict(signature_map).get("signature_def", {})
        reply = self._rest("GET", self._path(model, version, label) + "/metadata")
        return reply["metadata"]["signature_def"].get("signature_def", {})

    def status(self, model: str, version: Optional[int] = None, label=None) -> dict:
        """`{"model_version_status": [{"version", "state", "status"}, ...]}` as TF Serving."""
        if self.protocol == "grpc":
            request = get_model_status_pb2.GetModelStatusRequest()
            self._fill_spec(request.model_spec, model, version, label)
            return to_dict(self._grpc(self._model_stub.GetModelStatus, request))
        return self._rest("GET", self._path(model, version, label))

    def close(self) -> None:
        if self.protocol == "grpc":
            self._channel.close()
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- helpers -------------------------------------------------------------------------------

    def _send_predict(
        self, model, arrays, signature, signature_name, version, label, output_filter, request_id
    ) -> dict:
        if self.protocol == "grpc":
            request = predict_pb2.PredictRequest()
            self._fill_spec(request.model_spec, model, version, label)
            request.model_spec.signature_name = signature_name
            for key, array in arrays.items():
                request.inputs[key].CopyFrom(tensors.to_proto(array))
            request.output_filter.extend(output_filter)
            response = self._grpc(self._predict_stub.Predict, request, request_id)
            return {k: tf.make_ndarray(v) for k, v in response.outputs.items()}
        body = {
            "signature_name": signature_name,
            "inputs": {k: _to_json(v) for k, v in arrays.items()},
        }
        reply = self._rest("POST", self._path(model, version, label) + ":predict", body, request_id)
        outputs = reply["outputs"]
        declared = signature.get("outputs", {})
        if not isinstance(outputs, dict) or list(outputs) == ["b64"]:
            outputs = {next(iter(declared), "outputs"): outputs}
        result = {
            k: rest_json.json_to_output(v, _dtype(declared[k]["dtype"]) if k in declared else None)
            for k, v in outputs.items()
        }
        if output_filter:
            result = {k: result[k] for k in output_filter if k in result}
        return result

    def _signature(self, model, signature_name, version, label) -> dict:
        key = (model, signature_name, version, label)
        if key not in self._signatures:
            try:
                signatures = self.metadata(model, version, label)
            except status.ServingError:
                return {}  # predict itself reports the unknown model or version
            self._signatures[key] = signatures.get(signature_name, {})
        return self._signatures[key]

    @staticmethod
    def _cast(name: str, value, signature: dict) -> np.ndarray:
        info = signature.get("inputs", {}).get(name)
        if info is not None:
            dtype = _dtype(info["dtype"])
        elif name in request_schema.BY_NAME:
            # Undeclared: the server names it in its error. tfrec's inputs still get the request
            # schema's dtype, so that error is about the input, not about its values.
            dtype = tf.dtypes.as_dtype(request_schema.BY_NAME[name].dtype)
        else:
            return np.asarray(value)
        array = np.asarray(value)
        if dtype == tf.string:
            strings = tensors.to_string_array(value)
            if all(isinstance(v, bytes) for v in strings.reshape(-1)):
                return strings
            return array
        if array.dtype.kind in _KINDS[_dtype_kind(dtype)]:
            target = np.dtype(dtype.as_numpy_dtype)
            if array.size and target.kind in "iu" and array.dtype.kind in "iu":
                info = np.iinfo(target)
                if array.min() < info.min or array.max() > info.max:
                    return array  # a cast would wrap; the server names the field instead
            return array.astype(target)
        return array

    @staticmethod
    def _fill_spec(spec, model, version, label) -> None:
        spec.name = model
        if version is not None:
            spec.version.value = int(version)
        elif label is not None:
            spec.version_label = label

    def _grpc(self, method, request, request_id: Optional[str] = None):
        metadata = ((_REQUEST_ID, request_id),) if request_id else None
        try:
            response, call = method.with_call(request, timeout=self.timeout_s, metadata=metadata)
        except grpc.RpcError as e:
            self._local.request_id = _metadata_value(e, _REQUEST_ID)
            raise status.ServingError(e.code().name, e.details() or "") from None
        self._local.request_id = _metadata_value(call, _REQUEST_ID)
        return response

    @staticmethod
    def _path(model, version, label) -> str:
        path = "/v1/models/" + urllib.parse.quote(model, safe="")
        if version is not None:
            path += f"/versions/{int(version)}"
        elif label is not None:
            path += "/labels/" + urllib.parse.quote(label, safe="")
        return path

    def _rest(self, method: str, path: str, body=None, request_id: Optional[str] = None):
        data = None if body is None else json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json"} if data is not None else {}
        if request_id:
            headers[_REQUEST_ID] = request_id
        for attempt in range(2):
            conn = getattr(self._local, "conn", None)
            if conn is None:
                host, _, port = self.host_port.rpartition(":")
                conn = http.client.HTTPConnection(
                    host.strip("[]"), int(port), timeout=self.timeout_s
                )
                self._local.conn = conn
            try:
                conn.request(method, path, body=data, headers=headers)
                response = conn.getresponse()
                raw = response.read()
                self._local.request_id = response.getheader(_REQUEST_ID)
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # A keep-alive connection the server closed: retry once on a fresh one.
                conn.close()
                self._local.conn = None
                if attempt:
                    raise status.ServingError(
                        "UNAVAILABLE", f"{self.host_port} closed the connection"
                    ) from None
            except OSError as e:
                conn.close()
                self._local.conn = None
                raise status.ServingError("UNAVAILABLE", f"{self.host_port}: {e}") from None
        try:
            reply = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            reply = {"error": raw.decode("utf-8", "replace")[:500]}
        if response.status != 200:
            message = reply.get("error", "") if isinstance(reply, dict) else str(reply)
            raise status.ServingError(status.code_from_http(response.status), message)
        return reply


def _rows(info: dict) -> bool:
    """Whether a SignatureDef input (JSON form) has shape [batch]: one value per row."""
    shape = info.get("tensor_shape", {})
    dims = shape.get("dim", [])
    return not shape.get("unknown_rank") and len(dims) == 1 and int(dims[0]["size"]) < 0


def _repeat_scalars(arrays: dict, signature: dict) -> dict:
    # Callers written when `k` and `exclude_recent` (request_schema) were scalars keep working.
    declared = signature.get("inputs", {})
    sizes = {a.shape[0] for a in arrays.values() if a.ndim >= 1}
    if len(sizes) != 1:
        return arrays  # no rows to repeat for, or disagreeing ones: the server says which
    rows = sizes.pop()
    return {
        name: np.repeat(a[None], rows, axis=0)
        if a.ndim == 0 and name in declared and _rows(declared[name])
        else a
        for name, a in arrays.items()
    }


def _trim_to_k(inputs: dict, outputs: dict) -> dict:
    k = inputs.get(request_schema.K.name)
    if k is None or k.ndim != 1 or not k.size or k.dtype.kind not in "iu":
        return outputs
    width = max(int(k.max()), 0)
    return {
        # Every per-slot output, [b, w] or [b, w, ...] (explanations), is cut to the width.
        name: v[:, :width] if v.ndim >= 2 and v.shape[0] == len(k) else v
        for name, v in outputs.items()
    }


def _to_json(array: np.ndarray):
    if array.dtype.kind not in "OSU":
        return array.tolist()

    def walk(v):
        if isinstance(v, list):
            return [walk(x) for x in v]
        if isinstance(v, str):
            return v
        try:
            return v.decode("utf-8")
        except (UnicodeDecodeError, AttributeError):
            return {"b64": base64.b64encode(bytes(v)).decode("ascii")}

    return walk(array.tolist())
