"""What an experiment's runs wrote, gathered, and the comparison of each variant with the reference.

A variant's number for a metric is its mean over seeds with a t-interval over seeds (the
seed-to-seed spread is what a retrain would show). Its difference from the reference is paired
per test query: each query's value is averaged over the seeds of each variant, then
`tfrec.evaluation.significance` gives a paired bootstrap interval and a Wilcoxon p-value, and
the p-values of every (variant, metric) pair are Holm-adjusted together.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd
from scipy import stats

from tfrec.evaluation import significance
from tfrec.experiments import runner
from tfrec.experiments import spec as spec_lib

CONFIDENCE = 0.95
SERVING = "serving.json"
SEGMENTS = "segments.parquet"


@dataclasses.dataclass
class Run:
    """One variant and seed as found on disk."""

    variant: str
    seed: int
    workdir: Path
    status: str  # done | failed | pending
    error: str = ""
    details: str = ""
    per_query: Optional[pd.DataFrame] = None
    fingerprint: str = ""
    info: dict = dataclasses.field(default_factory=dict)  # done.json: wall times, code version


@dataclasses.dataclass
class Results:
    """Every run of an experiment, plus what was measured per variant after training."""

    experiment: spec_lib.Experiment
    runs: dict  # (variant, seed) -> Run
    serving: dict  # variant -> serving.json content (latency, size, examples) or {}
    segments: Optional[pd.DataFrame]  # one row per test query: segment labels

    def variant_runs(self, variant: str) -> list[Run]:
        return [self.runs[(variant, s)] for s in self.experiment.seeds]

    def status(self, variant: str) -> str:
        """`done` when every seed finished, `failed` when one failed, else `pending`."""
        states = {r.status for r in self.variant_runs(variant)}
        if states == {"done"}:
            return "done"
        return "failed" if "failed" in states else "pending"

    def error(self, variant: str) -> str:
        failed = [r for r in self.variant_runs(variant) if r.status == "failed"]
        return f"seed {failed[0].seed}: {failed[0].error}" if failed else ""

    def done(self) -> list[str]:
        return [v for v in self.experiment.variants if self.status(v) == "done"]

    def values(self, variant: str, metric: str) -> np.ndarray:
        """[seeds, queries] per-query values of `metric` for the variant's measured pipeline."""
        model = self.experiment.variants[variant].model
        return np.stack([_column(r, f"{model}/{metric}") for r in self.variant_runs(variant)])

    def baseline_values(self, baseline: str, metric: str) -> Optional[np.ndarray]:
        """[seeds, queries] of a baseline, from the reference's runs (None if not evaluated)."""
        runs = self.variant_runs(self.experiment.reference)
        column = f"{baseline}/{metric}"
        if any(r.per_query is None or column not in r.per_query for r in runs):
            return None
        return np.stack([_column(r, column) for r in runs])


def _column(run: Run, column: str) -> np.ndarray:
    if run.per_query is None:
        raise ValueError(f"run `{run.workdir}` holds no per-query metrics (status {run.status})")
    return run.per_query[column].to_numpy(np.float64)


def gather(experiment: spec_lib.Experiment) -> Results:
    """Reads every run's status, errors and per-query metrics; nothing is computed again."""
    runs = {}
    for variant in experiment.variants:
        for seed in experiment.seeds:
            wd = experiment.run_dir(variant, seed)
            state = runner.status(wd)
            run = Run(variant, seed, wd, state)
            if state == "failed":
                failed = runner.read_json(wd / runner.FAILED) or {}
                run.error, run.details = (
                    str(failed.get("error", "")),
                    str(failed.get("details", "")),
                )
            if state == "done":
                run.info = runner.read_json(wd / runner.DONE) or {}
                path = wd / "artifact" / "per_query.parquet"
                if path.is_file():
                    run.per_query = pd.read_parquet(path)
                else:
                    run.status, run.error = "failed", f"`{path}` is missing"
                manifest = runner.read_json(wd / "artifact" / "artifact.json") or {}
                run.fingerprint = str(manifest.get("data", {}).get("fingerprint", ""))
            runs[(variant, seed)] = run
    serving = {
        v: runner.read_json(experiment.output / v / SERVING) or {} for v in experiment.variants
    }
    segments_path = experiment.output / SEGMENTS
    segments = pd.read_parquet(segments_path) if segments_path.is_file() else None
    return Results(experiment, runs, serving, segments)


