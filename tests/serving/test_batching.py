"""Batching: concurrent compatible requests share one call; others run alone; params parse."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tfrec import errors
from tfrec.serving import Client, batching

REPO = Path(__file__).resolve().parents[2]


def _concurrently(fn, args_list):
    barrier = threading.Barrier(len(args_list))
    results = [None] * len(args_list)

    def call(i, args):
        barrier.wait()
        results[i] = fn(*args)

    threads = [threading.Thread(target=call, args=(i, a)) for i, a in enumerate(args_list)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def _calls(server) -> int:
    servable = server.store.acquire("toy")
    servable.release()
    return servable.num_calls


def _server(make_export, start_server, **params):
    return start_server(
        make_export((1,)), batching_parameters=batching.BatchingParameters(**params)
    )


def test_concurrent_requests_are_merged_and_split_back(make_export, start_server):
    server = _server(make_export, start_server, max_batch_size=64, batch_timeout_micros=500_000)
    client = Client(server.grpc_target)
    client.predict("toy", {"query": ["warm"], "item_ids": [[0]]})  # fetch metadata once
    before = _calls(server)
    # Request i sends i+1 rows, so each reply must hold exactly its own rows.
    requests = [({"query": ["q" * i] * (i + 1), "item_ids": [[i]] * (i + 1)},) for i in range(8)]
    results = _concurrently(lambda inputs: client.predict("toy", inputs), requests)
    for i, out in enumerate(results):
        assert out["score"].tolist() == [2.0 * i] * (i + 1)  # i + len("q" * i)
        assert out["greeting"].tolist() == [b"hi " + b"q" * i] * (i + 1)
    assert _calls(server) - before <= 3, "8 concurrent requests should share a few calls"
    assert server.batcher.num_batches >= 1


def test_incompatible_inner_shapes_are_not_merged(make_export, start_server):
    server = _server(make_export, start_server, max_batch_size=2, batch_timeout_micros=1_000_000)
    client = Client(server.grpc_target)
    client.predict("toy", {"query": ["warm"], "item_ids": [[0]]})
    before = _calls(server)
    widths = [1, 2, 1, 2]
    requests = [({"query": ["a"], "item_ids": [[1] * w]},) for w in widths]
    results = _concurrently(lambda inputs: client.predict("toy", inputs), requests)
    assert [r["score"].tolist() for r in results] == [[1.0 + w] for w in widths]
    # Two shape groups, each filling a batch of 2.
    assert _calls(server) - before == 2


def test_signatures_without_batch_dimension_run_alone(make_export, start_server):
    server = _server(make_export, start_server, max_batch_size=64, batch_timeout_micros=200_000)
    client = Client(server.grpc_target)
    client.predict("toy", {"tokens": ["w"]}, signature_name="count")
    before = _calls(server)
    requests = [({"tokens": ["t"] * (i + 1)},) for i in range(4)]
    results = _concurrently(
        lambda inputs: client.predict("toy", inputs, signature_name="count"), requests
    )
    assert [int(r["n"]) for r in results] == [1, 2, 3, 4]
    assert _calls(server) - before == 4


def test_batching_can_be_turned_off(make_export, start_server):
    server = start_server(make_export((1,)), enable_batching=False)
    client = Client(server.rest_target, "rest")
    client.predict("toy", {"query": ["warm"], "item_ids": [[0]]})
    before = _calls(server)
    requests = [({"query": ["a"], "item_ids": [[i]]},) for i in range(4)]
    results = _concurrently(lambda inputs: client.predict("toy", inputs), requests)
    assert [r["score"].tolist() for r in results] == [[1.0 + i] for i in range(4)]
    assert _calls(server) - before == 4
    assert server.batcher is None


def test_batching_parameters_template_parses():
    text = (REPO / "serving" / "batching_parameters.txt").read_text()
    params = batching.parse_batching_parameters(text)
    assert params.max_batch_size == 64
    assert params.batch_timeout_micros == 2000
    assert params.num_batch_threads == 2


def test_batching_parameters_errors():
    parsed = batching.parse_batching_parameters(
        "max_batch_size { value: 8 }\nallowed_batch_sizes: 4\npad_variable_length_inputs: true"
    )
    assert parsed.max_batch_size == 8
    with pytest.raises(errors.ConfigError, match="unknown field `max_batch`"):
        batching.parse_batching_parameters("max_batch { value: 8 }")
    with pytest.raises(errors.ConfigError, match="`max_batch_size` must be an integer, received"):
        batching.parse_batching_parameters('max_batch_size { value: "big" }')
    with pytest.raises(errors.ConfigError, match="`max_batch_size` must be an integer >= 1"):
        batching.parse_batching_parameters("max_batch_size { value: 0 }")
    with pytest.raises(errors.ConfigError, match="cannot parse"):
        batching.parse_batching_parameters("max_batch_size { value: 8 ")
