"""Buy again: recency-weighted counts of the user's own past items."""

from __future__ import annotations

from typing import Optional

import numpy as np

from tfrec.evaluation.baselines import inputs, scoring


class BuyAgain:
    """Recommends what the user already bought, most recent and most frequent first.

    An item's score is `sum(decay ** position)` over the query's past events on it (recent
    events, then the training profile, position 0 = most recent; `inputs.Queries.events`).
    Items outside the user's past are ordered by popularity, so a user with no past gets the
    most popular items.

    Args:
        decay: float in (0, 1]. Weight lost per position; 1 counts every past event alike.
            Defaults to 0.9.

    Example:
        >>> ba = BuyAgain(decay=0.8).fit(window)
        >>> result = protocol.evaluate(ba.scorer(queries), relevant, window.num_items)
    """

    def __init__(self, decay: float = 0.9):
        if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0 < decay <= 1:
            raise ValueError(f"`decay` must be a float in (0, 1], received {decay!r}")
        self.decay = float(decay)
        self.popularity: Optional[np.ndarray] = None

    def fit(self, window: inputs.Window) -> BuyAgain:
        """Keeps the training popularity (the tie-break); the rest is per query."""
        self.popularity = window.popularity()
        return self

    def raw_scorer(self, queries: inputs.Queries) -> scoring.ScoreFn:
        """Scores without the popularity tie-break."""
        popularity = scoring.fitted(self.popularity, "BuyAgain")
        matrix = queries.matrix(popularity.size, decay=self.decay)
        return lambda start, end: matrix[start:end].toarray()

    def scorer(self, queries: inputs.Queries) -> scoring.ScoreFn:
        """The protocol score function of `queries`."""
        raw, popularity = self.raw_scorer(queries), scoring.fitted(self.popularity, "BuyAgain")
        return lambda start, end: scoring.tie_break(raw(start, end), popularity)
