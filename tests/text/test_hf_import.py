"""Hugging Face BERT import: golden parity with a NumPy BERT, tokenizer, provenance, refusals."""

import json

import keras_nlp
import numpy as np
import pytest
import tensorflow as tf

from tests.text import numpy_bert, tiny_checkpoint
from tfrec import errors
from tfrec.layers import pooling, text_encoder
from tfrec.text import hf_import

# Three texts of different lengths, zero-padded (ids index tiny_checkpoint.VOCAB).
TOKEN_IDS = np.array(
    [
        [2, 5, 6, 7, 8, 3, 0, 0],
        [2, 11, 8, 3, 0, 0, 0, 0],
        [2, 14, 9, 10, 12, 13, 15, 3],
    ],
    dtype=np.int32,
)


def keras_sentence_embedding(backbone, token_ids):
    inputs = text_encoder.BertInputs()(tf.constant(token_ids))
    states = backbone(inputs)["sequence_output"]
    return pooling.MaskedMeanPooling()([states, inputs["padding_mask"]]).numpy()


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    src = tiny_checkpoint.write(root / "src")
    (src / "README.md").write_text("---\nlicense: apache-2.0\n---\n# tiny\n", encoding="utf-8")
    return src, hf_import.import_hf(src, root / "preset")


def test_mean_pooled_embedding_matches_numpy_bert(imported):
    src, preset = imported
    backbone = keras_nlp.models.BertBackbone.from_preset(str(preset))
    got = keras_sentence_embedding(backbone, TOKEN_IDS)
    tensors = numpy_bert.load_tensors(src / "model.safetensors")
    states = numpy_bert.encode(tensors, TOKEN_IDS, num_layers=2, num_heads=4)
    want = numpy_bert.mean_pool(states, TOKEN_IDS)
    assert got.shape == (3, 32)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    # The weights make exact and tanh GELU disagree: this parity test would catch a backbone
    # that computes keras-nlp's stock activation.
    approx = numpy_bert.mean_pool(
        numpy_bert.encode(tensors, TOKEN_IDS, 2, 4, activation=numpy_bert.gelu_tanh), TOKEN_IDS
    )
    assert np.abs(approx - want).max() > 1e-4


def test_padding_does_not_change_the_embedding(imported):
    _, preset = imported
    backbone = keras_nlp.models.BertBackbone.from_preset(str(preset))
    short = keras_sentence_embedding(backbone, TOKEN_IDS[1:2, :4])
    padded = keras_sentence_embedding(backbone, TOKEN_IDS[1:2])
    np.testing.assert_allclose(short, padded, atol=1e-6)


def test_bert_prefix_gamma_beta_names_and_no_pooler_are_read(tmp_path, imported):
    src, preset = imported
    tensors = tiny_checkpoint.random_tensors(tiny_checkpoint.CONFIG, pooler=False)
    renamed = {
        k.replace("LayerNorm.weight", "LayerNorm.gamma").replace(
            "LayerNorm.bias", "LayerNorm.beta"
        ): v
        for k, v in tensors.items()
    }
    renamed["cls.predictions.bias"] = np.zeros(len(tiny_checkpoint.VOCAB), np.float32)
    other = tiny_checkpoint.write(tmp_path / "src", tensors=renamed, prefix="bert.")
    out = hf_import.import_hf(other, tmp_path / "preset")
    metadata = json.loads((out / "metadata.json").read_text())
    assert metadata["has_pooler"] is False
    assert metadata["ignored_tensors"] == [
        "bert.cls.predictions.bias",
        "bert.embeddings.position_ids",
    ]
    a = keras_nlp.models.BertBackbone.from_preset(str(out))
    b = keras_nlp.models.BertBackbone.from_preset(str(preset))
    # Same seed, same tensors under other names: same model.
    np.testing.assert_allclose(
        keras_sentence_embedding(a, TOKEN_IDS), keras_sentence_embedding(b, TOKEN_IDS), atol=1e-6
    )
    np.testing.assert_array_equal(a.get_layer("pooled_dense").kernel.numpy(), 0.0)


