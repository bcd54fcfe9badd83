"""The compression report: quality, latency and size of each variant against float32, and targets."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Hashable, Mapping
from pathlib import Path
from typing import Any, Optional, TypeVar

import numpy as np

from tfrec import config as config_lib
from tfrec.compression import report_markdown
from tfrec.data import prepared as prepared_lib
from tfrec.evaluation import protocol
from tfrec.models import repeat_prior

# The settings of `config.CompressionConfig` that are targets the report checks. Sizes are
# ratios to the float32 artifact of the same format.
TARGET_SETTINGS = (
    "int8_size_ratio",  # int8 served artifacts (raw bytes)
    "pruned_80_gzip_ratio",  # 80%-pruned, gzipped, against float32 gzipped
    "max_relative_quality_loss",  # int8 and 50%-pruned: Recall@50 and NDCG@10 (ranker: AUC)
    "sparsity_tolerance",  # every pruned weight within this of its target after strip
)
INT8_VARIANTS = (
    "int8_savedmodel",
    "int8_tflite",
    "int8_tflite_full",
    "ranker_int8_savedmodel",
    "ranker_int8_tflite",
    "ranker_int8_tflite_full",
)
QUALITY_METRICS = ("recall@50", "ndcg@10")
KS = (10, 50)

Key = TypeVar("Key", bound=Hashable)


class EvalContext:
    """The test split under the protocol of `tfrec evaluate`: relevant sets, exclusion, catalog.

    `tfrec evaluate` reports two scores: the served one (`tfrec`: the towers' dot product plus
    the repeat prior) and the towers' own (`tfrec_towers_only`). Compression only touches the
    towers, and the prior dilutes their share of the score, so both are measured: the towers'
    own scores are where compression shows, the served ones are what users get.

    Args:
        prepared: PreparedData.
        exclude_seen: bool. `config.eval.exclude_seen`.
        prior: RepeatPrior or None. The run's repeat prior; None measures the towers only.
    """

    def __init__(
        self,
        prepared: prepared_lib.PreparedData,
        exclude_seen: bool,
        prior: Optional[repeat_prior.RepeatPrior] = None,
    ) -> None:
        test = prepared.test
        self.num_items = len(prepared.table.item_ids)
        self.relevant = [prepared.catalog_index(r) for r in test.relevant]
        self.exclude = [prepared.catalog_index(s) for s in test.seen] if exclude_seen else None
        self.exclude_seen = bool(exclude_seen)
        self.ks = tuple(k for k in KS if k <= self.num_items) or (self.num_items,)
        self.prior = prior
        self.history_index = (
            prepared.catalog_index(test.history_item_ids) if prior is not None else None
        )

    def metrics(self, queries: np.ndarray, items: np.ndarray) -> dict[str, Any]:
        """Recall@k, NDCG@k, MRR over all test queries: `queries @ items.T` on the full catalog.

        Args:
            queries: np.ndarray. Query embeddings `[test queries, dim]`, in test order.
            items: np.ndarray. Item embeddings `[catalog items, dim]`, in catalog order.

        Returns:
            The towers' own metrics, plus under `served` those of the served score (towers +
            repeat prior) when the context has a prior.
        """
        queries, items = np.asarray(queries, np.float32), np.asarray(items, np.float32)
        if queries.shape[0] != len(self.relevant) or items.shape[0] != self.num_items:
            raise ValueError(
                f"`queries` must be [{len(self.relevant)}, dim] and `items` [{self.num_items}, "
                f"dim], received {queries.shape} and {items.shape}"
            )

        def towers(start: int, end: int) -> np.ndarray:
            return queries[start:end] @ items.T

        result: dict[str, Any] = self._evaluate(towers)
        if self.prior is not None and self.history_index is not None:
            result["served"] = self._evaluate(self.prior.apply(towers, self.history_index))
        return result

    def _evaluate(self, score_fn: protocol.ScoreFn) -> dict[str, float]:
        result = protocol.evaluate(
            score_fn, self.relevant, self.num_items, ks=self.ks, exclude=self.exclude
        )
        return {k: float(v) for k, v in result.metrics["all"].items()}


def percentiles(seconds: list[float]) -> dict[str, float]:
    """p50 / p99 / mean in milliseconds."""
    ms = np.asarray(seconds, np.float64) * 1e3
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "mean_ms": float(ms.mean()),
        "calls": int(ms.size),
    }


def measure_latency(
    calls: Mapping[Key, Callable[[], Any]], num_calls: int, warmup: int = 3
) -> dict[Key, dict[str, float]]:
    """Times every callable `num_calls` times, interleaved round-robin.

    Interleaving gives each variant the same share of a shared, noisy machine: a burst of
    load slows all of them, not only the one measured at that moment.

    Args:
        calls: key (a name, or e.g. a `(variant, batch)` tuple) -> zero-argument callable
            (one inference).
        num_calls: int. Timed calls per callable.
        warmup: int. Untimed calls first (tracing, allocation). Defaults to 3.

    Returns:
        key -> `percentiles`.
    """
    if isinstance(num_calls, bool) or not isinstance(num_calls, int) or num_calls < 1:
        raise ValueError(f"`num_calls` must be an int >= 1, received {num_calls!r}")
    for fn in calls.values():
        for _ in range(warmup):
            fn()
    times: dict[Key, list[float]] = {name: [] for name in calls}
    for _ in range(num_calls):
        for name, fn in calls.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: percentiles(t) for name, t in times.items()}


def _ratio(value: Optional[float], base: Optional[float]) -> Optional[float]:
    if value is None or base in (None, 0) or (isinstance(base, float) and math.isnan(base)):
        return None
    return float(value) / float(base)


_NUMERIC = ("weights", "index")  # `sizes.savedmodel_parts` holding numbers, not graph or strings


def add_ratios(variants: dict[str, dict[str, Any]], baselines: Mapping[str, str]) -> None:
    """Adds size, latency and quality ratios of each variant to its baseline, in place.

    Args:
        variants: name -> variant dict (`size`, `latency`, `quality`).
        baselines: variant name -> name of the float32 variant it is compared with.
    """
    for name, variant in variants.items():
        base = variants[baselines[name]]
        variant["baseline"] = baselines[name]
        variant["size"]["raw_ratio"] = _ratio(
            variant["size"]["raw_bytes"], base["size"]["raw_bytes"]
        )
        variant["size"]["gzip_ratio"] = _ratio(
            variant["size"]["gzip_bytes"], base["size"]["gzip_bytes"]
        )
        parts, base_parts = variant["size"].get("parts"), base["size"].get("parts")
        if parts and base_parts:
            numeric = [parts[p]["raw_bytes"] for p in _NUMERIC]
            base_numeric = [base_parts[p]["raw_bytes"] for p in _NUMERIC]
            variant["size"]["numeric_raw_ratio"] = _ratio(sum(numeric), sum(base_numeric))
            variant["size"]["weights_gzip_ratio"] = _ratio(
                parts["weights"]["gzip_bytes"], base_parts["weights"]["gzip_bytes"]
            )
        for batch, stats in variant["latency"].items():
            stats["p50_ratio"] = _ratio(stats["p50_ms"], base["latency"][batch]["p50_ms"])
            stats["p99_ratio"] = _ratio(stats["p99_ms"], base["latency"][batch]["p99_ms"])
        change = _relative_changes(variant["quality"], base["quality"])
        if variant["quality"].get("served") and base["quality"].get("served"):
            change["served"] = _relative_changes(
                variant["quality"]["served"], base["quality"]["served"]
            )
        variant["quality_relative_change"] = change


def _relative_changes(quality: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    return {
        metric: None
        if base.get(metric) in (None, 0)
        else (quality[metric] - base[metric]) / base[metric]
        for metric in QUALITY_METRICS + ("auc",)
        if quality.get(metric) is not None
    }


def targets(settings: config_lib.CompressionConfig) -> dict[str, float]:
    """The targets among `settings` (`TARGET_SETTINGS`), by name: the report's `targets_spec`."""
    return {name: getattr(settings, name) for name in TARGET_SETTINGS}


