"""Shared score post-processing: row normalisation and the popularity tie-break."""

from __future__ import annotations

from collections.abc import Callable
from typing import Optional, TypeVar

import numpy as np

ScoreFn = Callable[[int, int], np.ndarray]

# Popularity's weight relative to a row's largest score: enough to order items tied on the
# baseline's own score (most of the catalog for a short past), too small to reorder others.
TIE_BREAK = 1e-4


def normalise_rows(scores: np.ndarray) -> np.ndarray:
    """Scores divided by each row's largest absolute value (all-zero rows stay zero)."""
    scale = np.abs(scores).max(axis=1, keepdims=True)
    return scores / np.where(scale > 0, scale, 1.0)


def tie_break(scores: np.ndarray, popularity: np.ndarray) -> np.ndarray:
    """float32 scores plus a popularity bonus that only settles ties.

    Args:
        scores: array [batch, num_items]. A baseline's own scores.
        popularity: array [num_items]. Training interactions per item.

    Returns:
        float32 [batch, num_items]. A row with no score at all (no usable past) ranks items by
        popularity.
    """
    scores = np.asarray(scores, dtype=np.float32)
    scale = np.abs(scores).max(axis=1, keepdims=True)
    scale = np.where(scale > 0, scale * TIE_BREAK, 1.0).astype(np.float32)
    pop = np.asarray(popularity, dtype=np.float32)
    pop = pop / max(float(pop.max(initial=0.0)), 1.0)
    return scores + scale * pop[None, :]


T = TypeVar("T")


def fitted(value: Optional[T], name: str) -> T:
    """`value`, an attribute set by `fit`; raises when `fit` has not run yet."""
    if value is None:
        raise ValueError(f"`{name}.scorer` needs a fitted model; call `fit` first")
    return value
