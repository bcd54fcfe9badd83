"""The exported tf.Module: `retrieve`, `rank` and `recommend` signatures over raw request fields."""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Optional

import numpy as np
import tensorflow as tf

from tfrec import config as config_lib
from tfrec import errors, features, request_schema
from tfrec.exporting import index as index_lib
from tfrec.exporting import ivf_build, ivf_index, ivf_store, stages, tracking
from tfrec.models import repeat_prior
from tfrec.ranking import blend as blend_lib

RETRIEVE, RANK, RECOMMEND = (
    request_schema.RETRIEVE,
    request_schema.RANK,
    request_schema.RECOMMEND,
)


def _request_function(method, signature: str, with_text: bool = False, excluding: bool = False):
    """`method(request dict)` as a tf.function whose parameters are the signature's inputs.

    The inputs, their order, dtypes and shapes come from `tfrec.request_schema`. tf.function
    binds arguments by the Python signature, so the wrapper declares the schema's names as its
    parameters: callers pass them by keyword, as a SignatureDef's inputs are passed.
    """
    names = request_schema.names_of(signature, with_text, excluding)
    parameters = inspect.Signature(
        [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names]
    )

    def serve(*args, **kwargs):
        return method(dict(parameters.bind(*args, **kwargs).arguments))

    serve.__signature__ = parameters  # type: ignore[attr-defined]
    serve.__name__ = signature
    return tf.function(
        serve, input_signature=request_schema.tensor_specs(signature, with_text, excluding)
    )


def _utf8(values: np.ndarray) -> np.ndarray:
    """Strings as UTF-8 bytes (tf.string holds bytes; titles and ids need not be ASCII)."""
    return np.array([str(v).encode("utf-8") for v in np.asarray(values, dtype=object)], object)


def _string_variable(values: np.ndarray, name: str) -> tf.Variable:
    # Variables, not constants: large catalogs go to variables/, not into saved_model.pb.
    return tf.Variable(_utf8(values), trainable=False, name=name)


class ServingModule(stages.ServingStages):
    """What TF Serving runs: the query tower, the precomputed item index and the ranker.

    Every input is a raw request field; lookups, padding/truncation of the recent events to
    `max_history` and (in the text variant) WordPiece tokenization of the query run in the
    graph. Items are scored against `index.vectors`, so no item tower runs per request: all
    of them (exact search), or with `item_index` those of the IVF partitions nearest each
    query (see `ServingStages`).

    Signatures (batch = one row per request). Their inputs, dtypes and shapes are
    `tfrec.request_schema`'s (`inputs_of(signature)`); in short:
        retrieve(user_id, history_item_ids, history_event_types, hour_of_day, day_of_week, k,
            exclude_recent[, query_text]) -> item_ids [b, w] str, titles [b, w] str, scores
            [b, w] float32, w = max(k) (at most the catalog size); slots past a row's own k
            are padding. `exclude_recent` drops every recent item of its row.
        rank(user_id, history_item_ids, history_event_types, hour_of_day, day_of_week,
            item_ids) -> scores [b, n] (weighted sum of head probabilities) and
            `<head>_scores` [b, n] per head (probability; raw prediction for `rating`). The
            ranker also reads each candidate's retrieval score, computed in the graph (0 for
            items not in the index).
        recommend(the inputs of retrieve) -> as retrieve: top `retrieve_n` retrieved, ranked,
            scored by `blend` of their retrieval and ranker scores (the returned scores), recent
            items of `exclude_event_types` (all recent items with `exclude_recent`) dropped, at
            most `max_per_category` per category, top k. Also `ranker_scores` and
            `retrieval_scores` [b, w] of the returned items, and their explanations
            (`tfrec.exporting.explanations`) `explanation_item_ids`,
            `explanation_event_types`, `explanation_positions` and `explanation_weights`
            [b, w, explain_top]. Slots with nothing left to show hold item_id "" and the
            lowest float32 in every score output.

    `recommend_excluding` (in memory only, never a signature: TF Serving requires every
    signature input in every request, so a new input would break existing clients) is
    `recommend` with one more input, `exclude_item_ids`: items that must not be shown (e.g.
    out of stock), dropped before the category cap.

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
        item_index: IVFIndex or None. Built from `index` (its vectors and ids, checked by
            fingerprint); None: exact search over `index.vectors`. Defaults to None.
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
        item_index: Optional[ivf_index.IVFIndex] = None,
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
        if item_index is None:
            self.vectors = tf.Variable(index.vectors, trainable=False, name="item_vectors")
        else:
            built_for = item_index.fingerprint.numpy().decode()
            if built_for != ivf_store.fingerprint(index.vectors, index.item_ids):
                raise errors.ConfigError(
                    "`item_index` was built for other items (vectors or ids) than `index`: "
                    "build it from this index (`ivf_build.build_ivf`)"
                )
            self.vectors = None  # the index holds them (`item_index.vectors_of`)
        self.item_index = item_index
        self.row_of = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(_utf8(index.item_ids)), tf.range(len(index), dtype=tf.int64)
            ),
            default_value=-1,
        )
        self._build_functions()

    query_model = property(lambda self: self._models.value[0])
    ranker = property(lambda self: self._models.value[1])
    tokenizer = property(lambda self: self._models.value[2])

    # -- signatures ----------------------------------------------------------------------------

    def _build_functions(self) -> None:
        text = self.tokenizer is not None
        self.retrieve = _request_function(self._retrieve, request_schema.RETRIEVE, with_text=text)
        self._excluding = tracking.Untracked(None)
        if self.ranker is not None:
            self.rank = _request_function(self._rank_candidates, request_schema.RANK)
            self.recommend = _request_function(
                self._recommend, request_schema.RECOMMEND, with_text=text
            )
            # Held untracked: a SavedModel holds the signatures only.
            self._excluding = tracking.Untracked(
                _request_function(
                    self._recommend, request_schema.RECOMMEND, with_text=text, excluding=True
                )
            )

    def recommend_excluding(self, **inputs) -> dict:
        """`recommend` with one more input, `exclude_item_ids` [b, any] str: items not to show.

        A method, not a tf.function attribute, so a SavedModel of this module leaves it out.
        Raises `request_schema.RequestError` naming an input that does not fit the schema.
        """
        if self._excluding.value is None:
            raise errors.ConfigError("`recommend_excluding` needs a `ranker`, received None")
        with_text = self.tokenizer is not None
        request_schema.check(inputs, RECOMMEND, with_text=with_text, excluding=True)
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
    item_index: Optional[ivf_index.IVFIndex] = None,
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
        item_index: IVFIndex or None. A prebuilt `build_item_index(config, index)`, shared by the
            modules of one export; None: built here when the config asks for one.
    """
    if item_index is None:
        item_index = build_item_index(config, index)
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
        item_index=item_index,
    )


def build_item_index(
    config: config_lib.Config, index: index_lib.ItemIndex
) -> Optional[ivf_index.IVFIndex]:
    """The IVF index `config.index` asks for over `index`, or None for exact search."""
    if ivf_build.choose(len(index), config.index) != ivf_build.IVF:
        return None
    return ivf_build.build_ivf(index.vectors, config.index, index.item_ids)
