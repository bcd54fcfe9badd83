"""The exported tf.Module: `retrieve`, `rank` and `recommend` signatures over raw request fields."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Optional

import numpy as np
import tensorflow as tf

from tfrec import config as config_lib
from tfrec import errors, features
from tfrec.exporting import index as index_lib
from tfrec.exporting import request_ops as ops
from tfrec.exporting import tracking
from tfrec.models import repeat_prior
from tfrec.ranking import blend as blend_lib
from tfrec.ranking import examples as ranking_examples

RETRIEVE, RANK, RECOMMEND = "retrieve", "rank", "recommend"
_STRING_ROWS = tf.TensorSpec([None], tf.string)
_STRING_MATRIX = tf.TensorSpec([None, None], tf.string)
_INT_ROWS = tf.TensorSpec([None], tf.int32)
# Every input is batch-major, `k` and `exclude_recent` too: tensorflow_model_server's batcher
# concatenates all inputs of a signature along dimension 0 and cannot batch scalars.
_BOOL_ROWS = tf.TensorSpec([None], tf.bool)


def _string_variable(values: np.ndarray, name: str) -> tf.Variable:
    # Variables, not constants: large catalogs go to variables/, not into saved_model.pb.
    return tf.Variable(np.asarray(values, dtype=object).astype(bytes), trainable=False, name=name)


class ServingModule(tf.Module):
    """What TF Serving runs: the query tower, the precomputed item index and the ranker.

    Every input is a raw request field; lookups, padding/truncation of the recent events to
    `max_history` and (in the text variant) WordPiece tokenization of the query run in the
    graph. Items are scored against `index.vectors`, so no item tower runs per request.

    Signatures (batch = one row per request; recent events most recent first, "" = padding):
        retrieve(user_id [b] str, history_item_ids [b, any] str, history_event_types [b, any]
            str, hour_of_day [b] int32, day_of_week [b] int32, k [b] int32 (>= 1),
            exclude_recent [b] bool[, query_text [b] str]) -> item_ids [b, w] str, titles
            [b, w] str, scores [b, w] float32, w = max(k) (at most the catalog size); slots
            past a row's own k are padding. `exclude_recent` drops every recent item of its
            row.
        rank(user_id, history_item_ids, history_event_types, hour_of_day, day_of_week as above,
            item_ids [b, n] str) -> scores [b, n] (weighted sum of head probabilities) and
            `<head>_scores` [b, n] per head (probability; raw prediction for `rating`). The
            ranker also reads each candidate's retrieval score, computed in the graph (0 for
            items not in the index).
        recommend(same inputs as retrieve) -> as retrieve: top `retrieve_n` retrieved, ranked,
            scored by `blend` of their retrieval and ranker scores (the returned scores), recent
            items of `exclude_event_types` (all recent items with `exclude_recent`) dropped, at
            most `max_per_category` per category, top k. Also `ranker_scores` and
            `retrieval_scores` [b, w] of the returned items, and their explanations
            `explanation_item_ids`, `explanation_event_types` [b, w, explain_top] str,
            `explanation_positions` [b, w, explain_top] int32 (in the row's recent events) and
            `explanation_weights` [b, w, explain_top] float32: the recent events most similar
            to the item (see `request_ops.explain`), best first; "", -1 and 0 where fewer
            events explain it. Slots with nothing left to show hold item_id "" and the lowest
            float32 in every score output.

    `recommend_excluding` (in memory only, never a signature: TF Serving requires every
    signature input in every request, so a new input would break existing clients) is
    `recommend` with one more input, `exclude_item_ids` [b, any] str ("" = padding): items
    that must not be shown (e.g. out of stock), dropped before the category cap.

    Args:
        query_model: tf.keras.Model. The query tower (features.QUERY_FEATURES -> [b, dim]).
        index: ItemIndex. The servable items and their vectors.
        max_history: int. Recent events the towers see (FeatureSpec.max_history).
        query_text_length: int. Query tokens (FeatureSpec.query_text_length).
        ranker: tf.keras.Model or None. The ranking network (RANKING_FEATURES -> dict head ->
            [b, 1] logits). None: only `retrieve`.
        tokenizer: keras-nlp tokenizer or None. When set, retrieve and recommend take
            `query_text` and the SavedModel needs TF Text's ops to load.
        head_weights: dict head -> float or None. Weights of the combined rank score (missing
            heads weigh 1), as in tfrec.ranking.Recommender.
        retrieve_n: int. Candidates `recommend` ranks. Defaults to 200.
        exclude_event_types: list of str. Recent event types `recommend` never re-shows.
            Defaults to ("purchase",).
        prior: RepeatPrior. The repeat prior added to retrieval scores, as in evaluation.
            Defaults to none (beta 0).
        blend: Blend. `recommend`'s final score from the retrieval and combined ranker scores
            of the candidates, as in tfrec.ranking.Recommender. Defaults to the ranker alone.
        max_per_category: int or None. `recommend` shows at most this many items of one
            category (unknown "" is never capped). Defaults to None (no cap).
        explain_top: int. Recent events cited per recommended item at most. Defaults to 3.
        recency_decay: float in (0, 1]. Explanation weight factor per step back in the recent
            events. Defaults to 0.9.
        event_type_weights: dict event type -> float or None. Explanation weight per recent
            event type; missing types weigh 1. Defaults to None.
    """

    def __init__(
        self,
        query_model: tf.keras.Model,
        index: index_lib.ItemIndex,
        max_history: int,
        query_text_length: int,
        ranker: Optional[tf.keras.Model] = None,
        tokenizer=None,
        head_weights: Optional[Mapping[str, float]] = None,
        retrieve_n: int = 200,
        exclude_event_types: Sequence[str] = ("purchase",),
        prior: repeat_prior.RepeatPrior = repeat_prior.RepeatPrior(),
        blend: blend_lib.Blend = blend_lib.Blend(),
        max_per_category: Optional[int] = None,
        explain_top: int = 3,
        recency_decay: float = 0.9,
        event_type_weights: Optional[Mapping[str, float]] = None,
    ):
        super().__init__(name="tfrec_serving")
        if isinstance(retrieve_n, bool) or not isinstance(retrieve_n, int) or retrieve_n < 1:
            raise errors.ConfigError(
                f"`retrieve_n` must be a positive int, received {retrieve_n!r}"
            )
        dim = int(query_model.output.shape[-1])
        if dim != index.dim:
            raise errors.ConfigError(
                f"`index.vectors` must have the query tower's dim {dim}, received {index.dim}"
            )
        self._models = tracking.Untracked((query_model, ranker, tokenizer))
        self.model_state = tracking.state_of(query_model, ranker, tokenizer)
        self.max_history = int(max_history)
        self.query_text_length = int(query_text_length)
        self.retrieve_n = retrieve_n
        self.exclude_event_types = tuple(exclude_event_types)
        self.prior = prior
        self.blend = blend
        if max_per_category is not None and (
            isinstance(max_per_category, bool)
            or not isinstance(max_per_category, int)
            or max_per_category < 1
        ):
            raise errors.ConfigError(
                f"`recommend.max_per_category` must be a positive int or null, "
                f"received {max_per_category!r}"
            )
        self.max_per_category = max_per_category
        if isinstance(explain_top, bool) or not isinstance(explain_top, int) or explain_top < 1:
            raise errors.ConfigError(
                f"`explain_top` must be a positive int, received {explain_top!r}"
            )
        if not 0.0 < recency_decay <= 1.0:
            raise errors.ConfigError(
                f"`recency_decay` must be in (0, 1], received {recency_decay!r}"
            )
        self.explain_top = explain_top
        self.recency_decay = float(recency_decay)
        self.event_type_weights = {
            str(t): float(w) for t, w in dict(event_type_weights or {}).items()
        }
        self.heads = tuple(sorted(ranker.output)) if ranker is not None else ()
        weights = dict(head_weights or {})
        unknown = sorted(set(weights) - set(self.heads))
        if unknown:
            raise errors.ConfigError(
                f"`head_weights` keys must be heads {self.heads}, received {unknown}"
            )
        self.head_weights = {h: float(weights.get(h, 1.0)) for h in self.heads}
        self.num_items = len(index)
        self.item_ids = _string_variable(index.item_ids, "item_ids")
        self.titles = _string_variable(index.titles, "titles")
        self.categories = _string_variable(index.categories, "categories")
        self.prices = tf.Variable(index.prices, trainable=False, name="prices")
        self.vectors = tf.Variable(index.vectors, trainable=False, name="item_vectors")
        self.row_of = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(index.item_ids.astype(bytes)), tf.range(len(index), dtype=tf.int64)
            ),
            default_value=-1,
        )
        self._build_functions()

    query_model = property(lambda self: self._models.value[0])
    ranker = property(lambda self: self._models.value[1])
    tokenizer = property(lambda self: self._models.value[2])

    # -- stages --------------------------------------------------------------------------------

    def _query_features(self, request: dict, query_text) -> dict:
        batch = tf.shape(request["user_id"])[0]
        if query_text is None:
            # An all-zero query encodes to zero in the tower: "no search text".
            tokens = tf.zeros([batch, self.query_text_length], tf.int32)
        else:
            tokens = tf.reshape(
                tf.cast(self.tokenizer(query_text), tf.int32), [-1, self.query_text_length]
            )
        return {
            features.USER_ID: request["user_id"],
            features.HISTORY_ITEM_IDS: ops.fit_length(
                request["history_item_ids"], self.max_history
            ),
            features.HISTORY_EVENT_TYPES: ops.fit_length(
                request["history_event_types"], self.max_history
            ),
            features.HOUR_OF_DAY: request["hour_of_day"],
            features.DAY_OF_WEEK: request["day_of_week"],
            features.QUERY_TOKEN_IDS: tokens,
        }

    def _checks(self, request: dict) -> list:
        batch = tf.shape(request["user_id"])[0]
        checks = []
        for name, value in request.items():
            if name != "user_id":
                checks += ops.check_batch(name, value, batch)
        if "k" in request:
            checks += ops.check_k(request["k"])
        return checks

    def _first_stage(self, request: dict, query_text) -> tf.Tensor:
        """Retrieval scores [b, num_items]: the towers' dot product plus the repeat prior."""
        query = self.query_model(self._query_features(request, query_text), training=False)
        scores = tf.matmul(tf.cast(query, tf.float32), self.vectors, transpose_b=True)
        if self.prior.beta:
            # The prior reads the same window the query tower does: the latest max_history.
            window = self.row_of.lookup(
                ops.fit_length(request["history_item_ids"], self.max_history)
            )
            scores += self.prior.tf_bonus(window, self.num_items)
        return scores

    def _retrieval_scores(self, request: dict, query_text) -> tuple:
        """First-stage scores [b, num_items], the same with excluded recent items lowered, and
        history rows [b, L]."""
        scores = self._first_stage(request, query_text)
        # Exclusion reads every recent event sent, also those beyond max_history.
        rows = self.row_of.lookup(request["history_item_ids"])
        every = tf.broadcast_to(request["exclude_recent"][:, None], tf.shape(rows))
        return scores, ops.exclude(scores, rows, every), rows

    def _retrieve(self, request: dict, query_text=None) -> dict:
        with tf.control_dependencies(self._checks(request)):
            _, scores, _ = self._retrieval_scores(request, query_text)
            ids, titles, best = ops.top_k(scores, request["k"], self.item_ids, self.titles)
        return {"item_ids": ids, "titles": titles, "scores": best}

    def _rank(self, request: dict, candidates: tf.Tensor, first_stage: tf.Tensor) -> dict:
        """Per-head scores and their weighted sum, each [b, n], of candidate ids [b, n].

        `first_stage` is the retrieval score [b, n] of each candidate, a ranker input.
        """
        batch, n = tf.shape(candidates)[0], tf.shape(candidates)[1]
        flat = tf.reshape(candidates, [-1])
        rows = self.row_of.lookup(flat)
        length = int(self.ranker.input[features.HISTORY_ITEM_IDS].shape[1])
        inputs = {
            features.USER_ID: tf.repeat(request["user_id"], n),
            features.ITEM_ID: flat,
            features.HOUR_OF_DAY: tf.repeat(request["hour_of_day"], n),
            features.DAY_OF_WEEK: tf.repeat(request["day_of_week"], n),
            features.HISTORY_ITEM_IDS: tf.repeat(
                ops.fit_length(request["history_item_ids"], length), n, axis=0
            ),
            features.HISTORY_EVENT_TYPES: tf.repeat(
                ops.fit_length(request["history_event_types"], length), n, axis=0
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

    def _recommend(self, request: dict, query_text=None) -> dict:
        with tf.control_dependencies(self._checks(request)):
            first_stage, scores, history_rows = self._retrieval_scores(request, query_text)
            n = min(self.retrieve_n, self.num_items)
            retrieved, candidate_rows = tf.math.top_k(scores, k=n)
            candidates = tf.gather(self.item_ids, candidate_rows)
            # The ranker reads the score before exclusion (excluded candidates are dropped).
            candidate_scores = tf.gather(first_stage, candidate_rows, batch_dims=1)
            ranked = self._rank(request, candidates, candidate_scores)["scores"]
            # Event types aligned with the recent items, whatever width each was sent with.
            types = request["history_event_types"]
            types = tf.concat([types, tf.fill(tf.shape(history_rows), "")], axis=1)
            types = types[:, : tf.shape(history_rows)[1]]
            excluded_type = tf.reduce_any(
                tf.equal(types[:, :, None], tf.constant(self.exclude_event_types or ("",))[None]),
                axis=-1,
            )
            if not self.exclude_event_types:
                excluded_type = tf.zeros_like(excluded_type)
            drop = ops.is_member(
                candidate_rows,
                history_rows,
                tf.logical_or(excluded_type, request["exclude_recent"][:, None]),
            )
            if "exclude_item_ids" in request:
                unavailable = self.row_of.lookup(request["exclude_item_ids"])
                drop = tf.logical_or(
                    drop,
                    ops.is_member(candidate_rows, unavailable, tf.ones_like(unavailable, tf.bool)),
                )
            drop = tf.logical_or(drop, retrieved <= ops.EXCLUDED_SCORE)
            final = self.blend.tf_combine(candidate_scores, ranked, tf.logical_not(drop))
            final = tf.where(drop, ops.EXCLUDED_SCORE, final)
            if self.max_per_category is not None:
                categories = ops.lookup_or(self.categories, candidate_rows, "")
                final = ops.cap_per_category(final, categories, self.max_per_category)
            best, columns, shown = ops.top_slots(final, request["k"])
            rows = tf.where(shown, tf.gather(candidate_rows, columns, batch_dims=1), -1)

            def slots(values, empty):
                return tf.where(shown, tf.gather(values, columns, batch_dims=1), empty)

            positions, weights = ops.explain(
                rows,
                history_rows,
                types,
                self.vectors,
                self.explain_top,
                self.recency_decay,
                self.event_type_weights,
            )

            def cited(values):
                # Uncited slots read one "" column appended at the end (also without events).
                length = tf.shape(values)[1]
                values = tf.concat([values, tf.fill([tf.shape(values)[0], 1], "")], axis=1)
                index = tf.where(positions >= 0, positions, length)
                return tf.gather(values, index, batch_dims=1)

            return {
                "item_ids": ops.lookup_or(self.item_ids, rows, ""),
                "titles": ops.lookup_or(self.titles, rows, ""),
                "scores": best,
                "ranker_scores": slots(ranked, ops.EXCLUDED_SCORE),
                "retrieval_scores": slots(candidate_scores, ops.EXCLUDED_SCORE),
                "explanation_item_ids": cited(request["history_item_ids"]),
                "explanation_event_types": cited(types),
                "explanation_positions": tf.cast(positions, tf.int32),
                "explanation_weights": weights,
            }

    # -- signatures ----------------------------------------------------------------------------

    def _build_functions(self) -> None:
        base = [_STRING_ROWS, _STRING_MATRIX, _STRING_MATRIX, _INT_ROWS, _INT_ROWS]
        text = self.tokenizer is not None

        def request(user_id, history_item_ids, history_event_types, hour_of_day, day_of_week):
            return {
                "user_id": user_id,
                "history_item_ids": history_item_ids,
                "history_event_types": history_event_types,
                "hour_of_day": hour_of_day,
                "day_of_week": day_of_week,
            }

        # One function per signature: `query_text` is an input only when it is in the
        # input signature (the text variant); otherwise it keeps its default, None. The
        # parameter names are the signature's input names.
        def query_signature(method):
            def serve(
                user_id,
                history_item_ids,
                history_event_types,
                hour_of_day,
                day_of_week,
                k,
                exclude_recent,
                query_text=None,
            ):
                r = request(
                    user_id, history_item_ids, history_event_types, hour_of_day, day_of_week
                )
                return method(dict(r, k=k, exclude_recent=exclude_recent), query_text)

            return serve

        def recommend_excluding(
            user_id,
            history_item_ids,
            history_event_types,
            hour_of_day,
            day_of_week,
            k,
            exclude_recent,
            exclude_item_ids,
            query_text=None,
        ):
            r = request(user_id, history_item_ids, history_event_types, hour_of_day, day_of_week)
            r.update(k=k, exclude_recent=exclude_recent, exclude_item_ids=exclude_item_ids)
            return self._recommend(r, query_text)

        query_specs = [_INT_ROWS, _BOOL_ROWS] + ([_STRING_ROWS] if text else [])

        def rank(
            user_id, history_item_ids, history_event_types, hour_of_day, day_of_week, item_ids
        ):
            r = request(user_id, history_item_ids, history_event_types, hour_of_day, day_of_week)
            with tf.control_dependencies(self._checks(dict(r, item_ids=item_ids))):
                # Unknown candidates have no retrieval score: 0, as their zero item vector.
                rows = self.row_of.lookup(item_ids)
                scores = tf.gather(self._first_stage(r, None), tf.maximum(rows, 0), batch_dims=1)
                return self._rank(r, item_ids, tf.where(rows >= 0, scores, 0.0))

        self.retrieve = tf.function(
            query_signature(self._retrieve), input_signature=base + query_specs
        )
        self._excluding = tracking.Untracked(None)
        if self.ranker is not None:
            self.rank = tf.function(rank, input_signature=base + [_STRING_MATRIX])
            self.recommend = tf.function(
                query_signature(self._recommend), input_signature=base + query_specs
            )
            specs = base + [_INT_ROWS, _BOOL_ROWS, _STRING_MATRIX] + query_specs[2:]
            # Held untracked: a SavedModel holds the signatures only.
            self._excluding = tracking.Untracked(
                tf.function(recommend_excluding, input_signature=specs)
            )

    def recommend_excluding(self, **inputs) -> dict:
        """`recommend` with one more input, `exclude_item_ids` [b, any] str: items not to show.

        A method, not a tf.function attribute, so a SavedModel of this module leaves it out.
        """
        if self._excluding.value is None:
            raise errors.ConfigError("`recommend_excluding` needs a `ranker`, received None")
        return self._excluding.value(**inputs)

    def signatures(self) -> dict:
        """Signature name -> concrete function; `serving_default` is the full pipeline."""
        found = {RETRIEVE: self.retrieve.get_concrete_function()}
        if self.ranker is not None:
            found[RANK] = self.rank.get_concrete_function()
            found[RECOMMEND] = self.recommend.get_concrete_function()
        found["serving_default"] = found.get(RECOMMEND, found[RETRIEVE])
        return found


def from_config(
    config: config_lib.Config,
    spec: features.FeatureSpec,
    query_model: tf.keras.Model,
    index: index_lib.ItemIndex,
    ranker: Optional[tf.keras.Model] = None,
    prior: repeat_prior.RepeatPrior = repeat_prior.RepeatPrior(),
    blend: blend_lib.Blend = blend_lib.Blend(),
    with_text: bool = False,
) -> ServingModule:
    """The ServingModule of a trained run, configured by its config: what `tfrec export`
    saves and what the Python `Recommender` runs in memory.

    Args:
        config: Config. `recommend` (retrieve_n, exclusions, category cap) and the head
            weights (`ranking.loss_weights`).
        spec: FeatureSpec. History and query lengths, and the WordPiece vocabulary.
        query_model: tf.keras.Model. The query tower.
        index: ItemIndex. The servable items.
        ranker: tf.keras.Model or None. The ranking network; None: only `retrieve`.
        prior: RepeatPrior. The retrieval stage's repeat prior.
        blend: Blend. The final score of `recommend`.
        with_text: bool. Add the `query_text` input (and the tokenizer, so TF Text ops).
    """
    return ServingModule(
        query_model,
        index,
        spec.max_history,
        spec.query_text_length,
        ranker=ranker,
        tokenizer=spec.tokenizer(spec.query_text_length) if with_text else None,
        head_weights=dict(config.ranking.loss_weights) if ranker is not None else None,
        retrieve_n=config.recommend.retrieve_n,
        exclude_event_types=config.recommend.exclude_event_types,
        prior=prior,
        blend=blend,
        max_per_category=config.recommend.max_per_category,
    )
