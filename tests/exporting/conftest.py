"""One tiny trained run (retrieval + ranker) and its export, shared by the exporting tests."""

from __future__ import annotations

import dataclasses
import datetime

import numpy as np
import pytest

import tfrec  # noqa: F401  (sets the Keras-2 environment before TensorFlow is imported)
from tests import harness
from tfrec import artifact, request_schema
from tfrec import config as config_lib
from tfrec.data import prepared as prepared_lib
from tfrec.exporting import index as index_lib
from tfrec.models import repeat_prior
from tfrec.pipelines import export as export_run
from tfrec.ranking import blend, requests
from tfrec.ranking import training as ranking_training
from tfrec.training import trainer

OVERRIDES = harness.TINY_RUN_OVERRIDES + ["eval.baselines=[]"]


@dataclasses.dataclass
class Run:
    config: config_lib.Config
    prepared: prepared_lib.PreparedData
    model: object  # RetrievalModel
    ranker: object  # RankingModel
    trained: export_run.Trained
    workdir: object
    export_dir: object
    result: dict


@pytest.fixture(scope="session")
def run(tiny_run, tmp_path_factory) -> Run:
    """The suite's tiny model, loaded from its artifact, exported with a strong prior."""
    art = artifact.Artifact(tiny_run.artifact)
    config, workdir, prepared = art.config, art.root, art.prepared()
    model = trainer.load_trained(config, workdir, prepared)
    ranker = ranking_training.load_ranker(config, workdir, prepared, model)
    trained = export_run.Trained(
        config=config,
        spec=prepared.spec,
        query_model=model.query_model,
        candidate_model=model.candidate_model,
        ranker=ranker.network,
        catalog=index_lib.from_table(model.candidate_model, prepared.table),
        # A strong repeat prior, so every signature test also checks it is served.
        prior=repeat_prior.RepeatPrior(beta=0.5, decay=0.9),
        blend=blend.Blend(0.4),  # both stages count: the signature must blend as served
    )
    export_dir = tmp_path_factory.mktemp("export")
    result = export_run.export(workdir, export_dir, trained=trained)
    return Run(config, prepared, model, ranker, trained, workdir, export_dir, result)


def request(users, histories, k=5, exclude_recent=False, hour=12, day=2, query_text=None):
    """A batch request: `histories` is a list of [(item_id, event_type), ...], ragged.

    `k`, `exclude_recent` and `query_text` are one value for every row or a list with one per
    row; the request time is `day` (Monday = 0) of the first week of 2024 at `hour` UTC. `k`
    is sent as given (also < 1), so the graph's own checks can be tested.
    """
    now = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC) + datetime.timedelta(
        days=day, hours=hour
    )
    texts = [None] * len(users) if query_text is None else query_text
    excludes = np.broadcast_to(np.asarray(exclude_recent, bool), [len(users)])
    rows = [
        requests.build(user, events, now, 1, bool(exclude), text)
        for user, events, exclude, text in zip(users, histories, excludes, texts, strict=True)
    ]
    return dict(
        requests.stack(rows), k=np.broadcast_to(np.asarray(k, np.int32), [len(users)]).copy()
    )


def rank_request(inputs: dict, item_ids) -> dict:
    """The request context of `inputs` (a `request`) with candidates `item_ids`: a `rank` request."""
    out = {i.name: inputs[i.name] for i in request_schema.CONTEXT}
    out[request_schema.ITEM_IDS.name] = np.asarray(item_ids, object)
    return out


def assert_same_answer(got: list, expected: list) -> None:
    """Equal ids, explanations' events and positions; scores and weights to float32 precision."""
    assert [r["item_id"] for r in got] == [r["item_id"] for r in expected]
    for a, b in zip(got, expected, strict=True):
        for key in ("score", "ranker_score", "retrieval_score"):
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-5), (a["item_id"], key)
        assert [dict(e, weight=0) for e in a["explanation"]] == [
            dict(e, weight=0) for e in b["explanation"]
        ], a["item_id"]
        np.testing.assert_allclose(
            [e["weight"] for e in a["explanation"]],
            [e["weight"] for e in b["explanation"]],
            rtol=1e-4,
        )
