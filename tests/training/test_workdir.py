"""Workdir: config written first; another model's checkpoint is refused before training."""

import pytest

from tfrec import config as config_lib
from tfrec import errors
from tfrec.training import workdir as workdir_lib


def test_claim_writes_config_and_refuses_other_model(tmp_path):
    wd = workdir_lib.Workdir(tmp_path / "run")
    cfg = config_lib.load(None, ["model.embedding_dim=16"])
    wd.claim(cfg)
    assert wd.load_config() == cfg
    (wd.checkpoints).mkdir()
    # Resumable fields may change...
    wd.claim(config_lib.load(None, ["model.embedding_dim=16", "train.epochs=9"]))
    # ...the model may not.
    with pytest.raises(errors.WorkdirError, match=r"`model.embedding_dim` was 16 there.*32"):
        wd.claim(config_lib.load(None, ["model.embedding_dim=32"]))
    # The ranker's settings are free until a ranker is trained, then bound like the model's.
    ranker_change = ["model.embedding_dim=16", "ranking.hard_negatives=2"]
    wd.claim(config_lib.load(None, ranker_change))
    assert wd.load_config().ranking.hard_negatives == 2
    (wd.root / "ranking" / "checkpoints").mkdir(parents=True)
    with pytest.raises(errors.WorkdirError, match=r"`ranking.hard_negatives` was 2 there"):
        wd.claim(config_lib.load(None, ["model.embedding_dim=16"]))


def test_a_setting_added_since_the_run_takes_its_default(tmp_path):
    import yaml

    wd = workdir_lib.Workdir(tmp_path / "run")
    cfg = config_lib.load(None, ["model.embedding_dim=16"])
    wd.claim(cfg)
    saved = yaml.safe_load(wd.config.read_text(encoding="utf-8"))
    del saved["model"]["text_encoder"]["query_student"]  # as a run saved before it existed
    wd.config.write_text(yaml.safe_dump(saved), encoding="utf-8")
    wd.checkpoints.mkdir()
    wd.claim(cfg)  # the default is how that run behaved: the same model
    # A value written there still binds.
    saved["model"]["text_encoder"]["query_student"] = {"steps": 10}
    wd.config.write_text(yaml.safe_dump(saved), encoding="utf-8")
    with pytest.raises(
        errors.WorkdirError, match=r"`model.text_encoder.query_student.steps` was 10"
    ):
        wd.claim(cfg)


def test_missing_config(tmp_path):
    with pytest.raises(errors.WorkdirError, match="has no config.yaml"):
        workdir_lib.Workdir(tmp_path).load_config()
