"""`recommend`'s explanation outputs: the recent events that best explain each shown item."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Optional

import tensorflow as tf

from tfrec.exporting import request_ops as ops


def outputs(
    rows: tf.Tensor,
    history_rows: tf.Tensor,
    history_item_ids: tf.Tensor,
    history_event_types: tf.Tensor,
    vectors_of: Callable[[tf.Tensor], tf.Tensor],
    top: int,
    recency_decay: float,
    event_type_weights: Optional[Mapping[str, float]],
) -> dict:
    """The four explanation outputs of `recommend`, each [batch, w, top].

    `explanation_item_ids` and `explanation_event_types` (str) are the cited recent events,
    `explanation_positions` (int32) their positions in the row's recent events and
    `explanation_weights` (float32) their weights (see `request_ops.explain`), best first;
    "", -1 and 0 where fewer events explain the item.

    Args:
        rows: int [batch, w]. Index rows of the shown items (-1: nothing shown).
        history_rows: int [batch, L]. Index rows of the recent items (-1: unknown, padding).
        history_item_ids: string [batch, L]. The recent items as sent.
        history_event_types: string [batch, L]. Their event types, aligned with them.
        vectors_of: callable. Index rows -> item vectors (see `request_ops.explain`).
        top: int >= 1. Events cited per item at most.
        recency_decay: float in (0, 1]. Weight factor per step back in the recent events.
        event_type_weights: dict event type -> float or None.
    """
    positions, weights = ops.explain(
        rows,
        history_rows,
        history_event_types,
        vectors_of,
        top,
        recency_decay,
        event_type_weights,
    )

    def cited(values):
        # Uncited slots read one "" column appended at the end (also without events).
        length = tf.shape(values)[1]
        values = tf.concat([values, tf.fill([tf.shape(values)[0], 1], "")], axis=1)
        index = tf.where(positions >= 0, positions, length)
        return tf.gather(values, index, batch_dims=1)

    return {
        "explanation_item_ids": cited(history_item_ids),
        "explanation_event_types": cited(history_event_types),
        "explanation_positions": tf.cast(positions, tf.int32),
        "explanation_weights": weights,
    }