def test_tokenizer_follows_the_vocabulary_and_lowercasing(tmp_path, imported):
    _, preset = imported
    tokenizer = keras_nlp.models.BertTokenizer.from_preset(str(preset))
    assert tokenizer.lowercase is True
    assert tokenizer("The Doggy food.").numpy().tolist() == [5, 6, 7, 8, 15]
    assert tokenizer("puppy kibble").numpy().tolist() == [11, 12, 13]
    assert tokenizer("cat").numpy().tolist() == [1]  # [UNK]
    cased = tiny_checkpoint.write(tmp_path / "cased", do_lower_case=False)
    cased_tokenizer = keras_nlp.models.BertTokenizer.from_preset(
        str(hf_import.import_hf(cased, tmp_path / "cased_preset"))
    )
    assert cased_tokenizer.lowercase is False
    assert cased_tokenizer("The dog").numpy().tolist() == [1, 6]


def test_tokenizer_json_vocabulary_and_normalizer(tmp_path):
    src = tiny_checkpoint.write(tmp_path / "src", do_lower_case=None)
    (src / "vocab.txt").unlink()
    tokenizer_json = {
        "normalizer": {"type": "BertNormalizer", "lowercase": False, "strip_accents": None},
        "model": {
            "type": "WordPiece",
            "vocab": {t: i for i, t in enumerate(tiny_checkpoint.VOCAB)},
        },
    }
    (src / "tokenizer.json").write_text(json.dumps(tokenizer_json), encoding="utf-8")
    out = hf_import.import_hf(src, tmp_path / "preset")
    tokenizer = keras_nlp.models.BertTokenizer.from_preset(str(out))
    assert tokenizer.lowercase is False
    assert tokenizer("dog The").numpy().tolist() == [6, 1]
    # Both files present and disagreeing: refused.
    (src / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True}))
    with pytest.raises(errors.DataError, match="disagreeing.*do_lower_case=True.*normalizer=False"):
        hf_import.import_hf(src, tmp_path / "preset2")


def test_metadata_records_provenance(imported):
    src, preset = imported
    metadata = hf_import.check_preset(preset)
    assert metadata["keras_version"]
    assert metadata["source"] == str(src.resolve())
    assert metadata["licence"] == "apache-2.0"
    assert metadata["model_safetensors_sha256"] == hf_import.file_sha256(src / "model.safetensors")
    assert metadata["tokenizer"] == {
        "vocabulary_size": 16,
        "vocabulary_source": "vocab.txt",
        "lowercase": True,
        "lowercase_source": "tokenizer_config.json:do_lower_case",
        "strip_accents": True,
    }
    assert metadata["architecture"]["num_layers"] == 2
    assert metadata["sentence_transformers"] is None  # a plain transformers checkpoint


def test_existing_preset_is_kept_unless_overwrite(tmp_path, imported):
    src, _ = imported
    out = hf_import.import_hf(src, tmp_path / "preset")
    with pytest.raises(hf_import.PresetExistsError, match="`out` must not exist"):
        hf_import.import_hf(src, out)
    hf_import.import_hf(src, out, overwrite=True, licence="MIT")
    assert hf_import.check_preset(out)["licence"] == "MIT"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["preset"]  # no temporary leftovers


def _broken(tmp_path, **kwargs):
    return tiny_checkpoint.write(tmp_path / "src", **kwargs)


def _without(name):
    tensors = tiny_checkpoint.random_tensors(tiny_checkpoint.CONFIG)
    del tensors[name]
    return tensors


