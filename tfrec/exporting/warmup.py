"""Warmup requests: one PredictionLog per signature, replayed by the server before going live."""

from __future__ import annotations

import datetime
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

from tfrec import request_schema
from tfrec.ranking import requests

WARMUP_FILE = "assets.extra/tf_serving_warmup_requests"


# The two rows' request times: Wednesday 12:00 and Sunday 00:00 UTC of the first week of 2024.
_TIMES = (datetime.datetime(2024, 1, 3, 12), datetime.datetime(2024, 1, 7, 0))


def sample_requests(
    signatures: Sequence[str],
    users: Sequence[str],
    item_ids: Sequence[str],
    with_text: bool,
    k: int = 5,
) -> dict:
    """Two-row requests per signature: a known user with history, an unknown one without.

    The rows differ on purpose (history length, `k`, `exclude_recent`, time), so warmup also
    exercises padding and per-row k. Built by `tfrec.ranking.requests`, so they have the
    inputs of `tfrec.request_schema`.

    Args:
        signatures: list of str. Signature names of the module (retrieve, rank, recommend).
        users: list of str. Known user ids (the first is used).
        item_ids: list of str. Index item ids (the first few are used).
        with_text: bool. Whether retrieve and recommend take `query_text`.
        k: int. `k` of the first row (the second asks for 1). Defaults to 5.

    Returns:
        dict signature name -> dict input name -> np.ndarray.
    """
    items = [str(i) for i in list(item_ids)[:3]]
    items += [items[-1]] * (3 - len(items))
    known = users[0] if len(users) else "u"
    rows = [
        requests.build(
            known,
            [(items[0], "view"), (items[1], "cart")],
            _TIMES[0],
            k,
            exclude_recent=True,
            query_text=items[0] if with_text else None,
        ),
        requests.build(
            "__warmup_unknown__",
            [(items[2], "view")],
            _TIMES[1],
            1,
            query_text="" if with_text else None,
        ),
    ]
    query = requests.stack(rows)
    found = {}
    for name in signatures:
        if name == request_schema.RANK:
            context = {i.name: query[i.name] for i in request_schema.CONTEXT}
            found[name] = dict(
                context, **{request_schema.ITEM_IDS.name: np.array([items, items], object)}
            )
        elif name in (request_schema.RETRIEVE, request_schema.RECOMMEND):
            found[name] = query
    return found


def write_records(
    path: os.PathLike | str, model_name: str, requests: Mapping[str, Mapping[str, np.ndarray]]
) -> None:
    """Writes `requests` as PredictionLog TFRecords (TF Serving's warmup file format)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for signature_name, inputs in requests.items():
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature_name)
            )
            for key, value in inputs.items():
                request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(log.SerializeToString())
