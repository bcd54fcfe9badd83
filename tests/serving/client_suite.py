"""One client suite, run against `tfrec serve` and, when installed, `tensorflow_model_server`."""

from __future__ import annotations

import numpy as np
import pytest

from tfrec.serving import Client, ServingError

GOOD = {"query": ["ab", "c"], "item_ids": [[1, 2], [3, 4]]}


def run_suite(grpc_target: str, rest_target: str) -> None:
    """Asserts hand-checked answers, equal gRPC/REST results and error codes on the toy model."""
    clients = [Client(grpc_target, "grpc"), Client(rest_target, "rest")]
    answers = []
    for client in clients:
        out = client.predict("toy", GOOD)
        np.testing.assert_allclose(out["score"], [5.0, 8.0])  # sum(item_ids) + len(query)
        assert out["greeting"].tolist() == [b"hi ab", b"hi c"]
        count = client.predict("toy", {"tokens": ["a", "bb", "c"]}, signature_name="count")
        assert int(count["n"]) == 3 and count["joined"].item() == b"a bb c"
        rank = client.predict("toy", {"x": [[1.0, 1.0, 1.0]]}, signature_name="rank")
        np.testing.assert_allclose(rank["y"], [6.0])
        assert {"serving_default", "count", "rank"} <= set(client.metadata("toy"))
        (status,) = client.status("toy")["model_version_status"]
        assert (status["version"], status["state"]) == ("1", "AVAILABLE")
        for kwargs, code in [
            ({"model": "toy", "inputs": {"query": ["a"]}}, "INVALID_ARGUMENT"),
            ({"model": "toy", "inputs": {"x": [[1.0, 2.0]]}, "signature_name": "rank"},
             "INVALID_ARGUMENT"),
            ({"model": "ghost", "inputs": GOOD}, "NOT_FOUND"),
            ({"model": "toy", "inputs": GOOD, "version": 9}, "NOT_FOUND"),
        ]:  # fmt: skip
            with pytest.raises(ServingError) as caught:
                client.predict(**kwargs)
            assert caught.value.code == code, (kwargs, caught.value)
        answers.append({k: v.tolist() for k, v in {**out, **count, **rank}.items()})
    assert answers[0] == answers[1]
    for client in clients:
        client.close()
