"""Ranking examples of a prepared dataset: positives plus the retrieval stage's hard negatives."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Optional

import numpy as np

from tfrec import config as config_lib
from tfrec import features, inference
from tfrec.data import prepared as prepared_lib
from tfrec.evaluation import metrics as retrieval_metrics
from tfrec.models import repeat_prior
from tfrec.ranking import examples
from tfrec.ranking import queries as queries_lib

if TYPE_CHECKING:
    from tfrec.models import retrieval

# Cap on positives of validation and test ranking examples: enough for stable per-head AUCs.
MAX_EVAL_POSITIVES = 2000
# Query rows scored against the whole catalog at once when retrieving candidates.
_SCORE_CHUNK = 1024


def data_heads(prepared: prepared_lib.PreparedData) -> tuple:
    """Event types present in the training split, in schema order (the default heads)."""
    present = set(prepared.split.train["event_type"].astype(str))
    return tuple(e for e in prepared.spec.event_types if e in present)


def ranking_catalog(prepared: prepared_lib.PreparedData) -> examples.RankingCatalog:
    """Candidate features of the catalog, rows in catalog order (as the retrieval table)."""
    table = prepared.table
    return examples.RankingCatalog(
        item_id=np.asarray(table.item_ids, dtype=object),
        item_category=np.asarray(table[features.ITEM_CATEGORY], dtype=object),
        item_price=np.asarray(table[features.ITEM_PRICE], dtype=np.float32),
    )


def retrieve_top_n(
    query_vectors: np.ndarray,
    item_vectors: np.ndarray,
    n: int,
    exclude: Optional[Sequence[np.ndarray]] = None,
    prior: Optional[repeat_prior.RepeatPrior] = None,
    history_index: Optional[np.ndarray] = None,
) -> np.ndarray:
    """The retrieval stage offline: top-n catalog indices per query by dot product.

    Args:
        query_vectors: np.ndarray [num_queries, dim]. Query tower outputs.
        item_vectors: np.ndarray [num_items, dim]. Candidate tower outputs, catalog order.
        n: int. Candidates per query; capped at num_items.
        exclude: list of int arrays (one per query) or None. Items never retrieved for that
            query (e.g. previously seen ones under `eval.exclude_seen`).
        prior: RepeatPrior or None. The retrieval stage's repeat prior, added to the scores.
        history_index: int array [num_queries, max_history] or None. Catalog indices of each
            query's recent events (-1 padding); required with `prior`.

    Returns:
        int64 array [num_queries, min(n, num_items)], best first; ties by lower catalog index.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"`n` must be a positive int, received {n!r}")
    n = min(int(n), len(item_vectors))
    out = np.zeros([len(query_vectors), n], np.int64)
    for start in range(0, len(query_vectors), _SCORE_CHUNK):
        end = min(start + _SCORE_CHUNK, len(query_vectors))
        scores = query_vectors[start:end] @ item_vectors.T
        if prior is not None:
            if history_index is None:
                raise TypeError("`history_index` is required with `prior`, received None")
            scores += prior.weights(history_index[start:end], scores.shape[1])
        if exclude is not None:
            for row in range(start, end):
                scores[row - start, np.asarray(exclude[row], np.int64)] = -np.inf
        out[start:end] = retrieval_metrics.top_k(scores, n)[0]
    return out


def _subsample(
    queries: examples.RankingQueries,
    positives: examples.LabeledPairs,
    max_positives: Optional[int],
    seed: int,
) -> tuple[examples.RankingQueries, examples.LabeledPairs]:
    """Whole queries in a seeded random order while their positives fit in `max_positives`.

    The cap counts positives, not queries: rows (and so epoch time) grow with positives, and
    an Online Retail invoice holds ~20 of them where a synthetic session step holds one.
    Kept queries stay in time order.
    """
    if max_positives is None or len(positives) <= max_positives:
        return queries, positives
    order = np.random.default_rng(seed).permutation(len(queries))
    sizes = np.bincount(positives.query_index, minlength=len(queries))[order]
    keep = np.sort(order[np.cumsum(sizes) <= max_positives])
    new_index = np.full(len(queries), -1, np.int64)
    new_index[keep] = np.arange(len(keep))
    rows = new_index[positives.query_index] >= 0
    subset = examples.RankingQueries(
        user_id=queries.user_id[keep],
        history_item_ids=queries.history_item_ids[keep],
        history_event_types=queries.history_event_types[keep],
        hour_of_day=queries.hour_of_day[keep],
        day_of_week=queries.day_of_week[keep],
    )
    pairs = examples.LabeledPairs(
        new_index[positives.query_index[rows]], positives.item_index[rows], positives.labels[rows]
    )
    return subset, pairs


