"""The two-stage recommender of a trained workdir, and its offline comparison with retrieval."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Optional

import numpy as np
import pandas as pd
import tensorflow as tf

from tfrec import config as config_lib
from tfrec import features, inference
from tfrec.data import prepared as prepared_lib
from tfrec.evaluation import protocol, report
from tfrec.models import repeat_prior
from tfrec.ranking import dataset, examples, recommender, sampling, training
from tfrec.ranking import metrics as ranking_metrics
from tfrec.training import trainer
from tfrec.training import workdir as workdir_lib

# Cut-off of the reported comparison (the size of a recommendation list).
K = 10
_RANK_BATCH = 8192


def retrieval_fn(
    query_model,
    spec,
    item_ids,
    item_vectors: np.ndarray,
    clock: Callable[[], float] = time.time,
    prior: Optional[repeat_prior.RepeatPrior] = None,
):
    """A `Recommender.retrieve_fn` from the trained query tower and the catalog embeddings.

    Brute-force dot products over the catalog (an ANN index would replace this at scale). The
    request time for the hour and weekday features is `clock()` (UTC unix seconds).

    Args:
        query_model: tf.keras.Model. The retrieval query tower.
        spec: FeatureSpec. `max_history`, `query_text_length` and the WordPiece vocabulary.
        item_ids: array [num_items] of str. The catalog, rows of `item_vectors`.
        item_vectors: np.ndarray [num_items, dim]. Candidate tower embeddings.
        clock: callable returning unix seconds. Defaults to time.time.
        prior: RepeatPrior or None. The retrieval stage's repeat prior.

    Returns:
        callable (user_id, recent_item_ids, recent_event_types, query_text, n) ->
        (item_ids [min(n, num_items)], scores), best first.
    """
    item_ids = np.asarray(item_ids, dtype=object)
    item_vectors = np.asarray(item_vectors, np.float32)
    rows = pd.Index(item_ids)
    tokenizer = None
    length = spec.max_history

    def retrieve(user_id, recent_item_ids, recent_event_types, query_text, n):
        nonlocal tokenizer
        history = [str(i) for i in recent_item_ids][:length]
        events = [str(e) for e in recent_event_types][:length]
        history += [""] * (length - len(history))
        events += [""] * (length - len(events))
        if query_text:
            tokenizer = tokenizer or spec.tokenizer(spec.query_text_length)
            tokens = tf.cast(tokenizer(tf.constant([str(query_text)])), tf.int32)
        else:
            tokens = tf.zeros([1, spec.query_text_length], tf.int32)
        now = int(clock())
        request = {
            features.USER_ID: tf.constant([str(user_id)]),
            features.HISTORY_ITEM_IDS: tf.constant([history]),
            features.HISTORY_EVENT_TYPES: tf.constant([events]),
            features.HOUR_OF_DAY: tf.constant([(now // 3600) % 24], tf.int32),
            features.DAY_OF_WEEK: tf.constant([(now // 86400 + 3) % 7], tf.int32),  # Thu epoch
            features.QUERY_TOKEN_IDS: tokens,
        }
        query = np.asarray(query_model(request, training=False), np.float32)
        history_index = rows.get_indexer(np.asarray([history], dtype=object).ravel())[None, :]
        top = sampling.retrieve_top_n(
            query, item_vectors, n, prior=prior, history_index=history_index
        )[0]
        scores = item_vectors[top] @ query[0]
        if prior is not None:
            scores = scores + prior.weights(history_index, len(item_ids))[0, top]
        return item_ids[top], scores

    return retrieve


def build_recommender(
    config: config_lib.Config, workdir, prepared: prepared_lib.PreparedData
) -> recommender.Recommender:
    """The served pipeline of a trained workdir: retrieve, rank, business rules, explain.

    Rules and list sizes come from `config.recommend`; the combined ranking score weighs the
    heads by `config.ranking.loss_weights` (missing heads weigh 1).

    Raises:
        errors.WorkdirError: the workdir holds no retrieval model or no ranker.
    """
    retrieval = trainer.load_trained(config, workdir, prepared)
    ranker = training.load_ranker(config, workdir, prepared, retrieval)
    items = inference.item_embeddings(retrieval.candidate_model, prepared.table)
    catalog = sampling.ranking_catalog(prepared)
    prior = repeat_prior.RepeatPrior.load(workdir_lib.Workdir(workdir).repeat_prior)
    return recommender.Recommender(
        retrieval_fn(retrieval.query_model, prepared.spec, catalog.item_id, items, prior=prior),
        ranker,
        list(catalog.item_id),
        list(catalog.item_category),
        items,
        retrieve_n=config.recommend.retrieve_n,
        exclude_event_types=config.recommend.exclude_event_types,
        max_per_category=config.recommend.max_per_category,
        head_weights=dict(config.ranking.loss_weights),
        item_prices=catalog.item_price,
    )


def _ranker_scores(ranker, queries, catalog, candidates, head_weights) -> np.ndarray:
    """Combined ranker scores [num_queries, N] of each query's candidates."""
    heads = ranker.heads
    n = candidates.shape[1]
    pairs = examples.LabeledPairs(
        np.repeat(np.arange(len(candidates)), n),
        candidates.ravel(),
        np.zeros([candidates.size, len(heads)], np.float32),
    )
    ds = dataset.make_dataset(pairs, queries, catalog, heads, _RANK_BATCH)
    network = ranker.network
    parts = [
        recommender.combined_score(network(batch, training=False), head_weights) for batch, _ in ds
    ]
    scores = np.concatenate(parts) if parts else np.zeros([0])
    return scores.reshape(candidates.shape)


