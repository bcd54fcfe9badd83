"""The export served by `tfrec serve`: gRPC and REST give identical results; latency numbers."""

from __future__ import annotations

import time

import numpy as np
import pytest

from tests.exporting.conftest import request
from tfrec.serving import Client
from tfrec.serving import server as server_lib


@pytest.fixture(scope="module")
def server(run):
    with server_lib.start(run.export_dir, grpc_port=0, rest_port=0, poll_seconds=0) as running:
        yield running


def test_grpc_and_rest_agree_on_every_signature(run, server):
    user = run.prepared.spec.users[0]
    item = run.trained.catalog.item_ids[3]
    base = request([user, "nobody"], [[(item, "purchase"), (item, "view")], []], k=6)
    rank = {k: v for k, v in base.items() if k not in ("k", "exclude_recent")}
    rank["item_ids"] = np.array([[item, "x", item], [item, item, "y"]], object)
    text = request([user, "nobody"], [[(item, "view")], []], k=6, query_text=["bowl", ""])
    calls = [
        ("tfrec", "retrieve", base),
        ("tfrec", "recommend", base),
        ("tfrec", "rank", rank),
        ("tfrec_text", "retrieve", text),
        ("tfrec_text", "recommend", text),
    ]
    with Client(server.grpc_target) as grpc, Client(server.rest_target, "rest") as rest:
        for model, signature, inputs in calls:
            a = grpc.predict(model, inputs, signature)
            b = rest.predict(model, inputs, signature)
            assert sorted(a) == sorted(b)
            for key in a:
                if a[key].dtype.kind in "OSU":
                    assert a[key].tolist() == b[key].tolist(), (model, signature, key)
                else:
                    np.testing.assert_allclose(a[key], b[key], rtol=1e-6)
        labelled = grpc.predict("tfrec", base, "recommend", label="stable")
        assert (
            labelled["item_ids"].tolist()
            == grpc.predict("tfrec", base, "recommend")["item_ids"].tolist()
        )


def test_bad_request_is_invalid_argument(server):
    with Client(server.grpc_target) as client:
        with pytest.raises(Exception, match="INVALID_ARGUMENT|`k` must be >= 1"):
            client.predict("tfrec", request(["u"], [[]], k=0), "retrieve")


def latency_ms(client, model, signature, inputs, n=20) -> float:
    """Median wall time of `n` sequential calls (after one warm call)."""
    client.predict(model, inputs, signature)
    times = []
    for _ in range(n):
        start = time.perf_counter()
        client.predict(model, inputs, signature)
        times.append((time.perf_counter() - start) * 1000)
    return float(np.median(times))
