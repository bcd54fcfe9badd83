"""The serving graph's stages: retrieval, ranking and the full `recommend`, over one request."""

from __future__ import annotations

from typing import Any, Optional

import tensorflow as tf

from tfrec import features, request_schema
from tfrec.exporting import explanations
from tfrec.exporting import request_ops as ops
from tfrec.ranking import examples as ranking_examples

# Request input names, as the stages read them.
_USER = request_schema.USER_ID.name
_ITEMS = request_schema.HISTORY_ITEM_IDS.name
_TYPES = request_schema.HISTORY_EVENT_TYPES.name
_HOUR = request_schema.HOUR_OF_DAY.name
_DAY = request_schema.DAY_OF_WEEK.name
_K = request_schema.K.name
_EXCLUDE_RECENT = request_schema.EXCLUDE_RECENT.name
_EXCLUDE_ITEMS = request_schema.EXCLUDE_ITEM_IDS.name
_QUERY_TEXT = request_schema.QUERY_TEXT.name


class ServingStages(tf.Module):
    """The graph of each signature, reading a request dict (input name -> tensor).

    The state it reads is set by `tfrec.exporting.signatures.ServingModule`, which documents
    it: `query_model`, `ranker`, `tokenizer`, `max_history`, `query_text_length`, `prior`,
    `blend`, `retrieve_n`, `exclude_event_types`, `max_per_category`, `explain_top`,
    `recency_decay`, `event_type_weights`, `heads`, `head_weights`, `num_items`, the
    index variables `item_ids`, `titles`, `categories`, `prices`, `row_of`, and either
    `vectors` (exact search: every item scored) or `item_index` (an IVF index,
    `tfrec.exporting.ivf_index`: the items of the partitions nearest the query scored).

    Both searches give the same candidates to the same later stages: exclusions, the ranker,
    rules and explanations read candidate rows, never the whole catalog. With an IVF index
    the repeat prior's recent items are always candidates (`search_forced`), so an item the
    user just viewed is scored with its bonus wherever it sits in the index.
    """

    # Declared for type checkers; ServingModule.__init__ sets them.
    query_model: Any
    ranker: Any
    tokenizer: Any
    max_history: int
    query_text_length: int
    prior: Any
    blend: Any
    retrieve_n: int
    exclude_event_types: tuple
    max_per_category: Any
    explain_top: int
    recency_decay: float
    event_type_weights: dict
    heads: tuple
    head_weights: dict
    num_items: int
    item_ids: tf.Variable
    titles: tf.Variable
    categories: tf.Variable
    prices: tf.Variable
    vectors: Optional[tf.Variable]
    item_index: Any
    row_of: Any

    def _query_features(self, request: dict) -> dict:
        batch = tf.shape(request[_USER])[0]
        query_text = request.get(_QUERY_TEXT)
        if query_text is None:
            # An all-zero query encodes to zero in the tower: "no search text".
            tokens = tf.zeros([batch, self.query_text_length], tf.int32)
        else:
            tokens = tf.reshape(
                tf.cast(self.tokenizer(query_text), tf.int32), [-1, self.query_text_length]
            )
        return {
            features.USER_ID: request[_USER],
            features.HISTORY_ITEM_IDS: ops.fit_length(request[_ITEMS], self.max_history),
            features.HISTORY_EVENT_TYPES: ops.fit_length(request[_TYPES], self.max_history),
            features.HOUR_OF_DAY: request[_HOUR],
            features.DAY_OF_WEEK: request[_DAY],
            features.QUERY_TOKEN_IDS: tokens,
        }

    def _checks(self, request: dict) -> list:
        batch = tf.shape(request[_USER])[0]
        checks = []
        for name, value in request.items():
            if name != _USER:
                checks += ops.check_batch(name, value, batch)
        if _K in request:
            checks += ops.check_k(request[_K])
        return checks

    def _query(self, request: dict) -> tf.Tensor:
        """The query tower's output [b, dim] float32."""
        return tf.cast(self.query_model(self._query_features(request), training=False), tf.float32)

    def _prior_window(self, request: dict) -> tf.Tensor:
        # The prior reads the same window the query tower does: the latest max_history.
        return self.row_of.lookup(ops.fit_length(request[_ITEMS], self.max_history))

    def _first_stage(self, request: dict) -> tf.Tensor:
        """Exact search's retrieval scores [b, num_items]: the towers' dot product plus the
        repeat prior."""
        scores = tf.matmul(self._query(request), self.vectors, transpose_b=True)
        if self.prior.beta:
            scores += self.prior.tf_bonus(self._prior_window(request), self.num_items)
        return scores

    def _vectors_of(self, rows: tf.Tensor) -> tf.Tensor:
        """Item vectors [..., dim] of index rows [...] (zero for rows < 0)."""
        if self.item_index is not None:
            return self.item_index.vectors_of(rows)
        return ops.row_vectors(self.vectors)(rows)

    def _scores_of(self, request: dict, rows: tf.Tensor) -> tf.Tensor:
        """Retrieval scores [b, n] of index rows [b, n] (0 for rows < 0: no item vector)."""
        if self.item_index is None:
            scores = tf.gather(self._first_stage(request), tf.maximum(rows, 0), batch_dims=1)
            return tf.where(rows >= 0, scores, 0.0)
        query = self._query(request)
        scores = tf.einsum("bd,bnd->bn", query, self._vectors_of(rows))
        if self.prior.beta:
            window = self._prior_window(request)
            same = tf.equal(rows[:, :, None], window[:, None, :]) & (rows >= 0)[:, :, None]
            weights = self.prior.tf_weights(window)[:, None, :]
            scores += tf.reduce_sum(tf.where(same, weights, 0.0), axis=2)
        return scores

    def _candidates(self, request: dict, n) -> tuple:
        """The top `n` retrieval candidates of each row, once recent items are excluded where
        the row asks (`exclude_recent`; every recent event sent, also beyond max_history).

        Args:
            request: dict. The request's inputs.
            n: int32 scalar (a Python int or a tensor).

        Returns:
            (scores, excluded, rows, history_rows): retrieval scores [b, m] before exclusion,
            the same with excluded items at EXCLUDED_SCORE, index rows [b, m] int64 of the
            candidates (m = min(n, num_items); -1 where the index had none to give) and the
            index rows [b, L] of the recent items sent.
        """
        history_rows = self.row_of.lookup(request[_ITEMS])
        every = tf.broadcast_to(request[_EXCLUDE_RECENT][:, None], tf.shape(history_rows))
        n = tf.minimum(tf.cast(n, tf.int32), self.num_items)
        if self.item_index is None:
            scores = self._first_stage(request)
            excluded, rows = tf.math.top_k(ops.exclude(scores, history_rows, every), k=n)
            rows = tf.cast(rows, tf.int64)
            return tf.gather(scores, rows, batch_dims=1), excluded, rows, history_rows
        window = self._prior_window(request)
        if self.prior.beta:
            bonus = self.prior.tf_weights(window)
        else:
            window = window[:, :0]  # nothing to force
            bonus = tf.zeros(tf.shape(window), tf.float32)
        # Enough candidates that n survive excluding every recent item (at least 1: the
        # index refuses k < 1, and an empty batch asks for n = 0).
        width = tf.maximum(n + tf.shape(history_rows)[1], 1)
        scores, rows = self.item_index.search_forced(self._query(request), width, window, bonus)
        dropped = ops.is_member(rows, history_rows, every) | (rows < 0)
        excluded, at = tf.math.top_k(tf.where(dropped, ops.EXCLUDED_SCORE, scores), k=n)
        rows = tf.gather(rows, at, batch_dims=1)
        return tf.gather(scores, at, batch_dims=1), excluded, rows, history_rows

    def _retrieve(self, request: dict) -> dict:
        with tf.control_dependencies(self._checks(request)):
            k = request[_K]
            # An empty batch has no max: width 0.
            _, scores, rows, _ = self._candidates(request, tf.maximum(tf.reduce_max(k), 0))
            ids, titles, best = ops.top_k(
                scores, k, self.item_ids, self.titles, rows=tf.maximum(rows, 0)
            )
        return {"item_ids": ids, "titles": titles, "scores": best}

    def _rank_candidates(self, request: dict) -> dict:
        """`rank`: the candidates `item_ids` [b, n] of the request, scored."""
        candidates = request[request_schema.ITEM_IDS.name]
        with tf.control_dependencies(self._checks(request)):
            # Unknown candidates have no retrieval score: 0, as their zero item vector.
            rows = self.row_of.lookup(candidates)
            return self._rank(request, candidates, self._scores_of(request, rows))

    def _rank(self, request: dict, candidates: tf.Tensor, first_stage: tf.Tensor) -> dict:
        """Per-head scores and their weighted sum, each [b, n], of candidate ids [b, n].

        `first_stage` is the retrieval score [b, n] of each candidate, a ranker input.
        """
        batch, n = tf.shape(candidates)[0], tf.shape(candidates)[1]
        flat = tf.reshape(candidates, [-1])
        rows = self.row_of.lookup(flat)
        length = int(self.ranker.input[features.HISTORY_ITEM_IDS].shape[1])
        inputs = {
            features.USER_ID: tf.repeat(request[_USER], n),
            features.ITEM_ID: flat,
            features.HOUR_OF_DAY: tf.repeat(request[_HOUR], n),
            features.DAY_OF_WEEK: tf.repeat(request[_DAY], n),
            features.HISTORY_ITEM_IDS: tf.repeat(
                ops.fit_length(request[_ITEMS], length), n, axis=0
            ),
            features.HISTORY_EVENT_TYPES: tf.repeat(
                ops.fit_length(request[_TYPES], length), n, axis=0
            ),
            features.ITEM_CATEGORY: ops.lookup_or(self.categories, rows, ""),
            features.ITEM_PRICE: ops.lookup_or(self.prices, rows, 0.0),
        }
        if features.RETRIEVAL_SCORE in self.ranker.input:  # rankers trained before it lack it
            inputs[features.RETRIEVAL_SCORE] = tf.reshape(first_stage, [-1])
        logits = self.ranker(inputs, training=False)
        out, total = {}, tf.zeros([batch, n], tf.float32)
        for head in self.heads:
            value = tf.reshape(tf.cast(logits[head], tf.float32), [batch, n])
            if head not in ranking_examples.REGRESSION_HEADS:
                value = tf.sigmoid(value)
            out[f"{head}_scores"] = value
            total += self.head_weights[head] * value
        out["scores"] = total
        return out

    def _dropped(self, request: dict, candidate_rows, history_rows, types, retrieved):
        """bool [b, n]: candidates `recommend` must not show (exclusions, nothing retrieved)."""
        excluded_type = tf.reduce_any(
            tf.equal(types[:, :, None], tf.constant(self.exclude_event_types or ("",))[None]),
            axis=-1,
        )
        if not self.exclude_event_types:
            excluded_type = tf.zeros_like(excluded_type)
        drop = ops.is_member(
            candidate_rows,
            history_rows,
            tf.logical_or(excluded_type, request[_EXCLUDE_RECENT][:, None]),
        )
        if _EXCLUDE_ITEMS in request:
            unavailable = self.row_of.lookup(request[_EXCLUDE_ITEMS])
            drop = tf.logical_or(
                drop,
                ops.is_member(candidate_rows, unavailable, tf.ones_like(unavailable, tf.bool)),
            )
        return tf.logical_or(drop, retrieved <= ops.EXCLUDED_SCORE)

    def _recommend(self, request: dict) -> dict:
        with tf.control_dependencies(self._checks(request)):
            # The ranker reads the score before exclusion (excluded candidates are dropped).
            candidate_scores, retrieved, candidate_rows, history_rows = self._candidates(
                request, self.retrieve_n
            )
            candidates = ops.lookup_or(self.item_ids, candidate_rows, "")
            ranked = self._rank(request, candidates, candidate_scores)["scores"]
            # Event types aligned with the recent items, whatever width each was sent with.
            types = request[_TYPES]
            types = tf.concat([types, tf.fill(tf.shape(history_rows), "")], axis=1)
            types = types[:, : tf.shape(history_rows)[1]]
            drop = self._dropped(request, candidate_rows, history_rows, types, retrieved)
            final = self.blend.tf_combine(candidate_scores, ranked, tf.logical_not(drop))
            final = tf.where(drop, ops.EXCLUDED_SCORE, final)
            if self.max_per_category is not None:
                categories = ops.lookup_or(self.categories, candidate_rows, "")
                final = ops.cap_per_category(final, categories, self.max_per_category)
            best, columns, shown = ops.top_slots(final, request[_K])
            rows = tf.where(shown, tf.gather(candidate_rows, columns, batch_dims=1), -1)

            def slots(values, empty):
                return tf.where(shown, tf.gather(values, columns, batch_dims=1), empty)

            out = {
                "item_ids": ops.lookup_or(self.item_ids, rows, ""),
                "titles": ops.lookup_or(self.titles, rows, ""),
                "scores": best,
                "ranker_scores": slots(ranked, ops.EXCLUDED_SCORE),
                "retrieval_scores": slots(candidate_scores, ops.EXCLUDED_SCORE),
            }
            out.update(
                explanations.outputs(
                    rows,
                    history_rows,
                    request[_ITEMS],
                    types,
                    self._vectors_of,
                    self.explain_top,
                    self.recency_decay,
                    self.event_type_weights,
                )
            )
            return out
