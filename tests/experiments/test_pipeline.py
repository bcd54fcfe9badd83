"""`tfrec experiment`: file errors before any training, the jobs it starts, an end-to-end run."""

from __future__ import annotations

import pytest

from tests.experiments.conftest import write_experiment
from tfrec import cli, errors
from tfrec.experiments import runner
from tfrec.experiments import spec as spec_lib
from tfrec.pipelines import experiment as experiment_lib


def test_a_missing_data_path_fails_before_training(tmp_path, capsys):
    path = write_experiment(tmp_path, "  base: {}\n", "dataset:\n  path: /no/such/data\n")
    out = tmp_path / "out"
    code = cli.main(["experiment", "run", str(path), "--output", str(out)])
    assert code == 2
    assert f"{path}:8: `dataset.path`" in capsys.readouterr().err
    assert not out.exists()  # nothing was started


@pytest.mark.parametrize("command", ["run", "report"])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["experiment", command, "--help"])
    assert e.value.code == 0
    assert "experiment YAML file" in capsys.readouterr().out


def test_jobs_must_be_positive(tmp_path, capsys):
    path = write_experiment(tmp_path, "  base: {}\n")
    assert cli.main(["experiment", "run", str(path), "--jobs", "0"]) == 2
    assert "`--jobs` must be an int >= 1, received 0" in capsys.readouterr().err


def test_jobs_one_per_distinct_run(tmp_path):
    path = write_experiment(
        tmp_path,
        "  base: {}\n  no_ranker: {ranker: false}\n  small:\n    set: {model.embedding_dim: 8}\n",
    )
    exp = spec_lib.load(path, output=tmp_path / "out")
    jobs = experiment_lib.jobs_of(exp)
    # `no_ranker` measures the reference's runs differently: it trains nothing of its own.
    assert sorted(j.label for j in jobs) == [
        f"{v}/seed-{s}" for v in ("base", "small") for s in (0, 1, 2)
    ]
    seeded = (exp.run_dir("small", 2) / experiment_lib.JOB_CONFIG).read_text()
    assert "seed: 2" in seeded and "embedding_dim: 8" in seeded
    runner.write_json(exp.run_dir("base", 0) / runner.DONE, {})
    (exp.run_dir("base", 0) / experiment_lib.JOB_CONFIG).unlink()
    experiment_lib.jobs_of(exp)
    assert not (exp.run_dir("base", 0) / experiment_lib.JOB_CONFIG).exists()  # finished: untouched


def test_a_finished_run_of_another_config_is_an_error(tmp_path):
    path = write_experiment(tmp_path, "  base: {}\n")
    exp = spec_lib.load(path, output=tmp_path / "out")
    experiment_lib.jobs_of(exp)
    runner.write_json(exp.run_dir("base", 1) / runner.DONE, {})
    edited = write_experiment(tmp_path, "  base:\n    set: {train.epochs: 7}\n")
    with pytest.raises(errors.ConfigError, match="`train.epochs` was 2, the experiment now says 7"):
        experiment_lib.jobs_of(spec_lib.load(edited, output=tmp_path / "out"))


@pytest.mark.slow
def test_tiny_experiment_end_to_end(tmp_path):
    """Two variants of configs/tiny.yaml (one sharing the reference's runs) over 3 seeds."""
    path = write_experiment(
        tmp_path,
        "  base: {}\n  no_ranker: {ranker: false}\n  small:\n    set: {model.embedding_dim: 8}\n",
        "set:\n  train.epochs: 1\n  train.histogram_freq: 0\n  ranking.epochs: 1\n"
        "  ranking.mlp: [16]\n  recommend.retrieve_n: 30\n",
    )
    out = tmp_path / "out"
    report = experiment_lib.run(path, output=out, jobs=2, progress=False)
    page = report.read_text(encoding="utf-8")
    for variant in ("base", "no_ranker", "small"):
        assert variant in page
        serving = runner.read_json(out / variant / "serving.json")
        assert serving is not None and serving["latency"]["p50_ms"] > 0, serving
        assert list((out / "tensorboard" / variant).glob("seed-*/hparams/events.*"))
    assert (
        runner.read_json(out / "no_ranker" / "serving.json")["latency"]["signature"] == "retrieve"
    )
    done = {p.stat().st_mtime for p in out.glob("*/seed-*/done.json")}
    assert len(done) == 6
    experiment_lib.run(path, output=out, jobs=2, progress=False)  # nothing to train again
    assert {p.stat().st_mtime for p in out.glob("*/seed-*/done.json")} == done
