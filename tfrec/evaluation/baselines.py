"""Non-neural baselines as protocol score functions: most popular items and implicit ALS."""

from __future__ import annotations

from collections.abc import Callable
from typing import Optional

import numpy as np

ScoreFn = Callable[[int, int], np.ndarray]


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

    def scorer(self, query_users: Optional[np.ndarray] = None) -> ScoreFn:
        """The score function for a list of queries (popularity ignores who asks)."""
        return self


class ALSBaseline:
    """Implicit-feedback matrix factorization (ALS from the `implicit` library).

    A user's score for an item is the dot product of their factors. Users with no training
    interaction, or outside the fitted user range, fall back to item popularity. `implicit` is
    imported lazily, so the rest of tfrec works without it.

    Args:
        factors: int. Latent dimension. Defaults to 64.
        regularization: float. L2 weight on the factors. Defaults to 0.01.
        iterations: int. ALS sweeps. Defaults to 15.
        alpha: float. Confidence scale of implicit counts (c = 1 + alpha * count). Defaults to 1.0.
        seed: int. Random state of the initial factors. Defaults to 0.

    Example:
        >>> als = ALSBaseline(factors=16).fit(train_users, train_items, num_users, num_items)
        >>> result = protocol.evaluate(als.scorer(test_query_users), relevant, num_items)
    """

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.01,
        iterations: int = 15,
        alpha: float = 1.0,
        seed: int = 0,
    ):
        for name, value in (("factors", factors), ("iterations", iterations)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive int, received {value!r}")
        for name, value in (("regularization", regularization), ("alpha", alpha)):
            if not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"`{name}` must be a float >= 0, received {value!r}")
        self.factors = factors
        self.regularization = float(regularization)
        self.iterations = iterations
        self.alpha = float(alpha)
        self.seed = seed
        self.user_factors: Optional[np.ndarray] = None
        self.item_factors: Optional[np.ndarray] = None
        self.popularity: Optional[np.ndarray] = None
        self.known_users: Optional[np.ndarray] = None

    @staticmethod
    def available() -> bool:
        """Whether the `implicit` library can be imported."""
        try:
            import implicit  # noqa: F401
        except ImportError:
            return False
        return True

    def fit(
        self,
        user_indices,
        item_indices,
        num_users: int,
        num_items: int,
        weights: Optional[np.ndarray] = None,
    ) -> ALSBaseline:
        """Fits on training interactions given as parallel index arrays.

        Args:
            user_indices: int array [num_interactions] in [0, num_users).
            item_indices: int array [num_interactions] of catalog indices in [0, num_items).
            num_users: int. Rows of the user x item matrix.
            num_items: int. Catalog size.
            weights: float array [num_interactions] or None. Defaults to 1 per interaction;
                repeats add up.

        Returns:
            self.

        Raises:
            ImportError: when `implicit` is not installed.
        """
        try:
            from implicit.cpu import als as implicit_als
        except ImportError as e:
            raise ImportError(
                "`ALSBaseline` needs the `implicit` library: pip install implicit"
            ) from e
        import scipy.sparse
        import threadpoolctl  # a dependency of implicit

        users = np.asarray(user_indices, dtype=np.int64)
        items = np.asarray(item_indices, dtype=np.int64)
        if users.shape != items.shape or users.ndim != 1:
            raise ValueError(
                f"`user_indices` and `item_indices` must be 1-D of equal length, received "
                f"{users.shape} and {items.shape}"
            )
        for name, a, hi in (("user_indices", users, num_users), ("item_indices", items, num_items)):
            if a.size and (a.min() < 0 or a.max() >= hi):
                raise ValueError(f"`{name}` must lie in [0, {hi}), received {a.min()}..{a.max()}")
        values = np.ones(users.size, np.float32) if weights is None else np.asarray(weights)
        if values.shape != users.shape:
            raise ValueError(f"`weights` must have shape {users.shape}, received {values.shape}")
        matrix = scipy.sparse.csr_matrix(
            (values.astype(np.float32), (users, items)), shape=(num_users, num_items)
        )
        matrix.sum_duplicates()
        # implicit parallelizes itself; a second BLAS thread pool inside it only thrashes (and
        # implicit warns about it when the model is built).
        with threadpoolctl.threadpool_limits(1, "blas"):
            model = implicit_als.AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                alpha=self.alpha,
                iterations=self.iterations,
                random_state=self.seed,
            )
            model.fit(matrix, show_progress=False)
        self.user_factors = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors = np.asarray(model.item_factors, dtype=np.float32)
        self.popularity = np.bincount(items, minlength=num_items).astype(np.float32)
        self.known_users = np.bincount(users, minlength=num_users) > 0
        return self

    def scorer(self, query_users) -> ScoreFn:
        """The protocol score function for queries asked by `query_users`.

        Args:
            query_users: int array [num_queries]. Fitted user index per query; -1 (or any index
                outside the fitted range) marks an unknown user, who gets popularity scores.
        """
        if self.user_factors is None:
            raise ValueError("`ALSBaseline.scorer` needs a fitted model; call `fit` first")
        users = np.asarray(query_users, dtype=np.int64)
        known = (users >= 0) & (users < self.known_users.size)
        known[known] = self.known_users[users[known]]

        def score(start: int, end: int) -> np.ndarray:
            u, k = users[start:end], known[start:end]
            out = np.tile(self.popularity, (end - start, 1))
            out[k] = self.user_factors[u[k]] @ self.item_factors.T
            return out

        return score
