"""Toy SavedModels in TF Serving's layout, and servers started on free loopback ports."""

from __future__ import annotations

import shutil
import time

import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

from tfrec.serving import server as server_lib


class Toy(tf.Module):
    """Three signatures: batchable mixed inputs, an unbatched token list, a fixed-width row."""

    def __init__(self, version: int):
        super().__init__()
        self.version = tf.Variable(version, dtype=tf.int64)
        self.w = tf.Variable([1.0, 2.0, 3.0])

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="query"),
            tf.TensorSpec([None, None], tf.int64, name="item_ids"),
        ]
    )
    def default(self, query, item_ids):
        # score = sum(item_ids) + len(query): hand-checkable.
        score = tf.cast(tf.reduce_sum(item_ids, axis=1), tf.float32)
        score += tf.cast(tf.strings.length(query), tf.float32)
        return {
            "score": score,
            "greeting": tf.strings.join(["hi ", query]),
            "echo_bytes": query,
            "version": tf.fill(tf.shape(query), self.version),
        }

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="tokens")])
    def count(self, tokens):
        return {
            "n": tf.size(tokens, out_type=tf.int64),
            "joined": tf.strings.reduce_join(tokens, separator=" "),
        }

    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
    def rank(self, x):
        return {"y": tf.reduce_sum(x * self.w, axis=1)}


def save_toy(path, version: int) -> None:
    module = Toy(version)
    tf.saved_model.save(
        module,
        str(path),
        signatures={
            "serving_default": module.default,
            "count": module.count,
            "rank": module.rank,
        },
    )


# A request the toy model's default signature answers with its version.
GOOD = {"query": ["ab"], "item_ids": [[1, 2]]}


def toy_version(client, **kwargs) -> int:
    """The version of the toy model that answered a request (`Client.predict` kwargs)."""
    return int(client.predict("toy", GOOD, **kwargs)["version"][0])


def wait_for(predicate, timeout_s: float = 10.0) -> bool:
    """Polls `predicate` every 50 ms until it holds or `timeout_s` passes; whether it held."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def write_warmup(version_dir, requests) -> None:
    """Writes TF Serving warmup records: a TFRecord of PredictionLogs."""
    target = version_dir / "assets.extra"
    target.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(target / "tf_serving_warmup_requests")) as writer:
        for signature_name, inputs in requests:
            request = predict_pb2.PredictRequest()
            request.model_spec.name = "toy"
            request.model_spec.signature_name = signature_name
            for key, value in inputs.items():
                request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(log.SerializeToString())


@pytest.fixture(scope="session")
def toy_versions(tmp_path_factory):
    """Versions 1, 2 and 3 of the toy model, saved once per session."""
    root = tmp_path_factory.mktemp("toy_versions")
    for version in (1, 2, 3):
        save_toy(root / str(version), version)
    return root


@pytest.fixture
def make_export(tmp_path, toy_versions):
    """Copies chosen toy versions into `tmp_path/export/<model>/<version>`."""

    def make(versions=(1,), model="toy"):
        base = tmp_path / "export"
        for version in versions:
            shutil.copytree(toy_versions / str(version), base / model / str(version))
        return base

    return make


@pytest.fixture
def start_server():
    """Starts servers on free ports and stops them after the test."""
    running = []

    def start(base, **kwargs):
        kwargs.setdefault("grpc_port", 0)
        kwargs.setdefault("rest_port", 0)
        kwargs.setdefault("poll_seconds", 0)
        server = server_lib.start(base, **kwargs)
        running.append(server)
        return server

    yield start
    for server in running:
        server.stop(grace_s=1)


@pytest.fixture
def toy_server(make_export, start_server):
    return start_server(make_export((1,)), enable_batching=False)
