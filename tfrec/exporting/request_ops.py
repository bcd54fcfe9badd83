"""In-graph request preprocessing shared by the serving signatures (core TF ops only)."""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from tfrec import request_schema

# Score of an excluded or padding slot: finite (JSON-safe over REST) and below any real score.
EXCLUDED_SCORE = float(tf.float32.min)


def fit_length(values: tf.Tensor, length: int) -> tf.Tensor:
    """Pads with the schema's list padding ("") or truncates a [batch, any] string tensor to
    [batch, length].

    Recent events arrive most recent first, so truncation keeps the most recent ones.
    """
    batch = tf.shape(values)[0]
    padding = request_schema.HISTORY_ITEM_IDS.default
    padded = tf.concat([values, tf.fill([batch, length], padding)], axis=1)
    return tf.reshape(padded[:, :length], [-1, length])


def check_batch(name: str, value: tf.Tensor, batch: tf.Tensor) -> list:
    """An assertion that `value`'s leading dimension equals the request's batch size."""
    return [
        tf.debugging.assert_equal(
            tf.shape(value)[0],
            batch,
            message=f"`{name}` must have one row per `{request_schema.USER_ID.name}` (batch size)",
        )
    ]


def check_k(k: tf.Tensor) -> list:
    """An assertion that every row's `k` (int32 [batch]) is at least 1."""
    name = request_schema.K.name
    return [tf.debugging.assert_positive(k, message=f"`{name}` must be >= 1 in every row")]


