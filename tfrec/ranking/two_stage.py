"""The two-stage pipeline offline: both stages' scores, its blend, its comparison with retrieval."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Optional

import numpy as np

from tfrec import config as config_lib
from tfrec import inference
from tfrec.data import prepared as prepared_lib
from tfrec.evaluation import protocol, report
from tfrec.models import repeat_prior
from tfrec.ranking import blend as blend_lib
from tfrec.ranking import dataset, examples, recommender, sampling, training
from tfrec.ranking import metrics as ranking_metrics
from tfrec.training import workdir as workdir_lib

if TYPE_CHECKING:
    from tfrec.data import examples as data_examples
    from tfrec.models import retrieval
    from tfrec.ranking import model as ranking_model

# Cut-off of the reported comparison (the size of a recommendation list).
K = 10
_RANK_BATCH = 8192


def _ranker_scores(
    ranker: ranking_model.RankingModel,
    queries: data_examples.EvalQueries,
    catalog: examples.RankingCatalog,
    pairs: examples.LabeledPairs,
    head_weights: dict[str, float],
) -> np.ndarray:
    """Combined ranker scores [len(pairs)] of (query, candidate) rows with retrieval scores."""
    # EvalQueries holds every query feature of RankingQueries, which make_dataset reads.
    ds = dataset.make_dataset(
        pairs,
        queries,  # type: ignore[arg-type]
        catalog,
        ranker.heads,
        _RANK_BATCH,
    )
    network = ranker.network
    parts = [
        recommender.combined_score(network(batch, training=False), head_weights) for batch, _ in ds
    ]
    return np.concatenate(parts) if parts else np.zeros([0])


@dataclasses.dataclass
class StageScores:
    """Both stages' scores of each query's retrieved candidates.

    Args:
        candidates: int array [q, N]. Retrieval top N catalog indices, best first.
        retrieval: float array [q, N]. Their retrieval scores (dot product + repeat prior).
        ranker: float array [q, N]. Their combined ranker scores.
        full_retrieval: callable (start, end) -> [end - start, num_items]. Retrieval scores of
            the whole catalog (the protocol's score function).
        exclude: list of int arrays or None. Items removed per query (`eval.exclude_seen`).
        relevant: list of int arrays. Relevant catalog indices per query.
        item_vectors: float array [num_items, dim]. The catalog embeddings used.
    """

    candidates: np.ndarray
    retrieval: np.ndarray
    ranker: np.ndarray
    full_retrieval: Callable
    exclude: Optional[list]
    relevant: list
    item_vectors: np.ndarray


def stage_scores(
    config: config_lib.Config,
    prepared: prepared_lib.PreparedData,
    retrieval_model: retrieval.RetrievalModel,
    ranker: ranking_model.RankingModel,
    queries: data_examples.EvalQueries,
    prior: Optional[repeat_prior.RepeatPrior] = None,
    item_vectors: Optional[np.ndarray] = None,
    available: Optional[np.ndarray] = None,
) -> StageScores:
    """Retrieves `recommend.retrieve_n` candidates per query and scores them with both stages.

    With `eval.exclude_seen`, previously seen items are removed before the top N is taken;
    items outside `available` (bool [num_items], the catalog at the split) are never retrieved.
    """
    num_items = len(prepared.table)
    n = min(config.recommend.retrieve_n, num_items)
    exclude = (
        [prepared.catalog_index(s) for s in queries.seen] if config.eval.exclude_seen else None
    )
    retrieval_exclude = exclude
    if available is not None and not available.all():
        blocked = np.flatnonzero(~available)
        retrieval_exclude = [
            np.concatenate([blocked, np.asarray(e, np.int64)]) if exclude is not None else blocked
            for e in (exclude if exclude is not None else [()] * len(queries.user_id))
        ]
    items = item_vectors
    if items is None:
        items = inference.item_embeddings(retrieval_model.candidate_model, prepared.table)
    query_vectors = inference.query_embeddings(retrieval_model.query_model, queries, prepared.spec)
    prior = prior or repeat_prior.RepeatPrior()
    history_index = prepared.catalog_index(queries.history_item_ids)
    candidates = sampling.retrieve_top_n(
        query_vectors, items, n, retrieval_exclude, prior=prior, history_index=history_index
    )
    # One row per (query, candidate); the ranker reads each row's retrieval score.
    pairs = examples.LabeledPairs(
        np.repeat(np.arange(len(candidates)), candidates.shape[1]),
        candidates.ravel(),
        np.zeros([candidates.size, len(ranker.heads)], np.float32),
    )
    scores = sampling.pair_scores(query_vectors, items, history_index, pairs, prior)
    head_weights = {h: float(config.ranking.loss_weights.get(h, 1.0)) for h in ranker.heads}
    catalog = sampling.ranking_catalog(prepared)
    combined = _ranker_scores(
        ranker, queries, catalog, pairs.with_retrieval_scores(scores), head_weights
    )
    return StageScores(
        candidates=candidates,
        retrieval=scores.reshape(candidates.shape),
        ranker=combined.reshape(candidates.shape),
        full_retrieval=prior.apply(inference.dot_score_fn(query_vectors, items), history_index),
        exclude=exclude,
        relevant=[prepared.catalog_index(r) for r in queries.relevant],
        item_vectors=items,
    )


def tune_blend(
    config: config_lib.Config,
    workdir: os.PathLike | str,
    prepared: prepared_lib.PreparedData,
    retrieval_model: retrieval.RetrievalModel,
    ranker: ranking_model.RankingModel,
) -> dict:
    """Chooses the ranker's weight in the final score on the ranker's validation window.

    The queries are the retrieval evaluation's queries in that window (the later part of the
    validation split by default: neither stage trained on it), scored exactly as
    `evaluate_two_stage` scores the test queries; the alpha with the best re-ranked NDCG@10
    is written to `<workdir>/ranking/blend.json`. The test split is never read.

    Returns:
        dict: alpha, the (alpha, ndcg@10) grid, the number of queries.
    """
    _, (start, end) = training.example_windows(config.ranking, prepared.split)
    queries = prepared.validation
    rows = np.flatnonzero((queries.timestamp >= start) & (queries.timestamp < end))
    prior = repeat_prior.RepeatPrior.load(workdir_lib.Workdir(workdir).repeat_prior)
    tried: list[tuple[float, float]]
    if len(rows) == 0:
        chosen, tried = blend_lib.Blend(), []
    else:
        scores = stage_scores(
            config, prepared, retrieval_model, ranker, queries.subset(rows), prior
        )
        chosen, tried = blend_lib.tune(
            scores.candidates, scores.retrieval, scores.ranker, scores.relevant, k=K
        )
    chosen.save(training.blend_path(workdir), tried)
    print(
        f"ranker weight in the final score: {chosen.alpha:.1f} (NDCG@{K} on {len(rows):,} "
        "validation queries: " + ", ".join(f"{a:.1f}: {v:.4f}" for a, v in tried) + ")",
        flush=True,
    )
    return {"alpha": chosen.alpha, "tried": tried, "queries": int(len(rows))}


def evaluate_two_stage(
    config: config_lib.Config,
    prepared: prepared_lib.PreparedData,
    retrieval_model: retrieval.RetrievalModel,
    ranker: ranking_model.RankingModel,
    queries: data_examples.EvalQueries,
    max_ranker_positives: Optional[int] = sampling.MAX_EVAL_POSITIVES,
    prior: Optional[repeat_prior.RepeatPrior] = None,
    blend: Optional[blend_lib.Blend] = None,
    per_query: Optional[dict] = None,
    item_vectors: Optional[np.ndarray] = None,
    available: Optional[np.ndarray] = None,
) -> dict:
    """Retrieval-only against retrieve-then-rank, on the retrieval evaluation's test queries.

    The protocol (tfrec.evaluation.protocol, full catalog, pessimistic ties) is the same for
    both pipelines, query by query:

    * Retrieval-only ranks the whole catalog by query-item dot product plus the repeat prior
      (`prior`), i.e. tfrec's retrieval score as served.
    * Two-stage keeps the retrieval top N (`recommend.retrieve_n`, capped at the catalog) and
      re-orders them by the final score as served: `blend` of the retrieval score and the
      ranker's combined score (`Recommender`'s weighted sum of head probabilities, weights
      `ranking.loss_weights`). Every other item ranks after those N, in retrieval order: a
      relevant item the first stage missed is a miss at 10 and only earns MRR credit from
      beyond rank N.
    * No business rules (no purchase exclusion, no category cap), so the two lists differ only
      by the ranker. With `eval.exclude_seen`, previously seen items are removed before the
      top N is taken, and from the ranking and the relevant sets of both, as in `tfrec evaluate`.

    Reported: Recall@10, NDCG@10, HitRate@10, MRR, and Recall@N (equal for both: the share of
    relevant items the first stage retrieved, the ceiling of re-ranking). The ranker's own
    per-head AUC and log loss are measured on test ranking examples built like its training
    examples (groups from the test window, retrieval top-N hard negatives plus random ones; at
    most `max_ranker_positives` positives).

    Args:
        config: Config. `recommend.retrieve_n`, `ranking`, `eval.exclude_seen`.
        prepared: PreparedData.
        retrieval_model: RetrievalModel. The first stage.
        ranker: RankingModel. The second stage.
        queries: EvalQueries. The test queries (e.g. `prepared.test`).
        max_ranker_positives: int or None. Cap on positives of the test ranking examples.
        prior: RepeatPrior or None. The retrieval stage's repeat prior.
        blend: Blend or None. The final score; None ranks by the ranker alone.
        per_query: dict or None. When given, filled with `retrieval_only` and `two_stage`:
            each `EvalResult.per_query` (metric -> value per query), for paired comparisons.
        item_vectors: float array [num_items, dim] or None. The catalog embeddings when the
            caller has them; None embeds the catalog again.
        available: bool array [num_items] or None. The catalog as known at the test start
            (`protocol.evaluate`): other items are neither retrieved nor relevant.

    Returns:
        dict: `protocol`, `retrieve_n`, `retrieval_only` and `two_stage` (EvalResult.to_dict()),
        `ranker` (head -> {auc, log_loss} or {rmse}, plus `examples`), `seconds`.
    """
    start_time = time.perf_counter()
    num_items = len(prepared.table)
    prior = prior or repeat_prior.RepeatPrior()
    blend = blend or blend_lib.Blend()
    stages = stage_scores(
        config,
        prepared,
        retrieval_model,
        ranker,
        queries,
        prior,
        item_vectors=item_vectors,
        available=available,
    )
    n = stages.candidates.shape[1]
    exclude, retrieval_scores = stages.exclude, stages.full_retrieval
    final = blend.combine(stages.retrieval, stages.ranker)
    blocked = np.flatnonzero(~available) if available is not None else np.zeros(0, np.int64)

    def two_stage_scores(start: int, end: int) -> np.ndarray:
        scores = retrieval_scores(start, end).astype(np.float64)
        if exclude is not None:
            for row in range(start, end):
                scores[row - start, exclude[row]] = -np.inf
        scores[:, blocked] = -np.inf
        rows = np.arange(end - start)[:, None]
        top, rank_scores = stages.candidates[start:end], final[start:end]
        outside = scores.copy()
        outside[rows, top] = -np.inf
        floor = np.max(outside, axis=1, keepdims=True)
        floor = np.where(np.isfinite(floor), floor, 0.0)
        # Strictly above every other item, ordered by the final score among themselves.
        lowest = rank_scores.min(axis=1, keepdims=True)
        scores[rows, top] = floor + 1.0 + (rank_scores - lowest)
        return scores

    ks = tuple(sorted({K, n, *config.eval.ks}))
    results = {
        name: protocol.evaluate(
            fn, stages.relevant, num_items, ks=ks, exclude=exclude, available=available
        )
        for name, fn in (
            ("retrieval_only", retrieval_scores),
            ("two_stage", two_stage_scores),
        )
    }
    if per_query is not None:
        per_query.update({name: r.per_query for name, r in results.items()})
    test_q, test_pairs = sampling.labeled_examples(
        config,
        prepared,
        retrieval_model,
        ranker.heads,
        start=prepared.split.test_start,
        end=None,
        max_positives=max_ranker_positives,
        seed=config.train.seed + 2,
        item_vectors=stages.item_vectors,
        prior=prior,
    )
    catalog = sampling.ranking_catalog(prepared)
    ranker_metrics: dict = {"examples": len(test_pairs)}
    if len(test_pairs):
        test_ds = dataset.make_dataset(test_pairs, test_q, catalog, ranker.heads, _RANK_BATCH)
        ranker_metrics.update(ranking_metrics.evaluate_heads(ranker.network, test_ds, ranker.heads))
    return {
        "protocol": {
            "queries": "the retrieval evaluation's test queries, full catalog",
            "two_stage": f"retrieve top {n}, re-rank by the blend of retrieval and ranker "
            f"scores (ranker weight {blend.alpha}); the rest follow in retrieval order",
            "business_rules": "none",
            "exclude_seen": config.eval.exclude_seen,
            "head_weights": {
                h: float(config.ranking.loss_weights.get(h, 1.0)) for h in ranker.heads
            },
            "ranker_weight": blend.alpha,
        },
        "retrieve_n": n,
        "retrieval_only": results["retrieval_only"].to_dict(),
        "two_stage": results["two_stage"].to_dict(),
        "ranker": ranker_metrics,
        "seconds": time.perf_counter() - start_time,
    }


def format_comparison(result: dict) -> str:
    """Side-by-side table of `evaluate_two_stage`, then the ranker's test metrics per head."""
    n = result["retrieve_n"]
    rows = {
        name.replace("_", "-"): protocol.EvalResult.from_dict(result[name])
        for name in ("retrieval_only", "two_stage")
    }
    columns = [f"recall@{K}", f"ndcg@{K}", f"hit_rate@{K}", "mrr", f"recall@{n}"]
    weight = result["protocol"].get("ranker_weight", 1.0)
    lines = [
        f"\n[two-stage] retrieve top {n}, re-rank with the ranker (its weight in the final "
        f"score {weight}; no business rules)",
        report.format_table(rows, metrics=list(dict.fromkeys(columns))),
    ]
    for head, values in result["ranker"].items():
        if isinstance(values, dict):
            shown = ", ".join(f"{k} {v:.4f}" for k, v in values.items())
            lines.append(
                f"ranker `{head}` on {result['ranker']['examples']:,} test examples: {shown}"
            )
    return "\n".join(lines)