def nanmean(values: np.ndarray, axis: Optional[int] = None) -> Any:
    """`np.nanmean` without its warning for queries that count for no seed (they stay NaN)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values, axis=axis)


def seed_interval(values: np.ndarray, confidence: float = CONFIDENCE) -> dict[str, float]:
    """Mean of per-seed values with a Student-t interval over the seeds."""
    values = np.asarray(values, np.float64)
    mean = float(values.mean())
    if values.size < 2 or np.all(values == values[0]):
        return {"mean": mean, "low": mean, "high": mean, "seeds": int(values.size)}
    low, high = stats.t.interval(confidence, values.size - 1, loc=mean, scale=stats.sem(values))
    return {"mean": mean, "low": float(low), "high": float(high), "seeds": int(values.size)}


def same_queries(results: Results, a: str, b: str) -> bool:
    """Whether two variants were evaluated on the same test queries (pairing needs it)."""
    first_a, first_b = results.variant_runs(a)[0].per_query, results.variant_runs(b)[0].per_query
    if first_a is None or first_b is None or len(first_a) != len(first_b):
        return False
    keys = ["user_id", "timestamp"]
    return bool((first_a[keys].to_numpy() == first_b[keys].to_numpy()).all())


def summarize(results: Results) -> dict[str, Any]:
    """The summary table's numbers and the verdict.

    Returns:
        dict: `metrics` variant -> metric -> seed interval; `differences` variant -> metric ->
        paired difference against the reference (with `p_holm`, `significant`) or a `reason`
        it could not be computed; `winner` (a variant or None) and `verdict` (one sentence).
    """
    exp = results.experiment
    done = results.done()
    table = {
        v: {m: seed_interval(nanmean(results.values(v, m), axis=1)) for m in exp.metrics}
        for v in done
    }
    differences: dict[str, dict[str, Any]] = {}
    raw_p: dict[str, float] = {}
    ref = exp.reference
    for v in done:
        if v == ref:
            continue
        if ref not in done:
            differences[v] = {
                m: {"reason": f"reference `{ref}` did not finish"} for m in exp.metrics
            }
            continue
        if not same_queries(results, v, ref):
            reason = "evaluated on other test queries than the reference: not paired"
            differences[v] = {m: {"reason": reason} for m in exp.metrics}
            continue
        differences[v] = {}
        for i, m in enumerate(exp.metrics):
            a = nanmean(results.values(v, m), axis=0)
            b = nanmean(results.values(ref, m), axis=0)
            differences[v][m] = significance.paired_difference(a, b, CONFIDENCE, seed=i)
            raw_p[f"{v}\t{m}"] = differences[v][m]["p_value"]
    adjusted = significance.holm(raw_p)
    for key, p in adjusted.items():
        v, m = key.split("\t")
        d = differences[v][m]
        d["p_holm"] = p
        d["significant"] = bool((d["low"] > 0 or d["high"] < 0) and p < 1 - CONFIDENCE)
    winner, verdict = _verdict(exp, table, differences, done)
    return {"metrics": table, "differences": differences, "winner": winner, "verdict": verdict}


def _verdict(exp, table, differences, done) -> tuple[Optional[str], str]:
    primary, ref = exp.primary, exp.reference
    better = [
        v
        for v, by_metric in differences.items()
        if by_metric[primary].get("significant") and by_metric[primary]["difference"] > 0
    ]
    if ref not in done:
        return None, f"The reference `{ref}` did not finish: no variant can be compared with it."
    if better:
        best = max(better, key=lambda v: table[v][primary]["mean"])
        d = differences[best][primary]
        return best, (
            f"Ship `{best}`: {primary} {d['difference']:+.4f} over `{ref}` (95% CI "
            f"{d['low']:+.4f} to {d['high']:+.4f}, Holm-adjusted p {format_p(d['p_holm'])}, "
            f"{d['queries']} paired test queries)."
        )
    worse = [
        v
        for v, by_metric in differences.items()
        if by_metric[primary].get("significant") and by_metric[primary]["difference"] < 0
    ]
    tail = f" ({', '.join(f'`{v}`' for v in worse)} significantly worse)" if worse else ""
    return None, (
        f"No variant beats the reference `{ref}` on {primary} with 95% confidence after the "
        f"Holm correction: keep `{ref}`{tail}."
    )


def format_p(p: float) -> str:
    """`= 0.012`, or `< 0.001` for smaller p-values."""
    return "< 0.001" if p < 0.001 else f"= {p:.3f}"


def recall_curve(results: Results, variant: str, max_k: int = spec_lib.MAX_K) -> np.ndarray:
    """Mean recall@k over seeds for k = 1..max_k (NaN where k was not evaluated)."""
    out = np.full(max_k, math.nan)
    for k in range(1, max_k + 1):
        try:
            out[k - 1] = float(nanmean(results.values(variant, f"recall@{k}")))
        except KeyError:
            pass
    return out
