"""Tests of the training-only vocabularies and the item feature table."""

import math

import numpy as np
import pytest

from tests.data.helpers_pipeline import DAY, catalog, data_config, shop
from tfrec import errors, features
from tfrec.data import schema, vocab


@pytest.fixture(scope="module")
def train():
    log = shop()
    return log[log["timestamp"] < 6 * DAY].reset_index(drop=True)


@pytest.fixture(scope="module")
def spec(train):
    return vocab.build_feature_spec(train, catalog(), data_config())


@pytest.fixture(scope="module")
def table(spec):
    return vocab.build_item_table(catalog(), spec)


def test_ids_come_from_training_only_most_frequent_first(spec):
    # Train: u1 x3, u2 x2, u3 x1; b x3, a x2, c x1. Items d, e and user u4 come later.
    assert spec.users == ["u1", "u2", "u3"]
    assert spec.items == ["b", "a", "c"]
    # kitchen holds a and c, lighting holds b; home (item e) is never trained on.
    assert spec.categories == ["kitchen", "lighting"]
    assert spec.event_types == schema.EVENT_TYPES
    assert (spec.max_history, spec.text_length, spec.query_text_length) == (3, 8, 6)


def test_ties_break_by_id(train):
    # One row each, u3 (item c) logged before u2 (item b): ties sort by id, not by log order.
    tied = train[train["user_id"] != "u1"].iloc[[1, 0]]
    assert tied["user_id"].tolist() == ["u3", "u2"]
    spec = vocab.build_feature_spec(tied, catalog(), data_config())
    assert spec.users == ["u2", "u3"]
    assert spec.items == ["b", "c"]


def test_price_moments_over_trained_items(spec):
    # log1p prices of a, b, c are 1, 3, 2: mean 2, population std sqrt(2/3).
    assert spec.price_mean == pytest.approx(2.0, abs=1e-6)
    assert spec.price_std == pytest.approx(math.sqrt(2 / 3), abs=1e-6)


def test_wordpiece_reserves_special_tokens_and_learns_train_text_only(spec):
    assert tuple(spec.wordpiece[:5]) == features.SPECIAL_TOKENS
    assert spec.wordpiece[0] == "[PAD]"
    assert len(spec.wordpiece) <= 80
    assert "r" in spec.wordpiece and "##d" in spec.wordpiece  # "red"
    # "zebra rug . striped . home" belongs to item e, unseen in training: no "z" at all.
    assert not any("z" in token for token in spec.wordpiece)


def test_vocab_size_must_exceed_special_tokens(train):
    with pytest.raises(errors.ConfigError, match=r"`data.vocab_size` must exceed .* received 5"):
        vocab.build_feature_spec(train, catalog(), data_config(vocab_size=5))


def test_empty_train_raises(train):
    with pytest.raises(errors.DataError, match=r"`train` must hold at least one interaction"):
        vocab.build_feature_spec(train.iloc[:0], catalog(), data_config())


def test_item_counts_align_with_spec(train, spec):
    counts = vocab.item_counts(train, spec)
    assert counts.tolist() == [3, 2, 1]  # b, a, c
    assert counts.dtype == np.int64
    # Items outside the vocabulary are not counted.
    assert vocab.item_counts(shop(), spec).tolist() == [3, 3, 2]


def test_item_table_in_catalog_order(spec, table):
    assert len(table) == 5
    assert table[features.ITEM_ID].tolist() == ["a", "b", "c", "d", "e"]
    assert table.item_ids is table[features.ITEM_ID]
    assert table[features.ITEM_CATEGORY].tolist() == ["kitchen", "lighting", "kitchen", "", "home"]
    assert set(table.features) == set(features.CANDIDATE_FEATURES)
    # (log1p(price) - 2) / sqrt(2/3); d has no price -> 0.
    z = 1 / math.sqrt(2 / 3)
    expected = [-z, z, 0.0, 0.0, (math.log(6.0) - 2) * z]
    np.testing.assert_allclose(table[features.ITEM_PRICE], expected, atol=1e-5)
    assert table[features.ITEM_PRICE].dtype == np.float32


def test_item_table_tokens_match_the_spec_tokenizer(spec, table):
    tokens = table[features.ITEM_TOKEN_IDS]
    assert tokens.shape == (5, 8) and tokens.dtype == np.int32
    expected = spec.tokenizer(8)(["green tin"]).numpy()[0]  # item d: title only
    np.testing.assert_array_equal(tokens[3], expected)
    assert tokens[4, 0] == 1  # "zebra": [UNK]
    short = vocab.tokenize(np.array(["tin"], dtype=object), spec, 8)[0]
    assert short[3:].tolist() == [0] * 5  # t ##i ##n, then [PAD] = 0


