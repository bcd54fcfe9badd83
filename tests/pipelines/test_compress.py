"""`tfrec compress` on the real tiny towers: sparsity, QAT export, int8 SavedModel, report, errors."""

import json

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.python.framework import op_def_registry

from tests import harness
from tfrec import artifact, cli, errors
from tfrec import config as config_lib
from tfrec.data import pipeline
from tfrec.data import prepared as prepared_lib
from tfrec.pipelines import compress as run_lib
from tfrec.training import trainer

TARGET = 0.5
VARIANTS = (
    "float32",
    "pruned_50",
    "qat",
    "pruned_50_qat",
    "int8_savedmodel",
    "pruned_50_int8",
    "float32_tflite",
    "int8_tflite",
    "int8_tflite_full",
)


@pytest.fixture(scope="module")
def compressed(tmp_path_factory):
    # Towers only (no ranker): the ranker's variants are measured in tests/compression.
    config = config_lib.load(harness.TINY_CONFIG, ["train.epochs=1"])
    run = tmp_path_factory.mktemp("tiny")
    prepared = prepared_lib.prepare(config)
    trainer.train(config, run, prepared)
    path = artifact.publish(run, config, prepared)
    report = run_lib.compress_workdir(
        run, sparsities=[TARGET], fine_tune_steps=6, qat_steps=2, latency_calls=5
    )
    return path, report


def test_pruned_weights_reach_the_target_after_strip(compressed):
    workdir, report = compressed
    per_weight = report["variants"]["pruned_50"]["sparsity"]["per_weight"]
    # Both towers: id tables, BERT's attention and feed-forward kernels, the Dense head.
    for name in (
        "query/user_embedding/embeddings",
        "query/query_projection/kernel",
        "candidate/item_embedding/embeddings",
        "candidate/item_projection/kernel",
    ):
        assert name in per_weight
    for part in ("self_attention_layer/query/kernel", "feedforward_output_dense/kernel"):
        assert any(n.startswith("candidate/") and n.endswith(part) for n in per_weight), part
    # The history encoder's attention, called with (query, value) positionally, is pruned too.
    for part in ("query", "key", "value", "attention_output"):
        assert f"query/history_encoder/self_attention/{part}/kernel" in per_weight, part
    sparsity = report["variants"]["pruned_50"]["sparsity"]
    # Position embeddings, biases and norms stay dense: the whole towers are less sparse.
    assert 0.3 < sparsity["overall"] < sparsity["pruned_weights"] <= TARGET + 0.01
    assert all("position_embedding" in n for n in sparsity["unpruned"]), sparsity["unpruned"]
    saved = tf.saved_model.load(str(workdir / "compression" / "pruned_50" / "1"))
    for name, value in per_weight.items():
        # A weight of n values only reaches multiples of 1/n: the smallest is BERT's 2 x 16
        # segment table.
        assert abs(value - TARGET) <= 1 / 32 + 1e-9, (name, value)
    assert list((workdir / "tb" / "compression" / "pruned_50").rglob("events.out.tfevents*"))
    # The saved artifact holds the zeros, not only the in-memory towers.
    saved_zeros = [np.mean(v.numpy() == 0) for v in saved.float_weights if v.shape.rank == 2]
    assert max(saved_zeros) >= TARGET - 0.02


def test_qat_variant_trained_and_exported_as_fake_quant(compressed):
    workdir, report = compressed
    variant = report["variants"]["qat"]
    assert variant["fine_tune_steps"] == 2
    assert "int8" not in variant["weights"].replace("simulated int8", "")
    graph_def = _graph_def(workdir / "compression" / "qat" / "1")
    ops = {n.op for f in graph_def.library.function for n in f.node_def}
    assert any(op.startswith("FakeQuantWithMinMaxVars") for op in ops)
    assert variant["quality"]["recall@10"] > 0


def _graph_def(path):
    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((path / "saved_model.pb").read_bytes())
    return saved.meta_graphs[0].graph_def


