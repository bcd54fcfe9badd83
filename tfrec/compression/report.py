"""The compression report: quality, latency and size of each variant against float32, and targets."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Optional

import numpy as np

from tfrec import config as config_lib
from tfrec.evaluation import protocol

# Targets of the compression issue. Sizes are ratios to the float32 artifact of the same format.
TARGETS = {
    "int8_size_ratio": 0.30,  # int8 served artifacts (raw bytes) <= 30% of float32
    "pruned_80_gzip_ratio": 0.35,  # 80%-pruned, gzipped <= 35% of float32 gzipped
    "max_relative_quality_loss": 0.01,  # int8 and 50%-pruned: Recall@50 and NDCG@10
}
QUALITY_METRICS = ("recall@50", "ndcg@10")
KS = (10, 50)


class EvalContext:
    """The test split under the protocol of `tfrec evaluate`: relevant sets, exclusion, catalog.

    Args:
        prepared: PreparedData.
        exclude_seen: bool. `config.eval.exclude_seen`.
    """

    def __init__(self, prepared, exclude_seen: bool):
        test = prepared.test
        self.num_items = len(prepared.table.item_ids)
        self.relevant = [prepared.catalog_index(r) for r in test.relevant]
        self.exclude = [prepared.catalog_index(s) for s in test.seen] if exclude_seen else None
        self.exclude_seen = bool(exclude_seen)
        self.ks = tuple(k for k in KS if k <= self.num_items) or (self.num_items,)

    def metrics(self, queries: np.ndarray, items: np.ndarray) -> dict[str, float]:
        """Recall@k, NDCG@k, MRR over all test queries: `queries @ items.T` on the full catalog."""
        queries, items = np.asarray(queries, np.float32), np.asarray(items, np.float32)
        if queries.shape[0] != len(self.relevant) or items.shape[0] != self.num_items:
            raise ValueError(
                f"`queries` must be [{len(self.relevant)}, dim] and `items` [{self.num_items}, "
                f"dim], received {queries.shape} and {items.shape}"
            )
        result = protocol.evaluate(
            lambda start, end: queries[start:end] @ items.T,
            self.relevant,
            self.num_items,
            ks=self.ks,
            exclude=self.exclude,
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
    calls: Mapping[str, Callable[[], Any]], num_calls: int, warmup: int = 3
) -> dict[str, dict[str, float]]:
    """Times every callable `num_calls` times, interleaved round-robin.

    Interleaving gives each variant the same share of a shared, noisy machine: a burst of
    load slows all of them, not only the one measured at that moment.

    Args:
        calls: name -> zero-argument callable (one inference).
        num_calls: int. Timed calls per callable.
        warmup: int. Untimed calls first (tracing, allocation). Defaults to 3.

    Returns:
        name -> `percentiles`.
    """
    if isinstance(num_calls, bool) or not isinstance(num_calls, int) or num_calls < 1:
        raise ValueError(f"`num_calls` must be an int >= 1, received {num_calls!r}")
    for fn in calls.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(num_calls):
        for name, fn in calls.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: percentiles(t) for name, t in times.items()}


def _ratio(value, base) -> Optional[float]:
    if value is None or base in (None, 0) or (isinstance(base, float) and math.isnan(base)):
        return None
    return float(value) / float(base)


def add_ratios(variants: dict, baselines: Mapping[str, str]) -> None:
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
        for batch, stats in variant["latency"].items():
            stats["p50_ratio"] = _ratio(stats["p50_ms"], base["latency"][batch]["p50_ms"])
            stats["p99_ratio"] = _ratio(stats["p99_ms"], base["latency"][batch]["p99_ms"])
        variant["quality_relative_change"] = {
            metric: (
                None
                if base["quality"].get(metric) in (None, 0)
                else (variant["quality"][metric] - base["quality"][metric])
                / base["quality"][metric]
            )
            for metric in QUALITY_METRICS + ("auc",)
            if variant["quality"].get(metric) is not None
        }


def check_targets(variants: dict) -> list[dict]:
    """Each target with its measured value and whether it was met (missing variants: None)."""
    out = []

    def add(target, variant, measured, limit, met=None):
        if variant not in variants or measured is None:
            out.append({"target": target, "variant": variant, "measured": None, "met": None})
            return
        ok = measured <= limit if met is None else met
        out.append({"target": target, "variant": variant, "measured": measured, "met": bool(ok)})

    for name in ("int8_savedmodel", "int8_tflite", "ranker_int8_savedmodel", "ranker_int8_tflite"):
        if name.startswith("ranker") and name not in variants:
            continue
        ratio = variants.get(name, {}).get("size", {}).get("raw_ratio")
        add("size <= 30% of float32 (raw)", name, ratio, TARGETS["int8_size_ratio"])
    ratio = variants.get("pruned_80", {}).get("size", {}).get("gzip_ratio")
    add(
        "gzipped size <= 35% of float32 gzipped",
        "pruned_80",
        ratio,
        TARGETS["pruned_80_gzip_ratio"],
    )
    limit = TARGETS["max_relative_quality_loss"]
    for name in ("int8_savedmodel", "int8_tflite", "pruned_50"):
        change = variants.get(name, {}).get("quality_relative_change", {})
        for metric in QUALITY_METRICS:
            value = change.get(metric)
            loss = None if value is None else -value
            add(f"relative loss of {metric} <= 1%", name, loss, limit)
    return out


def write(report: dict, directory) -> tuple[Path, Path]:
    """Writes `report.json` and `report.md` into `directory`; returns their paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    json_path, md_path = directory / "report.json", directory / "report.md"
    config_lib.write_text_atomic(json_path, json.dumps(report, indent=2, default=_json_default))
    config_lib.write_text_atomic(md_path, to_markdown(report))
    return json_path, md_path


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def _fmt(value, spec: str = ".4f") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


