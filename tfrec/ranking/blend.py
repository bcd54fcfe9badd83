"""The final two-stage score: the ranker's score blended with the retrieval score it re-orders."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

import numpy as np
import numpy.typing as npt

from tfrec import config as config_lib
from tfrec.ranking import metrics

# Weights of the ranker tried on the ranker's validation queries; 0 keeps the retrieval order.
ALPHAS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
_EPS = 1e-6


def _standardize(scores: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Per-row z-scores over the valid entries (invalid ones count for nothing)."""
    count = np.maximum(valid.sum(axis=1, keepdims=True), 1)
    mean = np.where(valid, scores, 0.0).sum(axis=1, keepdims=True) / count
    var = np.where(valid, (scores - mean) ** 2, 0.0).sum(axis=1, keepdims=True) / count
    return (scores - mean) / (np.sqrt(var) + _EPS)


@dataclasses.dataclass(frozen=True)
class Blend:
    """`(1 - alpha) * z(retrieval) + alpha * z(ranker)` over each request's candidates.

    Both stages see the same candidates but know different things: the towers and repeat prior
    generalize over the whole catalog, the ranker reads richer features from fewer examples.
    Standardizing each score over the request's own candidates puts them on one scale, so one
    weight, tuned on held-out queries, says how far to trust the ranker. alpha = 1 is the
    ranker's order, alpha = 0 the retrieval order.

    Args:
        alpha: float in [0, 1]. Weight of the ranker. Defaults to 1 (rank by the ranker).
    """

    alpha: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.alpha, bool) or not 0.0 <= float(self.alpha) <= 1.0:
            raise ValueError(f"`alpha` must lie in [0, 1], received {self.alpha!r}")

    def combine(
        self, retrieval: npt.ArrayLike, ranker: npt.ArrayLike, valid: Optional[npt.ArrayLike] = None
    ) -> np.ndarray:
        """Blended scores [q, n] of retrieval and ranker scores [q, n] (or [n]).

        `valid` [q, n] bool marks candidates that take part (e.g. not excluded); the others
        get the blend of their raw z-scores and should be dropped by the caller.
        """
        retrieval = np.asarray(retrieval, np.float64)
        ranker = np.asarray(ranker, np.float64)
        flat = retrieval.ndim == 1
        retrieval, ranker = np.atleast_2d(retrieval), np.atleast_2d(ranker)
        if retrieval.shape != ranker.shape:
            raise ValueError(
                f"`retrieval` and `ranker` scores must have one shape, received "
                f"{retrieval.shape} and {ranker.shape}"
            )
        valid = np.ones(retrieval.shape, bool) if valid is None else np.atleast_2d(valid)
        out = (1.0 - self.alpha) * _standardize(retrieval, valid)
        out = out + self.alpha * _standardize(ranker, valid)
        return out[0] if flat else out

    def tf_combine(self, retrieval: Any, ranker: Any, valid: Any) -> Any:
        """The same blend in TensorFlow, for serving graphs: [b, n] float32 and [b, n] bool."""
        import tensorflow as tf

        def standardize(scores: Any) -> Any:
            mask = tf.cast(valid, tf.float32)
            count = tf.maximum(tf.reduce_sum(mask, axis=1, keepdims=True), 1.0)
            safe = tf.where(valid, scores, 0.0)  # excluded scores may be -3.4e38
            mean = tf.reduce_sum(safe, axis=1, keepdims=True) / count
            centered = tf.where(valid, scores - mean, 0.0)
            std = tf.sqrt(tf.reduce_sum(centered * centered, axis=1, keepdims=True) / count)
            return centered / (std + _EPS)

        return (1.0 - self.alpha) * standardize(retrieval) + self.alpha * standardize(ranker)

    def save(self, path: os.PathLike | str, tried: Sequence = ()) -> None:
        data = {"alpha": self.alpha, "tried": [list(t) for t in tried]}
        config_lib.write_text_atomic(Path(path), json.dumps(data, indent=2))

    @classmethod
    def load(cls, path: os.PathLike | str) -> Blend:
        """The blend saved at `path`; a run without one ranks by the ranker alone."""
        path = Path(path)
        if not path.is_file():
            return cls()
        return cls(alpha=float(json.loads(path.read_text(encoding="utf-8"))["alpha"]))


def tune(
    candidates: np.ndarray,
    retrieval: np.ndarray,
    ranker: np.ndarray,
    relevant: Sequence,
    k: int = 10,
    alphas: Sequence[float] = ALPHAS,
    valid: Optional[np.ndarray] = None,
) -> tuple[Blend, list]:
    """The alpha with the best mean re-ranked NDCG@k; ties go to the smaller alpha.

    Args:
        candidates: array [q, n]. Retrieved catalog indices per query.
        retrieval: array [q, n]. Their retrieval scores.
        ranker: array [q, n]. Their ranker scores.
        relevant: list of q arrays. Relevant catalog indices (at least one each).
        k: int. NDCG cut-off. Defaults to 10.
        alphas: floats in [0, 1]. The grid. Defaults to ALPHAS.
        valid: bool array [q, n] or None. Candidates that take part.

    Returns:
        (Blend, [(alpha, ndcg@k), ...]) over the grid.
    """
    tried: list[tuple[float, float]] = []
    best: Optional[tuple[Blend, float]] = None
    for alpha in alphas:
        blend = Blend(float(alpha))
        scores = blend.combine(retrieval, ranker, valid)
        if valid is not None:
            scores = np.where(valid, scores, -np.inf)
        value = float(np.mean(metrics.reranked_ndcg_at_k(candidates, scores, relevant, k)))
        tried.append((float(alpha), value))
        if best is None or value > best[1] + 1e-12:
            best = (blend, value)
    if best is None:
        raise TypeError("`alphas` must hold at least one value, received none")
    return best[0], tried
