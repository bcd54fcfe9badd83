"""Tests for `tfrec data convert`: streamed cleaning equals the in-memory loader's, errors, CLI."""

import dataclasses
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

import tfrec  # noqa: F401
from tests.data import shard_helpers
from tfrec import cli, errors
from tfrec import config as config_lib
from tfrec.data import convert, csv_loader, loaders, shards, synthetic, textfile


@pytest.fixture(scope="module")
def log(tmp_path_factory):
    return shard_helpers.write_log(tmp_path_factory.mktemp("log"))


def test_streamed_rows_equal_in_memory_loader(log, tmp_path):
    # Chunks of 700 rows and shards of 1,000 events: rows cross both boundaries.
    result = convert.convert(
        shard_helpers.csv_data(log), tmp_path / "s", shard_rows=1000, chunk_rows=700
    )
    memory = csv_loader.load(shard_helpers.CSV, base_dir=log)
    back = shard_helpers.read_events(tmp_path / "s")
    pd.testing.assert_frame_equal(
        shard_helpers.canonical_order(back), shard_helpers.canonical_order(memory.interactions)
    )
    manifest = result.manifest
    assert manifest["streamed"] and manifest["dataset"] == "csv"
    assert [s["rows"] for s in manifest["shards"]] == [1000, 1000, 1000]
    report = manifest["report"]
    assert report["rows_read"] == memory.report.rows_read == 3000 + len(shard_helpers.DIRTY)
    assert report["rows_kept"] == len(memory.interactions) == 3000
    assert report["dropped"] == {k: v for k, v in memory.report.dropped.items()
                                 if k != "exact duplicate row"}  # fmt: skip
    assert [v for v in report["dropped"].values() if v] == [1, 1, 1, 1]  # each DIRTY row
    assert manifest["time_range"] == {
        "min": int(memory.interactions["timestamp"].min()),
        "max": int(memory.interactions["timestamp"].max()),
    }
    assert result.events_per_second > 0


def test_gzipped_and_parquet_sources_give_the_same_events(log, tmp_path):
    frame = pd.read_csv(log / "interactions.csv", dtype=str, keep_default_na=False)
    frame.to_csv(tmp_path / "log.csv.gz", index=False)
    frame.to_parquet(tmp_path / "log.parquet", row_group_size=500)
    expected = shard_helpers.canonical_order(
        csv_loader.load(shard_helpers.CSV, base_dir=log).interactions
    )
    for name in ("log.csv.gz", "log.parquet"):
        data = shard_helpers.csv_data(tmp_path / name)
        convert.convert(data, tmp_path / name.replace(".", "-"), chunk_rows=900)
        back = shard_helpers.read_events(tmp_path / name.replace(".", "-"))
        pd.testing.assert_frame_equal(shard_helpers.canonical_order(back), expected)


def test_whole_log_source_writes_its_cleaned_output(tmp_path):
    data = config_lib.DataConfig(
        dataset="synthetic",
        synthetic=config_lib.SyntheticConfig(
            num_items=50, num_users=40, num_events=500, num_categories=3
        ),
    )
    result = convert.convert(data, tmp_path / "s", chunk_rows=128)
    assert not result.manifest["streamed"] and result.manifest["sorted_by_timestamp"]
    expected = loaders.load(data).interactions
    pd.testing.assert_frame_equal(shard_helpers.read_events(tmp_path / "s"), expected)


def _bad_log(tmp_path, row: str) -> config_lib.DataConfig:
    lines = ["user_id,item_id,timestamp,event_type,price"]
    lines += [f"u{i},i{i},{1704100000 + i},view,2.5" for i in range(30)]
    lines.insert(25, row)  # line 26 of the file
    (tmp_path / "log.csv").write_text("\n".join(lines) + "\n")
    csv = config_lib.CsvConfig(title="", event_type="event_type", price="price")
    return config_lib.DataConfig(dataset="csv", path=str(tmp_path / "log.csv"), csv=csv)


@pytest.mark.parametrize(
    "row, strict, field, expected",
    [
        ("u1,i1,1704100000,browse,2.5", False, "event_type", "expected an event type"),
        ("u1,i1,1704100000,view,abc", False, "price", "expected a number"),
        ("u1,i1,yesterday,view,2.5", False, "timestamp", "expected unix seconds \\(as the other"),
        ("u1,i1,1704100000,view,0", True, "price", "expected a price > 0"),
        ("u1,i1,12,view,2.5", True, "timestamp", "expected a time from 1990"),
    ],
)
def test_bad_value_names_file_row_and_field(tmp_path, row, strict, field, expected):
    data = dataclasses.replace(_bad_log(tmp_path, row), strict=strict)
    # Chunks of 10 rows: the bad row is in the third chunk, after two shards were written.
    pattern = f"log.csv`, row 26, field `{field}`: {expected}"
    with pytest.raises(errors.DataError, match=pattern):
        convert.convert(data, tmp_path / "s", shard_rows=10, chunk_rows=10)
    assert list((tmp_path / "s").iterdir()) == []  # nothing that looks finished