def _target_of(name: str) -> float:
    """0.5 for `pruned_50_qat`: the target encoded in a pruned variant's name."""
    return int(name.split("_")[1]) / 100


def to_markdown(report: dict) -> str:
    """A human-readable version of the report (tables of sizes, quality, latency, targets)."""
    lines = [f"# Compression report: `{report['workdir']}`", ""]
    lines += [f"- {note}" for note in report["notes"]]
    lines += ["", "## Variants", ""]
    lines.append(
        "| variant | weights on disk | vs | raw MB | raw ratio | gzip MB | gzip ratio | "
        "sparsity | Recall@10 | Recall@50 | NDCG@10 | AUC | p50 b1 ms (ratio) | p99 b1 ms | "
        f"p50 b{report['batch_size']} ms (ratio) |"
    )
    lines.append("|" + "---|" * 15)
    big = f"batch_{report['batch_size']}"
    for name, v in report["variants"].items():
        size, q, lat = v["size"], v["quality"], v["latency"]
        lines.append(
            f"| {name} | {v['weights']} | {v['baseline']} | {size['raw_bytes'] / 1e6:.2f} | "
            f"{_fmt(size['raw_ratio'], '.3f')} | {size['gzip_bytes'] / 1e6:.2f} | "
            f"{_fmt(size['gzip_ratio'], '.3f')} | {_fmt(v['sparsity']['overall'], '.3f')} | "
            f"{_fmt(q.get('recall@10'))} | {_fmt(q.get('recall@50'))} | "
            f"{_fmt(q.get('ndcg@10'))} | {_fmt(q.get('auc'))} | {lat['batch_1']['p50_ms']:.2f} "
            f"({_fmt(lat['batch_1']['p50_ratio'], '.2f')}) | {lat['batch_1']['p99_ms']:.2f} | "
            f"{lat[big]['p50_ms']:.2f} ({_fmt(lat[big]['p50_ratio'], '.2f')}) |"
        )
    lines += ["", "## Targets", "", "| target | variant | measured | met |", "|---|---|---|---|"]
    for t in report["targets"]:
        met = {True: "yes", False: "**NO**", None: "not measured"}[t["met"]]
        lines.append(f"| {t['target']} | {t['variant']} | {_fmt(t['measured'])} | {met} |")
    lines += ["", "## Notes per variant", ""]
    for name, v in report["variants"].items():
        for note in v["notes"]:
            lines.append(f"- `{name}`: {note}")
        per_layer = v["sparsity"].get("per_weight", {})
        if per_layer and name.endswith("_qat"):
            kept = sum(value >= _target_of(name) - 0.01 for value in per_layer.values())
            lines.append(
                f"- `{name}`: {kept} of {len(per_layer)} kernels/tables kept the pruning target "
                "after QAT"
            )
        elif per_layer:
            worst = min(per_layer.items(), key=lambda kv: kv[1])
            lines.append(
                f"- `{name}`: {len(per_layer)} pruned weights, lowest sparsity "
                f"{worst[1]:.4f} (`{worst[0]}`); dense on purpose: "
                f"{', '.join(v['sparsity'].get('unpruned', [])) or 'none'}"
            )
    return "\n".join(lines) + "\n"
