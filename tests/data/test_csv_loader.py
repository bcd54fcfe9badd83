"""Tests for the generic CSV / Parquet loader driven by a CsvConfig column mapping."""

import numpy as np
import pandas as pd
import pytest

import tfrec  # noqa: F401
from tfrec import config as config_lib
from tfrec import errors
from tfrec.data import cleaning, csv_loader


def test_minimal_mapping_uses_defaults(write):
    path = write(
        "log.csv",
        ["user_id,item_id,timestamp", "u1,a,1700000020", "u2,b,1700000010", "u1,b,1700000030"],
    )
    ds = csv_loader.load(config_lib.CsvConfig(interactions=str(path)))
    inter = ds.interactions
    assert inter["timestamp"].tolist() == [1700000010, 1700000020, 1700000030]  # sorted by time
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
    path = write("log.csv", ["u,i,t,e", "1,a,1700000001,view", "1,a,1700000002,wishlist"])
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
    frame = pd.DataFrame({"user_id": ["u1", "u2"], "item_id": ["a", "b"], "timestamp": [1700000005, 1700000003],
                          "title": ["Mug", "Pan"]})  # fmt: skip
    frame.to_parquet(tmp_path / "log.parquet")
    ds = csv_loader.load(config_lib.CsvConfig(interactions="log.parquet"), base_dir=tmp_path)
    assert ds.interactions["item_id"].tolist() == ["b", "a"]
    assert ds.items.set_index("item_id")["title"].to_dict() == {"a": "Mug", "b": "Pan"}


def test_bad_catalog_price_names_its_own_row(write, tmp_path):
    write("log.csv", ["user_id,item_id,timestamp,price", "u,a,1700000000,2.5"])
    write("items.csv", ["item_id,title,price", "a,Mug,2.5", "b,Pan,cheap"])
    csv = config_lib.CsvConfig(interactions="log.csv", catalog="items.csv", price="price")
    with pytest.raises(errors.DataError, match=r"items\.csv`, row 3, field `price`.*'cheap'"):
        csv_loader.load(csv, base_dir=tmp_path)


# Row numbers in comments; row 3 spans two lines, so row 4 starts on line 5.
SUSPECT = [
    "user_id,item_id,timestamp,price,note",
    "u1,a,1700000000,2.5,",  # 2 kept
    'u1,b,1700000100,3.0,"two\nlines"',  # 3 kept
    "u1,a,1700000000,2.5,",  # 5 duplicate of 2
    "u2,a,5,2.5,",  # 6 year 1970
    "u2,b,10413792000,3.0,",  # 7 year 2300
    "u2,c,1700000200,-1.5,",  # 8 negative price
    "u2,c,1700000300,0,",  # 9 zero price
    "u3,c,1700000400,,",  # 10 kept: an unknown price is not a bad one
]


def test_suspect_rows_are_dropped_counted_and_named(write):
    ds = csv_loader.load(config_lib.CsvConfig(interactions=str(write("log.csv", SUSPECT)),
                                              price="price"))  # fmt: skip
    report = ds.report
    assert report.dropped == {
        "missing `user_id`": 0, "missing `item_id`": 0, "missing `timestamp`": 0,
        "timestamp outside the plausible time range": 2, "price <= 0": 2,
        "exact duplicate row": 1,
    }  # fmt: skip
    assert report.rows_kept == 3 and ds.interactions["item_id"].tolist() == ["a", "b", "c"]
    assert report.examples == {
        "timestamp outside the plausible time range": [
            "row 6: `timestamp` '5' (1970-01-01 00:00:05 UTC)",
            "row 7: `timestamp` '10413792000' (2300-01-01 00:00:00 UTC)",
        ],
        "price <= 0": ["row 8: `price` '-1.5'", "row 9: `price` '0'"],
        "exact duplicate row": ["row 5: copy of row 2"],
    }
    assert "`data.strict` refuses them" in report.treatments["exact duplicates"]


@pytest.mark.parametrize(
    "keep_rows, row, field, message",
    [
        ([1, 2, 3], 5, None, "expected each row once, received a copy of row 2"),
        ([1, 4], 3, "timestamp", "expected a time from 1990-01-01 00:00:00 to .* received '5' "
                                 r"\(1970-01-01 00:00:05 UTC\)"),
        ([1, 5], 3, "timestamp", "received '10413792000' \\(2300-01-01"),
        ([1, 6], 3, "price", "expected a price > 0, received '-1.5'"),
        ([1, 7], 3, "price", "expected a price > 0, received '0'"),
    ],
)  # fmt: skip
def test_strict_refuses_suspect_rows(write, keep_rows, row, field, message):
    path = write("log.csv", [SUSPECT[0]] + [SUSPECT[i] for i in keep_rows])
    csv = config_lib.CsvConfig(interactions=str(path), price="price")
    with pytest.raises(errors.DataError, match=message) as info:
        csv_loader.load(csv, rules=cleaning.Rules(strict=True))
    assert (info.value.path, info.value.row, info.value.field) == (str(path), row, field)
    assert "`data.strict` refuses such rows" in str(info.value)


def test_plausible_time_range_is_configurable(write):
    path = write("log.csv", ["user_id,item_id,timestamp", "u,a,2009-12-31", "u,b,2010-06-01",
                             "u,c,2011-01-02T00:00:01"])  # fmt: skip
    rules = cleaning.Rules(min_timestamp="2010-01-01", max_timestamp="2011-01-02")
    ds = csv_loader.load(config_lib.CsvConfig(interactions=str(path)), rules=rules)
    assert ds.interactions["item_id"].tolist() == ["b"]
    assert ds.report.examples["timestamp outside the plausible time range"] == [
        "row 2: `timestamp` '2009-12-31' (2009-12-31 00:00:00 UTC)",
        "row 4: `timestamp` '2011-01-02T00:00:01' (2011-01-02 00:00:01 UTC)",
    ]


def test_a_lone_huge_unix_time_is_implausible_not_milliseconds(write):
    path = write("log.csv", ["user_id,item_id,timestamp", "u,a,1700000000", "u,b,1e300"])
    ds = csv_loader.load(config_lib.CsvConfig(interactions=str(path)))
    assert ds.report.dropped["timestamp outside the plausible time range"] == 1
    assert ds.report.examples["timestamp outside the plausible time range"][0].startswith(
        "row 3: `timestamp` '1e300' ("
    )
