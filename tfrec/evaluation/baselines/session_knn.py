"""Session-kNN (V-SKNN): items of the past sessions most similar to the query's recent events."""

from __future__ import annotations

from typing import Optional

import numpy as np
import scipy.sparse

from tfrec.evaluation.baselines import inputs, scoring


def top_k_per_row(m: scipy.sparse.csr_matrix, k: int) -> scipy.sparse.csr_matrix:
    """The k largest entries of each row of a CSR matrix (ties: lower column first)."""
    m = scipy.sparse.csr_matrix(m)
    m.sort_indices()
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    order = np.lexsort((m.indices, -m.data, rows))
    rank = np.arange(order.size) - m.indptr[rows[order]]
    keep = order[rank < k]
    return scipy.sparse.csr_matrix(
        (m.data[keep], (rows[keep], m.indices[keep])), shape=m.shape, dtype=m.dtype
    )


class SessionKNN:
    """Vector multiplied session-based kNN (Ludewig & Jannach, 2018) over training sessions.

    The query's session is its history (`EvalQueries.history_item_ids`, H slots) with linear
    position decay: the event at position p weighs (H - p) / H. Training sessions are the
    (user, timestamp) groups of the training window (one invoice in UCI Online Retail), as
    binary item sets. A session's similarity to the query is the dot product divided by the
    square root of its size (the cosine up to a per-query constant). The `neighbors` most similar
    sessions vote for their items with their similarity. Popularity breaks ties and ranks items
    for a query with no history.

    Args:
        neighbors: int. Past sessions that vote. Defaults to 100.

    Example:
        >>> sknn = SessionKNN(neighbors=200).fit(window)
        >>> result = protocol.evaluate(sknn.scorer(queries), relevant, window.num_items)
    """

    def __init__(self, neighbors: int = 100):
        if isinstance(neighbors, bool) or not isinstance(neighbors, int) or neighbors < 1:
            raise ValueError(f"`neighbors` must be a positive int, received {neighbors!r}")
        self.neighbors = neighbors
        self.sessions: Optional[scipy.sparse.csr_matrix] = None
        self.popularity: Optional[np.ndarray] = None

    def fit(self, window: inputs.Window) -> SessionKNN:
        """Indexes the training sessions [num_sessions, num_items]."""
        self.sessions = window.sessions()
        size = np.diff(self.sessions.indptr).astype(np.float32)
        self._scaled_t = (scipy.sparse.diags(1.0 / np.sqrt(size)) @ self.sessions).T.tocsr()
        self.popularity = window.popularity()
        return self

    def scorer(self, queries: inputs.Queries) -> scoring.ScoreFn:
        """The protocol score function of `queries`."""
        sessions = scoring.fitted(self.sessions, "SessionKNN")
        popularity = scoring.fitted(self.popularity, "SessionKNN")
        session = queries.history_matrix(popularity.size)

        def score(start: int, end: int) -> np.ndarray:
            similarity = top_k_per_row(session[start:end] @ self._scaled_t, self.neighbors)
            return scoring.tie_break((similarity @ sessions).toarray(), popularity)

        return score
