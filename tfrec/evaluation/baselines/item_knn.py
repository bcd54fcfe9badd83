"""Item-kNN: items similar to everything in the user's past (cosine or BM25 similarity)."""

from __future__ import annotations

from typing import Optional

import numpy as np
import scipy.sparse

from tfrec.evaluation.baselines import inputs, scoring

WEIGHTINGS = ("cosine", "bm25")


class ItemKNN:
    """Item-based collaborative filtering over user profiles.

    Items are vectors over training users (the user x item count matrix). Their similarity is
    the cosine, or the dot product after BM25 weighting (each item a document, each user a term:
    `implicit.nearest_neighbours.bm25_weight`, K1 = 1.2, B = 0.75, as `implicit`'s
    `BM25Recommender`). Each item keeps its `neighbors` most similar items, itself included.
    A query's score is `past @ similarity`, `past` holding the query's counts of each item over
    its recent events and training profile (`inputs.Queries.matrix`). Popularity breaks ties
    and ranks items for a query with no past.

    Args:
        neighbors: int. Similar items kept per item (top-k pruning). Defaults to 200.
        weighting: str. `cosine` or `bm25`. Defaults to "cosine".

    Example:
        >>> knn = ItemKNN(neighbors=50, weighting="bm25").fit(window)
        >>> result = protocol.evaluate(knn.scorer(queries), relevant, window.num_items)
    """

    def __init__(self, neighbors: int = 200, weighting: str = "cosine"):
        if isinstance(neighbors, bool) or not isinstance(neighbors, int) or neighbors < 1:
            raise ValueError(f"`neighbors` must be a positive int, received {neighbors!r}")
        if weighting not in WEIGHTINGS:
            raise ValueError(f"`weighting` must be one of {WEIGHTINGS}, received {weighting!r}")
        self.neighbors = neighbors
        self.weighting = weighting
        self.similarity: Optional[scipy.sparse.csr_matrix] = None
        self.popularity: Optional[np.ndarray] = None

    def fit(self, window: inputs.Window) -> ItemKNN:
        """Computes the pruned [num_items, num_items] similarity (row i: neighbours of i)."""
        from implicit import nearest_neighbours

        counts = window.matrix()
        if self.weighting == "cosine":
            # Normalised item columns: their dot products are cosines.
            norms = np.sqrt(np.asarray(counts.multiply(counts).sum(axis=0))).ravel()
            weighted = counts @ scipy.sparse.diags(1.0 / np.where(norms > 0, norms, 1.0))
        else:
            weighted = nearest_neighbours.bm25_weight(counts.T, K1=1.2, B=0.75).T
        self.similarity = nearest_neighbours.all_pairs_knn(
            scipy.sparse.csr_matrix(weighted, dtype=np.float64),
            self.neighbors,
            show_progress=False,
        ).tocsr()
        self.popularity = window.popularity()
        return self

    def raw_scorer(self, queries: inputs.Queries) -> scoring.ScoreFn:
        """Scores without the popularity tie-break."""
        similarity = scoring.fitted(self.similarity, "ItemKNN")
        past = queries.matrix(similarity.shape[0])
        return lambda start, end: (past[start:end] @ similarity).toarray()

    def scorer(self, queries: inputs.Queries) -> scoring.ScoreFn:
        """The protocol score function of `queries`."""
        raw, popularity = self.raw_scorer(queries), scoring.fitted(self.popularity, "ItemKNN")
        return lambda start, end: scoring.tie_break(raw(start, end), popularity)
