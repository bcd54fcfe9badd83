"""models.config parsing, version policies and discovery of complete version folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from tfrec import errors
from tfrec.serving import model_config

REPO = Path(__file__).resolve().parents[2]


def test_policies_select_versions():
    spec = model_config.ModelSpec("m", Path("."))
    assert spec.select([3, 1, 2]) == [3]
    latest2 = model_config.ModelSpec("m", Path("."), num_versions=2)
    assert latest2.select([3, 1, 2]) == [3, 2]
    every = model_config.ModelSpec("m", Path("."), policy="all")
    assert every.select([3, 1, 2]) == [3, 2, 1]
    specific = model_config.ModelSpec("m", Path("."), policy="specific", versions=(1, 5))
    assert specific.select([3, 1, 2]) == [1]


def test_only_complete_integer_folders_are_versions(tmp_path):
    for name in ("1", "7", "tmp-8", "9"):
        (tmp_path / name).mkdir()
    for name in ("1", "7", "tmp-8"):
        (tmp_path / name / "saved_model.pb").write_bytes(b"")
    (tmp_path / "12").write_text("a file, not a folder")
    assert model_config.list_versions(tmp_path) == [1, 7]  # 9 has no saved_model.pb yet


def test_template_and_relative_paths(tmp_path):
    specs = model_config.parse_models_config(
        (REPO / "serving" / "models.config").read_text(), tmp_path, model_base_path=tmp_path
    )
    assert [s.name for s in specs] == ["retrieval", "ranking"]
    # /models/... does not exist here: falls back to <model_base_path>/<name>.
    assert specs[0].base_path == tmp_path / "retrieval"
    assert (specs[0].policy, specs[0].num_versions) == ("latest", 2)
    text = 'model_config_list { config { name: "a" base_path: "rel/a" } }'
    (tmp_path / "rel" / "a").mkdir(parents=True)
    (spec,) = model_config.parse_models_config(text, tmp_path)
    assert spec.base_path == tmp_path / "rel" / "a"


@pytest.mark.parametrize(
    "text,pattern",
    [
        ("model_config_list { config { nam: 'a' } }", "not a valid ModelServerConfig"),
        ("model_config_list { config { base_path: '/x' } }", "needs a `name`"),
        (
            "model_config_list { config { name: 'a' base_path: '/x' model_platform: 'onnx' } }",
            "`model_platform` of `a` must be 'tensorflow', received 'onnx'",
        ),
        (
            "model_config_list { config { name: 'a' base_path: '/x' } "
            "config { name: 'a' base_path: '/y' } }",
            "model `a` is configured twice",
        ),
    ],
)
def test_bad_models_config(text, pattern):
    with pytest.raises(errors.ConfigError, match=pattern):
        model_config.parse_models_config(text)


def test_discover_without_config(tmp_path):
    for model, version in (("a", 1), ("b", 2)):
        (tmp_path / model / str(version)).mkdir(parents=True)
        (tmp_path / model / str(version) / "saved_model.pb").write_bytes(b"")
    (tmp_path / "empty").mkdir()
    assert [s.name for s in model_config.discover(tmp_path)] == ["a", "b"]
    # A base path that holds versions is one model, like --model_base_path.
    (single,) = model_config.discover(tmp_path / "a", model_name="ranker")
    assert (single.name, single.base_path) == ("ranker", tmp_path / "a")
    with pytest.raises(errors.ConfigError, match="`--model-base-path`"):
        model_config.discover(tmp_path / "missing")
