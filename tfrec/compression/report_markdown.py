"""The compression report as Markdown: variants, targets, where the bytes go, sparsity per weight."""

from __future__ import annotations

import math
from typing import Any, Optional


def _fmt(value: Any, spec: str = ".4f") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


def to_markdown(report: dict[str, Any]) -> str:
    """A human-readable version of the report (tables of sizes, quality, latency, targets)."""
    lines = [f"# Compression report: `{report['workdir']}`", ""]
    lines += [f"- {note}" for note in report["notes"]]
    lines += ["", "## Variants", ""]
    lines.append(
        "| variant | weights on disk | vs | raw MB | raw ratio | gzip MB | gzip ratio | "
        "sparsity | Recall@10 | Recall@50 | NDCG@10 | served Recall@50 | served NDCG@10 | AUC | "
        f"p50 b1 ms (ratio) | p99 b1 ms | p50 b{report['batch_size']} ms (ratio) |"
    )
    lines.append("|" + "---|" * 17)
    big = f"batch_{report['batch_size']}"
    for name, v in report["variants"].items():
        size, q, lat = v["size"], v["quality"], v["latency"]
        served = q.get("served") or {}
        lines.append(
            f"| {name} | {v['weights']} | {v['baseline']} | {size['raw_bytes'] / 1e6:.2f} | "
            f"{_fmt(size['raw_ratio'], '.3f')} | {size['gzip_bytes'] / 1e6:.2f} | "
            f"{_fmt(size['gzip_ratio'], '.3f')} | {_fmt(v['sparsity']['overall'], '.3f')} | "
            f"{_fmt(q.get('recall@10'))} | {_fmt(q.get('recall@50'))} | "
            f"{_fmt(q.get('ndcg@10'))} | {_fmt(served.get('recall@50'))} | "
            f"{_fmt(served.get('ndcg@10'))} | {_fmt(q.get('auc'))} | {lat['batch_1']['p50_ms']:.2f} "
            f"({_fmt(lat['batch_1']['p50_ratio'], '.2f')}) | {lat['batch_1']['p99_ms']:.2f} | "
            f"{lat[big]['p50_ms']:.2f} ({_fmt(lat[big]['p50_ratio'], '.2f')}) |"
        )
    lines += ["", "## Targets", "", "| target | variant | measured | met |", "|---|---|---|---|"]
    for t in report["targets"]:
        met = {True: "yes", False: "**NO**", None: "not measured"}[t["met"]]
        lines.append(f"| {t['target']} | {t['variant']} | {_fmt(t['measured'])} | {met} |")
    lines += _parts_table(report["variants"])
    lines += ["", "## Notes per variant", ""]
    for name, v in report["variants"].items():
        for note in v["notes"]:
            lines.append(f"- `{name}`: {note}")
        sparsity = v["sparsity"]
        per_layer = sparsity.get("per_weight", {})
        if per_layer and name.endswith("_qat") and sparsity.get("target") is not None:
            kept = sum(value >= sparsity["target"] - 0.01 for value in per_layer.values())
            lines.append(
                f"- `{name}`: {kept} of {len(per_layer)} kernels/tables kept the pruning target "
                "after QAT"
            )
        elif per_layer:
            worst = min(per_layer.items(), key=lambda kv: kv[1])
            lines.append(
                f"- `{name}`: {len(per_layer)} pruned weights, lowest sparsity "
                f"{worst[1]:.4f} (`{worst[0]}`); zeros: {_fmt(sparsity.get('pruned_weights'))} "
                f"of the pruned weights' values, {_fmt(sparsity.get('overall'))} of all the "
                f"model's values; dense on purpose: "
                f"{', '.join(sparsity.get('unpruned', [])) or 'none'}"
            )
    lines += _sparsity_table(report["variants"])
    return "\n".join(lines) + "\n"


def _kb(part: Optional[dict]) -> str:
    return "-" if not part else f"{part['raw_bytes'] / 1e3:.0f}"


def _parts_table(variants: dict) -> list[str]:
    """Where the bytes of each SavedModel go (`sizes.savedmodel_parts`), in kB."""
    rows = [(n, v) for n, v in variants.items() if v["size"].get("parts")]
    if not rows:
        return []
    lines = [
        "",
        "## Where the bytes go (SavedModels, raw kB)",
        "",
        "graph: functions, signatures, object graph and checkpoint metadata; lookup tables: "
        "vocabulary constants (keys, or the compact data `compact_tables` rebuilds them from "
        "at load); id strings: the candidate ids. These are the same in float32 and int8 and "
        "cannot be int8.",
        "",
        "| variant | graph | lookup tables | id strings | index | weights (by dtype) | "
        "numeric ratio | weights gzip ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, v in rows:
        parts, size = v["size"]["parts"], v["size"]
        dtypes = ", ".join(
            f"{d} {b / 1e3:.0f}" for d, b in sorted(parts["weights"].get("dtypes", {}).items())
        )
        lines.append(
            f"| {name} | {_kb(parts['graph'])} | {_kb(parts['lookup_tables'])} | "
            f"{_kb(parts['id_strings'])} | {_kb(parts['index'])} | {_kb(parts['weights'])} "
            f"({dtypes}) | {_fmt(size.get('numeric_raw_ratio'), '.3f')} | "
            f"{_fmt(size.get('weights_gzip_ratio'), '.3f')} |"
        )
    return lines


def _sparsity_table(variants: dict) -> list[str]:
    """Measured sparsity of every pruned weight (rows) in every pruned variant (columns)."""
    names = [
        n for n, v in variants.items() if v["sparsity"].get("per_weight") and not n.endswith("_qat")
    ]
    if not names:
        return []
    lines = ["", "## Sparsity per weight after strip", ""]
    lines.append("| weight | " + " | ".join(names) + " |")
    lines.append("|---|" + "---|" * len(names))
    weights: dict = {}
    for name in names:
        for weight in variants[name]["sparsity"]["per_weight"]:
            weights.setdefault(weight, None)
        for weight in variants[name]["sparsity"].get("unpruned", []):
            weights.setdefault(weight, None)
    for weight in weights:
        cells = []
        for name in names:
            sparsity = variants[name]["sparsity"]
            if weight in sparsity["per_weight"]:
                cells.append(f"{sparsity['per_weight'][weight]:.3f}")
            else:
                cells.append("dense" if weight in sparsity.get("unpruned", []) else "-")
        lines.append(f"| `{weight}` | " + " | ".join(cells) + " |")
    overall = [_fmt(variants[n]["sparsity"].get("overall"), ".3f") for n in names]
    lines.append("| **all values of the model** | " + " | ".join(overall) + " |")
    return lines
