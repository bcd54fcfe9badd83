"""The experiment file: the shipped example loads; each mistake names its line."""

from __future__ import annotations

import pytest

from tests import harness
from tests.experiments.conftest import write_experiment
from tfrec import errors
from tfrec.experiments import spec as spec_lib


def test_shipped_demo_loads():
    exp = spec_lib.load(harness.CONFIGS / "experiments" / "demo.yaml")
    assert exp.reference == "attention"
    assert len(exp.seeds) >= spec_lib.MIN_SEEDS
    assert exp.variants["gru"].config.model.history_encoder == "gru"
    assert exp.variants["attention"].config.model.history_encoder == "attention"
    assert exp.variants["gru"].config.eval.baselines == ("most_popular", "item_knn")
    # Measuring without the ranker changes no config: it shares the reference's runs.
    assert exp.owner("retrieval_only") == "attention"
    assert exp.run_dir("retrieval_only", 1) == exp.run_dir("attention", 1)
    assert exp.variants["retrieval_only"].model == "tfrec"
    assert exp.owner("gru") == "gru"


def test_shipped_text_encoder_experiment_loads(monkeypatch):
    # Its data path is relative to the repository, where the README's commands run.
    monkeypatch.chdir(harness.CONFIGS.parent)
    try:
        exp = spec_lib.load(harness.CONFIGS / "experiments" / "text_encoder.yaml")
    except errors.ConfigError as e:
        if "does not exist" not in str(e):
            raise
        pytest.skip(f"the Amazon reviews file is not beside the repository: {e}")
    assert exp.reference == "scratch"
    modes = {v: s.config.model.text_encoder for v, s in exp.variants.items()}
    assert modes["scratch"].mode == "scratch" and modes["scratch"].preset is None
    assert modes["frozen"].mode == "frozen" and modes["frozen"].preset == "default"
    assert modes["finetune"].mode == "finetune" and modes["finetune"].trainable_layers == 1
    assert {s.config.data.dataset for s in exp.variants.values()} == {"amazon-reviews"}


def test_config_diff_names_changed_fields(tmp_path):
    exp = spec_lib.load(
        write_experiment(tmp_path, "  base: {}\n  gru:\n    set: {model.history_encoder: gru}\n")
    )
    diff = spec_lib.config_diff(exp.variants["gru"].config, exp.variants["base"].config)
    assert diff == {"model.history_encoder": ("attention", "gru")}


@pytest.mark.parametrize(
    "variants, extra, marker, message",
    [
        # `marker`: text of the line the error must name
        ("  base: {}\n  v:\n    colour: red\n", "", "colour", "unknown key"),
        (
            "  base: {}\n  v:\n    set:\n      model.embeding_dim: 8\n",
            "",
            "embeding_dim",
            "no config field `embeding_dim`",
        ),
        (
            "  base: {}\n  v:\n    set:\n      train.nope.x: 1\n",
            "",
            "nope",
            "no config field `nope`",
        ),
        ("  base: {}\n  v:\n    set:\n      model.embedding_dim: big\n", "", "big", "must be int"),
        ("  base: {}\n  v:\n    ranker: maybe\n", "", "maybe", "true or false"),
        ("  base: {}\n", "colour: red\n", "colour", "unknown key"),
        ("  base: {}\n", "dataset:\n  path: /no/such/data\n", "/no/such", "does not exist"),
        ("  v: {}\n", "", "reference", "must name one of the variants"),
    ],
)
def test_errors_name_the_line(tmp_path, variants, extra, marker, message):
    path = write_experiment(tmp_path, variants, extra)
    lines = path.read_text().splitlines()
    line = next(i + 1 for i, text in enumerate(lines) if marker in text)
    with pytest.raises(errors.ConfigError, match=message) as caught:
        spec_lib.load(path)
    assert f"{path}:{line}:" in str(caught.value)


def test_too_few_seeds(tmp_path):
    path = write_experiment(tmp_path, "  base: {}\n")
    path.write_text(path.read_text().replace("seeds: [0, 1, 2]", "seeds: [0, 1]"))
    with pytest.raises(errors.ConfigError, match=rf"{path}:3: `seeds` must list at least 3"):
        spec_lib.load(path)


def test_missing_file():
    with pytest.raises(errors.ConfigError, match="does not exist"):
        spec_lib.load("no/such/experiment.yaml")