def check_targets(
    variants: dict[str, dict[str, Any]],
    settings: config_lib.CompressionConfig = config_lib.CompressionConfig(),
) -> list[dict[str, Any]]:
    """Each target with its measured value and whether it was met (missing variants: None).

    The limits are `settings`' (`TARGET_SETTINGS`); the defaults are the project's targets.

    Besides the targets, rows marked "(part)" measure the same target on the part of
    the artifact compression can shrink: the numeric weights and index of an int8 SavedModel
    (not its graph and string tables), the tower weights of a pruned one (not its dense item
    index); and "pruned weights reach the target" checks sparsity per weight after strip.
    """
    out: list[dict[str, Any]] = []
    limits = targets(settings)
    int8_size = f"size <= {_percent(limits['int8_size_ratio'])} of float32 (raw)"
    gzip_size = f"gzipped size <= {_percent(limits['pruned_80_gzip_ratio'])} of float32 gzipped"
    loss = f"<= {_percent(limits['max_relative_quality_loss'])}"

    def add(
        target: str,
        variant: str,
        measured: Optional[float],
        limit: Optional[float],
        met: Optional[bool] = None,
    ) -> None:
        if variant not in variants or measured is None:
            out.append({"target": target, "variant": variant, "measured": None, "met": None})
            return
        ok = met if met is not None else limit is not None and measured <= limit
        out.append({"target": target, "variant": variant, "measured": measured, "met": bool(ok)})

    for name in INT8_VARIANTS:
        if name not in variants and name not in ("int8_savedmodel", "int8_tflite"):
            continue
        size = variants.get(name, {}).get("size", {})
        add(int8_size, name, size.get("raw_ratio"), limits["int8_size_ratio"])
        if size.get("numeric_raw_ratio") is not None:
            add(
                f"{int8_size}, numeric weights and index only (part)",
                name,
                size["numeric_raw_ratio"],
                limits["int8_size_ratio"],
            )
    size = variants.get("pruned_80", {}).get("size", {})
    limit = limits["pruned_80_gzip_ratio"]
    add(gzip_size, "pruned_80", size.get("gzip_ratio"), limit)
    if size.get("weights_gzip_ratio") is not None:
        add(
            f"{gzip_size}, tower weights only (part)",
            "pruned_80",
            size["weights_gzip_ratio"],
            limit,
        )
    tolerance = limits["sparsity_tolerance"]
    for name, variant in variants.items():
        sparsity = variant.get("sparsity", {})
        per_weight, target = sparsity.get("per_weight") or {}, sparsity.get("target")
        if target is not None and per_weight and not name.endswith("_qat"):
            lowest = min(per_weight.values())
            add(
                f"every pruned weight reaches its target sparsity (within {tolerance})",
                name,
                lowest,
                None,
                met=lowest >= target - tolerance,
            )
    limit = limits["max_relative_quality_loss"]
    for name in ("int8_savedmodel", "int8_tflite", "int8_tflite_full", "pruned_50"):
        if name == "int8_tflite_full" and name not in variants:
            continue
        change = variants.get(name, {}).get("quality_relative_change", {})
        for metric in QUALITY_METRICS:
            value = change.get(metric)
            lost = None if value is None else -value
            add(f"relative loss of {metric} {loss} (towers' own scores)", name, lost, limit)
        for metric, value in change.get("served", {}).items():
            if metric in QUALITY_METRICS:
                add(
                    f"relative loss of {metric} {loss} (served score: towers + repeat prior)",
                    name,
                    None if value is None else -value,
                    limit,
                )
    # The ranker's quality is its AUC; the quality target applies to its int8 and 50% variants.
    for name in ("ranker_int8_savedmodel", "ranker_int8_tflite", "ranker_pruned_50"):
        if not any(n.startswith("ranker") for n in variants):
            break
        value = variants.get(name, {}).get("quality_relative_change", {}).get("auc")
        add(f"relative loss of auc {loss}", name, None if value is None else -value, limit)
    return out


def _percent(share: float) -> str:
    """0.3 -> "30%", 0.005 -> "0.5%": as short as the setting."""
    return f"{share * 100:g}%"


def write(report: dict[str, Any], directory: os.PathLike | str) -> tuple[Path, Path]:
    """Writes `report.json` and `report.md` into `directory`; returns their paths.

    Args:
        report: dict. The report `compress_workdir` builds.
        directory: str or path-like. Created if needed.

    Returns:
        (path of `report.json`, path of `report.md`).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    json_path, md_path = directory / "report.json", directory / "report.md"
    config_lib.write_text_atomic(json_path, json.dumps(report, indent=2, default=_json_default))
    config_lib.write_text_atomic(md_path, report_markdown.to_markdown(report))
    return json_path, md_path


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"not JSON serializable: {type(o).__name__}")
