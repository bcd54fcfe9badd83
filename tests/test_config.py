"""Config: YAML + overrides, strict keys and types, atomic save, round trip."""

import pytest

from tfrec import config as config_lib
from tfrec import errors


def test_defaults_and_overrides():
    cfg = config_lib.load(None, ["data.max_history=5", "eval.ks=[1, 2]", "model.use_text=false"])
    assert cfg.data.max_history == 5
    assert cfg.eval.ks == (1, 2)
    assert cfg.model.use_text is False
    assert cfg.train.epochs == config_lib.TrainConfig().epochs


def test_unquoted_yaml_date_is_an_iso_string():
    cfg = config_lib.load(None, ["data.split.validation_start=2011-10-01"])
    assert cfg.data.split.validation_start == "2011-10-01"
    with pytest.raises(errors.ConfigError, match=r"must be str or float, received \[1\]"):
        config_lib.load(None, ["data.split.test_start=[1]"])


def test_yaml_file_round_trip(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: x\ntrain:\n  epochs: 7\n  learning_rate: 1\n", encoding="utf-8")
    cfg = config_lib.load(str(path))
    assert cfg.train.epochs == 7 and cfg.train.learning_rate == 1.0
    config_lib.save(cfg, tmp_path / "out" / "config.yaml")
    assert config_lib.load(str(tmp_path / "out" / "config.yaml")) == cfg
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["config.yaml"]


@pytest.mark.parametrize(
    "override, message",
    [
        ("data.colour=1", r"unknown config key `data.colour`"),
        ("train.epochs=abc", r"`train.epochs` must be int, received 'abc'"),
        ("train.epochs=1.5", r"`train.epochs` must be int"),
        ("model.use_text=3", r"`model.use_text` must be bool"),
        ("train.precision=half", r"`train.precision` must be one of"),
        ("data.dataset=online-retail", r"`data.path` is required"),
        ("data=3", r"`data` must be a mapping"),
        ("epochs", r"override must look like `key.sub=value`"),
        ("replay.refresh_lag_seconds=-1", r"`replay.refresh_lag_seconds` must be an int >= 0"),
        ("replay.holdout_days=0", r"`replay.holdout_days` must be an int >= 1, received 0"),
    ],
)
def test_bad_config_errors(override, message):
    with pytest.raises(errors.ConfigError, match=message):
        config_lib.load(None, [override])


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(errors.ConfigError, match="does not exist"):
        config_lib.load(str(tmp_path / "nope.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [1,\n", encoding="utf-8")
    with pytest.raises(errors.ConfigError, match="not valid YAML"):
        config_lib.load(str(bad))
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("3\n", encoding="utf-8")
    with pytest.raises(errors.ConfigError, match="mapping at top level"):
        config_lib.load(str(scalar))


def test_shipped_configs_load():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "configs"
    names = sorted(p.name for p in root.glob("*.yaml"))
    assert {"demo.yaml", "tiny.yaml", "online_retail.yaml", "movielens.yaml"} <= set(names)
    for name in names:
        config_lib.load(str(root / name))


def test_a_config_states_only_how_it_differs_from_its_base(tmp_path):
    (tmp_path / "base.yaml").write_text(
        "name: base\nmodel: {embedding_dim: 48, temperature: 0.1}\ntrain: {epochs: 9}\n"
    )
    (tmp_path / "child.yaml").write_text(
        "base: base.yaml\nname: child\nmodel: {embedding_dim: 8}\n"
    )
    config = config_lib.load(str(tmp_path / "child.yaml"), ["train.epochs=2"])
    # Mappings merge key by key: the child's embedding_dim, the base's temperature.
    assert (config.name, config.model.embedding_dim, config.model.temperature) == ("child", 8, 0.1)
    assert config.train.epochs == 2  # --set overrides come last


def test_base_errors_name_the_file(tmp_path):
    (tmp_path / "a.yaml").write_text("base: b.yaml\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(
        errors.ConfigError, match=r"`base` files form a cycle: .*a\.yaml -> .*b\.yaml"
    ):
        config_lib.load(str(tmp_path / "a.yaml"))
    (tmp_path / "c.yaml").write_text("base: missing.yaml\n")
    with pytest.raises(errors.ConfigError, match=r"missing\.yaml` \(the `base` of `.*c\.yaml`\)"):
        config_lib.load(str(tmp_path / "c.yaml"))
    (tmp_path / "d.yaml").write_text("base: [1]\n")
    with pytest.raises(errors.ConfigError, match=r"`base` must be a file name, received \[1\]"):
        config_lib.load(str(tmp_path / "d.yaml"))


def test_only_allowed_sections_change_after_training():
    config = config_lib.load(None, ["model.embedding_dim=16"])
    changed = config_lib.with_overrides(config, ["eval.exclude_seen=true"], allowed=("eval",))
    assert changed.eval.exclude_seen and changed.model == config.model
    with pytest.raises(errors.ConfigError, match=r"`model.embedding_dim` cannot change after"):
        config_lib.with_overrides(config, ["model.embedding_dim=8"], allowed=("eval",))
    with pytest.raises(errors.ConfigError, match=r"unknown config key `eval.nope`"):
        config_lib.with_overrides(config, ["eval.nope=1"], allowed=("eval",))
