"""Explanations: which of the user's recent events led to a recommended item."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Optional

import numpy as np


@dataclasses.dataclass(frozen=True)
class Reason:
    """One recent event cited for a recommendation ("because you viewed X").

    Args:
        item_id: str. The item of the recent event.
        event_type: str. Its event type.
        position: int. Its position in the request's recent events (0 = most recent).
        weight: float. Similarity to the recommended item times the recency (and type) weight.
    """

    item_id: str
    event_type: str
    position: int
    weight: float


class Explainer:
    """Finds the recent events most responsible for each recommended item.

    Each recent event is scored by the dot product of its item vector with the recommended
    item's vector (the frozen retrieval item embeddings, which carry the item text), times
    `recency_decay ** position` and an optional per-event-type weight. Only events with a
    positive score are cited, best first: unrelated or unknown items explain nothing. Reasons
    only ever cite events passed in the request.

    Args:
        item_ids: list of str [num_items]. Rows of `item_vectors`.
        item_vectors: np.ndarray [num_items, dim]. Item embeddings; unknown ids count as zeros.
        top: int. Reasons per item at most. Defaults to 3.
        recency_decay: float in (0, 1]. Weight factor per step back in time. Defaults to 0.9.
        event_type_weights: dict event type -> float or None. Missing types weigh 1.

    Example:
        >>> explainer = Explainer(["a", "b"], np.eye(2))
        >>> explainer.explain("a", [("b", "view"), ("a", "cart")])
        [Reason(item_id='a', event_type='cart', position=1, weight=0.9)]
    """

    def __init__(
        self,
        item_ids: Sequence[str],
        item_vectors: np.ndarray,
        top: int = 3,
        recency_decay: float = 0.9,
        event_type_weights: Optional[Mapping[str, float]] = None,
    ):
        item_vectors = np.asarray(item_vectors, np.float32)
        if item_vectors.ndim != 2 or len(item_vectors) != len(item_ids):
            raise ValueError(
                f"`item_vectors` must be [len(item_ids), dim] = [{len(item_ids)}, dim], "
                f"received shape {item_vectors.shape}"
            )
        if isinstance(top, bool) or not isinstance(top, int) or top < 1:
            raise ValueError(f"`top` must be a positive int, received {top!r}")
        if not 0.0 < recency_decay <= 1.0:
            raise ValueError(f"`recency_decay` must be in (0, 1], received {recency_decay!r}")
        self.item_ids = list(item_ids)
        self.item_vectors = item_vectors
        self.top = top
        self.recency_decay = float(recency_decay)
        self.event_type_weights = dict(event_type_weights or {})
        self._index = {item: i for i, item in enumerate(self.item_ids)}
        self._zeros = np.zeros(item_vectors.shape[1], np.float32)

    def vector(self, item_id: str) -> np.ndarray:
        """The item's vector, zeros when unknown."""
        i = self._index.get(item_id)
        return self._zeros if i is None else self.item_vectors[i]

    def explain_many(self, item_ids: Sequence[str], recent_events: Sequence) -> list:
        """`explain` for several recommended items against the same recent events.

        Args:
            item_ids: list of str [m]. Recommended items.
            recent_events: list of (item_id, event_type), most recent first.

        Returns:
            list [m] of lists of Reason.
        """
        if not recent_events or not len(item_ids):
            return [[] for _ in item_ids]
        events = [(str(i), str(e)) for i, e in recent_events]
        history = np.stack([self.vector(i) for i, _ in events])  # [events, dim]
        targets = np.stack([self.vector(str(i)) for i in item_ids])  # [m, dim]
        prior = np.array(
            [
                self.recency_decay**p * self.event_type_weights.get(e, 1.0)
                for p, (_, e) in enumerate(events)
            ]
        )
        weights = (targets @ history.T) * prior  # [m, events]
        result = []
        for row in weights:
            order = np.argsort(-row, kind="stable")[: self.top]
            result.append(
                [
                    Reason(events[p][0], events[p][1], int(p), float(row[p]))
                    for p in order
                    if row[p] > 0
                ]
            )
        return result

    def explain(self, item_id: str, recent_events: Sequence) -> list:
        """Up to `top` Reasons for recommending `item_id`, best first (maybe none)."""
        return self.explain_many([item_id], recent_events)[0]
