"""End to end on configs/tiny.yaml: `tfrec train` then `tfrec evaluate`, resume, wrong workdir."""

import json
from pathlib import Path

import pandas as pd
import pytest
import tensorflow as tf
import yaml

from tests import harness
from tfrec import cli
from tfrec import config as config_lib
from tfrec.evaluation.baselines import tuning

TINY = str(Path(__file__).resolve().parents[2] / "configs" / "tiny.yaml")
OVERRIDES = harness.TINY_RUN_OVERRIDES


def _sets(overrides):
    return [arg for o in overrides for arg in ("--set", o)]


def _latest(directory: Path):
    return tf.train.latest_checkpoint(str(directory))


def test_train_evaluate_resume_and_refuse(tmp_path, capsys):
    config = config_lib.load(TINY, OVERRIDES)
    assert (config.train.epochs, config.ranking.epochs, config.recommend.retrieve_n) == (1, 1, 30)
    wd = tmp_path / "run"
    train = ["train", "--config", TINY, "--workdir", str(wd)]
    assert cli.main(train + _sets(OVERRIDES)) == 0
    assert cli.main(["evaluate", "--workdir", str(wd)]) == 0
    out = capsys.readouterr().out
    assert "[two-stage] retrieve top 30" in out and "| two-stage" in out

    assert config_lib.load(str(wd / "config.yaml")) == config
    assert (wd / "spec").is_dir() and any((wd / "spec").iterdir())
    assert _latest(wd / "best") and _latest(wd / "checkpoints")
    assert _latest(wd / "ranking" / "best") and (wd / "ranking" / "heads.json").is_file()
    events = {p.relative_to(wd / "tb").parts[0] for p in wd.glob("tb/**/events.out.tfevents*")}
    assert {"train", "validation", "ranking"} <= events

    metrics = json.loads((wd / "artifact" / "metrics.json").read_text())
    controls = {"control_new_random", "control_newest_first"}
    expected = {"tfrec", "tfrec_towers_only", "id_two_tower", *tuning.NAMES, *controls}
    assert expected == set(metrics["models"])
    # Each classical baseline reports the values validation chose, from its own grid.
    assert (
        metrics["baselines"]["buy_again"]["params"]["decay"]
        in tuning.DEFAULT_GRIDS["buy_again"]["decay"]
    )
    # tfrec and the two-stage pipeline against the best baseline of each metric, paired.
    for pipeline in ("tfrec", "tfrec_two_stage"):
        for metric, r in metrics["comparisons"][pipeline].items():
            best = max(
                (
                    b
                    for b in metrics["models"]
                    if b not in {"tfrec", "tfrec_towers_only", *controls}
                ),
                key=lambda b, m=metric: metrics["models"][b]["metrics"]["all"][m],
            )
            assert r["baseline"] == best and r["low"] <= r["difference"] <= r["high"]
    per_query = pd.read_parquet(wd / "artifact" / "per_query.parquet")
    # One row per test query; a query whose relevant items all left the catalog counts nowhere.
    counted = per_query["tfrec/ndcg@10"].notna().sum()
    assert counted == metrics["models"]["tfrec"]["metrics"]["all"]["queries"] < len(per_query)
    assert per_query["tfrec/ndcg@10"].mean() == pytest.approx(
        metrics["models"]["tfrec"]["metrics"]["all"]["ndcg@10"]
    )
    section = metrics["two_stage"]
    assert section["retrieve_n"] == 30
    only, both = section["retrieval_only"]["metrics"]["all"], section["two_stage"]["metrics"]["all"]
    # Like for like: retrieval-only is tfrec's served retrieval score (towers + repeat prior);
    # re-ranking keeps the retrieved set.
    served = metrics["models"]["tfrec"]["metrics"]["all"]
    assert only["recall@10"] == served["recall@10"]
    assert only["mrr"] == served["mrr"]
    assert both["recall@30"] == only["recall@30"]
    assert both["queries"] == only["queries"] > 0
    heads = json.loads((wd / "ranking" / "heads.json").read_text())["heads"]
    assert section["ranker"]["examples"] > 0
    for head in heads:
        # Measured on both classes of real test examples: finite, strictly inside (0, 1).
        assert 0.0 < section["ranker"][head]["auc"] < 1.0
        assert 0.0 < section["ranker"][head]["log_loss"] < 5.0

    # Resuming a finished run trains no more epochs, of either model.
    before = {d: _latest(wd / d) for d in ("checkpoints", "ranking/checkpoints")}
    assert cli.main(train + _sets(OVERRIDES)) == 0
    assert {d: _latest(wd / d) for d in before} == before
    assert json.loads((wd / "history.json").read_text())["epochs_run"] == 0
    assert "Ranker already trained: nothing to do" in capsys.readouterr().out

    # Another model in the same workdir is refused before any training.
    saved = (wd / "config.yaml").read_text()
    assert cli.main(train + _sets(OVERRIDES + ["model.embedding_dim=8"])) == 2
    captured = capsys.readouterr()
    assert "holds a checkpoint of another model: `model.embedding_dim` was 16" in captured.err
    assert "Epoch" not in captured.out
    assert (wd / "config.yaml").read_text() == saved
    assert yaml.safe_load(saved)["model"]["embedding_dim"] == 16