def test_strict_mode_without_refusals_never_maps_the_whole_file(log, tmp_path, monkeypatch):
    # Rows without a user are dropped even in strict mode; listing them as examples would map
    # every record of the file to its line. Only a refusal may do that.
    def whole_file_pass(*args, **kwargs):
        raise AssertionError("mapped records to lines")

    monkeypatch.setattr(textfile, "lines_of", whole_file_pass)
    frame = pd.read_csv(log / "interactions.csv", dtype=str, keep_default_na=False)
    frame.iloc[:3000].to_csv(tmp_path / "log.csv", index=False)
    with open(tmp_path / "log.csv", "a") as f:
        f.write(",i1,1704100000,view,1.0,1.0,3.5\n")
    data = dataclasses.replace(shard_helpers.csv_data(tmp_path / "log.csv"), strict=True)
    result = convert.convert(data, tmp_path / "s", chunk_rows=1000)
    assert result.manifest["num_events"] == 3000
    assert result.manifest["report"]["dropped"]["missing `user_id`"] == 1


def test_ragged_row_names_file_and_row(tmp_path):
    data = _bad_log(tmp_path, "u1,i1,1704100000,view,2.5,extra")
    with pytest.raises(errors.DataError, match=r"log.csv`, row 26: expected ','-separated"):
        convert.convert(data, tmp_path / "s", chunk_rows=10)


def test_killed_conversion_leaves_no_finished_looking_file(tmp_path):
    lines = ["user_id,item_id,timestamp"]
    lines += [f"u{i % 997},i{i % 101},{1704100000 + i}" for i in range(300_000)]
    (tmp_path / "log.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "s"
    argv = ["data", "convert", "--dataset", "csv", "--path", str(tmp_path / "log.csv"),
            "--out", str(out), "--shard-rows", "20000", "--no-progress"]  # fmt: skip
    process = subprocess.Popen([sys.executable, "-m", "tfrec", *argv], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    # Killed once the first shard is finished (under its temporary name) and the next begun.
    while len(list(out.glob(".tmp-part-*"))) < 2:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    left = [p.name for p in out.iterdir()]
    assert left and all(name.startswith(".tmp-part-") for name in left), left
    with pytest.raises(errors.DataError, match="manifest.json"):
        shards.dataset(out)
    # A new run into the same folder removes the leftovers and completes.
    assert cli.main(argv) == 0
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    assert shards.read_manifest(out)["num_events"] == 300_000


def test_missing_column_is_refused(tmp_path):
    (tmp_path / "log.csv").write_text("user,item_id,timestamp\nu1,i1,1704100000\n")
    data = config_lib.DataConfig(dataset="csv", path=str(tmp_path / "log.csv"))
    with pytest.raises(errors.DataError, match="field `user_id`: expected columns"):
        convert.convert(data, tmp_path / "s")


def test_cli_convert_prints_events_per_second(log, tmp_path, capsys):
    config = tmp_path / "csv.yaml"
    config.write_text(
        "data:\n  dataset: csv\n  csv:\n"
        + "".join(
            f"    {f.name}: {getattr(shard_helpers.CSV, f.name)!r}\n"
            for f in dataclasses.fields(shard_helpers.CSV)
        )  # fmt: skip
    )
    argv = ["data", "convert", "--config", str(config), "--path", str(log),
            "--out", str(tmp_path / "s"), "--shard-rows", "2000", "--no-progress"]  # fmt: skip
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "wrote 3,000 events in 2 shard(s)" in out and "events/s" in out
    assert shards.read_manifest(tmp_path / "s")["num_events"] == 3000
    # Again into the same folder: refused, exit code 2.
    assert cli.main(argv) == 2
    assert "expected an empty output folder" in capsys.readouterr().err


def test_synthetic_write_then_convert_keeps_every_event(tmp_path):
    ds = synthetic.generate(num_items=30, num_users=20, num_events=200, num_categories=2)
    synthetic.write(ds, tmp_path / "src")
    result = convert.convert(shard_helpers.csv_data(tmp_path / "src"), tmp_path / "s")
    assert result.manifest["num_events"] == 200 and result.manifest["sorted_by_timestamp"]