def test_tokenize_in_batches_matches_one_call(spec, monkeypatch):
    texts = schema.item_text(catalog())
    whole = vocab.tokenize(texts, spec, 8)
    monkeypatch.setattr(vocab, "_TOKENIZE_BATCH", 2)
    np.testing.assert_array_equal(vocab.tokenize(texts, spec, 8), whole)
    assert vocab.tokenize(texts[:0], spec, 8).shape == (0, 8)


def test_index_of_unknown_is_minus_one(spec, table):
    assert table.index_of(["e", "zz", "a"]).tolist() == [4, -1, 0]
    assert table.index_of(np.array([["b", ""]], dtype=object)).tolist() == [[1, -1]]


def test_item_table_rejects_duplicates(spec):
    items = catalog()
    items.loc[1, "item_id"] = "a"
    with pytest.raises(errors.DataError, match=r"`items.item_id` must be unique, received 'a'"):
        vocab.build_item_table(items, spec)


@pytest.fixture(scope="module")
def presets(tmp_path_factory):
    from tests.text import tiny_checkpoint
    from tfrec.text import hf_import

    root = tmp_path_factory.mktemp("presets")
    uncased = hf_import.import_hf(tiny_checkpoint.write(root / "u"), root / "uncased")
    cased = hf_import.import_hf(
        tiny_checkpoint.write(root / "c", do_lower_case=False), root / "cased"
    )
    return uncased, cased


def pretrained_config(preset, mode="frozen"):
    from tfrec import config as config_lib

    return config_lib.TextEncoderConfig(mode=mode, preset=None if preset is None else str(preset))


def test_pretrained_modes_take_the_presets_tokenizer(train, presets, tmp_path):
    import keras_nlp

    from tests.text import tiny_checkpoint

    uncased, cased = presets
    spec = vocab.build_feature_spec(train, catalog(), data_config(), pretrained_config(uncased))
    assert spec.wordpiece == tiny_checkpoint.VOCAB and spec.lowercase and spec.strip_accents
    assert spec.items == ["b", "a", "c"]  # the rest of the spec is learned as before
    # The spec's tokenizer (pipelines, exported `_text` signatures) == the preset's own.
    text = ["The DOGGY food.", "red candle holder", "zebra"]
    preset_tokenizer = keras_nlp.models.BertTokenizer.from_preset(str(uncased))
    got = spec.tokenizer(8)(text).numpy()
    np.testing.assert_array_equal(got[0], [5, 6, 7, 8, 15, 0, 0, 0])  # the dog ##gy food .
    for row, t in zip(got, text, strict=True):
        ids = preset_tokenizer(t).numpy()
        np.testing.assert_array_equal(row, np.pad(ids, (0, 8 - len(ids))))
    spec.save(tmp_path)
    assert features.FeatureSpec.load(tmp_path) == spec
    finetune = pretrained_config(cased, mode="finetune")
    spec_cased = vocab.build_feature_spec(train, catalog(), data_config(), finetune)
    assert not spec_cased.lowercase
    assert spec_cased.tokenizer(3)(["The dog"]).numpy().tolist() == [[1, 6, 0]]  # The: [UNK]
    scratch = vocab.build_feature_spec(
        train, catalog(), data_config(), pretrained_config(None, "scratch")
    )
    assert scratch.wordpiece == vocab.build_feature_spec(train, catalog(), data_config()).wordpiece


def test_missing_default_preset_names_the_fetch_command(train, monkeypatch, tmp_path):
    monkeypatch.setenv("TFREC_CACHE", str(tmp_path))
    with pytest.raises(errors.ConfigError, match="`tfrec text fetch-default`"):
        vocab.build_feature_spec(train, catalog(), data_config(), pretrained_config("default"))


def test_informed_marks_items_the_tower_can_read(spec):
    items = catalog().head(3).copy()
    items["item_id"] = ["b", "new-with-text", "new-blank"]  # b: trained on
    items["title"] = ["", "a lamp", ""]
    items["description"] = ""
    items["category"] = ""
    items["price"] = np.nan
    table = vocab.build_item_table(items, spec)
    assert table.informed.tolist() == [True, True, False]
    items.loc[2, "price"] = 9.5  # a price is something to read
    assert vocab.build_item_table(items, spec).informed.tolist() == [True, True, True]
    items.loc[2, "price"] = np.nan
    items.loc[2, "category"] = "home"  # no training category, but the text tower reads it
    assert vocab.build_item_table(items, spec).informed.tolist() == [True, True, True]