def _reshaped(name, shape):
    tensors = tiny_checkpoint.random_tensors(tiny_checkpoint.CONFIG)
    tensors[name] = np.zeros(shape, np.float32)
    return tensors


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (
            {"tensors": _without("encoder.layer.1.attention.self.key.weight")},
            r"model\.safetensors`, field `encoder\.layer\.1\.attention\.self\.key\.weight`: "
            r"missing tensor",
        ),
        (
            {"tensors": _reshaped("encoder.layer.0.intermediate.dense.weight", (64, 31))},
            r"field `encoder\.layer\.0\.intermediate\.dense\.weight`: expected shape \[64, 32\] "
            r"\(from `config\.json`\), received \[64, 31\]",
        ),
        (
            {"tensors": _reshaped("encoder.layer.2.output.dense.bias", (32,))},
            r"field `encoder\.layer\.2\.output\.dense\.bias`: unexpected backbone tensor",
        ),
        (
            {"config_overrides": {"hidden_act": "relu"}},
            r"config\.json`, field `hidden_act`: expected 'gelu'.*received 'relu'",
        ),
        (
            {"config_overrides": {"position_embedding_type": "relative_key"}},
            r"field `position_embedding_type`: expected 'absolute'.*received 'relative_key'",
        ),
        (
            {"config_overrides": {"model_type": "roberta"}},
            r"field `model_type`: expected 'bert'.*received 'roberta'",
        ),
        (
            {"config_overrides": {"layer_norm_eps": 1e-5}},
            r"field `layer_norm_eps`: expected 1e-12.*received 1e-05",
        ),
        (
            {"vocab": tiny_checkpoint.VOCAB[:4] + tiny_checkpoint.VOCAB[5:]},
            r"vocab\.txt`: expected the BERT special tokens .*missing \['\[MASK\]'\]",
        ),
    ],
)
def test_refusals_name_file_field_and_expectation(tmp_path, kwargs, match):
    src = _broken(tmp_path, **kwargs)
    with pytest.raises(errors.DataError, match=match):
        hf_import.import_hf(src, tmp_path / "preset")
    assert not (tmp_path / "preset").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]  # nothing half-written


def test_truncated_weight_file_is_refused(tmp_path):
    src = tiny_checkpoint.write(tmp_path / "src")
    weights = src / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(
        errors.DataError, match=r"model\.safetensors`: expected a complete safetensors file"
    ):
        hf_import.import_hf(src, tmp_path / "preset")
    weights.write_bytes(b"not a safetensors file")
    with pytest.raises(errors.DataError, match="expected a complete safetensors file"):
        hf_import.import_hf(src, tmp_path / "preset")
    assert not (tmp_path / "preset").exists()


def test_missing_files_are_named(tmp_path):
    src = tiny_checkpoint.write(tmp_path / "src")
    (src / "model.safetensors").rename(src / "pytorch_model.bin")
    with pytest.raises(errors.DataError, match=r"model\.safetensors`: expected .*need torch"):
        hf_import.import_hf(src, tmp_path / "preset")
    (src / "config.json").unlink()
    with pytest.raises(errors.DataError, match=r"config\.json`: expected a Hugging Face BERT"):
        hf_import.import_hf(src, tmp_path / "preset")
    with pytest.raises(errors.DataError, match="expected a Hugging Face checkpoint folder"):
        hf_import.import_hf(tmp_path / "nowhere", tmp_path / "preset")


def test_keras_preset_as_source_and_foreign_preset_are_refused(tmp_path, imported):
    _, preset = imported
    with pytest.raises(
        errors.DataError, match=r"config\.json`, field `model_type`: .*Keras preset"
    ):
        hf_import.import_hf(preset, tmp_path / "preset")
    other = tmp_path / "other"
    text_encoder.save_backbone_preset(
        text_encoder.build_bert_backbone(vocabulary_size=16, max_sequence_length=8), other
    )
    with pytest.raises(errors.DataError, match=r"missing \['tokenizer\.json'"):
        hf_import.check_preset(other)
    (other / "tokenizer.json").write_text("{}")
    (other / "assets/tokenizer").mkdir(parents=True)
    (other / "assets/tokenizer/vocabulary.txt").write_text("[PAD]\n")
    with pytest.raises(
        errors.DataError,
        match=r"config\.json`, field `registered_name`: expected a `tfrec>HfBertBackbone`.*"
        r"received 'keras_nlp>BertBackbone'",
    ):
        hf_import.check_preset(other)
