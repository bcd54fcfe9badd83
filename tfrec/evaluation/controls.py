"""Controls for the cold-item segment: scorers that know nothing but which items are new."""

from __future__ import annotations

import numpy as np

from tfrec.evaluation.baselines import scoring


def new_items_first(is_new: np.ndarray, order: np.ndarray) -> scoring.ScoreFn:
    """Ranks every item unseen in training above every seen one, in a fixed order among them.

    A model earns cold-item credit only above what this earns: when the catalog lists items
    that first sell after the split, ranking "whatever is new" first already finds some of
    them, without reading a word of their text.

    Args:
        is_new: bool array [num_items]. Items with no training event.
        order: float array [num_items]. Order among items (higher first), e.g. random values
            or first-seen times (newest first).

    Returns:
        A protocol score function, the same row for every query.

    Example:
        >>> new_items_first(np.array([False, True, True]), np.array([0.0, 1.0, 2.0]))(0, 1)
        array([[0.  , 1.5 , 1.75]])
    """
    is_new = np.asarray(is_new, bool)
    order = np.asarray(order, np.float64)
    if is_new.shape != order.shape or is_new.ndim != 1:
        raise ValueError(
            f"`is_new` and `order` must be 1-D over the catalog, received shapes {is_new.shape} "
            f"and {order.shape}"
        )
    # Squash the order into (0, 1) keeping ranks, then lift new items above every old one.
    ranks = np.argsort(np.argsort(order, kind="stable"), kind="stable")
    row = (ranks + 1.0) / (len(order) + 1.0) + is_new.astype(np.float64)
    row = np.where(is_new, row, 0.0)

    def score(start: int, end: int) -> np.ndarray:
        return np.broadcast_to(row, (end - start, row.size))

    return score


def cold_item_controls(
    is_new: np.ndarray, first_seen: np.ndarray, seed: int = 0
) -> dict[str, scoring.ScoreFn]:
    """`control_new_random` (new items first, random order) and `control_newest_first`.

    Args:
        is_new: bool array [num_items]. Items with no training event.
        first_seen: float array [num_items]. Each item's first event time anywhere in the log
            (NaN: never); the newest-first control reads it, which a real shop would know from
            its listing dates.
        seed: int. Random state of the random order. Defaults to 0.
    """
    random = np.random.default_rng(seed).random(len(is_new))
    newest = np.nan_to_num(np.asarray(first_seen, np.float64), nan=-np.inf)
    return {
        "control_new_random": new_items_first(is_new, random),
        "control_newest_first": new_items_first(is_new, newest),
    }
