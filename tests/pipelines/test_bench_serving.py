"""`tfrec bench serving`: arguments, percentiles, the report's structure, synthetic exports."""

import json
import math

import numpy as np
import pytest

import tfrec  # noqa: F401  (sets the Keras-2 environment before TensorFlow is imported)
from tests import harness
from tests.exporting.conftest import OVERRIDES
from tfrec import cli, errors
from tfrec.pipelines import bench_serving as bench
from tfrec.serving import Client, bench_report, loadtest
from tfrec.serving import server as server_lib

# The exporting tests' tiny run: one epoch per stage, a small ranker, no baselines.
TINY = OVERRIDES


# -- pure parts ----------------------------------------------------------------------------------


def test_percentiles_match_numpy_on_known_samples():
    # 1..100: position (n - 1) * q / 100 -> 49.5, 94.05, 98.01 (0-based) -> values + 1.
    assert loadtest.percentiles(range(1, 101)) == pytest.approx([50.5, 95.05, 99.01])
    assert loadtest.percentiles([4.0, 1.0, 3.0, 2.0], [0, 50, 100]) == [1.0, 2.5, 4.0]
    rng = np.random.default_rng(0)
    qs = [0, 1, 50, 95, 99, 99.9, 100]
    for n in (1, 2, 7, 1000):
        samples = rng.exponential(3.0, n)
        np.testing.assert_allclose(loadtest.percentiles(samples, qs), np.percentile(samples, qs))
    assert all(math.isnan(v) for v in loadtest.percentiles([]))
    with pytest.raises(ValueError, match="`qs`"):
        loadtest.percentiles([1.0], [101])


def test_parse_items_and_seconds():
    assert bench.parse_items("100000,10000, 10000") == (10_000, 100_000)
    assert bench.parse_items("1_000_000") == (1_000_000,)
    for bad in ("0", "abc", "", "10000,", "1.5", "-5", "9", "10k"):
        with pytest.raises(errors.ConfigError, match="`--items` must be comma-separated integers"):
            bench.parse_items(bad)
    assert bench.check_seconds("1.5") == 1.5
    for bad in ("0", "-1", "x", "301", None):
        with pytest.raises(errors.ConfigError, match=r"`--seconds` must be a number in \(0, 300\]"):
            bench.check_seconds(bad)


