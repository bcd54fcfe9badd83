"""SentenceEncoder: the NumPy BERT's mean-pooled vectors, whatever the batching and cut."""

import numpy as np
import pytest

from tests.text import numpy_bert, tiny_checkpoint
from tfrec.text import hf_import, sentence_encoder

TEXTS = ["the doggy food", "puppy food", "red candle holder kibble .", "", "dog"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("sentence")
    src = tiny_checkpoint.write(root / "src")
    (src / "README.md").write_text("---\nlicense: apache-2.0\n---\n# tiny\n", encoding="utf-8")
    return src, hf_import.import_hf(src, root / "preset")


def reference(src, texts, encoder, max_length):
    """[CLS] ids [SEP] through the NumPy BERT, mean-pooled, unit length; zero for no text."""
    tensors = numpy_bert.load_tensors(src / "model.safetensors")
    out = np.zeros([len(texts), tiny_checkpoint.CONFIG["hidden_size"]])
    for i, ids in enumerate(encoder.token_ids(texts)):
        if len(ids):
            row = np.array([[2, *ids[: max_length - 2], 3]], np.int32)  # [CLS]=2, [SEP]=3
            v = numpy_bert.mean_pool(numpy_bert.encode(tensors, row, 2, 4), row)[0]
            out[i] = v / np.linalg.norm(v)
    return out


@pytest.mark.parametrize("max_length", [16, 5])
def test_vectors_match_numpy_bert_in_any_batch_order(tiny, max_length):
    src, preset = tiny
    encoder = sentence_encoder.SentenceEncoder(preset, max_length=max_length)
    assert [len(ids) for ids in encoder.token_ids(TEXTS)] == [4, 2, 6, 0, 1]
    got = encoder.encode(TEXTS, batch_size=2)
    assert got.shape == (5, 32) and got.dtype == np.float32
    # Batches of 2 over texts sorted by length mix lengths and padding: same vectors anyway.
    np.testing.assert_allclose(got, reference(src, TEXTS, encoder, max_length), atol=1e-5)
    assert not got[3].any()  # the empty text
    np.testing.assert_allclose(encoder.encode(TEXTS[2:3]), got[2:3], atol=1e-5)


def test_max_length_is_checked(tiny):
    _, preset = tiny
    with pytest.raises(ValueError, match=r"`max_length` must be an int in \[3, 16\], received 17"):
        sentence_encoder.SentenceEncoder(preset, max_length=17)


@pytest.mark.slow
def test_default_preset_puts_paraphrases_closer():
    from tfrec.text import default_model

    path = default_model.default_preset_dir()
    try:
        hf_import.check_preset(path)
    except Exception as e:  # noqa: BLE001 - any reason the preset is unusable means "not fetched"
        pytest.skip(f"default preset not in the cache ({e}); run `tfrec text fetch-default`")
    encoder = sentence_encoder.SentenceEncoder("default", max_length=128)
    v = encoder.encode(["guitar strings", "strings for my guitar", "a drum throne"])
    assert v.shape == (3, 384)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.3
