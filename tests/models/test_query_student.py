"""The query student of a pretrained text encoder: where it starts, what it encodes, distillation."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tests import harness
from tests.text import tiny_checkpoint
from tfrec import config, errors, features
from tfrec.layers import query_student
from tfrec.models import builders
from tfrec.training import query_student as distillation

TINY_CONFIG = str(Path(__file__).resolve().parents[2] / "configs" / "tiny.yaml")
TITLES = ["red dog food", "the candle holder", "puppy kibble", "red candle"]


def encoder_of(preset, spec, mode="frozen", student_layers=1, trainable_layers=1):
    text = config.TextEncoderConfig(
        mode=mode,
        preset=str(preset),
        trainable_layers=trainable_layers,
        query_student=config.QueryStudentConfig(layers=student_layers),
    )
    model_config = config.ModelConfig(embedding_dim=8, id_embedding_dim=4, text_encoder=text)
    model = builders.build_retrieval_model(model_config, spec, [1] * len(spec.items))
    return model, model.query_model.get_layer("text_encoder")


def query_ids(spec, texts):
    from tfrec.data import vocab

    return tf.constant(
        vocab.tokenize(np.asarray(texts, dtype=object), spec, spec.query_text_length)
    )


@pytest.mark.parametrize(
    "frozen, layers, expected", [(6, 2, [0, 5]), (5, 1, [0]), (6, 3, [0, 2, 5]), (2, 2, [0, 1])]
)
def test_student_starts_from_evenly_spaced_teacher_layers(frozen, layers, expected):
    assert query_student.teacher_layers(frozen, layers) == expected


def test_student_cannot_have_more_layers_than_it_replaces(preset, pretrained_spec):
    with pytest.raises(ValueError, match=r"`query_student_layers` must be an int in \[0, 1\]"):
        encoder_of(preset, pretrained_spec, mode="finetune", student_layers=2)


def test_full_depth_student_is_the_teacher_before_distillation(preset, pretrained_spec):
    # Two student layers copied from the tiny checkpoint's two layers: the same function.
    _, encoder = encoder_of(preset, pretrained_spec, student_layers=2)
    ids = query_ids(pretrained_spec, TITLES)
    teacher, _ = encoder.frozen_outputs(ids)
    student, _ = encoder.frozen_outputs(ids, student=True)
    np.testing.assert_allclose(student.numpy(), teacher.numpy(), atol=1e-5)


@pytest.mark.parametrize("mode", ["frozen", "finetune"])
def test_queries_take_the_student_and_item_texts_do_not(mode, preset, pretrained_spec):
    model, encoder = encoder_of(preset, pretrained_spec, mode=mode)
    ids = query_ids(pretrained_spec, TITLES)
    items = {"token_ids": tf.pad(ids, [[0, 0], [0, 4]]), "item_ids": tf.constant(["new"] * 4)}
    query_before, item_before = encoder(ids).numpy(), encoder(items).numpy()
    for weight in encoder.student.weights:
        weight.assign(weight * 0.5 + 0.1)
    assert np.abs(encoder(ids).numpy() - query_before).max() > 1e-3
    np.testing.assert_array_equal(encoder(items).numpy(), item_before)
    # The towers' loss never moves the student: it is distilled on its own.
    student = {w.ref() for w in encoder.student.weights}
    assert student and not student & {w.ref() for w in model.trainable_weights}


@pytest.fixture(scope="module")
def deeper_preset(tmp_path_factory):
    """Three layers: in mode finetune the student replaces two frozen ones."""
    from tests.text import tiny_checkpoint
    from tfrec.text import hf_import

    root = tmp_path_factory.mktemp("three_layers")
    deeper = {**tiny_checkpoint.CONFIG, "num_hidden_layers": 3}
    source = tiny_checkpoint.write(
        root / "src", config_overrides=deeper, tensors=tiny_checkpoint.random_tensors(deeper)
    )
    return hf_import.import_hf(source, root / "preset")


@pytest.mark.parametrize("mode", ["frozen", "finetune"])
def test_distillation_brings_the_student_closer_to_the_teacher(
    mode, deeper_preset, pretrained_spec
):
    spec = dataclasses.replace(pretrained_spec, query_text_length=6)
    _, encoder = encoder_of(deeper_preset, spec, mode=mode, student_layers=1)
    summary = distillation.distil(
        encoder, spec, TITLES, steps=60, batch_size=16, learning_rate=3e-3, progress=False
    )
    assert summary["teacher_layers"] == [0]
    assert summary["last_loss"] < 0.7 * summary["first_loss"]
    assert summary["cosine_to_teacher_after"] > summary["cosine_to_teacher_before"] + 0.01


def test_query_like_texts_mix_titles_and_vocabulary_words():
    words = distillation.vocabulary_words(["[PAD]", "##gy", "a", "kitten", "meal", "ok", "é3"])
    assert list(words) == ["kitten", "meal"]
    texts = distillation.query_like_texts(TITLES, words, 400, np.random.default_rng(0))
    assert len(texts) == 400 and all(texts)
    title_words = {w for t in TITLES for w in t.split()}
    assert any(set(t.split()) <= title_words for t in texts)  # title subsets
    assert any(not set(t.split()) & title_words for t in texts)  # vocabulary only
    assert "red dog food" in texts  # whole titles


def test_scratch_mode_has_no_student():
    with pytest.raises(errors.ConfigError, match="query_student.layers` needs mode 'frozen'"):
        config.load(TINY_CONFIG, ["model.text_encoder.query_student.layers=1"])


def test_tiny_frozen_run_distils_its_student_once(preset, tmp_path, monkeypatch):
    from tfrec.pipelines import train as train_pipeline
    from tfrec.training import trainer

    overrides = [
        *harness.TINY_RUN_OVERRIDES,
        "model.text_encoder.mode=frozen",
        f"model.text_encoder.preset={preset}",
        "model.text_encoder.query_student.layers=1",
        "model.text_encoder.query_student.steps=5",
    ]
    cfg = config.load(TINY_CONFIG, overrides)
    summaries = train_pipeline.train_all(cfg, tmp_path / "run", baselines=False)
    assert summaries["tfrec"]["epochs_run"] == 1 and Path(summaries["artifact"]).is_dir()
    spec = features.FeatureSpec.load(tmp_path / "run" / "spec")
    assert spec.wordpiece == list(tiny_checkpoint.VOCAB) and spec.lowercase  # the preset's
    distilled = summaries["tfrec"]["query_student"]
    assert distilled["steps"] == 5 and distilled["layers"] == 1
    # The trained model's checkpoint carries the distilled student, not the teacher copy.
    from tfrec.data import prepared as prepared_lib

    model = trainer.load_trained(cfg, tmp_path / "run", prepared_lib.prepare(cfg))
    encoder = model.query_model.get_layer("text_encoder")
    copied = encoder.backbone.transformer_layers[0].get_weights()
    restored = encoder.student.transformer_layers[0].get_weights()
    assert any(np.abs(a - b).max() > 0 for a, b in zip(copied, restored, strict=True))
    # Served search goes through the student too: the exported `_text` model answers queries
    # exactly as the artifact's in-process recommender does.
    import tfrec
    from tests.exporting.conftest import assert_same_answer
    from tfrec.pipelines import export as export_run
    from tfrec.ranking import recommender as recommender_lib
    from tfrec.ranking import requests

    rec = tfrec.load(tmp_path / "run")
    export_run.export(tmp_path / "run", tmp_path / "export")
    saved = tf.saved_model.load(str(tmp_path / "export" / "tfrec_text" / "1"))
    user = "someone new"  # no user row, no history: the query alone decides
    for query in ("red dog food", "puppy", "the candle"):
        inputs = requests.stack([requests.build(user, [], 1_700_000_000, 5, query_text=query)])
        out = saved.signatures["recommend"](**{k: tf.constant(v) for k, v in inputs.items()})
        got = recommender_lib.response_rows({k: v.numpy()[0] for k, v in out.items()})
        assert_same_answer(got, rec.recommend(user, [], k=5, query_text=query, now=1_700_000_000))
    # A second call resumes from the checkpoint: it keeps the first summary, distils nothing.
    monkeypatch.setattr(distillation, "distil", lambda *a, **k: pytest.fail("distilled again"))
    again = train_pipeline.train_all(cfg, tmp_path / "run", baselines=False)
    assert again["tfrec"]["query_student"] == distilled