def labeled_examples(
    config: config_lib.Config,
    prepared: prepared_lib.PreparedData,
    retrieval_model: retrieval.RetrievalModel,
    heads: Sequence[str],
    start: Optional[int],
    end: Optional[int],
    max_positives: Optional[int],
    seed: int,
    item_vectors: Optional[np.ndarray] = None,
    prior: Optional[repeat_prior.RepeatPrior] = None,
) -> tuple[examples.RankingQueries, examples.LabeledPairs]:
    """Ranking queries with events in [start, end), their positives and sampled negatives.

    Each (user, timestamp) group is a query whose history holds only earlier events; its
    positives are the group's items with per-head labels. Per positive, the query gets
    `config.ranking.hard_negatives` negatives from the retrieval model's own top
    `config.recommend.retrieve_n` for that query and `config.ranking.random_negatives`
    uniform ones; none is a positive of the query (see `build_ranking_examples`).

    Args:
        config: Config. Reads `ranking` (negatives) and `recommend.retrieve_n`.
        prepared: PreparedData. The whole log (histories), catalog and spec.
        retrieval_model: RetrievalModel. Its towers choose the hard negatives.
        heads: list of str. Label columns.
        start: int or None. First second of the window (inclusive); None: open.
        end: int or None. End of the window (exclusive); None: open.
        max_positives: int or None. Cap on positives: whole queries in a seeded random
            order while they fit; None: all.
        seed: int. Seeds the query sample and the negative sampler.
        item_vectors: np.ndarray [num_items, dim] or None. Candidate tower embeddings of the
            catalog, computed when None.
        prior: RepeatPrior or None. The retrieval stage's repeat prior (hard negatives are
            what the served retrieval stage would return).

    Returns:
        (RankingQueries, LabeledPairs) with negatives, sorted by query.
    """
    queries, positives = queries_lib.ranking_queries(
        prepared.dataset.interactions,
        prepared.table.item_ids,
        heads,
        prepared.spec.max_history,
        start=start,
        end=end,
    )
    queries, positives = _subsample(queries, positives, max_positives, seed)
    if item_vectors is None:
        item_vectors = inference.item_embeddings(retrieval_model.candidate_model, prepared.table)
    history_index = prepared.catalog_index(queries.history_item_ids)
    if len(queries):
        # RankingQueries holds every query feature, but pipeline.QuerySource does not list it.
        query_vectors = inference.query_embeddings(
            retrieval_model.query_model,
            queries,  # type: ignore[arg-type]
            prepared.spec,
        )
        hard = retrieve_top_n(
            query_vectors,
            item_vectors,
            config.recommend.retrieve_n,
            prior=prior,
            history_index=history_index,
        )
    else:
        query_vectors = np.zeros([0, item_vectors.shape[1]], np.float32)
        hard = np.zeros([0, 0], np.int64)
    pairs = examples.build_ranking_examples(
        queries,
        positives,
        hard,
        len(prepared.table),
        config.ranking.hard_negatives,
        config.ranking.random_negatives,
        seed=seed,
    )
    scores = pair_scores(query_vectors, item_vectors, history_index, pairs, prior)
    return queries, pairs.with_retrieval_scores(scores)


def pair_scores(
    query_vectors: np.ndarray,
    item_vectors: np.ndarray,
    history_index: np.ndarray,
    pairs: examples.LabeledPairs,
    prior: Optional[repeat_prior.RepeatPrior] = None,
) -> np.ndarray:
    """The retrieval score of each (query, candidate) row, exactly as `retrieve_top_n` ranks.

    Args:
        query_vectors: np.ndarray [num_queries, dim].
        item_vectors: np.ndarray [num_items, dim].
        history_index: int array [num_queries, max_history]. Catalog indices, -1 padding.
        pairs: LabeledPairs. Rows to score.
        prior: RepeatPrior or None.

    Returns:
        float32 array [len(pairs)].
    """
    q, i = pairs.query_index, pairs.item_index
    scores = np.einsum("nd,nd->n", query_vectors[q], item_vectors[i]).astype(np.float32)
    if prior is not None:
        scores += prior.pair_weights(history_index[q], i)
    return scores
