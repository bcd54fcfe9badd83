"""EASE: a closed-form item-item linear autoencoder (Steck, 2019)."""

from __future__ import annotations

from typing import Optional

import numpy as np

from tfrec.evaluation.baselines import inputs, scoring

# EASE inverts a dense [items, items] float64 matrix: 20k items take ~3.2 GB per copy and a
# cubic solve, beyond what an evaluation run should quietly ask for.
MAX_ITEMS = 20_000


class EASE:
    """Embarrassingly Shallow Autoencoder: each item's score is a learned mix of the past items.

    With X the binary user x item training matrix and P = (X^T X + l2 I)^-1, the item-item
    weights are B = I - P / diag(P) (column j divided by P[j, j]; zero diagonal). A query's
    score is `past @ B`, `past` being the binary indicator of the items in its recent events and
    training profile. Popularity breaks ties and ranks items for a query with no past.

    Args:
        l2: float > 0. Ridge weight lambda. Defaults to 500.0.
        max_items: int. Largest catalog accepted; `fit` refuses larger ones. Defaults to
            MAX_ITEMS (20,000).

    Example:
        >>> ease = EASE(l2=200.0).fit(window)
        >>> result = protocol.evaluate(ease.scorer(queries), relevant, window.num_items)
    """

    def __init__(self, l2: float = 500.0, max_items: int = MAX_ITEMS):
        if isinstance(l2, bool) or not isinstance(l2, (int, float)) or not l2 > 0:
            raise ValueError(f"`l2` must be a float > 0, received {l2!r}")
        if isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 1:
            raise ValueError(f"`max_items` must be a positive int, received {max_items!r}")
        self.l2 = float(l2)
        self.max_items = max_items
        self.weights: Optional[np.ndarray] = None
        self.popularity: Optional[np.ndarray] = None

    def fit(self, window: inputs.Window) -> EASE:
        """Solves for B [num_items, num_items] in closed form."""
        if window.num_items > self.max_items:
            raise ValueError(
                f"`EASE` needs a dense [items, items] matrix and accepts at most `max_items` = "
                f"{self.max_items} items, received a catalog of {window.num_items} items"
            )
        x = window.matrix(binary=True)
        gram = (x.T @ x).toarray().astype(np.float64)
        gram[np.diag_indices_from(gram)] += self.l2
        p = np.linalg.inv(gram)
        b = -p / np.diag(p)[None, :]
        b[np.diag_indices_from(b)] = 0.0
        self.weights = b.astype(np.float32)
        self.popularity = window.popularity()
        return self

    def scorer(self, queries: inputs.Queries) -> scoring.ScoreFn:
        """The protocol score function of `queries`."""
        weights = scoring.fitted(self.weights, "EASE")
        popularity = scoring.fitted(self.popularity, "EASE")
        past = queries.matrix(popularity.size, binary=True)

        def score(start: int, end: int) -> np.ndarray:
            return scoring.tie_break(past[start:end] @ weights, popularity)

        return score
