"""Tests for the generic CSV / Parquet loader driven by a CsvConfig column mapping."""

import numpy as np
import pandas as pd
import pytest

import tfrec  # noqa: F401
from tfrec import config as config_lib
from tfrec import errors
from tfrec.data import csv_loader


def test_minimal_mapping_uses_defaults(write):
    path = write("log.csv", ["user_id,item_id,timestamp", "u1,a,20", "u2,b,10", "u1,b,30"])
    ds = csv_loader.load(config_lib.CsvConfig(interactions=str(path)))
    inter = ds.interactions
    assert inter["timestamp"].tolist() == [10, 20, 30]  # sorted by time
    assert inter["item_id"].tolist() == ["b", "a", "b"]
    assert set(inter["event_type"]) == {"purchase"}
    assert inter["value"].tolist() == [1.0] * 3 and inter["quantity"].tolist() == [1.0] * 3
    assert inter["price"].isna().all()
    assert ds.items.set_index("item_id")["title"].to_dict() == {"a": "a", "b": "b"}
    assert sorted(ds.users["user_id"]) == ["u1", "u2"]
    assert ds.report.rows_read == 3 and ds.report.rows_kept == 3


def test_full_mapping_with_catalog(write, tmp_path):
    write(
        "events.csv",
        [
            "who,what,when,kind,stars,units,cost",
            "u1,a,2024-01-01T00:00:10Z,View,,,",
            "u1,a,2024-01-01T01:00:00+01:00,addtocart,,2,9.5",
            "u2,c,2024-01-01 00:00:30,rating,4.5,,",
            ",a,2024-01-01 00:00:40,view,,,",
        ],
    )
    write("catalog.csv", ["what,name,text,group,cost", "a,Red mug,Ceramic,kitchen,9.5",
                          "b,Blue pan,Steel,kitchen,20", "a,dup,dup,dup,1"])  # fmt: skip
    csv = config_lib.CsvConfig(
        interactions="events.csv", catalog="catalog.csv", user_id="who", item_id="what",
        timestamp="when", event_type="kind", value="stars", quantity="units", price="cost",
        title="name", description="text", category="group",
    )  # fmt: skip
    ds = csv_loader.load(csv, base_dir=tmp_path)
    inter = ds.interactions
    # 01:00+01:00 is 00:00 UTC, the earliest event.
    assert inter["timestamp"].tolist() == [1704067200, 1704067210, 1704067230]
    assert inter["event_type"].tolist() == ["cart", "view", "rating"]
    assert inter["value"].tolist() == [1.0, 1.0, 4.5]
    assert inter["quantity"].tolist() == [2.0, 1.0, 1.0]
    assert inter["price"].iloc[0] == pytest.approx(9.5) and np.isnan(inter["price"].iloc[1])
    assert ds.report.dropped["missing `who`"] == 1
    items = ds.items.set_index("item_id")
    assert items.loc["a"].tolist()[:3] == ["Red mug", "Ceramic", "kitchen"]  # first row wins
    assert items.loc["c", "title"] == "c"  # not in the catalog: falls back to its id
    assert len(items) == 3
    assert "1 items are absent" in ds.report.treatments["items missing from the catalog"]


def test_timestamp_format(write):
    path = write("log.csv", ["user_id,item_id,timestamp", "u,a,09/12/2011 08:26"])
    csv = config_lib.CsvConfig(interactions=str(path), timestamp_format="%d/%m/%Y %H:%M")
    assert csv_loader.load(csv).interactions["timestamp"].tolist() == [1323419160]


def test_unknown_event_type_names_row_and_field(write):
    path = write("log.csv", ["u,i,t,e", "1,a,1,view", "1,a,2,wishlist"])
    csv = config_lib.CsvConfig(interactions=str(path), user_id="u", item_id="i", timestamp="t",
                               event_type="e")  # fmt: skip
    with pytest.raises(errors.DataError, match="row 3, field `e`.*received 'wishlist'"):
        csv_loader.load(csv)


def test_bad_timestamp_names_row(write):
    path = write("log.csv", ["user_id,item_id,timestamp", "u,a,2024-01-01", "u,a,yesterday"])
    with pytest.raises(errors.DataError, match="row 3, field `timestamp`.*'yesterday'"):
        csv_loader.load(config_lib.CsvConfig(interactions=str(path)))


def test_millisecond_timestamps_are_refused(write):
    path = write("log.csv", ["user_id,item_id,timestamp", "u,a,1433221332117"])
    with pytest.raises(errors.DataError, match="milliseconds"):
        csv_loader.load(config_lib.CsvConfig(interactions=str(path)))


def test_missing_mapped_column(write):
    path = write("log.csv", ["user,item_id,timestamp", "u,a,1"])
    with pytest.raises(errors.DataError, match=r"missing \['user_id'\]"):
        csv_loader.load(config_lib.CsvConfig(interactions=str(path)))


def test_missing_file_is_named(tmp_path):
    with pytest.raises(errors.DataError, match="absent.csv"):
        csv_loader.load(config_lib.CsvConfig(interactions="absent.csv"), base_dir=tmp_path)


def test_parquet(tmp_path):
    frame = pd.DataFrame({"user_id": ["u1", "u2"], "item_id": ["a", "b"], "timestamp": [5, 3],
                          "title": ["Mug", "Pan"]})  # fmt: skip
    frame.to_parquet(tmp_path / "log.parquet")
    ds = csv_loader.load(config_lib.CsvConfig(interactions="log.parquet"), base_dir=tmp_path)
    assert ds.interactions["item_id"].tolist() == ["b", "a"]
    assert ds.items.set_index("item_id")["title"].to_dict() == {"a": "Mug", "b": "Pan"}
