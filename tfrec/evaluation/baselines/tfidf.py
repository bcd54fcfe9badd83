"""TF-IDF text baseline: items whose text is closest to the text of the user's past items."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import numpy as np
import scipy.sparse

from tfrec.evaluation.baselines import inputs, scoring


class TfidfBaseline:
    """Content-only recommender over TF-IDF vectors of the items' text.

    Each catalog item is the L2-normalised TF-IDF vector of its text (scikit-learn
    `TfidfVectorizer`, default word tokens, lowercased; the inverse document frequencies are
    learned over the catalog's texts). A query's profile is the mean of the vectors of the
    items in its past (recent events and training profile, each item once:
    `inputs.Queries.matrix(binary=True)`); an item's score is the cosine between the profile
    and the item's vector. It reads no interaction beyond the query's own past, so it is the
    text-only reference for tfrec's text towers: an item never seen in training competes on
    its text alone. Items without text score zero; popularity breaks ties, and ranks items
    for a query with no past or no text.

    Args:
        sublinear_tf: bool. Term counts weighted `1 + log(count)` instead of `count`.
            Defaults to False.
        min_df: int >= 1. Words found in fewer item texts are dropped. Defaults to 1.

    Example:
        >>> tfidf = TfidfBaseline(sublinear_tf=True).fit(window, texts)
        >>> result = protocol.evaluate(tfidf.scorer(queries), relevant, window.num_items)
    """

    def __init__(self, sublinear_tf: bool = False, min_df: int = 1):
        if not isinstance(sublinear_tf, bool):
            raise ValueError(f"`sublinear_tf` must be a bool, received {sublinear_tf!r}")
        if isinstance(min_df, bool) or not isinstance(min_df, int) or min_df < 1:
            raise ValueError(f"`min_df` must be an int >= 1, received {min_df!r}")
        self.sublinear_tf = sublinear_tf
        self.min_df = min_df
        self.vectors: Optional[scipy.sparse.csr_matrix] = None
        self.popularity: Optional[np.ndarray] = None

    def fit(self, window: inputs.Window, texts: Sequence[str]) -> TfidfBaseline:
        """Vectorises the catalog's texts; keeps the training popularity (the tie-break).

        Args:
            window: inputs.Window. The fitting window (popularity only).
            texts: sequence of str [num_items]. Each catalog item's text, in catalog order
                ("" for an item without text).
        """
        from sklearn.feature_extraction.text import TfidfVectorizer

        texts = [str(t) for t in texts]
        if len(texts) != window.num_items:
            raise ValueError(
                f"`texts` must hold one text per catalog item ({window.num_items}), received "
                f"{len(texts)}"
            )
        vectorizer = TfidfVectorizer(sublinear_tf=self.sublinear_tf, min_df=self.min_df)
        try:
            vectors = vectorizer.fit_transform(texts)
        except ValueError:
            # scikit-learn refuses a vocabulary left empty (no text, or every word below
            # min_df): then no item has a vector and popularity ranks every query.
            vectors = scipy.sparse.csr_matrix((len(texts), 1), dtype=np.float64)
        self.vectors = scipy.sparse.csr_matrix(vectors, dtype=np.float32)
        self.popularity = window.popularity()
        return self

    def raw_scorer(self, queries: inputs.Queries) -> scoring.ScoreFn:
        """Cosine of each query's mean past vector with every item, without the tie-break."""
        vectors = scoring.fitted(self.vectors, "TfidfBaseline")
        past = queries.matrix(vectors.shape[0], binary=True)
        counts = np.asarray(past.sum(axis=1)).ravel()
        profiles = scipy.sparse.diags(1.0 / np.maximum(counts, 1.0)) @ past @ vectors
        norms = np.sqrt(np.asarray(profiles.multiply(profiles).sum(axis=1))).ravel()
        unit = scipy.sparse.csr_matrix(
            scipy.sparse.diags(1.0 / np.where(norms > 0, norms, 1.0)) @ profiles, dtype=np.float32
        )
        items_t = vectors.T.tocsr()
        return lambda start, end: (unit[start:end] @ items_t).toarray()

    def scorer(self, queries: inputs.Queries) -> scoring.ScoreFn:
        """The protocol score function of `queries`."""
        raw = self.raw_scorer(queries)
        popularity = scoring.fitted(self.popularity, "TfidfBaseline")
        return lambda start, end: scoring.tie_break(raw(start, end), popularity)
