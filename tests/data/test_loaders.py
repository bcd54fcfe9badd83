"""Tests for the DataConfig dispatch and the shared file reading helpers."""

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
    path = write("log.csv", ["user_id,item_id,timestamp", "u,a,1"])
    ds = loaders.load(config_lib.DataConfig(dataset="csv", path=str(path)))
    assert ds.interactions["item_id"].tolist() == ["a"]


def test_csv_dispatch_with_a_folder(write, tmp_path):
    write("log.csv", ["user_id,item_id,timestamp", "u,a,1"])
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


def test_line_of_counts_quoted_breaks_and_blank_lines(write):
    path = write("t.csv", ["a,b", '1,"x', 'y"', "", "2,z", "3,w"])
    fmt = loaders.TextFormat()
    frame = loaders.read_table(path, fmt)
    assert frame["b"].tolist() == ["x\ny", "z", "w"]
    assert [loaders.line_of(path, r, fmt) for r in range(3)] == [2, 5, 6]


def test_ragged_row_names_line(write):
    with pytest.raises(errors.DataError, match="row 3: expected 2 fields, received 3"):
        loaders.read_table(write("t.csv", ["a,b", "1,2", "1,2,3"]))


def test_multi_character_separator(write):
    frame = loaders.read_table(
        write("t.dat", ["1::a|b", "2::c"]), loaders.TextFormat(sep="::", header=False),
        names=["id", "genres"],
    )  # fmt: skip
    assert frame.to_dict("list") == {"id": ["1", "2"], "genres": ["a|b", "c"]}
