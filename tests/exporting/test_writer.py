"""Layout, version numbering, atomic writes, warmup records and server configs of an export."""

from __future__ import annotations

import json
import os

import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from tfrec import errors
from tfrec.exporting import writer
from tfrec.pipelines import export as export_run
from tfrec.serving import batching, metrics, model_config


def test_layout_assets_and_server_configs(run):
    export_dir = run.export_dir
    for name in ("tfrec", "tfrec_text"):
        version = export_dir / name / "1"
        assert (version / "saved_model.pb").is_file()
        extra = version / writer.TFREC_ASSETS
        assert (extra / "config.yaml").read_text().startswith("name: tiny")
        assert (extra / "spec" / "spec.json").is_file()
        info = json.loads((extra / "export.json").read_text())
        assert info["num_items"] == len(run.trained.catalog)
        records = list(
            tf.data.TFRecordDataset(str(version / "assets.extra/tf_serving_warmup_requests"))
        )
        names = []
        for raw in records:
            request = prediction_log_pb2.PredictionLog.FromString(raw.numpy()).predict_log.request
            names.append(request.model_spec.signature_name)
            # Batch-major inputs only, so tensorflow_model_server --enable_batching can batch.
            for key, tensor in request.inputs.items():
                assert tensor.tensor_shape.dim[0].size == 2, (name, key)
        assert sorted(names) == ["rank", "recommend", "retrieve"]
    specs = model_config.parse_models_config(
        (export_dir / "models.config").read_text(), export_dir, export_dir
    )
    assert {s.name: s.labels for s in specs} == {
        "tfrec": {"stable": 1, "canary": 1},
        "tfrec_text": {"stable": 1, "canary": 1},
    }
    batching.parse_batching_parameters((export_dir / "batching_parameters.txt").read_text())
    monitoring = metrics.parse_monitoring_config((export_dir / "monitoring.config").read_text())
    assert monitoring.enable and monitoring.path == "/monitoring/prometheus/metrics"


def test_failure_mid_export_leaves_no_version(run, tmp_path, monkeypatch):
    def broken(path, *args, **kwargs):
        (path / "saved_model.pb").write_text("half")  # a half-written version ...
        raise OSError("disk full")  # ... and then the failure

    monkeypatch.setattr(writer, "save_module", broken)
    with pytest.raises(OSError, match="disk full"):
        export_run.export(run.workdir, tmp_path, trained=run.trained, with_text=False)
    assert os.listdir(tmp_path / "tfrec") == []  # neither `1` nor the temporary folder
    assert writer.versions(tmp_path / "tfrec") == []


def test_versions_count_up_and_existing_versions_are_refused(tmp_path):
    (tmp_path / "tfrec" / "3").mkdir(parents=True)
    (tmp_path / "tfrec" / "3" / "saved_model.pb").write_text("")
    (tmp_path / "tfrec" / f"{writer.TMP_PREFIX}4-x").mkdir()  # an export in progress: no version
    assert writer.next_version(tmp_path, ["tfrec", "tfrec_text"]) == 4
    with pytest.raises(errors.ConfigError, match="`--version` 3 already exists"):
        writer.check_version(3, tmp_path, ["tfrec"])
    with pytest.raises(errors.ConfigError, match="`--version` must be a positive int"):
        writer.check_version(0, tmp_path, ["tfrec"])


def test_compressed_variants_are_found_generically(tmp_path):
    for path in ("compression/int8_savedmodel/1", "compression/pruned/1", "compression/x"):
        (tmp_path / path).mkdir(parents=True)
        (tmp_path / path / "saved_model.pb").write_text("")
    (tmp_path / "compression" / "query_tower.tflite").write_text("")
    found = export_run.compressed_variants(tmp_path)
    assert sorted(found) == ["int8_savedmodel", "pruned", "x"]
