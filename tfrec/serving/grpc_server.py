"""The gRPC front end: PredictionService (Predict, GetModelMetadata) and ModelService status."""

from __future__ import annotations

import logging
from concurrent import futures

import grpc
from google.protobuf import message as message_lib
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2, predict_pb2

from tfrec.serving import limits, request_id, status, tensors

log = logging.getLogger(__name__)

PREDICTION_SERVICE = "tensorflow.serving.PredictionService"
MODEL_SERVICE = "tensorflow.serving.ModelService"


def model_spec_args(spec) -> dict:
    """Name, version and label of a ModelSpec as keyword arguments for the service."""
    if not spec.name:
        raise status.invalid("`model_spec.name`: expected a model name, received ''")
    choice = spec.WhichOneof("version_choice")
    return {
        "name": spec.name,
        "version": spec.version.value if choice == "version" else None,
        "label": spec.version_label if choice == "version_label" else None,
    }


def parse(raw: bytes, message_type, request_limits: limits.RequestLimits):
    """A request message from its bytes; too large or undecodable is INVALID_ARGUMENT."""
    request_limits.check_request_bytes(len(raw))
    message = message_type()
    try:
        message.ParseFromString(raw)
    except (message_lib.DecodeError, RecursionError) as e:
        raise status.invalid(
            f"`request`: expected a serialized {message_type.DESCRIPTOR.name}, received "
            f"{len(raw)} undecodable bytes ({e})"
        ) from e
    return message


def decode_predict(raw: bytes, request_limits: limits.RequestLimits) -> tuple:
    """A PredictRequest and its inputs as arrays, each checked against the limits first.

    Returns:
        (PredictRequest, dict of str to np.ndarray).
    """
    request = parse(raw, predict_pb2.PredictRequest, request_limits)
    inputs = {k: tensors.from_proto(k, v, request_limits) for k, v in request.inputs.items()}
    return request, inputs


class _Handlers:
    """RPC bodies. Requests arrive as raw bytes so oversized ones get a clear INVALID_ARGUMENT."""

    def __init__(self, service, request_limits: limits.RequestLimits):
        self.service = service
        self.limits = request_limits

    def _parse(self, raw: bytes, message_type):
        return parse(raw, message_type, self.limits)

    def _call(self, body, raw, context, message_type, record=None):
        try:
            return body(self._parse(raw, message_type))
        except status.ServingError as e:
            if record is not None:
                record.status = e.code
            context.abort(grpc.StatusCode[e.code], e.message)
        except Exception as e:  # noqa: BLE001 (the server keeps serving; the caller sees why)
            log.exception("gRPC request failed")
            if record is not None:
                record.status = "INTERNAL"
            context.abort(grpc.StatusCode.INTERNAL, f"{type(e).__name__}: {e}")

    def predict(self, raw, context):
        with self.service.track("grpc") as record:
            response = self._call(
                lambda request: self._predict(request, record, context),
                raw,
                context,
                predict_pb2.PredictRequest,
                record,
            )
        if not context.is_active():  # the client went away before its answer: count it
            self.service.metrics.observe_disconnect("grpc")
        return response

    def _predict(self, request, record, context):
        record.model = request.model_spec.name
        record.signature = request.model_spec.signature_name
        sent = dict(context.invocation_metadata() or ()).get(request_id.HEADER)
        rid = request_id.resolve(sent)
        # Initial metadata reaches the client with an error status too.
        context.send_initial_metadata(((request_id.HEADER, rid),))
        inputs = {k: tensors.from_proto(k, v, self.limits) for k, v in request.inputs.items()}
        result = self.service.predict(
            inputs=inputs,
            signature_name=request.model_spec.signature_name,
            output_filter=list(request.output_filter),
            **model_spec_args(request.model_spec),
        )
        response = predict_pb2.PredictResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = result.version
        response.model_spec.signature_name = result.signature_name
        for key, value in result.outputs.items():
            response.outputs[key].CopyFrom(tensors.to_proto(value))
        self.service.log_predict(rid, lambda: (request, response))
        return response

    def metadata(self, raw, context):
        return self._call(
            self._metadata, raw, context, get_model_metadata_pb2.GetModelMetadataRequest
        )

    def _metadata(self, request):
        return self.service.metadata(
            fields=list(request.metadata_field), **model_spec_args(request.model_spec)
        )

    def status(self, raw, context):
        return self._call(self._status, raw, context, get_model_status_pb2.GetModelStatusRequest)

    def _status(self, request):
        return self.service.status(**model_spec_args(request.model_spec))


def _unary(fn):
    return grpc.unary_unary_rpc_method_handler(
        fn, request_deserializer=None, response_serializer=lambda m: m.SerializeToString()
    )


def build(
    service, host: str, port: int, request_limits: limits.RequestLimits, max_workers: int = 16
):
    """A started gRPC server on `host:port` (0 picks a free port).

    Returns:
        (grpc.Server, int): the server and the port it bound.
    """
    handlers = _Handlers(service, request_limits)
    max_message_bytes = request_limits.max_request_bytes
    # The transport cut-off sits above the checked limit so that moderately oversized requests
    # reach the handler and get INVALID_ARGUMENT naming the limit; huge ones are cut earlier
    # with RESOURCE_EXHAUSTED without being buffered.
    transport = min(2 * max_message_bytes + (1 << 20), 2**31 - 1)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="grpc"),
        options=[
            ("grpc.max_receive_message_length", transport),
            # Replies are bounded by the request limits (rows x k), not by the request size.
            ("grpc.max_send_message_length", 2**31 - 1),
            ("grpc.so_reuseport", 0),
        ],
    )
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                PREDICTION_SERVICE,
                {
                    "Predict": _unary(handlers.predict),
                    "GetModelMetadata": _unary(handlers.metadata),
                },
            ),
            grpc.method_handlers_generic_handler(
                MODEL_SERVICE, {"GetModelStatus": _unary(handlers.status)}
            ),
        )
    )
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    bound = server.add_insecure_port(address)
    if bound == 0:
        raise OSError(f"gRPC could not bind {host}:{port}")
    server.start()
    return server, bound
