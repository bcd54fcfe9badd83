"""`tfrec bench serving`: arguments, the model it measures, synthetic exports, a short run."""

import dataclasses
import json

import numpy as np
import pytest

import tfrec  # noqa: F401  (sets the Keras-2 environment before TensorFlow is imported)
from tests import harness
from tfrec import cli, errors
from tfrec import config as config_lib
from tfrec.pipelines import bench_catalog, bench_model
from tfrec.pipelines import bench_serving as bench
from tfrec.serving import Client, bench_requests
from tfrec.serving import client as client_lib
from tfrec.serving import server as server_lib

# -- arguments and config -----------------------------------------------------------------------


def test_parse_items_and_seconds():
    assert bench.parse_items("100000,10000, 10000") == (100_000, 10_000, 10_000)
    assert bench.parse_items("1_000_000") == (1_000_000,)
    for bad in ("0", "abc", "", "10000,", "1.5", "-5", "10k"):
        with pytest.raises(errors.ConfigError, match="`--items` must be comma-separated positive"):
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
    assert all(f"--{o}" in out for o in ("workdir", "config", "items", "seconds", "set", "output"))
    assert "bench.items" in out and "full_grid_max_items" in out


def test_default_config_is_the_demo_model_trained_briefly():
    config = bench_model.bench_config()
    assert (config.name, config.model.embedding_dim, config.data.max_history) == ("demo", 64, 20)
    assert config.model.history_encoder == "attention"
    assert (config.train.epochs, config.ranking.epochs, config.eval.baselines) == (1, 1, ())
    assert config.bench == config_lib.BenchConfig()
    assert bench_model.bench_config(harness.TINY_CONFIG).model.embedding_dim == 16


