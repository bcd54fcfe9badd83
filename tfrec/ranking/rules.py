"""Business rules applied to a ranked list: exclusions, unavailable items, category cap, top k."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Optional

import numpy as np


def excluded_items(recent_events: Iterable, exclude_event_types: Sequence[str]) -> set:
    """Item ids of the recent events whose type is in `exclude_event_types`.

    Args:
        recent_events: iterable of (item_id, event_type) pairs.
        exclude_event_types: list of str, e.g. ("purchase",): do not re-show bought items.
    """
    types = set(exclude_event_types)
    return {str(item) for item, event in recent_events if event in types}


def apply_rules(
    item_ids: Sequence[str],
    scores: Sequence[float],
    categories: Sequence[str],
    k: int,
    recent_events: Iterable = (),
    exclude_event_types: Sequence[str] = ("purchase",),
    unavailable: Iterable[str] = (),
    max_per_category: Optional[int] = None,
) -> np.ndarray:
    """Chooses what is shown: the best-scored eligible items, at most k, diverse by category.

    Items are taken in descending score (ties keep the input order, so an already ranked input
    keeps its order) and skipped when: already taken (duplicate id), in a recent event of an
    excluded type, unavailable, or their category already has `max_per_category` items. An
    empty category means "unknown" and is never capped.

    Args:
        item_ids: list of str [n]. Candidate ids.
        scores: array [n]. Ranking scores, higher is better.
        categories: list of str [n]. Category of each candidate ("" when unknown).
        k: int. Items to return at most.
        recent_events: iterable of (item_id, event_type). The request's recent events.
        exclude_event_types: list of str. Event types whose items are never re-shown.
            Defaults to ("purchase",).
        unavailable: iterable of str. Item ids that must not be shown (out of stock, ...).
        max_per_category: int or None. Cap per category; None: no cap. Defaults to None.

    Returns:
        int64 array [<= k] of positions into the inputs, best first.

    Example:
        >>> apply_rules(["a", "b", "c"], [0.2, 0.9, 0.5], ["x", "x", "y"], k=2,
        ...             recent_events=[("c", "purchase")])
        array([1, 0])
    """
    item_ids = [str(i) for i in item_ids]
    score_array = np.asarray(scores, np.float64).ravel()
    categories = [str(c) for c in categories]
    if not (len(item_ids) == len(score_array) == len(categories)):
        raise ValueError(
            f"`item_ids`, `scores` and `categories` must have one entry per candidate, "
            f"received lengths {len(item_ids)}, {len(score_array)}, {len(categories)}"
        )
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise ValueError(f"`k` must be an int >= 0, received {k!r}")
    if max_per_category is not None and (
        isinstance(max_per_category, bool)
        or not isinstance(max_per_category, (int, np.integer))
        or max_per_category < 1
    ):
        raise ValueError(
            f"`max_per_category` must be a positive int or None, received {max_per_category!r}"
        )
    blocked = excluded_items(recent_events, exclude_event_types) | {str(i) for i in unavailable}
    per_category: dict = {}
    kept: list = []
    for pos in np.argsort(-score_array, kind="stable"):
        if len(kept) >= k:
            break
        item, category = item_ids[pos], categories[pos]
        if item in blocked:
            continue
        if max_per_category is not None and category:
            if per_category.get(category, 0) >= max_per_category:
                continue
            per_category[category] = per_category.get(category, 0) + 1
        blocked.add(item)  # a duplicate candidate id is shown once
        kept.append(pos)
    return np.asarray(kept, np.int64)
