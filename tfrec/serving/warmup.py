"""Replays `assets.extra/tf_serving_warmup_requests` on a version before it goes live."""

from __future__ import annotations

import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from tfrec import errors
from tfrec.serving import status, tensors

WARMUP_FILE = "assets.extra/tf_serving_warmup_requests"
MAX_WARMUP_RECORDS = 1000  # TF Serving's own cap on warmup records


def run(servable, iterations: int = 1) -> int:
    """Runs every warmup PredictLog through `servable`.

    Args:
        servable: Servable. The freshly loaded version.
        iterations: int. Times each record is replayed. Defaults to 1.

    Returns:
        int. The number of records replayed (0 when the version has no warmup file).

    Raises:
        TfrecError: naming the record when it is not a PredictLog or does not fit its signature;
            the version then does not go live, as in TF Serving.
    """
    path = servable.path / WARMUP_FILE
    if not path.is_file():
        return 0
    count = 0
    for index, raw in enumerate(tf.data.TFRecordDataset(str(path)).as_numpy_iterator()):
        if index >= MAX_WARMUP_RECORDS:
            raise errors.TfrecError(
                f"`{WARMUP_FILE}`: expected at most {MAX_WARMUP_RECORDS} records, received more"
            )
        log = prediction_log_pb2.PredictionLog()
        log.ParseFromString(raw)
        kind = log.WhichOneof("log_type")
        if kind != "predict_log":
            raise errors.TfrecError(
                f"`{WARMUP_FILE}` record {index}: expected `predict_log`, received `{kind}`"
            )
        request = log.predict_log.request
        name = request.model_spec.signature_name
        try:
            signature = servable.signature(name)
            inputs = {k: tensors.from_proto(k, v) for k, v in request.inputs.items()}
            tensors.check_inputs(name or "serving_default", signature, inputs)
            for _ in range(max(1, iterations)):
                servable.run(name, inputs)
        except status.ServingError as e:
            raise errors.TfrecError(f"`{WARMUP_FILE}` record {index}: {e.message}") from e
        count += 1
    return count