def test_int8_savedmodel_is_int8_core_ops_and_ranks_like_float32(compressed):
    workdir, report = compressed
    path = workdir / "compression" / "int8_savedmodel" / "1"
    reader = tf.train.load_checkpoint(str(path / "variables" / "variables"))
    shapes = reader.get_variable_to_shape_map()
    int8 = [shapes[n] for n, d in reader.get_variable_to_dtype_map().items() if d == tf.int8]
    num_items = report["catalog_items"]
    assert [num_items, 16] in int8  # the candidate index
    # Every float32 matrix left is small (< 1024 values, `Int8Model`'s threshold).
    for name, dtype in reader.get_variable_to_dtype_map().items():
        if dtype == tf.float32 and len(shapes[name]) >= 2:
            assert np.prod(shapes[name]) < 1024, (name, shapes[name])
    graph_def = _graph_def(path)
    functions = {f.signature.name for f in graph_def.library.function}
    ops = {n.op for n in graph_def.node} | {
        n.op for f in graph_def.library.function for n in f.node_def
    }
    assert not sorted(op for op in ops - functions if op_def_registry.get(op) is None)
    config = config_lib.load(str(workdir / "config.yaml"))
    prepared = prepared_lib.prepare(config)
    batch = next(iter(pipeline.query_dataset(prepared.test, prepared.spec, 256)))
    ids = {}
    for name in ("float32", "int8_savedmodel"):
        loaded = tf.saved_model.load(str(workdir / "compression" / name / "1"))
        ids[name] = loaded.signatures["retrieve"](**batch)["ids"].numpy()[:, :10]
    overlap = [
        len(set(a) & set(b)) / 10
        for a, b in zip(ids["float32"], ids["int8_savedmodel"], strict=True)
    ]
    # Bound: int8 weights and index move scores by ~1e-3; near-ties may swap at the cut-off.
    assert np.mean(overlap) >= 0.9 and min(overlap) >= 0.5, np.mean(overlap)


def test_report_has_every_variant_with_sizes_metrics_latency(compressed):
    workdir, _ = compressed
    report = json.loads((workdir / "compression" / "report.json").read_text())
    assert tuple(report["variants"]) == VARIANTS
    assert report["precision"]["compression"] == "float32"
    for name, variant in report["variants"].items():
        assert variant["size"]["raw_bytes"] > variant["size"]["gzip_bytes"] > 0, name
        assert variant["size"]["raw_ratio"] is not None, name
        # 50 of 120 items: any variant that still ranks by its towers finds relevant items.
        assert 0.2 < variant["quality"]["recall@50"] <= 1, name
        assert {"batch_1", "batch_64"} == set(variant["latency"]), name
        assert variant["latency"]["batch_64"]["calls"] == 5
        assert variant["latency"]["batch_1"]["p50_ratio"] > 0
    assert report["variants"]["int8_tflite"]["tflite_mode"] == "dynamic_range"
    assert report["variants"]["int8_tflite_full"]["tflite_mode"] in ("full_int8", "mixed")
    assert report["variants"]["float32"]["size"]["raw_ratio"] == 1.0
    assert {t["variant"] for t in report["targets"]} == {
        "int8_savedmodel",
        "int8_tflite",
        "int8_tflite_full",
        "pruned_50",
        "pruned_80",
    }
    # Tiny towers: most weights are under the 1024 values `Int8Model` quantizes.
    int8 = report["variants"]["int8_savedmodel"]["size"]
    assert int8["parts"]["weights"]["dtypes"]["int8"] > 0
    assert int8["numeric_raw_ratio"] < 1 and int8["raw_ratio"] < 1
    # Pruned artifacts ship the int8 index; every variant is measured on both scores.
    assert report["variants"]["pruned_50"]["weights"] == "float32 + int8 index"
    assert report["variants"]["pruned_50"]["size"]["parts"]["index"]["raw_bytes"] < (
        report["variants"]["float32"]["size"]["parts"]["index"]["raw_bytes"] / 3
    )
    float32 = report["variants"]["float32"]["quality"]["served"]["recall@50"]
    for name, variant in report["variants"].items():
        # int8 rounding moves the served score a little; it must not change what is found.
        if "int8" in name:
            assert abs(variant["quality"]["served"]["recall@50"] - float32) < 0.05, name
        assert 0.2 < variant["quality"]["served"]["recall@50"] <= 1, name
    combined = report["variants"]["pruned_50_int8"]
    assert combined["size"]["gzip_bytes"] < report["variants"]["pruned_50"]["size"]["gzip_bytes"]
    assert combined["sparsity"]["overall"] > 0.3
    reached = [t for t in report["targets"] if t["target"].startswith("every pruned weight")]
    assert [t["met"] for t in reached] == [True]
    # No 80% variant was asked for: its target is reported as not measured, not as met.
    assert [t["met"] for t in report["targets"] if t["variant"] == "pruned_80"] == [None]
    markdown = (workdir / "compression" / "report.md").read_text()
    assert "int8_savedmodel" in markdown and "float32 (fake-quant QAT" in markdown


