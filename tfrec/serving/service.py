"""The protocol-neutral core of the server: Predict, GetModelMetadata and GetModelStatus."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Optional, Union

import numpy as np
from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2

from tfrec.serving import batching, limits, status, tensors
from tfrec.serving import metrics as metrics_lib
from tfrec.serving import request_log as request_log_lib
from tfrec.serving.servable import DEFAULT_SIGNATURE

_STATES = get_model_status_pb2.ModelVersionStatus.State


@dataclasses.dataclass
class PredictResult:
    version: int
    signature_name: str
    outputs: dict  # output name -> np.ndarray


@dataclasses.dataclass
class RequestRecord:
    """What the front ends tell the metrics about one Predict request."""

    protocol: str
    model: str = ""
    signature: str = ""
    status: str = "OK"


def to_dict(message) -> dict:
    """A proto as JSON-ready data the way TF Serving's REST API prints it."""
    return json_format.MessageToDict(
        message, always_print_fields_with_no_presence=True, preserving_proto_field_name=True
    )


class PredictionService:
    """Answers requests from a ModelStore, optionally through a Batcher.

    Args:
        store: ModelStore. The served models.
        batcher: Batcher or None. Merges concurrent Predict calls; None runs each alone.
        metrics: Metrics or None. Where requests and batch sizes are counted; None makes one.
        request_limits: RequestLimits or None. Checked on every request's values (`k`,
            history widths, query length); None uses the defaults.
        request_log: RequestLogger or None. Where the front ends log sampled Predict calls
            and outcomes; None: nothing is logged.
    """

    def __init__(
        self,
        store,
        batcher=None,
        metrics: Optional[metrics_lib.Metrics] = None,
        request_limits: Optional[limits.RequestLimits] = None,
        request_log: Optional[request_log_lib.RequestLogger] = None,
    ):
        self.store = store
        self.batcher = batcher
        self.metrics = metrics or metrics_lib.Metrics(store.version_states)
        self.limits = request_limits or limits.RequestLimits()
        self.request_log = request_log

    def log_predict(self, request_id: str, protos: Callable[[], tuple]) -> None:
        """Logs an answered Predict call if logging is on and the call is sampled.

        Args:
            request_id: str. The id returned to the client.
            protos: callable returning (PredictRequest, PredictResponse), called later on the
                log writer's thread.
        """
        if self.request_log is not None and self.request_log.sampled():
            self.request_log.log_predict(request_id, protos)

    def predict(
        self,
        name: str,
        inputs: Union[Mapping[str, np.ndarray], Callable[[object], Mapping[str, np.ndarray]]],
        signature_name: str = "",
        version: Optional[int] = None,
        label: Optional[str] = None,
        output_filter: Sequence[str] = (),
    ) -> PredictResult:
        """Runs one Predict request; raises ServingError naming the faulty field.

        `inputs` may be a function of the SignatureDef returning the arrays (REST reads JSON
        by the declared dtypes), so the signature and the run use the same model version.
        """
        signature_name = signature_name or DEFAULT_SIGNATURE
        with self.store.use(name, version, label) as servable:
            signature = servable.signature(signature_name)
            if callable(inputs):
                inputs = inputs(signature)
            tensors.check_inputs(signature_name, signature, inputs)
            self.limits.check_values(inputs, servable.catalog_size)
            wanted = tensors.check_output_filter(signature_name, signature, output_filter)
            if self.batcher is not None:
                outputs = self.batcher.run(servable, signature_name, signature, inputs)
            else:
                outputs = servable.run(signature_name, inputs)
                rows = batching.batch_rows(signature, inputs)
                if rows is not None:
                    self.metrics.observe_batch(name, signature_name, rows)
            return PredictResult(servable.version, signature_name, {k: outputs[k] for k in wanted})

    @contextlib.contextmanager
    def track(self, protocol: str) -> Iterator[RequestRecord]:
        """Times a Predict request; the front end fills in the record's model, signature, status.

        Label values are kept only for served models and signatures, so clients cannot grow the
        metrics without bound with made-up names.
        """
        record = RequestRecord(protocol)
        began = time.perf_counter()
        try:
            yield record
        finally:
            seconds = time.perf_counter() - began
            signature = record.signature or DEFAULT_SIGNATURE
            known = self.store.has_signature(record.model, signature)
            model = record.model if known or record.model in self.store.model_names() else ""
            self.metrics.observe_request(
                model, signature if known else "", protocol, record.status, seconds
            )

    def signature_outputs(self, name, signature_name="", version=None, label=None) -> list:
        """Output names of a signature, in SignatureDef order (REST needs them for rows)."""
        with self.store.use(name, version, label) as servable:
            return list(servable.signature(signature_name or DEFAULT_SIGNATURE).outputs)

    def metadata(
        self, name: str, version=None, label=None, fields: Sequence[str] = ("signature_def",)
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        """GetModelMetadata: the SignatureDefMap packed in an Any under `signature_def`."""
        if not fields:
            raise status.invalid("`metadata_field`: expected at least one field, received none")
        for field in fields:
            if field != "signature_def":
                raise status.invalid(
                    f"`metadata_field`: expected 'signature_def', received {field!r}"
                )
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        with self.store.use(name, version, label) as servable:
            signature_map = get_model_metadata_pb2.SignatureDefMap()
            for key, value in servable.signature_defs.items():
                signature_map.signature_def[key].CopyFrom(value)
            response.model_spec.name = name
            response.model_spec.version.value = servable.version
        response.metadata["signature_def"].Pack(signature_map)
        return response

    def metadata_json(self, name: str, version=None, label=None) -> dict:
        """The REST shape of GetModelMetadata (the Any unpacked, as TF Serving prints it)."""
        response = self.metadata(name, version, label)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signature_map)
        spec = to_dict(response.model_spec)
        return {"model_spec": spec, "metadata": {"signature_def": to_dict(signature_map)}}

    def status(self, name: str, version=None, label=None):
        """GetModelStatus: each version's state and load error."""
        response = get_model_status_pb2.GetModelStatusResponse()
        for state in self.store.status(name, version, label):
            entry = response.model_version_status.add()
            entry.version = state.version
            entry.state = _STATES.Value(state.state)
            codes = entry.status.DESCRIPTOR.fields_by_name["error_code"].enum_type
            entry.status.error_code = codes.values_by_name[state.error_code].number
            entry.status.error_message = state.error_message
        return response
