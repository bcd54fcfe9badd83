"""Tests for the DataConfig dispatch: each dataset name reaches its loader, with its rules."""

import ast
from pathlib import Path

import pytest

import tfrec  # noqa: F401
from tfrec import config as config_lib
from tfrec import errors
from tfrec.data import loaders


def test_synthetic_dispatch():
    data = config_lib.DataConfig(synthetic=config_lib.SyntheticConfig(120, 60, 1500, 4, 0))
    ds = loaders.load(data)
    assert ds.name == "synthetic" and len(ds.interactions) == 1500 and len(ds.items) == 120


def test_csv_dispatch_with_a_file_path(write):
    path = write("log.csv", ["user_id,item_id,timestamp", "u,a,1700000000"])
    ds = loaders.load(config_lib.DataConfig(dataset="csv", path=str(path)))
    assert ds.interactions["item_id"].tolist() == ["a"]


def test_csv_dispatch_with_a_folder(write, tmp_path):
    write("log.csv", ["user_id,item_id,timestamp", "u,a,1700000000"])
    data = config_lib.DataConfig(
        dataset="csv", path=str(tmp_path), csv=config_lib.CsvConfig(interactions="log.csv")
    )
    assert len(loaders.load(data).interactions) == 1


@pytest.mark.parametrize("dataset", ["online-retail", "movielens"])
def test_missing_path_is_named(tmp_path, dataset):
    missing = tmp_path / "nowhere"
    with pytest.raises(errors.DataError, match="nowhere"):
        loaders.load(config_lib.DataConfig(dataset=dataset, path=str(missing)))


def test_unknown_dataset():
    with pytest.raises(errors.ConfigError, match="received 'imdb'"):
        loaders.load(config_lib.DataConfig(dataset="imdb"))


def test_strict_reaches_the_loader(write):
    path = write("log.csv", ["user_id,item_id,timestamp", "u,a,1700000000", "u,a,1700000000"])
    lenient = loaders.load(config_lib.DataConfig(dataset="csv", path=str(path)))
    assert lenient.report.dropped["exact duplicate row"] == 1
    strict = config_lib.DataConfig(dataset="csv", path=str(path), strict=True)
    with pytest.raises(errors.DataError, match="row 3: expected each row once"):
        loaders.load(strict)


def test_time_range_comes_from_the_config(write):
    path = write("log.csv", ["user_id,item_id,timestamp", "u,a,2001-01-01", "u,b,2020-01-01"])
    data = config_lib.DataConfig(dataset="csv", path=str(path), min_timestamp="2010-01-01",
                                 max_timestamp="2030-01-01T00:00:00+02:00")  # fmt: skip
    assert loaders.load(data).interactions["item_id"].tolist() == ["b"]
    rules = loaders.rules(data)
    assert rules.time_range() == (1262304000, 1893448800)  # 2010-01-01Z, 2029-12-31T22:00Z


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"min_timestamp": "soon"}, "`data.min_timestamp` must be an ISO 8601 .* received 'soon'"),
        ({"min_timestamp": "2020-01-01", "max_timestamp": "2019-01-01"},
         "`data.min_timestamp` must not be after `data.max_timestamp`"),
        ({"max_field_size": 0}, "`data.max_field_size` must be >= 1, received 0"),
    ],
)  # fmt: skip
def test_bad_rules_name_the_config_key(fields, message):
    with pytest.raises(errors.ConfigError, match=message):
        loaders.rules(config_lib.DataConfig(**fields))


def _imports(module: Path) -> set[str]:
    """tfrec.data modules that `module` imports, at the top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module == "tfrec.data":
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tfrec.data."):
            found.add(node.module.split(".")[2])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[2] for a in node.names if a.name.startswith("tfrec.data.")}
    return found


def test_no_import_cycle_inside_tfrec_data():
    folder = Path(loaders.__file__).parent
    graph = {p.stem: _imports(p) for p in folder.glob("*.py")}
    assert {"csv_loader", "online_retail", "movielens", "synthetic"} <= graph["loaders"]

    def reaches(start: str, target: str, seen: set) -> bool:
        for name in graph.get(start, ()):
            if name == target or (name not in seen and reaches(name, target, seen | {name})):
                return True
        return False

    cycles = sorted(name for name in graph if reaches(name, name, {name}))
    assert cycles == []
