"""`tfrec evaluate`: tfrec, its baselines and the two-stage pipeline on the test split."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from tfrec import artifact as artifact_lib
from tfrec import config as config_lib
from tfrec import inference
from tfrec.evaluation import baselines as baselines_lib
from tfrec.evaluation import protocol, report
from tfrec.models import repeat_prior
from tfrec.ranking import blend as blend_lib
from tfrec.ranking import training as ranking_training
from tfrec.ranking import two_stage
from tfrec.training import trainer


def _model_scorer(model, prepared):
    items = inference.item_embeddings(model.candidate_model, prepared.table)
    queries = inference.query_embeddings(model.query_model, prepared.test, prepared.spec)
    return inference.dot_score_fn(queries, items)


def evaluate_workdir(workdir, prepared=None) -> dict:
    """Evaluates a trained workdir and its baselines; writes `metrics.json`, prints tables.

    When the workdir holds a ranker, `metrics.json` also gets a `two_stage` section
    (`two_stage.evaluate_two_stage`: retrieval-only against retrieve-then-rank on the same
    test queries) and a side-by-side table is printed.
    """
    art = artifact_lib.Artifact(workdir)
    wd = art.workdir
    config = art.config
    if prepared is None:
        prepared = art.prepared()
    test = prepared.test
    num_items = len(prepared.table.item_ids)
    relevant = [prepared.catalog_index(r) for r in test.relevant]
    exclude = [prepared.catalog_index(s) for s in test.seen] if config.eval.exclude_seen else None
    known_users = set(prepared.spec.users)
    segments = {
        "cold_items": (None, ~prepared.train_item_mask()),
        "cold_users": (np.array([u not in known_users for u in test.user_id]), None),
    }

    model = trainer.load_trained(config, wd.root, prepared)
    history_index = prepared.catalog_index(test.history_item_ids)
    prior = repeat_prior.RepeatPrior.load(wd.repeat_prior)
    own = _model_scorer(model, prepared)
    # tfrec's score is the two-tower's plus the repeat prior tuned on validation; the tower
    # alone is reported too, so the prior's share of the result is visible.
    scorers = {"tfrec": prior.apply(own, history_index), "tfrec_towers_only": own}
    names = config.eval.baselines
    train_items = prepared.catalog_index(prepared.split.train["item_id"].to_numpy())
    popular = baselines_lib.MostPopular.from_interactions(train_items, num_items)
    if "buy_again" in names:
        # Recency-weighted recent events, popularity breaking ties: the "buy it again" heuristic.
        tie_break = popular(0, 1)[0]
        tie_break = (tie_break / max(1.0, float(tie_break.max())) * 1e-3).astype(np.float32)
        scorers["buy_again"] = repeat_prior.RepeatPrior(1.0, 0.9).apply(
            lambda s, e: np.broadcast_to(tie_break, (e - s, num_items)).copy(), history_index
        )
    if "id_two_tower" in names and wd.baseline("id_two_tower").best.exists():
        base = trainer.load_trained(
            config, wd.baseline("id_two_tower").root, prepared, kind="id_two_tower"
        )
        scorers["id_two_tower"] = _model_scorer(base, prepared)
    if "most_popular" in names:
        scorers["most_popular"] = popular
    if "als" in names and baselines_lib.ALSBaseline.available():
        users = pd.Index(prepared.spec.users)
        als = baselines_lib.ALSBaseline().fit(
            users.get_indexer(prepared.split.train["user_id"].to_numpy()),
            train_items,
            len(users),
            num_items,
        )
        scorers["als"] = als.scorer(users.get_indexer(np.asarray(test.user_id, dtype=object)))

    results = {}
    for name, score_fn in scorers.items():
        results[name] = protocol.evaluate(
            score_fn,
            relevant,
            num_items,
            ks=config.eval.ks,
            exclude=exclude,
            segments=segments,
            progress=True,
        )
    out = {
        "protocol": {
            "split": "temporal",
            "test_queries": len(relevant),
            "catalog_items": num_items,
            "exclude_seen": config.eval.exclude_seen,
            "ranking": "full catalog, no sampled negatives",
        },
        "split": prepared.split.report(),
        "models": {name: r.to_dict() for name, r in results.items()},
    }
    if ranking_training.has_ranker(wd.root):
        ranker = ranking_training.load_ranker(config, wd.root, prepared, model)
        out["two_stage"] = two_stage.evaluate_two_stage(
            config,
            prepared,
            model,
            ranker,
            test,
            prior=prior,
            blend=blend_lib.Blend.load(ranking_training.blend_path(wd.root)),
        )
    config_lib.write_text_atomic(wd.metrics, json.dumps(out, indent=2, default=_json_default))
    for segment in ("all", "cold_items", "cold_users"):
        print(f"\n[{segment}]")
        print(report.format_table(results, segment=segment))
    if "two_stage" in out:
        print(two_stage.format_comparison(out["two_stage"]))
    else:
        print(f"\n[two-stage] skipped: workdir `{wd.root}` holds no trained ranker")
    return out


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(type(o))