@pytest.mark.parametrize(
    "args, message",
    [
        (["--items", "0"], "`--items` must be comma-separated positive integers"),
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
    assert bench_model.train_model(workdir, stored, lines.append) == workdir
    # Other bench settings measure the same model.
    quick = dataclasses.replace(stored, bench=config_lib.BenchConfig(items=(100,), seconds=1.0))
    assert bench_model.train_model(workdir, quick, lines.append) == workdir
    assert lines == [f"reusing the trained `tiny` model in {workdir}"] * 2
    with pytest.raises(errors.WorkdirError, match="holds a run of another config than `demo`"):
        bench_model.train_model(workdir, bench_model.bench_config(), lines.append)


def test_synthetic_export_answers_with_synthetic_ids(workdir, tmp_path):
    from tfrec.pipelines import export as export_run

    k = 7
    trained = export_run.load(workdir)
    index = bench_catalog.synthetic_index(trained, 2000)
    assert index.item_ids[0] == "syn-0000001" and index.item_ids[-1] == "syn-0002000"
    np.testing.assert_allclose(np.linalg.norm(index.vectors, axis=1), 1.0, rtol=1e-5)
    sizes = bench_catalog.build_export(workdir, trained, index, tmp_path / "export", k)
    assert set(sizes) == {"tfrec", "tfrec_f32", "tfrec_int8"}
    row = bench_requests.request_rows(trained.spec, index.item_ids, count=1, k=k)[0]
    with server_lib.start(
        tmp_path / "export", grpc_port=0, rest_port=0, poll_seconds=0, enable_batching=False
    ) as server:
        with Client(server.grpc_target) as client:
            for model, signature, ids in (
                ("tfrec", "retrieve", "item_ids"),
                ("tfrec", "recommend", "item_ids"),
                ("tfrec_int8", "retrieve", "ids"),
            ):
                signature_def = client.metadata(model)[signature]
                inputs = bench_requests.inputs_for(signature_def, row, signature)
                found = client.predict(model, inputs, signature_name=signature)[ids].reshape(-1)
                assert len(found) == k, (model, signature)
                assert all(i.startswith(b"syn-") for i in found if i), (model, signature, found)


def test_run_writes_json_and_markdown(workdir, tmp_path, monkeypatch):
    lines = []
    # full_grid_max_items=0: one server, gRPC with batching off only, to keep the test short.
    # An IVF index of 16 lists over the 2,000 items, so the served recall is measured.
    overrides = [
        "bench.items=[2000]",
        "bench.seconds=0.4",
        "bench.full_grid_max_items=0",
        "bench.concurrency=2",
        "bench.rounds=2",
        "bench.warmup_requests=5",
        "bench.request_rows=[1, 4]",
        "index.kind=ivf",
        "index.nlist=16",
        "index.nprobe=4",
    ]
    # What the load generator's clients send and get back: (model, rows sent, rows answered).
    sent = []
    predict = client_lib.Client.predict

    def spy(self, model, inputs, *args, **kwargs):
        outputs = predict(self, model, inputs, *args, **kwargs)
        ids = outputs["item_ids" if "item_ids" in outputs else "ids"]
        sent.append((model, len(inputs["history_item_ids"]), ids.shape[0]))
        return outputs

    monkeypatch.setattr(client_lib.Client, "predict", spy)
    results = bench.run(workdir, tmp_path, overrides=overrides, progress=lines.append)
    saved = json.loads((tmp_path / "serving.json").read_text(encoding="utf-8"))
    assert saved == json.loads(json.dumps(results))
    # The config used: the trained run's, with the bench settings of this run.
    used = config_lib.from_dict(config_lib.Config, saved["config"])
    assert used.name == "tiny" and used.bench.items == (2000,) and used.bench.concurrency == 2
    assert saved["settings"]["concurrent_clients"] == 2 and saved["settings"]["rounds"] == 2
    assert saved["settings"]["config"] is None  # a given --workdir, measured as it is
    assert saved["settings"]["request_rows"] == [1, 4]
    assert sorted((c["model"], c["signature"], c["rows"]) for c in saved["cells"]) == sorted(
        (m, s, r)
        for m, s in (
            ("tfrec", "retrieve"),
            ("tfrec", "recommend"),
            ("tfrec_f32", "retrieve"),
            ("tfrec_int8", "retrieve"),
        )
        for r in (1, 4)
    )
    for cell in saved["cells"]:
        assert cell["single"]["failures"] == 0 and cell["single"]["requests"] > 0, cell
        assert cell["single"]["p50_ms"] <= cell["single"]["p95_ms"] <= cell["single"]["p99_ms"]
        assert cell["concurrent"]["clients"] == 2
        for phase in (cell["single"], cell["concurrent"]):
            # Both rounded to 0.1.
            assert phase["rows_per_s"] == pytest.approx(
                phase["throughput_rps"] * cell["rows"], abs=0.1 * cell["rows"] + 0.1
            )
    # Every model was sent requests of 1 and of 4 rows, and answered each row.
    assert {(m, rows) for m, rows, _ in sent} == {
        (m, r) for m in ("tfrec", "tfrec_f32", "tfrec_int8") for r in (1, 4)
    }
    assert all(rows == answered for _, rows, answered in sent)
    # The IVF export's recall, measured alone and in requests of 4 rows: the same rows, the
    # same search per row.
    (export,) = saved["exports"]
    assert export["index"] == "ivf float32 4/16"
    assert 0 < export["recall@10"] <= 1 and set(export["recall_by_rows"]) == {"4"}
    assert export["recall_by_rows"]["4"]["recall@10"] == pytest.approx(
        export["recall@10"], abs=0.02
    )
    assert [t["met"] is None for t in saved["targets"]] == [True, True]  # 100k not measured
    md = (tmp_path / "serving.md").read_text(encoding="utf-8")
    assert md.startswith("# Serving benchmark")
    assert "| 2,000 | tfrec | ivf float32 4/16 | recommend | grpc | off | 4 |" in md
    assert "Each cell: 5 warm-up requests" in md and "split into 2 rounds" in md
    assert "Rows per request: 1, 4" in md and "4 rows per request: recall@10" in md
    assert any(line.startswith("[ 8/8]") for line in lines)
    assert sum("round 2/2 of 8 cells" in line for line in lines) == 1
    assert not list(tmp_path.glob(".serving-bench-*"))  # exports removed
    assert not list(tmp_path.glob("*.log"))  # server logs only kept when it failed
