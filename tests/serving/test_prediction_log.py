"""Prediction logging through a running server: records, request ids, sampling, full queue."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2, prediction_service_pb2_grpc

from tfrec import config as config_lib
from tfrec import errors
from tfrec.serving import Client, ServingError, prediction_log, pseudonym, rotating_file

WRITTEN = "tfrec_serving_log_records_written_total"
DROPPED = "tfrec_serving_log_records_dropped_total"


class Recs(tf.Module):
    """A recommender stand-in: row u gets ["i1", "i2", "<u>-x"] with scores [3, 2, 1]."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="user_id")])
    def recommend(self, user_id):
        rows = tf.shape(user_id)[0]
        fixed = tf.tile(tf.constant([["i1", "i2"]]), [rows, 1])
        own = tf.strings.join([user_id, "-x"])[:, None]
        return {
            "item_ids": tf.concat([fixed, own], axis=1),
            "scores": tf.tile(tf.constant([[3.0, 2.0, 1.0]]), [rows, 1]),
        }


@pytest.fixture(scope="module")
def recs_version(tmp_path_factory):
    path = tmp_path_factory.mktemp("recs") / "1"
    module = Recs()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.recommend})
    return path


@pytest.fixture
def recs_export(tmp_path, recs_version):
    import shutil

    base = tmp_path / "export"
    shutil.copytree(recs_version, base / "recs" / "1")
    return base


def _config(tmp_path, **kwargs) -> config_lib.PredictionLogConfig:
    kwargs.setdefault("key_file", str(tmp_path / "secret" / "log.key"))
    return config_lib.PredictionLogConfig(log_dir=str(tmp_path / "logs"), **kwargs)


def _records(folder) -> list:
    records = []
    for path in rotating_file.finished_files(folder, "predictions", ".tfrecord"):
        for raw in tf.data.TFRecordDataset(str(path)).as_numpy_iterator():
            records.append(prediction_log_pb2.PredictionLog.FromString(raw))
    return records


def test_grpc_and_rest_requests_are_logged_with_the_answers_sent(
    tmp_path, recs_export, start_server
):
    config = _config(tmp_path)
    server = start_server(recs_export, enable_batching=False, prediction_log=config)
    began = time.time()
    with Client(server.grpc_target) as grpc_client, Client(server.rest_target, "rest") as rest:
        sent_grpc = grpc_client.predict("recs", {"user_id": ["u1", "u2"]}, request_id="shop-42")
        assert grpc_client.last_request_id == "shop-42"
        sent_rest = rest.predict("recs", {"user_id": ["u3"]})
        rest_id = rest.last_request_id
    assert rest_id and len(rest_id) == 32  # generated: uuid4 hex
    server.stop()  # closes the open file: it is renamed into place
    folder = tmp_path / "logs"
    assert not list(folder.glob(".*")), "no temporary file is left"
    records = _records(folder)
    assert len(records) == 2
    key = bytes.fromhex((tmp_path / "secret" / "log.key").read_text())
    hashed = pseudonym.Pseudonymiser(key)
    by_id = {}
    for record in records:
        inputs = record.predict_log.request.inputs
        by_id[tf.make_ndarray(inputs[prediction_log.REQUEST_ID])[0].decode()] = record
        served_at = tf.make_ndarray(inputs[prediction_log.SERVED_AT_US])[0] / 1e6
        assert began <= served_at <= time.time()
        assert record.log_metadata.timestamp_secs == int(served_at)
        assert record.log_metadata.model_spec.name == "recs"
        assert record.log_metadata.model_spec.version.value == 1
        assert record.log_metadata.model_spec.signature_name == "serving_default"
        assert record.log_metadata.sampling_config.sampling_rate == 1.0
        scheme = tf.make_ndarray(inputs[prediction_log.USER_IDS])[0].decode()
        assert scheme == hashed.scheme
    assert set(by_id) == {"shop-42", rest_id}
    for request_id, users, sent in [("shop-42", [b"u1", b"u2"], sent_grpc), (rest_id, [b"u3"], sent_rest)]:  # fmt: skip
        record = by_id[request_id]
        logged_users = tf.make_ndarray(record.predict_log.request.inputs["user_id"]).tolist()
        assert logged_users == [hashed(u) for u in users]
        assert not set(logged_users) & set(users)  # the raw ids are nowhere
        assert b"u1" not in record.predict_log.request.SerializeToString()
        outputs = record.predict_log.response.outputs
        assert set(outputs) == set(sent)
        for name, value in sent.items():
            np.testing.assert_array_equal(tf.make_ndarray(outputs[name]), value)
    # The answers really are the model's: row u3 -> i1, i2, u3-x.
    assert sent_rest["item_ids"].tolist() == [[b"i1", b"i2", b"u3-x"]]
    assert server.metrics.value(WRITTEN, kind="prediction") == 2
    assert server.metrics.value("tfrec_serving_log_bytes_written_total", kind="prediction") > 0


