"""The command line: help on every command, data commands, clear errors with exit code 2."""

import json
import subprocess
import sys

import pytest

from tests import harness
from tfrec import cli


def _run(*args):
    return subprocess.run(
        [sys.executable, "-m", "tfrec", *args], capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize(
    "command",
    [[], ["data"], ["data", "stats"], ["data", "convert"], ["data", "generate"], ["train"],
     ["evaluate"], ["logs"], ["logs", "stats"]],
)  # fmt: skip
def test_help_on_every_command(command, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main([*command, "--help"])
    assert e.value.code == 0
    assert "usage: tfrec" in capsys.readouterr().out


def test_serve_help():
    r = _run("serve", "--help")
    assert r.returncode == 0 and "--grpc-port" in r.stdout


def test_data_generate_then_stats_on_the_written_csv(tmp_path, capsys):
    out = tmp_path / "synth"
    assert (
        cli.main(
            [
                "data",
                "generate",
                "--out",
                str(out),
                "--items",
                "80",
                "--users",
                "40",
                "--events",
                "900",
                "--categories",
                "3",
            ]
        )
        == 0
    )
    assert {"interactions.csv", "items.csv", "users.csv"} <= {p.name for p in out.iterdir()}
    capsys.readouterr()
    assert (
        cli.main(
            [
                "data",
                "stats",
                "--dataset",
                "csv",
                "--path",
                str(out / "interactions.csv"),
                "--set",
                "data.csv.catalog=items.csv",
                "--set",
                "data.csv.event_type=event_type",
                "--json",
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["interactions"] == 900
    assert set(report["split"]) >= {"train", "validation", "test"}
    assert report["split"]["test"]["cold_items"] >= 0


def test_synthetic_stats_table(capsys):
    assert cli.main(["data", "stats", "--config", harness.TINY_CONFIG]) == 0
    out = capsys.readouterr().out
    assert "interactions  1,500" in out and "split:" in out


def test_missing_file_is_a_clear_error(tmp_path, capsys):
    missing = tmp_path / "nope.csv.gz"
    assert cli.main(["data", "stats", "--dataset", "online-retail", "--path", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tfrec: error:") and str(missing) in err


def test_bad_override_is_a_clear_error(capsys):
    assert cli.main(["train", "--workdir", "x", "--set", "train.epochs=lots"]) == 2
    assert "`train.epochs` must be int" in capsys.readouterr().err
