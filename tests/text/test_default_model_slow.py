"""The cached default preset (all-MiniLM-L6-v2): Keras vs NumPy BERT, and paraphrase geometry.

Needs `tfrec text fetch-default` (or `make presets`) to have run; skipped otherwise.
"""

import numpy as np
import pytest

import tfrec.text  # noqa: F401  (registers the preset's backbone class)
from tests.text import numpy_bert
from tests.text.test_hf_import import keras_sentence_embedding
from tfrec.text import default_model, hf_import

pytestmark = pytest.mark.slow

SENTENCES = [
    "puppy food",
    "dog kibble",
    "candle holder",
    "red running shoes",
    "crimson sneakers for jogging",
]


@pytest.fixture(scope="module")
def preset():
    path = default_model.default_preset_dir()
    try:
        hf_import.check_preset(path)
    except Exception as e:  # noqa: BLE001 - any reason the preset is unusable means "not fetched"
        pytest.skip(f"default preset not in the cache ({e}); run `tfrec text fetch-default`")
    return path


@pytest.fixture(scope="module")
def encoded(preset):
    import keras_nlp

    backbone = keras_nlp.models.BertBackbone.from_preset(str(preset))
    tokenizer = keras_nlp.models.BertTokenizer.from_preset(str(preset))
    # [CLS] text [SEP], zero-padded: how sentence-transformers feeds the model.
    rows = [
        [tokenizer.cls_token_id, *tokenizer(s).numpy().tolist(), tokenizer.sep_token_id]
        for s in SENTENCES
    ]
    ids = np.zeros((len(rows), max(map(len, rows))), np.int32)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
    return backbone, ids, keras_sentence_embedding(backbone, ids)


def test_metadata_records_the_pinned_source(preset):
    metadata = hf_import.check_preset(preset)
    assert metadata["provenance"]["wheel_sha256"] == default_model.WHEEL_SHA256
    assert metadata["licence"] == "Apache-2.0"
    assert metadata["architecture"]["num_layers"] == 6
    assert metadata["architecture"]["hidden_dim"] == 384
    assert metadata["tokenizer"]["lowercase"] is True
    st = metadata["sentence_transformers"]
    assert (st["max_seq_length"], st["pooling"], st["normalize"]) == (256, ["mean_tokens"], True)


def test_keras_embedding_matches_numpy_bert(encoded):
    backbone, ids, got = encoded
    tensors = numpy_bert.tensors_from_keras(backbone)
    want = numpy_bert.mean_pool(numpy_bert.encode(tensors, ids, 6, 12), ids)
    assert got.shape == (len(SENTENCES), 384)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)


def test_paraphrases_are_closer_than_unrelated_text(encoded):
    _, _, embeddings = encoded
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    cos = unit @ unit.T
    puppy, dog, candle, shoes, sneakers = range(5)
    assert cos[puppy, dog] > cos[puppy, candle] + 0.2
    assert cos[puppy, dog] > cos[dog, candle] + 0.2
    assert cos[shoes, sneakers] > max(cos[shoes, candle], cos[shoes, puppy]) + 0.2