def exclude(scores: tf.Tensor, rows: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """Sets scores[b, rows[b, j]] to EXCLUDED_SCORE wherever mask[b, j] and rows[b, j] >= 0.

    Args:
        scores: float32 [batch, num_items].
        rows: int [batch, length]. Index rows of the items to exclude (-1: unknown item).
        mask: bool [batch, length]. Which of them to exclude.
    """
    rows = tf.cast(rows, tf.int32)
    keep = tf.logical_and(mask, rows >= 0)
    batch_index = tf.broadcast_to(tf.range(tf.shape(rows)[0])[:, None], tf.shape(rows))
    index = tf.stack([tf.boolean_mask(batch_index, keep), tf.boolean_mask(rows, keep)], axis=1)
    values = tf.fill([tf.shape(index)[0]], tf.constant(EXCLUDED_SCORE, scores.dtype))
    return tf.tensor_scatter_nd_update(scores, index, values)


def is_member(candidates: tf.Tensor, rows: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """bool [batch, n]: whether candidates[b, i] is one of the masked rows[b, :] (rows >= 0)."""
    same = tf.equal(candidates[:, :, None], tf.cast(rows, candidates.dtype)[:, None, :])
    valid = tf.logical_and(mask, rows >= 0)[:, None, :]
    return tf.reduce_any(tf.logical_and(same, valid), axis=-1)


def top_slots(scores: tf.Tensor, k: tf.Tensor) -> tuple:
    """Each row's top min(k[b], n) columns of [batch, n] scores, in one width for the batch.

    Args:
        scores: float32 [batch, n]. EXCLUDED_SCORE marks columns that must not be shown.
        k: int32 [batch]. Slots each row asks for (>= 1).

    Returns:
        (scores, columns, shown), each [batch, w] with w = min(max(k), n): the slot's score
        (EXCLUDED_SCORE past the row's own k), its column in `scores`, and whether it holds
        an item to show (within k and not excluded).
    """
    # An empty batch has no max: width 0.
    width = tf.minimum(tf.maximum(tf.reduce_max(k), 0), tf.shape(scores)[1])
    best, columns = tf.math.top_k(scores, k=width)
    wanted = tf.range(width)[None, :] < k[:, None]
    shown = tf.logical_and(wanted, best > EXCLUDED_SCORE)
    return tf.where(wanted, best, EXCLUDED_SCORE), columns, shown


def top_k(scores: tf.Tensor, k: tf.Tensor, item_ids: tf.Tensor, titles: tf.Tensor, rows=None):
    """Each row's top min(k[b], n) of [batch, n] scores: (item_ids, titles, scores).

    The outputs are [batch, min(max(k), n)]: one width for the batch, so rows asking for fewer
    items, and slots with nothing left to show, hold item id "" and EXCLUDED_SCORE.

    Args:
        scores: float32 [batch, n].
        k: int32 [batch]. Items each row asks for (>= 1).
        item_ids: string [num_items]. The index's ids.
        titles: string [num_items]. The index's titles.
        rows: int [batch, n] or None. Index rows of the n columns; None: column i is row i.
    """
    best, position, valid = top_slots(scores, k)
    if rows is not None:
        position = tf.gather(rows, position, batch_dims=1)
    ids = tf.where(valid, tf.gather(item_ids, position), "")
    names = tf.where(valid, tf.gather(titles, position), "")
    return ids, names, best


def explain(
    target_rows: tf.Tensor,
    event_rows: tf.Tensor,
    event_types: tf.Tensor,
    vectors_of: Callable[[tf.Tensor], tf.Tensor],
    top: int = 3,
    recency_decay: float = 0.9,
    event_type_weights=None,
) -> tuple:
    """The recent events that best explain each shown item: the graph form of
    `tfrec.ranking.explain.Explainer`.

    Event j of a row weighs dot(vector of the item, vector of event j's item) times
    `recency_decay ** j` times its type's weight (missing types weigh 1); only positive
    weights are cited, best first (ties: the more recent event), at most `top`.

    Args:
        target_rows: int [batch, w]. Index rows of the shown items (-1: nothing shown).
        event_rows: int [batch, L]. Index rows of the recent events' items, most recent
            first (-1: unknown item or padding, which explain nothing).
        event_types: string [batch, L]. The recent events' types.
        vectors_of: callable. Index rows [...] int -> item vectors [..., dim] float32, zero
            for rows < 0 (`row_vectors` of a matrix, or the item index's `vectors_of`).
        top: int >= 1. Events cited per item at most. Defaults to 3.
        recency_decay: float in (0, 1]. Defaults to 0.9.
        event_type_weights: dict event type -> float or None.

    Returns:
        (positions, weights), each [batch, w, top]: the cited events' positions in the
        recent events (-1 where fewer were cited) and their weights (0 there).
    """
    length = tf.shape(event_rows)[1]
    recency = tf.pow(tf.constant(recency_decay, tf.float32), tf.cast(tf.range(length), tf.float32))
    prior = tf.broadcast_to(recency[None, :], tf.shape(event_rows))
    for event_type, weight in sorted(dict(event_type_weights or {}).items()):
        prior = tf.where(tf.equal(event_types, event_type), prior * float(weight), prior)
    similarity = tf.einsum("bwd,bld->bwl", vectors_of(target_rows), vectors_of(event_rows))
    weights = similarity * prior[:, None, :]
    # At least `top` columns, so rows with fewer events still have a top `top` (zeros: none).
    shape = tf.shape(weights)
    weights = tf.concat([weights, tf.zeros([shape[0], shape[1], top], weights.dtype)], axis=2)
    best, positions = tf.math.top_k(weights, k=top)
    cited = best > 0
    return tf.where(cited, positions, -1), tf.where(cited, best, 0.0)


def row_vectors(vectors: tf.Tensor) -> Callable[[tf.Tensor], tf.Tensor]:
    """rows [...] int -> vectors[rows] [..., dim], zero where rows < 0 (unknown items)."""

    def vectors_of(rows):
        found = tf.gather(vectors, tf.maximum(rows, 0))
        return tf.where((rows >= 0)[..., None], found, tf.zeros_like(found))

    return vectors_of


def lookup_or(values: tf.Tensor, rows: tf.Tensor, default) -> tf.Tensor:
    """values[rows] where rows >= 0, else `default` (unknown items)."""
    found = tf.gather(values, tf.maximum(rows, 0))
    return tf.where(rows >= 0, found, tf.cast(default, values.dtype))


def cap_per_category(scores: tf.Tensor, categories: tf.Tensor, cap: int) -> tf.Tensor:
    """Lowers to EXCLUDED_SCORE every candidate beyond the `cap` best of its category.

    The graph form of `tfrec.ranking.rules.apply_rules`' diversity cap: in descending score
    (ties keep the input order), an item is dropped once `cap` better valid items share its
    category; "" (unknown) is never capped, already excluded items do not count.

    Args:
        scores: float32 [batch, n]. EXCLUDED_SCORE marks dropped candidates.
        categories: string [batch, n]. Category of each candidate.
        cap: int >= 1.

    Returns:
        float32 [batch, n], in the input order.
    """
    order = tf.argsort(scores, axis=1, direction="DESCENDING", stable=True)
    ranked = tf.gather(scores, order, batch_dims=1)
    cats = tf.gather(categories, order, batch_dims=1)
    valid = ranked > EXCLUDED_SCORE
    same = tf.logical_and(tf.equal(cats[:, :, None], cats[:, None, :]), valid[:, None, :])
    n = tf.shape(scores)[1]
    earlier = tf.linalg.band_part(tf.ones([n, n], tf.bool), -1, 0)  # j <= i ...
    earlier = tf.logical_and(earlier, tf.logical_not(tf.eye(n, dtype=tf.bool)))  # ... j < i
    before = tf.reduce_sum(tf.cast(tf.logical_and(same, earlier[None]), tf.int32), axis=2)
    over = tf.logical_and(before >= cap, tf.not_equal(cats, ""))
    capped = tf.where(over, EXCLUDED_SCORE, ranked)
    # Back to the input order: scatter each sorted slot to where it came from.
    inverse = tf.argsort(order, axis=1)
    return tf.gather(capped, inverse, batch_dims=1)
