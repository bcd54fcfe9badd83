"""The TF-IDF text baseline against a NumPy reference, and its tuning through `tuned_scorers`."""

import collections
import re

import numpy as np
import pandas as pd
import pytest

from tests.evaluation.test_baselines_models import queries_of, window_of, without_tie_break
from tests.evaluation.test_baselines_tuning import ITEMS, hand_prepared, small_config
from tfrec.evaluation import baselines
from tfrec.evaluation.baselines import tuning

TEXTS = ["red guitar strings", "blue guitar strap", "red drum sticks", "", "blue blue strap"]


def reference_vectors(texts, sublinear=False):
    """TF-IDF as scikit-learn defines it: smooth idf ln((1 + n) / (1 + df)) + 1, L2 rows."""
    docs = [re.findall(r"\b\w\w+\b", t.lower()) for t in texts]
    words = sorted({w for d in docs for w in d})
    df = np.array([sum(w in d for d in docs) for w in words], np.float64)
    idf = np.log((1 + len(docs)) / (1 + df)) + 1
    tf = np.array([[collections.Counter(d)[w] for w in words] for d in docs], np.float64)
    if sublinear:
        tf = np.where(tf > 0, 1 + np.log(np.maximum(tf, 1)), 0)
    x = tf * idf
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1)


@pytest.mark.parametrize("sublinear", [False, True])
def test_scores_are_cosines_to_the_mean_of_the_past_items(sublinear):
    window = window_of([[2, 1, 0, 0, 1], [0, 0, 1, 1, 0]])  # popularity 2, 1, 1, 1, 1
    model = baselines.TfidfBaseline(sublinear_tf=sublinear).fit(window, TEXTS)
    scores = model.scorer(queries_of([[0], [0, 2], [3]]))(0, 3)
    x = reference_vectors(TEXTS, sublinear)
    profiles = np.stack([x[0], (x[0] + x[2]) / 2, x[3]])
    profiles /= np.maximum(np.linalg.norm(profiles, axis=1, keepdims=True), 1e-12)
    expected = profiles @ x.T
    popularity = window.popularity()
    np.testing.assert_allclose(without_tie_break(scores[:2], popularity), expected[:2], atol=1e-5)
    # Query 0 (red guitar strings): itself, then the other guitar item, then the red one.
    assert np.argsort(-scores[0])[:3].tolist() == [0, 1, 2]
    # Query 2's past is an item without text: popularity alone ranks the catalog.
    np.testing.assert_allclose(scores[2], popularity / popularity.max())


def test_min_df_drops_rare_words_and_an_empty_vocabulary_falls_back_to_popularity():
    window = window_of([[1, 1, 0, 0, 1]])
    model = baselines.TfidfBaseline(min_df=2).fit(window, TEXTS)
    # Words in two texts or more: red, guitar, blue, strap. "drum sticks" leaves item 2 red only.
    assert model.vectors.shape == (5, 4)
    empty = baselines.TfidfBaseline(min_df=9).fit(window, TEXTS)
    scores = empty.scorer(queries_of([[0]]))(0, 1)
    np.testing.assert_allclose(scores[0], window.popularity())  # [1, 1, 0, 0, 1]


def test_arguments_are_checked():
    with pytest.raises(ValueError, match=r"`sublinear_tf` must be a bool, received 1"):
        baselines.TfidfBaseline(sublinear_tf=1)
    with pytest.raises(ValueError, match=r"`min_df` must be an int >= 1, received 0"):
        baselines.TfidfBaseline(min_df=0)
    with pytest.raises(ValueError, match=r"one text per catalog item \(5\), received 2"):
        baselines.TfidfBaseline().fit(window_of([[1, 1, 0, 0, 1]]), TEXTS[:2])
    with pytest.raises(ValueError, match=r"`TfidfBaseline.scorer` needs a fitted model"):
        baselines.TfidfBaseline().scorer(queries_of([[0]]))


def test_tuned_on_validation_over_its_grid_and_reads_the_item_table_text():
    prepared = hand_prepared()
    # Catalog x, y, z, w. User a's validation targets y then x, test target z; b's are z, w.
    texts = {"x": "fender guitar", "y": "guitar strap", "z": "guitar strap strings", "w": "drum"}
    prepared.dataset.items = pd.DataFrame(
        {
            "item_id": list(texts)[::-1],  # the item table's own order, not the catalog's
            "title": list(texts.values())[::-1],
            "description": "",
            "category": "",
        }
    )
    assert tuning.catalog_texts(prepared).tolist() == [texts[i] for i in ITEMS]
    tuned = baselines.tuned_scorers(prepared, small_config(False), ["tfidf"], progress=False)
    t = tuned["tfidf"]
    assert [v["params"] for v in t.validation] == [
        {"sublinear_tf": s, "min_df": m} for s in (False, True) for m in (1, 2)
    ]
    assert t.params in [v["params"] for v in t.validation]
    assert t.metrics["queries"] == len(prepared.validation.relevant)
    # Test query a@21 (past x, y, z): the text-free drum w ranks last.
    scores = t.score_fn(0, len(prepared.test))
    assert np.argmin(scores[0]) == 3


def test_tfidf_is_a_default_baseline_with_a_label():
    from tfrec import config as config_lib
    from tfrec.evaluation import results_table

    assert "tfidf" in config_lib.load(None).eval.baselines and "tfidf" in tuning.NAMES
    assert results_table.model_label("tfidf").startswith("TF-IDF text")
