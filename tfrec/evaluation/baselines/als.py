"""Implicit-feedback matrix factorization (ALS from the `implicit` library)."""

from __future__ import annotations

from typing import Optional

import numpy as np

from tfrec.evaluation.baselines import inputs, scoring


class ALSBaseline:
    """Implicit-feedback matrix factorization (ALS from the `implicit` library).

    A user's score for an item is the dot product of their factors. Users with no training
    interaction, or outside the fitted user range, fall back to item popularity (`scorer`).
    `query_scorer` instead folds each query's past (recent events and training profile) into
    fresh user factors, so recent events count and users unseen in training are served too.
    `implicit` is imported lazily, so the rest of tfrec works without it.

    Args:
        factors: int. Latent dimension. Defaults to 64.
        regularization: float. L2 weight on the factors. Defaults to 0.01.
        iterations: int. ALS sweeps. Defaults to 15.
        alpha: float. Confidence scale of implicit counts (`implicit` 0.7: c = alpha * count).
            Defaults to 1.0.
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
        for name, number in (("regularization", regularization), ("alpha", alpha)):
            if not isinstance(number, (int, float)) or number < 0:
                raise ValueError(f"`{name}` must be a float >= 0, received {number!r}")
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

    def fit_window(self, window: inputs.Window) -> ALSBaseline:
        """Fits on a training window (one unit of weight per interaction)."""
        return self.fit(window.user, window.item, window.num_users, window.num_items)

    def fold_in(self, past) -> np.ndarray:
        """User factors [q, factors] solving the ALS user step for count rows `past` [q, items].

        The same equation `implicit` solves for a training user with the item factors fixed:
        (Y^T C Y + regularization I) x = Y^T C p, with confidence c = alpha * count on the
        past items and preference p = 1 on them.
        """
        import scipy.sparse
        import threadpoolctl

        past = scipy.sparse.csr_matrix(past)
        y = scoring.fitted(self.item_factors, "ALSBaseline").astype(np.float64)
        base = y.T @ y + self.regularization * np.eye(y.shape[1])
        out = np.zeros((past.shape[0], y.shape[1]), np.float32)
        # One small solve per query: a multi-threaded BLAS only adds overhead (7x on 2 cores).
        with threadpoolctl.threadpool_limits(1, "blas"):
            for row in range(past.shape[0]):
                lo, hi = past.indptr[row], past.indptr[row + 1]
                if lo == hi:
                    continue
                yi, c = y[past.indices[lo:hi]], self.alpha * past.data[lo:hi].astype(np.float64)
                a = base + (yi * (c - 1.0)[:, None]).T @ yi
                out[row] = np.linalg.solve(a, yi.T @ c)
        return out

    def query_scorer(self, queries: inputs.Queries) -> scoring.ScoreFn:
        """The protocol score function of `queries`, from factors folded in from their past.

        Queries with no past get popularity; popularity also breaks ties.
        """
        items = scoring.fitted(self.item_factors, "ALSBaseline")
        popularity = scoring.fitted(self.popularity, "ALSBaseline")
        users = self.fold_in(queries.matrix(items.shape[0]))

        def score(start: int, end: int) -> np.ndarray:
            return scoring.tie_break(users[start:end] @ items.T, popularity)

        return score

    def scorer(self, query_users) -> scoring.ScoreFn:
        """The protocol score function for queries asked by `query_users`.

        Args:
            query_users: int array [num_queries]. Fitted user index per query; -1 (or any index
                outside the fitted range) marks an unknown user, who gets popularity scores.
        """
        user_factors = scoring.fitted(self.user_factors, "ALSBaseline")
        item_factors = scoring.fitted(self.item_factors, "ALSBaseline")
        popularity = scoring.fitted(self.popularity, "ALSBaseline")
        known_users = scoring.fitted(self.known_users, "ALSBaseline")
        users = np.asarray(query_users, dtype=np.int64)
        known = (users >= 0) & (users < known_users.size)
        known[known] = known_users[users[known]]

        def score(start: int, end: int) -> np.ndarray:
            u, k = users[start:end], known[start:end]
            out = np.tile(popularity, (end - start, 1))
            out[k] = user_factors[u[k]] @ item_factors.T
            return out

        return score
