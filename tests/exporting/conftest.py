"""One tiny trained run (retrieval + ranker) and its export, shared by the exporting tests."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import tfrec  # noqa: F401  (sets the Keras-2 environment before TensorFlow is imported)
from tests import harness
from tfrec import config as config_lib
from tfrec.data import prepared as prepared_lib
from tfrec.exporting import index as index_lib
from tfrec.models import repeat_prior
from tfrec.pipelines import export as export_run
from tfrec.ranking import blend
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
def run(tmp_path_factory) -> Run:
    config = config_lib.load("configs/tiny.yaml", OVERRIDES)
    workdir = tmp_path_factory.mktemp("workdir")
    prepared = prepared_lib.prepare(config)
    trainer.train(config, workdir, prepared)
    model = trainer.load_trained(config, workdir, prepared)
    ranking_training.train_ranker(config, workdir, prepared, model)
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

    `k` and `exclude_recent` are one value for every row or a list with one per row.
    """
    width = max([len(h) for h in histories] + [0])
    ids = np.full([len(users), width], "", object)
    types = np.full([len(users), width], "", object)
    for row, events in enumerate(histories):
        for col, (item, event) in enumerate(events):
            ids[row, col], types[row, col] = item, event
    out = {
        "user_id": np.asarray(users, object),
        "history_item_ids": ids,
        "history_event_types": types,
        "hour_of_day": np.full([len(users)], hour, np.int32),
        "day_of_week": np.full([len(users)], day, np.int32),
        "k": np.broadcast_to(np.asarray(k, np.int32), [len(users)]).copy(),
        "exclude_recent": np.broadcast_to(np.asarray(exclude_recent, bool), [len(users)]).copy(),
    }
    if query_text is not None:
        out["query_text"] = np.asarray(query_text, object)
    return out
