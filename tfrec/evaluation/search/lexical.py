"""Lexical search scorers: BM25 (`bm25s`) and TF-IDF cosine (scikit-learn)."""

from __future__ import annotations

from collections.abc import Collection

import numpy as np


def bm25_scores(item_texts: Collection[str], queries: Collection[str]) -> np.ndarray:
    """BM25 score of every item text for every query, with the library's defaults.

    `bm25s.BM25()` as shipped: Lucene's BM25 variant, k1 = 1.5, b = 0.75; `bm25s.tokenize`'s
    defaults: lowercased tokens of 2+ word characters, its English stop words removed.

    Args:
        item_texts: sequence of str [num_items]. The documents.
        queries: sequence of str [num_queries].

    Returns:
        float32 [num_queries, num_items]; zero where a query shares no word with an item.
    """
    import bm25s

    corpus = bm25s.tokenize(list(item_texts), stopwords="en", show_progress=False)
    model = bm25s.BM25()
    model.index(corpus, show_progress=False)
    tokens = bm25s.tokenize(list(queries), stopwords="en", return_ids=False, show_progress=False)
    out = np.zeros([len(tokens), len(item_texts)], np.float32)
    for i, words in enumerate(tokens):
        # Words absent from the corpus score nothing; bm25s expects only indexed ones.
        known = [w for w in words if w in corpus.vocab]
        if known:
            out[i] = model.get_scores(known)
    return out


def tfidf_scores(
    item_texts: Collection[str], queries: Collection[str], sublinear_tf: bool = False
) -> np.ndarray:
    """Cosine between TF-IDF vectors of each query and each item text.

    scikit-learn's `TfidfVectorizer` with its defaults (lowercased word tokens, smooth idf,
    L2-normalised rows), fitted on the item texts only; queries are transformed with it.

    Args:
        item_texts: sequence of str [num_items].
        queries: sequence of str [num_queries].
        sublinear_tf: bool. `1 + log(count)` term weights. Defaults to False.

    Returns:
        float32 [num_queries, num_items].
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(sublinear_tf=sublinear_tf)
    items = vectorizer.fit_transform([str(t) for t in item_texts])
    found = vectorizer.transform([str(q) for q in queries])
    return np.asarray((found @ items.T).toarray(), dtype=np.float32)