def test_workdir_without_trained_model_is_refused(tmp_path):
    with pytest.raises(errors.WorkdirError, match=r"holds no model artifact: expected .*json"):
        run_lib.compress_workdir(tmp_path)
    # A run that has not finished training has not published its artifact yet.
    config_lib.save(config_lib.load(harness.TINY_CONFIG), tmp_path / "config.yaml")
    with pytest.raises(errors.WorkdirError, match=r"run `tfrec train --workdir .*` \(training"):
        run_lib.compress_workdir(tmp_path)
    with pytest.raises(errors.WorkdirError, match="missing` holds no model artifact"):
        run_lib.compress_workdir(tmp_path / "missing")
    assert not (tmp_path / "compression").exists()


@pytest.mark.parametrize("target", [0.0, 1.0, 1.5, -0.2])
def test_unsupported_sparsity_is_refused_before_any_work(tmp_path, target):
    # The workdir is empty: the sparsity is checked first.
    with pytest.raises(
        errors.ConfigError, match=r"`compression.sparsities` must .* in \(0, 1\).*" + str(target)
    ):
        run_lib.compress_workdir(tmp_path, sparsities=[0.5, target])


def test_cli_reports_bad_input(tmp_path, capsys):
    assert cli.main(["compress", "--workdir", str(tmp_path), "--sparsity", "1.0"]) == 2
    assert "`compression.sparsities` must" in capsys.readouterr().err
    assert cli.main(["compress", "--workdir", str(tmp_path), "--fine-tune-steps", "1"]) == 2
    assert (
        "`compression.fine_tune_steps` must be an int >= 2, received 1" in capsys.readouterr().err
    )
    assert cli.main(["compress", "--workdir", str(tmp_path), "--qat-steps", "0"]) == 2
    assert "`compression.qat_steps` must be an int >= 1, received 0" in capsys.readouterr().err
    assert cli.main(["compress", "--workdir", str(tmp_path), "--set", "train.epochs=3"]) == 2
    assert "`train.epochs` cannot change after training" in capsys.readouterr().err


@pytest.mark.slow
def test_pretrained_towers_get_savedmodel_variants_and_no_tflite(preset, tmp_path):
    # About 2 min on 2 cores: a tiny frozen run with a query student, then every variant.
    overrides = [
        "train.epochs=1",
        "model.text_encoder.mode=frozen",
        f"model.text_encoder.preset={preset}",
        "model.text_encoder.query_student.layers=1",
        "model.text_encoder.query_student.steps=3",
    ]
    config = config_lib.load(harness.TINY_CONFIG, overrides)
    prepared = prepared_lib.prepare(config)
    trainer.train(config, tmp_path / "run", prepared)
    artifact.publish(tmp_path / "run", config, prepared)
    report = run_lib.compress_workdir(
        tmp_path / "run", sparsities=[TARGET], fine_tune_steps=4, qat_steps=2, latency_calls=3
    )
    assert {"float32", "pruned_50", "int8_savedmodel"} <= set(report["variants"])
    assert not any("tflite" in name for name in report["variants"])
    assert any("not built for a pretrained text encoder" in n for n in report["notes"])
