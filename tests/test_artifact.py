"""The model artifact stands alone: train on a CSV, delete it, move the artifact, use it."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

import tfrec
from tfrec import artifact, errors
from tfrec.pipelines import evaluate as evaluate_run
from tfrec.pipelines import export as export_run


@pytest.fixture(scope="module")
def moved(tiny_run, tmp_path_factory):
    """The suite's tiny model (trained from CSV files since deleted), its artifact copied away."""
    target = tmp_path_factory.mktemp("elsewhere") / "model"
    return tiny_run.config, tiny_run.copy_artifact(target)


def test_artifact_holds_what_a_model_needs(moved):
    config, path = moved
    art = artifact.Artifact(path)
    assert art.config == config
    manifest = json.loads((path / "artifact.json").read_text())
    stored = pd.read_parquet(path / "data" / "interactions.parquet")
    assert manifest["data"]["interactions"] == len(stored) > 0
    assert manifest["split"]["validation_start"] < manifest["split"]["test_start"]
    assert len(manifest["data"]["fingerprint"]) == 64 and art.has_ranker
    catalog = art.catalog()
    assert {"item_id", "title", "category", "price", "first_seen", "train_events"} <= set(catalog)
    spec = art.spec()
    # Training counts agree with the vocabulary: an item has a training event iff it is in it.
    trained = set(catalog.loc[catalog["train_events"] > 0, "item_id"])
    assert trained == set(spec.items)


def test_evaluate_and_export_read_only_the_artifact(moved, tmp_path):
    _, path = moved
    result = evaluate_run.evaluate_workdir(path)
    assert {"tfrec", "tfrec_towers_only", "most_popular"} <= set(result["models"])
    assert (path / "metrics.json").is_file() and "two_stage" in result
    # The catalog as known at the test start: items first seen later are not in it.
    catalog = artifact.Artifact(path).catalog()
    test_start = result["split"]["test_start"]
    known = catalog["first_seen"].isna() | (catalog["first_seen"] < test_start)
    assert result["protocol"]["catalog_items"] == int(known.sum())
    assert result["models"]["tfrec"]["num_items"] == int(known.sum())
    assert result["protocol"]["baselines_fit"] == "training + validation windows"
    out = export_run.export(path, tmp_path / "export", with_text=False)
    loaded = tf.saved_model.load(out["models"]["tfrec"])
    assert set(loaded.signatures) >= {"retrieve", "rank", "recommend"}


def test_tfrec_load_gives_a_ready_recommender(moved):
    _, path = moved
    rec = tfrec.load(path)
    catalog = artifact.Artifact(path).catalog()
    item = str(catalog["item_id"].iloc[0])
    shown = rec.recommend("someone-new", [(item, "cart")], k=5)
    ids = [r["item_id"] for r in shown]
    assert len(ids) == 5 and len(set(ids)) == 5
    assert set(ids) <= set(catalog["item_id"])


@pytest.mark.slow
def test_compress_reads_only_the_artifact(moved):
    from tfrec.pipelines import compress as compress_run

    _, path = moved
    report = compress_run.compress_workdir(
        path, sparsities=[0.5], fine_tune_steps=2, qat_steps=2, latency_calls=2
    )
    assert (path / "compression" / "report.md").is_file() and "pruned_50" in report["variants"]


def test_serve_and_recommend_from_the_artifact(moved, tmp_path, capsys):
    from tfrec import cli
    from tfrec.serving import server

    _, path = moved
    export_dir = tmp_path / "export"
    export_run.export(path, export_dir)
    item = str(artifact.Artifact(path).catalog()["item_id"].iloc[0])
    with server.start(
        export_dir, grpc_port=0, rest_port=0, poll_seconds=0, enable_batching=False
    ) as running:
        capsys.readouterr()
        for target, extra in ((running.grpc_target, []), (running.rest_target, ["--rest"])):
            argv = ["recommend", "--server", target, "--user", "u1", "--recent", item]
            assert cli.main(argv + ["--events", "cart", "--k", "4", *extra]) == 0
            lines = capsys.readouterr().out.strip().splitlines()
            assert lines[0].split()[:3] == ["rank", "item_id", "score"]
            assert [line.split()[0] for line in lines[1:]] == ["1", "2", "3", "4"]
        argv = ["recommend", "--server", running.grpc_target, "--user", "u1", "--query", "gift"]
        assert cli.main(argv + ["--k", "3"]) == 0
        assert len(capsys.readouterr().out.strip().splitlines()) == 4
        # A malformed request is a named error and exit code 2, before anything is sent.
        argv = ["recommend", "--server", running.grpc_target, "--user", "u1", "--recent", "a,b"]
        assert cli.main(argv + ["--events", "view,cart,view"]) == 2
        err = capsys.readouterr().err
        assert "`--events` must give one event type or one per `--recent` item (2)" in err


def test_changed_data_is_refused_by_its_fingerprint(moved, tmp_path):
    _, path = moved
    copy = tmp_path / "copy"
    shutil.copytree(path, copy)
    events = pd.read_parquet(copy / "data" / "interactions.parquet")
    events.loc[0, "quantity"] = np.float32(events.loc[0, "quantity"] + 1)
    events.to_parquet(copy / "data" / "interactions.parquet", index=False)
    with pytest.raises(errors.WorkdirError, match="does not match its fingerprint"):
        artifact.Artifact(copy).prepared()


def test_a_folder_without_an_artifact_is_named(tmp_path):
    with pytest.raises(
        errors.WorkdirError, match=r"holds no model artifact: expected .*artifact\.json"
    ):
        artifact.Artifact(tmp_path)
    (tmp_path / "artifact.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(errors.WorkdirError, match="`format` must be 'tfrec.artifact'"):
        artifact.Artifact(tmp_path)
