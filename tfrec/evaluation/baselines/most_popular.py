"""Most popular: the items bought most often in training, the same list for every query."""

from __future__ import annotations

from typing import Optional

import numpy as np

from tfrec.evaluation.baselines import scoring


def _as_counts(train_item_counts, name: str = "train_item_counts") -> np.ndarray:
    counts = np.asarray(train_item_counts, dtype=np.float64)
    if counts.ndim != 1 or counts.size == 0:
        raise ValueError(f"`{name}` must be a non-empty 1-D array, received shape {counts.shape}")
    if np.any(counts < 0) or not np.all(np.isfinite(counts)):
        raise ValueError(f"`{name}` must hold finite counts >= 0")
    return counts


class MostPopular:
    """Recommends the items bought most often in training, the same list for every query.

    The instance is itself a protocol score function.

    Args:
        train_item_counts: array [num_items]. Training interactions per catalog index (any
            non-negative weight works). Items never seen in training score 0.

    Example:
        >>> pop = MostPopular([5, 0, 9])
        >>> pop(0, 2).tolist()
        [[5.0, 0.0, 9.0], [5.0, 0.0, 9.0]]
    """

    def __init__(self, train_item_counts):
        self.train_item_counts = _as_counts(train_item_counts)
        self.num_items = self.train_item_counts.size
        # float32 compares twice as fast and is exact for counts below 2**24.
        exact = self.train_item_counts.max() < 2**24 and np.all(self.train_item_counts % 1 == 0)
        self._scores = self.train_item_counts.astype(np.float32 if exact else np.float64)

    @classmethod
    def from_interactions(cls, item_indices, num_items: int) -> MostPopular:
        """Counts catalog indices of training interactions (one entry per interaction)."""
        return cls(np.bincount(np.asarray(item_indices, dtype=np.int64), minlength=num_items))

    def __call__(self, start: int, end: int) -> np.ndarray:
        # A read-only broadcast view: the protocol copies what it modifies, and a tiled copy of
        # a 100k catalog would cost 400 MB per batch.
        return np.broadcast_to(self._scores, (end - start, self.num_items))

    def scorer(self, query_users: Optional[np.ndarray] = None) -> scoring.ScoreFn:
        """The score function for a list of queries (popularity ignores who asks)."""
        return self
