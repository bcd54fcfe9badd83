"""`tfrec evaluate`: tfrec, its baselines and the two-stage pipeline on the test split."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pandas as pd

from tfrec import artifact as artifact_lib
from tfrec import config as config_lib
from tfrec import errors, inference
from tfrec.evaluation import controls, protocol, report, significance
from tfrec.evaluation.baselines import tuning as baseline_tuning
from tfrec.models import repeat_prior
from tfrec.ranking import blend as blend_lib
from tfrec.ranking import training as ranking_training
from tfrec.ranking import two_stage
from tfrec.training import trainer


def _model_scorer(model, prepared, items=None):
    if items is None:
        items = inference.item_embeddings(model.candidate_model, prepared.table)
    queries = inference.query_embeddings(model.query_model, prepared.test, prepared.spec)
    return inference.dot_score_fn(queries, items)


def evaluate_workdir(workdir, prepared=None, overrides: Sequence[str] = ()) -> dict:
    """Evaluates a trained workdir and its baselines; writes `metrics.json`, prints tables.

    When the workdir holds a ranker, `metrics.json` also gets a `two_stage` section
    (`two_stage.evaluate_two_stage`: retrieval-only against retrieve-then-rank on the same
    test queries) and a side-by-side table is printed. `overrides` (`eval.key=value`) change
    how the model is evaluated (cut-offs, baselines, their grids, `exclude_seen`), never the
    model.
    """
    art = artifact_lib.Artifact(workdir)
    wd = art.workdir
    config = config_lib.with_overrides(art.config, overrides, allowed=("eval",))
    if prepared is None:
        prepared = art.prepared()
    test = prepared.test
    num_items = len(prepared.table.item_ids)
    relevant = [prepared.catalog_index(r) for r in test.relevant]
    exclude = [prepared.catalog_index(s) for s in test.seen] if config.eval.exclude_seen else None
    # The catalog as the shop knew it at the test start: items first seen later leave the
    # ranking and the relevant sets. Cold items are then those that entered after training.
    available = prepared.available_at(int(prepared.split.test_start))
    known_users = set(prepared.spec.users)
    segments = {
        "cold_items": (None, ~prepared.train_item_mask()),
        "cold_users": (np.array([u not in known_users for u in test.user_id]), None),
    }

    model = trainer.load_trained(config, wd.root, prepared)
    history_index = prepared.catalog_index(test.history_item_ids)
    prior = repeat_prior.RepeatPrior.load(wd.repeat_prior)
    # Embedded once: the two-stage comparison below ranks over the same catalog vectors.
    item_vectors = inference.item_embeddings(model.candidate_model, prepared.table)
    own = _model_scorer(model, prepared, item_vectors)
    # tfrec's score is the two-tower's plus the repeat prior tuned on validation; the tower
    # alone is reported too, so the prior's share of the result is visible.
    scorers = {"tfrec": prior.apply(own, history_index), "tfrec_towers_only": own}
    names = config.eval.baselines
    unknown = sorted(set(names) - set(baseline_tuning.NAMES) - {"id_two_tower"})
    if unknown:
        raise errors.ConfigError(
            f"`eval.baselines` may name {sorted(baseline_tuning.NAMES) + ['id_two_tower']}, "
            f"received unknown {unknown}"
        )
    if "id_two_tower" in names and wd.baseline("id_two_tower").best.exists():
        base = trainer.load_trained(
            config, wd.baseline("id_two_tower").root, prepared, kind="id_two_tower"
        )
        scorers["id_two_tower"] = _model_scorer(base, prepared)
    # Every other baseline is fitted on the training window and tuned on validation, as
    # tfrec's own repeat prior and blend are; the chosen values are reported with the results.
    classical = [n for n in names if n in baseline_tuning.NAMES]
    tuned = baseline_tuning.tuned_scorers(prepared, config, classical, progress=True)
    scorers.update({name: t.score_fn for name, t in tuned.items()})
    # Controls of the cold-item segment: new items first, knowing nothing else about them.
    scorers.update(
        controls.cold_item_controls(
            ~prepared.train_item_mask(), prepared.first_seen(), config.train.seed
        )
    )

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
            available=available,
        )
    out = {
        "protocol": {
            "split": "temporal",
            "test_queries": len(relevant),
            "catalog_items": int(available.sum()),
            "catalog": "items first seen before the test start (or listed without events)",
            "exclude_seen": config.eval.exclude_seen,
            "baselines_fit": "training + validation windows"
            if config.eval.refit_baselines
            else "training window",
            "ranking": "full catalog, no sampled negatives",
        },
        "split": prepared.split.report(),
        "models": {name: r.to_dict() for name, r in results.items()},
        "baselines": {
            name: {"params": t.params, "validation": t.metrics, "seconds": t.seconds}
            for name, t in tuned.items()
        },
    }
    per_query = {name: r.per_query for name, r in results.items()}
    if ranking_training.has_ranker(wd.root):
        ranker = ranking_training.load_ranker(config, wd.root, prepared, model)
        stages: dict = {}
        out["two_stage"] = two_stage.evaluate_two_stage(
            config,
            prepared,
            model,
            ranker,
            test,
            prior=prior,
            blend=blend_lib.Blend.load(ranking_training.blend_path(wd.root)),
            per_query=stages,
            item_vectors=item_vectors,
            available=available,
        )
        per_query["tfrec_two_stage"] = stages["two_stage"]
    baseline_names = [n for n in results if n in tuned or n == "id_two_tower"]
    out["comparisons"] = _compare_with_best_baseline(per_query, baseline_names, config.eval.ks)
    _write_per_query(wd.root / "per_query.parquet", test, per_query)
    config_lib.write_text_atomic(wd.metrics, json.dumps(out, indent=2, default=_json_default))
    for segment in ("all", "cold_items", "cold_users"):
        print(f"\n[{segment}]")
        print(report.format_table(results, segment=segment))
    if "two_stage" in out:
        print(two_stage.format_comparison(out["two_stage"]))
    else:
        print(f"\n[two-stage] skipped: workdir `{wd.root}` holds no trained ranker")
    print(report.format_comparisons(out["comparisons"]))
    return out


# The metrics of the significance family: one list length for the page, one for the catalog.
_COMPARED = ("recall@10", "recall@50", "ndcg@10", "mrr")


def _compare_with_best_baseline(per_query: dict, baselines: list, ks) -> dict:
    """tfrec's served pipelines minus the best baseline of each metric, paired per query.

    The best baseline of a metric is the one with the highest test mean: the hardest
    comparison. Intervals are paired bootstraps over the test queries; p-values are
    Holm-corrected across the compared metrics of each pipeline.
    """
    metrics = tuple(m for m in _COMPARED if m == "mrr" or int(m.split("@")[1]) in ks)
    out: dict = {}
    if not baselines:
        return out
    for model in ("tfrec", "tfrec_two_stage"):
        if model not in per_query:
            continue
        best = {m: max(baselines, key=lambda b: _mean(per_query[b][m])) for m in metrics}
        compared = significance.compare(
            per_query[model], {m: per_query[best[m]][m] for m in metrics}, metrics
        )
        out[model] = {m: dict(compared[m], baseline=best[m]) for m in metrics}
    return out


def _mean(values: np.ndarray) -> float:
    return float(np.nanmean(values))


def _write_per_query(path, queries, per_query: dict) -> None:
    """Every model's per-query metrics beside the query's user and time, for later analysis."""
    frame = pd.DataFrame({"user_id": queries.user_id, "timestamp": queries.timestamp})
    columns = {
        f"{model}/{metric}": values
        for model, by_metric in per_query.items()
        for metric, values in by_metric.items()
    }
    frame = pd.concat([frame, pd.DataFrame(columns)], axis=1)
    tmp = path.with_name(f".{path.name}.tmp")
    frame.to_parquet(tmp, index=False)
    tmp.replace(path)


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(type(o))