def test_cli_help_names_every_option(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["bench", "serving", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert all(f"--{o}" in out for o in ("workdir", "config", "items", "seconds", "output"))


def test_default_config_is_the_demo_model_trained_briefly():
    config = bench.bench_config()
    assert (config.name, config.model.embedding_dim, config.data.max_history) == ("demo", 64, 20)
    assert config.model.history_encoder == "attention"
    assert (config.train.epochs, config.ranking.epochs, config.eval.baselines) == (1, 1, ())
    assert bench.bench_config(harness.TINY_CONFIG).model.embedding_dim == 16


@pytest.mark.parametrize(
    "args, message",
    [
        (["--items", "0"], "`--items` must be comma-separated integers >= 10"),
        (["--items", "ten"], "received 'ten'"),
        (["--seconds", "0"], "`--seconds` must be a number"),
        (["--workdir", "/nonexistent/run"], "`--workdir` must be a trained run"),
        (["--config", "/nonexistent.yaml"], "`--config` must be a YAML config file"),
    ],
)
def test_cli_rejects_bad_arguments(args, message, capsys, tmp_path):
    code = cli.main(["bench", "serving", "--output", str(tmp_path), *args])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing measured or written


def test_plan_full_grid_up_to_the_limit_and_says_what_it_skips():
    groups, skipped = bench.plan((2000, 1_000_000), with_recommend=True, full_grid_max=100_000)
    assert [(n, b) for n, b, _ in groups] == [(2000, False), (2000, True), (1_000_000, False)]
    small = groups[0][2]
    assert {(c.model, c.signature, c.protocol) for c in small} == {
        ("tfrec", "retrieve", "grpc"),
        ("tfrec", "retrieve", "rest"),
        ("tfrec", "recommend", "grpc"),
        ("tfrec", "recommend", "rest"),
        ("tfrec_f32", "retrieve", "grpc"),
        ("tfrec_int8", "retrieve", "grpc"),
    }
    large = groups[2][2]
    assert len(large) == 4 and {c.protocol for c in large} == {"grpc"}
    assert len(skipped) == 1 and "1,000,000 items" in skipped[0]
    _, skipped = bench.plan((2000,), with_recommend=False)
    assert "no trained ranker" in skipped[0]


def _info(*dims):
    return {"dtype": "DT_STRING", "tensor_shape": {"dim": [{"size": str(d)} for d in dims]}}


def test_inputs_follow_the_declared_shapes():
    row = {
        "user_id": "u1",
        "history_item_ids": ["a", "b", "c"],
        "history_event_types": ["view", "cart", "view"],
        "hour_of_day": 3,
        "day_of_week": 1,
    }
    per_row = {
        "inputs": {
            "user_id": _info(-1),
            "history_item_ids": _info(-1, -1),
            "k": _info(-1),
            "exclude_recent": _info(-1),
        }
    }
    assert bench.inputs_for(per_row, row) == {
        "user_id": ["u1"],
        "history_item_ids": [["a", "b", "c"]],
        "k": [bench.K],
        "exclude_recent": [False],
    }
    scalars = {"inputs": {"k": _info(), "history_event_types": _info(-1, 2)}}
    assert bench.inputs_for(scalars, row) == {
        "k": bench.K,
        "history_event_types": [["view", "cart"]],
    }
    tower = {"inputs": {"history_item_ids": _info(-1, 5), "query_token_ids": _info(-1, 4)}}
    assert bench.inputs_for(tower, row) == {
        "history_item_ids": [["a", "b", "c", "", ""]],
        "query_token_ids": [[0, 0, 0, 0]],
    }
    with pytest.raises(errors.ConfigError, match="input `image` that the serving bench cannot"):
        bench.inputs_for({"inputs": {"image": _info(-1)}}, row, "retrieve")
    assert bench.batchable({"inputs": per_row["inputs"], "outputs": {"ids": _info(-1, -1)}})
    assert not bench.batchable({"inputs": scalars["inputs"], "outputs": {}})


def _cell(items, model, signature, protocol, batching, p50, rps=100.0):
    phase = {"requests": 10, "failures": 0, "p50_ms": p50, "p95_ms": p50 * 1.5}
    phase.update(p99_ms=p50 * 2, throughput_rps=rps)
    return {
        "items": items,
        "model": model,
        "signature": signature,
        "protocol": protocol,
        "batching": batching,
        "index": bench_report.INDEX[model],
        "batchable": model != "tfrec",
        "single": phase,
        "concurrent": dict(phase, clients=4),
        "errors": [],
    }


def test_ratios_growth_targets_and_markdown_on_known_numbers():
    # p50 doubles per 10x items: exponent log10(2) = 0.30.
    cells = [
        _cell(n, "tfrec", "retrieve", "grpc", False, p) for n, p in ((10**4, 2.0), (10**5, 4.0))
    ]
    cells += [_cell(10**5, "tfrec", "retrieve", "rest", True, 6.0, rps=50.0)]
    cells += [_cell(10**5, "tfrec", "recommend", "grpc", False, 15.0)]
    cells += [
        _cell(10**5, m, "retrieve", "grpc", False, p)
        for m, p in (("tfrec_f32", 3.0), ("tfrec_int8", 3.6))
    ]
    results = {
        "settings": {
            "workdir": "w",
            "seconds_per_phase": 1.0,
            "rounds": 3,
            "warmup_requests": 20,
            "concurrent_clients": 4,
            "k": 10,
            "server_env": {"TF_ENABLE_ONEDNN_OPTS": "0"},
        },
        "model": {"embedding_dim": 16, "max_history": 5, "retrieve_n": 30},
        "machine": {"cpus": 2, "load_average_before": [1.0], "load_average_after": [1.5]},
        "exports": [
            {
                "items": 10**5,
                "seconds": 3.0,
                "size_mb": {"tfrec": 9, "tfrec_f32": 8, "tfrec_int8": 4},
            }
        ],
        "cells": cells,
        "skipped": ["1,000,000 items: REST and batching on not measured"],
        "notes": [],
    }
    bench_report.add_ratios(results)
    assert cells[1]["vs_baseline"]["p50"] == 2.0
    assert cells[2]["vs_baseline"]["concurrent_throughput"] == 0.5
    assert "vs_baseline" not in cells[3]  # no recommend cell at the smallest catalog
    growth = {(g["model"], g["signature"]): g for g in results["growth"]}
    assert growth["tfrec", "retrieve"]["p50_exponent"] == pytest.approx(0.30, abs=0.005)
    assert growth["tfrec", "retrieve"]["p50_vs_smallest"] == [1.0, 2.0]
    assert results["int8_vs_float32"] == [
        {"items": 10**5, "p50": 1.2, "p99": 1.2, "concurrent_throughput": 1.0, "size": 0.5}
    ]
    targets = {t["signature"]: t for t in results["targets"]}
    assert targets["retrieve"]["measured_p99_ms"] == 8.0 and targets["retrieve"]["met"] is True
    assert targets["recommend"]["measured_p99_ms"] == 30.0 and targets["recommend"]["met"] is False
    md = bench_report.to_markdown(results)
    assert (
        "- `retrieve` p99 < 10 ms, single requests over gRPC: **met** (measured p99 8.00 ms)" in md
    )
    assert "- `recommend` p99 < 20 ms, single requests over gRPC: **NOT met**" in md
    assert (
        "| 100,000 | tfrec | float32 | retrieve | rest | on (runs alone) | 6.00 | 9.00 | 12.00 |"
        in md
    )
    assert "| tfrec | retrieve | 2.00 / 4.00 (x1.00) | 4.00 / 8.00 (x2.00) | 0.30 |" in md
    assert "| 100,000 | 1.20 | 1.20 | 1.00 | 0.50 |" in md
    assert "- 1,000,000 items: REST and batching on not measured" in md
    assert "TF_ENABLE_ONEDNN_OPTS=0" in md
    assert "Model: the trained run `w` given as `--workdir` (embedding dim 16, max history 5" in md
    json.dumps(results, allow_nan=False)  # strict JSON
    results["settings"].update(
        config="configs/demo.yaml", train_overrides=["train.epochs=1", "eval.baselines=[]"]
    )
    md = bench_report.to_markdown(results)
    assert "Model: `configs/demo.yaml` trained by the bench into `w` with the overrides " in md
    assert "`tfrec train --config configs/demo.yaml --set train.epochs=1 --set eval." in md


def test_cli_rejects_config_with_workdir(capsys, tmp_path_factory):
    run, out = tmp_path_factory.mktemp("run"), tmp_path_factory.mktemp("out")
    (run / "config.yaml").write_text("name: x\n", encoding="utf-8")
    args = ["--workdir", str(run), "--config", harness.TINY_CONFIG, "--output", str(out)]
    assert cli.main(["bench", "serving", *args]) == 2
    assert "`--config` names the model the bench trains" in capsys.readouterr().err
    assert not list(out.iterdir())


# -- against a real tiny run ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def workdir(tiny_run):
    return tiny_run.run


def test_trained_model_is_reused_only_for_its_own_config(workdir):
    from tfrec.training import workdir as workdir_lib

    lines = []
    stored = workdir_lib.Workdir(workdir).load_config()
    assert bench.train_model(workdir, stored, lines.append) == workdir
    assert lines == [f"reusing the trained `tiny` model in {workdir}"]
    with pytest.raises(errors.WorkdirError, match="holds a run of another config than `demo`"):
        bench.train_model(workdir, bench.bench_config(), lines.append)


def test_synthetic_export_answers_with_synthetic_ids(workdir, tmp_path):
    from tfrec.pipelines import export as export_run

    trained = export_run.load(workdir)
    index = bench.synthetic_index(trained, 2000)
    assert index.item_ids[0] == "syn-0000001" and index.item_ids[-1] == "syn-0002000"
    np.testing.assert_allclose(np.linalg.norm(index.vectors, axis=1), 1.0, rtol=1e-5)
    sizes = bench.build_export(workdir, trained, index, tmp_path / "export")
    assert set(sizes) == {"tfrec", "tfrec_f32", "tfrec_int8"}
    row = bench.request_rows(trained.spec, index.item_ids, count=1)[0]
    with server_lib.start(
        tmp_path / "export", grpc_port=0, rest_port=0, poll_seconds=0, enable_batching=False
    ) as server:
        with Client(server.grpc_target) as client:
            for model, signature, ids in (
                ("tfrec", "retrieve", "item_ids"),
                ("tfrec", "recommend", "item_ids"),
                ("tfrec_int8", "retrieve", "ids"),
            ):
                inputs = bench.inputs_for(client.metadata(model)[signature], row, signature)
                found = client.predict(model, inputs, signature_name=signature)[ids].reshape(-1)
                assert len(found) == bench.K, (model, signature)
                assert all(i.startswith(b"syn-") for i in found if i), (model, signature, found)


def test_run_writes_json_and_markdown(workdir, tmp_path):
    lines = []
    # full_grid_max=0: one server, gRPC with batching off only, to keep the test short.
    results = bench.run(workdir, [2000], 0.5, tmp_path, progress=lines.append, full_grid_max=0)
    saved = json.loads((tmp_path / "serving.json").read_text(encoding="utf-8"))
    assert saved == json.loads(json.dumps(results))
    assert {(c["model"], c["signature"]) for c in saved["cells"]} == {
        ("tfrec", "retrieve"),
        ("tfrec", "recommend"),
        ("tfrec_f32", "retrieve"),
        ("tfrec_int8", "retrieve"),
    }
    for cell in saved["cells"]:
        assert cell["single"]["failures"] == 0 and cell["single"]["requests"] > 0, cell
        assert cell["single"]["p50_ms"] <= cell["single"]["p95_ms"] <= cell["single"]["p99_ms"]
        assert cell["concurrent"]["clients"] == bench.CONCURRENCY
    assert [t["met"] is None for t in saved["targets"]] == [True, True]  # 100k not measured
    md = (tmp_path / "serving.md").read_text(encoding="utf-8")
    assert md.startswith("# Serving benchmark") and "| 2,000 | tfrec | float32 | recommend |" in md
    assert any(line.startswith("[ 4/4]") for line in lines)
    assert not list(tmp_path.glob(".serving-bench-*"))  # exports removed
    assert not list(tmp_path.glob("*.log"))  # server logs only kept when it failed