def test_raw_user_ids_when_asked(tmp_path, recs_export, start_server):
    config = config_lib.PredictionLogConfig(log_dir=str(tmp_path / "logs"), raw_user_ids=True)
    server = start_server(recs_export, enable_batching=False, prediction_log=config)
    with Client(server.grpc_target) as client:
        client.predict("recs", {"user_id": ["u7"]})
    server.stop()
    (record,) = _records(tmp_path / "logs")
    inputs = record.predict_log.request.inputs
    assert tf.make_ndarray(inputs["user_id"]).tolist() == [b"u7"]
    assert tf.make_ndarray(inputs[prediction_log.USER_IDS]).tolist() == [b"raw"]


def test_request_id_round_trips_on_both_protocols_without_logging(toy_server):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "toy"
    request.inputs["query"].CopyFrom(tf.make_tensor_proto(["ab"]))
    request.inputs["item_ids"].CopyFrom(tf.make_tensor_proto([[1, 2]], dtype=tf.int64))
    with grpc.insecure_channel(toy_server.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        _, call = stub.Predict.with_call(request, metadata=(("x-request-id", "r-1"),), timeout=10)
        assert ("x-request-id", "r-1") in call.initial_metadata()
        _, call = stub.Predict.with_call(request, timeout=10)
        (generated,) = [v for k, v in call.initial_metadata() if k == "x-request-id"]
        assert len(generated) == 32
        with pytest.raises(grpc.RpcError) as caught:
            stub.Predict(request, metadata=(("x-request-id", "has space"),), timeout=10)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "`x-request-id`" in caught.value.details()
    body = json.dumps({"inputs": {"query": ["ab"], "item_ids": [[1, 2]]}}).encode()
    url = f"http://{toy_server.rest_target}/v1/models/toy:predict"
    reply = urllib.request.Request(url, data=body, headers={"x-request-id": "r-2"})
    with urllib.request.urlopen(reply, timeout=10) as response:
        assert response.headers["x-request-id"] == "r-2"
    with Client(toy_server.rest_target, "rest") as client:  # an error answer carries it too
        with pytest.raises(ServingError):
            client.predict("toy", {"query": ["a"]}, request_id="r-3")
        assert client.last_request_id == "r-3"


def test_sample_rate_zero_logs_nothing_and_a_seeded_rate_is_reproducible(
    tmp_path, recs_export, start_server
):
    server = start_server(
        recs_export, enable_batching=False, prediction_log=_config(tmp_path, sample_rate=0.0)
    )
    with Client(server.grpc_target) as client:
        for _ in range(5):
            client.predict("recs", {"user_id": ["u"]})
    server.stop()
    assert _records(tmp_path / "logs") == []
    # Same seed, same sequence of requests: the same ones are logged.
    logged = []
    for run in range(2):
        config = _config(tmp_path / str(run), sample_rate=0.5, sample_seed=7)
        server = start_server(recs_export, enable_batching=False, prediction_log=config)
        with Client(server.grpc_target) as client:
            for i in range(12):
                client.predict("recs", {"user_id": ["u"]}, request_id=f"r{i}")
        server.stop()
        logged.append(
            sorted(
                tf.make_ndarray(r.predict_log.request.inputs[prediction_log.REQUEST_ID])[0]
                for r in _records(tmp_path / str(run) / "logs")
            )
        )
    assert logged[0] == logged[1]
    assert 0 < len(logged[0]) < 12


def test_a_full_queue_drops_and_counts_without_blocking_requests(
    tmp_path, recs_export, start_server
):
    server = start_server(
        recs_export, enable_batching=False, prediction_log=_config(tmp_path, queue_size=2)
    )
    stream = server.request_log.predictions
    real_write = stream.write
    entered, release = threading.Event(), threading.Event()

    def slow_write(data):  # a disk that hangs
        entered.set()
        release.wait(30)
        return real_write(data)

    stream.write = slow_write
    answers = []
    with Client(server.grpc_target) as client:
        client.predict("recs", {"user_id": ["first"]})
        assert entered.wait(10)  # the writer holds the first record

        def send():
            for i in range(6):
                answers.append(client.predict("recs", {"user_id": [f"u{i}"]}))

        sender = threading.Thread(target=send)
        began = time.monotonic()
        sender.start()
        sender.join(10)
        elapsed = time.monotonic() - began
        release.set()  # a request path that waited for the disk would now finish: too late
        sender.join(10)
    assert elapsed < 1.5, f"requests waited for the log writer ({elapsed:.2f} s for 6)"
    assert [a["item_ids"].shape for a in answers] == [(1, 3)] * 6
    dropped = server.metrics.value(DROPPED, kind="prediction", reason="queue_full")
    assert dropped == 4  # two fit in the queue
    server.stop()
    assert len(_records(tmp_path / "logs")) == 3
    assert server.metrics.value(WRITTEN, kind="prediction") == 3


def test_a_failing_disk_drops_and_counts_and_requests_still_succeed(
    tmp_path, recs_export, start_server
):
    server = start_server(recs_export, enable_batching=False, prediction_log=_config(tmp_path))

    def broken(data):
        raise OSError(28, "No space left on device")

    server.request_log.predictions.write = broken
    with Client(server.grpc_target) as client:
        for _ in range(3):
            client.predict("recs", {"user_id": ["u"]})
    assert server.request_log.flush()
    assert server.metrics.value(DROPPED, kind="prediction", reason="write_error") == 3
    assert server.metrics.value(WRITTEN, kind="prediction") == 0


def _post(server, body, path="/v1/outcomes", method="POST"):
    request = urllib.request.Request(
        f"http://{server.rest_target}{path}", data=json.dumps(body).encode(), method=method
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_outcomes_endpoint_appends_valid_outcomes_and_names_the_bad_field(
    tmp_path, recs_export, start_server, toy_server
):
    server = start_server(recs_export, enable_batching=False, prediction_log=_config(tmp_path))
    good = {"request_id": "r1", "item_id": "i2", "event_type": "click", "timestamp": "2024-05-01T12:00:00Z"}  # fmt: skip
    assert _post(server, {"outcomes": [good, {**good, "event_type": "purchase", "timestamp": 1714564800}]}) == (200, {"accepted": 2})  # fmt: skip
    with Client(server.rest_target, "rest") as client:
        assert client.report_outcomes([{**good, "item_id": "i1"}]) == 1
    for body, field in [
        ({"outcomes": [good, {**good, "event_type": "like"}]}, "`outcomes[1].event_type`"),
        ({"outcomes": [{**good, "timestamp": "yesterday"}]}, "`outcomes[0].timestamp`"),
        ({"outcomes": [{k: v for k, v in good.items() if k != "item_id"}]}, "`outcomes[0].item_id`"),
        ({"outcomes": [{**good, "user": "x"}]}, "`outcomes[0].user`"),
        ({"outcomes": []}, "`outcomes`"),
        ([good], "`outcomes`"),
    ]:  # fmt: skip
        code, reply = _post(server, body)
        assert code == 400 and reply["error"].startswith(field), (body, reply)
    assert _post(server, {}, method="PUT")[0] == 405
    code, reply = _post(toy_server, {"outcomes": [good]})  # no --log-dir
    assert code == 400 and "--log-dir" in reply["error"]
    server.stop()
    (path,) = rotating_file.finished_files(tmp_path / "logs", "outcomes", ".jsonl")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(x["item_id"], x["event_type"], x["timestamp"]) for x in lines] == [
        ("i2", "click", "2024-05-01T12:00:00.000000Z"),
        ("i2", "purchase", "2024-05-01T12:00:00.000000Z"),
        ("i1", "click", "2024-05-01T12:00:00.000000Z"),
    ]
    assert server.metrics.value(WRITTEN, kind="outcome") == 3


def test_server_refuses_a_key_file_inside_the_log_folder(tmp_path, recs_export, start_server):
    config = _config(tmp_path, key_file=str(tmp_path / "logs" / "log.key"))
    with pytest.raises(errors.ConfigError, match=r"`--log-key-file` .* lies inside `--log-dir`"):
        start_server(recs_export, prediction_log=config)
    assert not (tmp_path / "logs" / "log.key").exists()
