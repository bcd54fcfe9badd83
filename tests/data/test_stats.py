"""Tests for `tfrec data stats`: the cleaning report with example rows, and `--strict`."""

import json

import tfrec  # noqa: F401
from tfrec import cli
from tfrec import config as config_lib
from tfrec.data import stats

LOG = ["user_id,item_id,timestamp,price"] + [
    f"u{i % 3},i{i % 4},{1700000000 + 3600 * i},2.5" for i in range(30)
] + ["u0,i0,1700000000,2.5", "u1,i1,5,2.5", "u2,i2,1700000100,-1"]  # rows 32, 33, 34  # fmt: skip


def test_report_counts_and_shows_examples(write):
    path = write("log.csv", LOG)
    data = config_lib.DataConfig(
        dataset="csv", path=str(path), csv=config_lib.CsvConfig(price="price")
    )
    report = stats.compute(data)
    assert report["rows_read"] == 33 and report["interactions"] == 30
    assert report["dropped"]["exact duplicate row"] == 1
    assert report["examples"] == {
        "timestamp outside the plausible time range": [
            "row 33: `timestamp` '5' (1970-01-01 00:00:05 UTC)"
        ],
        "price <= 0": ["row 34: `price` '-1'"],
        "exact duplicate row": ["row 32: copy of row 2"],
    }
    text = stats.format_report(report)
    assert "  exact duplicate row" in text and "      e.g. row 32: copy of row 2" in text
    assert "      e.g. row 34: `price` '-1'" in text


def test_cli_strict_flag_refuses_with_the_row(write, capsys):
    path = str(write("log.csv", LOG))
    args = ["data", "stats", "--dataset", "csv", "--path", path, "--set", "data.csv.price=price"]
    assert cli.main([*args, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["dropped"]["price <= 0"] == 1
    assert cli.main([*args, "--strict"]) == 2
    err = capsys.readouterr().err
    assert f"file `{path}`, row 32: expected each row once, received a copy of row 2" in err