def evaluate_two_stage(
    config: config_lib.Config,
    prepared: prepared_lib.PreparedData,
    retrieval_model,
    ranker,
    queries,
    max_ranker_positives: Optional[int] = sampling.MAX_EVAL_POSITIVES,
    prior: Optional[repeat_prior.RepeatPrior] = None,
) -> dict:
    """Retrieval-only against retrieve-then-rank, on the retrieval evaluation's test queries.

    The protocol (tfrec.evaluation.protocol, full catalog, pessimistic ties) is the same for
    both pipelines, query by query:

    * Retrieval-only ranks the whole catalog by query-item dot product plus the repeat prior
      (`prior`), i.e. tfrec's retrieval score as served.
    * Two-stage keeps the retrieval top N (`recommend.retrieve_n`, capped at the catalog) and
      re-orders them by the ranker's combined score (`Recommender`'s weighted sum of head
      probabilities, weights `ranking.loss_weights`). Every other item ranks after those N,
      in retrieval order: a relevant item the first stage missed is a miss at 10 and only
      earns MRR credit from beyond rank N.
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

    Returns:
        dict: `protocol`, `retrieve_n`, `retrieval_only` and `two_stage` (EvalResult.to_dict()),
        `ranker` (head -> {auc, log_loss} or {rmse}, plus `examples`), `seconds`.
    """
    start_time = time.perf_counter()
    num_items = len(prepared.table)
    n = min(config.recommend.retrieve_n, num_items)
    relevant = [prepared.catalog_index(r) for r in queries.relevant]
    exclude = (
        [prepared.catalog_index(s) for s in queries.seen] if config.eval.exclude_seen else None
    )
    items = inference.item_embeddings(retrieval_model.candidate_model, prepared.table)
    query_vectors = inference.query_embeddings(retrieval_model.query_model, queries, prepared.spec)
    prior = prior or repeat_prior.RepeatPrior()
    history_index = prepared.catalog_index(queries.history_item_ids)
    retrieval_scores = prior.apply(inference.dot_score_fn(query_vectors, items), history_index)
    candidates = sampling.retrieve_top_n(
        query_vectors, items, n, exclude, prior=prior, history_index=history_index
    )
    head_weights = {h: float(config.ranking.loss_weights.get(h, 1.0)) for h in ranker.heads}
    catalog = sampling.ranking_catalog(prepared)
    combined = _ranker_scores(ranker, queries, catalog, candidates, head_weights)

    def two_stage_scores(start: int, end: int) -> np.ndarray:
        scores = retrieval_scores(start, end).astype(np.float64)
        if exclude is not None:
            for row in range(start, end):
                scores[row - start, exclude[row]] = -np.inf
        rows = np.arange(end - start)[:, None]
        top, rank_scores = candidates[start:end], combined[start:end]
        outside = scores.copy()
        outside[rows, top] = -np.inf
        floor = np.max(outside, axis=1, keepdims=True)
        floor = np.where(np.isfinite(floor), floor, 0.0)
        # Strictly above every other item, ordered by the ranker among themselves.
        lowest = rank_scores.min(axis=1, keepdims=True)
        scores[rows, top] = floor + 1.0 + (rank_scores - lowest)
        return scores

    ks = tuple(sorted({K, n}))
    results = {
        name: protocol.evaluate(fn, relevant, num_items, ks=ks, exclude=exclude)
        for name, fn in (
            ("retrieval_only", retrieval_scores),
            ("two_stage", two_stage_scores),
        )
    }
    test_q, test_pairs = sampling.labeled_examples(
        config,
        prepared,
        retrieval_model,
        ranker.heads,
        start=prepared.split.test_start,
        end=None,
        max_positives=max_ranker_positives,
        seed=config.train.seed + 2,
        item_vectors=items,
        prior=prior,
    )
    ranker_metrics: dict = {"examples": len(test_pairs)}
    if len(test_pairs):
        test_ds = dataset.make_dataset(test_pairs, test_q, catalog, ranker.heads, _RANK_BATCH)
        ranker_metrics.update(ranking_metrics.evaluate_heads(ranker.network, test_ds, ranker.heads))
    return {
        "protocol": {
            "queries": "the retrieval evaluation's test queries, full catalog",
            "two_stage": f"retrieve top {n}, re-rank by the ranker's combined score; the rest "
            "follow in retrieval order",
            "business_rules": "none",
            "exclude_seen": config.eval.exclude_seen,
            "head_weights": head_weights,
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
    lines = [
        f"\n[two-stage] retrieve top {n}, re-rank with the ranker (no business rules)",
        report.format_table(rows, metrics=list(dict.fromkeys(columns))),
    ]
    for head, values in result["ranker"].items():
        if isinstance(values, dict):
            shown = ", ".join(f"{k} {v:.4f}" for k, v in values.items())
            lines.append(
                f"ranker `{head}` on {result['ranker']['examples']:,} test examples: {shown}"
            )
    return "\n".join(lines)
