"""Buy again plus item-kNN: a weighted sum of their row-normalised scores."""

from __future__ import annotations

from typing import Optional

import numpy as np

from tfrec.evaluation.baselines import buy_again as buy_again_lib
from tfrec.evaluation.baselines import inputs, scoring
from tfrec.evaluation.baselines import item_knn as item_knn_lib


class Hybrid:
    """Repeat purchases and similar items in one ranking.

    Each component's scores are divided by the row's largest one, then mixed:
    `weight * buy_again + (1 - weight) * item_knn`. Popularity breaks ties.

    Args:
        buy_again: BuyAgain. The repeat-purchase component (fitted by `fit`).
        item_knn: ItemKNN. The similar-items component (fitted by `fit`).
        weight: float in [0, 1]. Share of buy again. Defaults to 0.5.

    Example:
        >>> hybrid = Hybrid(BuyAgain(0.9), ItemKNN(200, "bm25"), weight=0.75).fit(window)
        >>> result = protocol.evaluate(hybrid.scorer(queries), relevant, window.num_items)
    """

    def __init__(
        self,
        buy_again: buy_again_lib.BuyAgain,
        item_knn: item_knn_lib.ItemKNN,
        weight: float = 0.5,
    ):
        if not isinstance(buy_again, buy_again_lib.BuyAgain):
            raise ValueError(f"`buy_again` must be a BuyAgain, received {type(buy_again).__name__}")
        if not isinstance(item_knn, item_knn_lib.ItemKNN):
            raise ValueError(f"`item_knn` must be an ItemKNN, received {type(item_knn).__name__}")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight <= 1:
            raise ValueError(f"`weight` must be a float in [0, 1], received {weight!r}")
        self.buy_again = buy_again
        self.item_knn = item_knn
        self.weight = float(weight)
        self.popularity: Optional[np.ndarray] = None

    def fit(self, window: inputs.Window) -> Hybrid:
        """Fits both components."""
        self.buy_again.fit(window)
        self.item_knn.fit(window)
        self.popularity = window.popularity()
        return self

    def scorer(self, queries: inputs.Queries) -> scoring.ScoreFn:
        """The protocol score function of `queries`."""
        popularity = scoring.fitted(self.popularity, "Hybrid")
        again, similar = self.buy_again.raw_scorer(queries), self.item_knn.raw_scorer(queries)

        def score(start: int, end: int) -> np.ndarray:
            mixed = self.weight * scoring.normalise_rows(again(start, end))
            mixed += (1.0 - self.weight) * scoring.normalise_rows(similar(start, end))
            return scoring.tie_break(mixed, popularity)

        return score
