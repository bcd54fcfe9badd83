"""The serving bench's report: ratios to baselines, growth with catalog size, targets, markdown."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Optional

import numpy as np

# The serving targets: p99 of single requests over gRPC (one client, batching off).
TARGET_ITEMS = 100_000
TARGETS_P99_MS = {"retrieve": 10.0, "recommend": 20.0}

# Served models of each synthetic export. `tfrec` is what `tfrec export` writes (float32 index);
# the other two are the `tfrec export --with-compressed` layout (compression.int8_savedmodel:
# query tower + index + fixed top-k `retrieve`), float32 and int8, to compare the index alone.
MAIN, F32, INT8 = "tfrec", "tfrec_f32", "tfrec_int8"
INDEX = {MAIN: "float32", F32: "float32", INT8: "int8"}
BASELINE_OF = {MAIN: MAIN, F32: F32, INT8: F32}  # whose smallest-catalog cell a ratio divides by


def rows_of(cell: dict) -> int:
    """Rows per request of a result cell (results written before rows existed: 1)."""
    return int(cell.get("rows", 1))


def brief(cell: dict) -> str:
    s, c = cell["single"], cell["concurrent"]
    text = (
        f"p50 {fmt(s['p50_ms'])} p99 {fmt(s['p99_ms'])} ms, {s['throughput_rps']:.0f} req/s; "
        f"{c['clients']} clients {c['throughput_rps']:.0f} req/s"
    )
    if rows_of(cell) > 1:
        text += f" = {c['rows_per_s']:.0f} rows/s"
    failures = s["failures"] + c["failures"]
    return text + (f", {failures} FAILED: {cell['errors'][:1]}" if failures else "")


# -- ratios, growth and targets ----------------------------------------------------------------


def _find(cells: Iterable[dict], **match: Any) -> Optional[dict]:
    def value(cell: dict, key: str) -> Any:
        return rows_of(cell) if key == "rows" else cell[key]

    return next((c for c in cells if all(value(c, k) == v for k, v in match.items())), None)


def _ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return round(a / b, 3) if a is not None and b else None


def add_ratios(results: dict) -> None:
    """Adds `vs_baseline` to every cell, and `growth`, `int8_vs_float32` and `targets`.

    A cell's baseline is the same model layout, signature and rows per request at the
    smallest catalog, over gRPC with batching off (for int8, the float32 model of the same
    layout). Growth and int8 vs float32 are per rows per request; the targets are of one-row
    requests.
    """
    cells = results["cells"]
    smallest = min((c["items"] for c in cells), default=None)
    quiet = {"protocol": "grpc", "batching": False}
    for cell in cells:
        base = _find(
            cells,
            items=smallest,
            model=BASELINE_OF[cell["model"]],
            signature=cell["signature"],
            rows=rows_of(cell),
            **quiet,
        )
        if base is None:
            continue
        cell["vs_baseline"] = {
            "baseline": f"{smallest} items {base['model']} {base['signature']} grpc batching off "
            f"{rows_of(base)} rows",
            "p50": _ratio(cell["single"]["p50_ms"], base["single"]["p50_ms"]),
            "p99": _ratio(cell["single"]["p99_ms"], base["single"]["p99_ms"]),
            "concurrent_throughput": _ratio(
                cell["concurrent"]["throughput_rps"], base["concurrent"]["throughput_rps"]
            ),
        }
    growth = []
    every_rows = sorted({rows_of(c) for c in cells})
    for model in (MAIN, F32, INT8):
        for signature, rows in ((s, r) for s in ("retrieve", "recommend") for r in every_rows):
            row = sorted(
                (
                    c
                    for c in cells
                    if c["model"] == model
                    and c["signature"] == signature
                    and rows_of(c) == rows
                    and c["protocol"] == "grpc"
                    and not c["batching"]
                ),
                key=lambda c: c["items"],
            )
            if not row:
                continue
            p50 = [c["single"]["p50_ms"] for c in row]
            entry: dict[str, Any] = {
                "model": model,
                "signature": signature,
                "rows": rows,
                "items": [c["items"] for c in row],
                "p50_ms": p50,
                "p99_ms": [c["single"]["p99_ms"] for c in row],
                "p50_vs_smallest": [_ratio(v, p50[0]) for v in p50],
                "p50_exponent": None,
            }
            points = [(c["items"], v) for c, v in zip(row, p50, strict=True) if v]
            if len({n for n, _ in points}) >= 2:
                # p50 ~ items ** exponent: 0 = flat, 1 = linear in the catalog size.
                logs = np.log([[n, v] for n, v in points])
                entry["p50_exponent"] = round(float(np.polyfit(logs[:, 0], logs[:, 1], 1)[0]), 2)
            growth.append(entry)
    results["growth"] = growth
    results["int8_vs_float32"] = []
    for export, rows in ((e, r) for e in results["exports"] for r in every_rows):
        f32 = _find(cells, items=export["items"], model=F32, rows=rows, **quiet)
        int8 = _find(cells, items=export["items"], model=INT8, rows=rows, **quiet)
        if f32 is None or int8 is None:
            continue
        results["int8_vs_float32"].append(
            {
                "items": export["items"],
                "rows": rows,
                "p50": _ratio(int8["single"]["p50_ms"], f32["single"]["p50_ms"]),
                "p99": _ratio(int8["single"]["p99_ms"], f32["single"]["p99_ms"]),
                "concurrent_throughput": _ratio(
                    int8["concurrent"]["throughput_rps"], f32["concurrent"]["throughput_rps"]
                ),
                "size": _ratio(export["size_mb"][INT8], export["size_mb"][F32]),
            }
        )
    results["targets"] = []
    for signature, limit in TARGETS_P99_MS.items():
        cell = _find(cells, items=TARGET_ITEMS, model=MAIN, signature=signature, rows=1, **quiet)
        measured = cell["single"]["p99_ms"] if cell else None
        results["targets"].append(
            {
                "signature": signature,
                "items": TARGET_ITEMS,
                "target": f"p99 < {limit:g} ms, single requests over gRPC",
                "target_p99_ms": limit,
                "measured_p99_ms": measured,
                "met": None if measured is None else measured < limit,
            }
        )


# -- markdown ----------------------------------------------------------------------------------


def _index_cell(export: dict) -> str:
    """The main model's index, with its recall against exact search when approximate."""

    def listed(found: dict) -> str:
        return ", ".join(f"{k} {v:.3f}" for k, v in found.items() if k.startswith("recall@"))

    recalls = [listed(export)] if any(k.startswith("recall@") for k in export) else []
    for rows, found in export.get("recall_by_rows", {}).items():
        recalls.append(f"{rows} rows per request: {listed(found)}")
    label = export.get("index", INDEX[MAIN])
    return f"{label} ({'; '.join(recalls)})" if recalls else label


def fmt(value: Optional[float], digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _rows_line(settings: dict) -> str:
    rows = settings.get("request_rows", [1])
    if rows == [1]:
        return "One user per request"
    return (
        f"Rows per request: {', '.join(str(r) for r in rows)} (distinct synthetic users of the "
        f"pool of {settings.get('request_pool', '?')}; a cell per value)"
    )


def _rows_per_s(phase: dict, cell: dict) -> float:
    # Results written before rows existed have no `rows_per_s`: one row per request.
    return float(phase.get("rows_per_s", phase["throughput_rps"] * rows_of(cell)))


def _model_line(settings: dict, model: dict) -> str:
    """Which model was measured: a latency means little without its size and provenance."""
    shape = (
        f"embedding dim {model['embedding_dim']}, max history {model['max_history']}, "
        f"{model.get('history_encoder', 'unknown')} history encoder, `recommend` ranks the top "
        f"{model['retrieve_n']} retrieved"
    )
    if not settings.get("config"):
        return f"Model: the trained run `{settings['workdir']}` given as `--workdir` ({shape})."
    sets = " ".join(f"--set {o}" for o in settings["train_overrides"])
    return (
        f"Model: `{settings['config']}` trained by the bench into `{settings['workdir']}` with "
        f"the overrides {', '.join(f'`{o}`' for o in settings['train_overrides'])} (one epoch "
        "per stage and no baselines: latency does not depend on how well the model learned; "
        f"training took {settings.get('train_seconds', 0):.0f} s, ~0 when reused), the same as "
        f"`tfrec train --config {settings['config']} {sets}` ({shape})."
    )


def to_markdown(results: dict) -> str:
    """serving.md: settings, targets, every cell, growth with catalog size, int8 vs float32."""
    s, m, machine = results["settings"], results["model"], results["machine"]
    lines = [
        "# Serving benchmark (`tfrec bench serving`)",
        "",
        _model_line(s, m),
        "Catalogs: synthetic items (`syn-0000001`, ...; random unit vectors), exported with "
        "`tfrec.pipelines.export.export`.",
        f"Server: `tfrec serve` in a child process on loopback; clients: `tfrec.serving.Client` "
        f"threads in the bench process, on the same {machine['cpus']} CPU cores (load average "
        f"{machine['load_average_before'][0]} before, {machine['load_average_after'][0]} after: "
        "a shared machine makes the tails noisy).",
        f"Each cell: {s['warmup_requests']} warm-up requests, {s['seconds_per_phase']:g} s of "
        "sequential single requests from one client (latency percentiles, req/s) and "
        f"{s['seconds_per_phase']:g} s with {s['concurrent_clients']} concurrent clients "
        f"(throughput), split into {s['rounds']} rounds interleaved with the other cells of the "
        f"same server. {_rows_line(s)}, k = {s['k']}. Total run time "
        f"{results.get('seconds_total', 0) / 60:.1f} min.",
        "Settings: the config's `bench:` section (serving.json holds the whole config under "
        "`config`); `--items`, `--seconds` and `--set bench.KEY=VALUE` override it.",
        "",
        "## Targets (100,000 items, single requests over gRPC, batching off)",
        "",
    ]
    for t in results["targets"]:
        verdict = {True: "**met**", False: "**NOT met**", None: "not measured"}[t["met"]]
        lines.append(
            f"- `{t['signature']}` {t['target']}: {verdict} "
            f"(measured p99 {fmt(t['measured_p99_ms'])} ms)"
        )
    lines += [
        "",
        "## All cells",
        "",
        "Latencies: one sequential client, per request (of `rows` rows). Rows/s: requests/s x "
        "rows. `x base`: p50 and concurrent throughput divided by those of the same model, "
        "signature and rows at the smallest catalog over gRPC with batching off (int8: by the "
        "float32 model of the same layout).",
        "",
        "| items | model | index | signature | protocol | batching | rows | p50 ms | p95 ms | "
        f"p99 ms | req/s, 1 client | rows/s, 1 client | req/s, {s['concurrent_clients']} clients "
        f"| rows/s, {s['concurrent_clients']} clients | p99 ms, {s['concurrent_clients']} "
        "clients | p50 x base | req/s x base | failures |",
        "|---:|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in results["cells"]:
        one, many, ratio = c["single"], c["concurrent"], c.get("vs_baseline", {})
        batching = ("on" if c["batchable"] else "on (runs alone)") if c["batching"] else "off"
        lines.append(
            f"| {c['items']:,} | {c['model']} | {c['index']} | {c['signature']} | "
            f"{c['protocol']} | {batching} | {rows_of(c)} | {fmt(one['p50_ms'])} | "
            f"{fmt(one['p95_ms'])} | {fmt(one['p99_ms'])} | {one['throughput_rps']:,.0f} | "
            f"{_rows_per_s(one, c):,.0f} | {many['throughput_rps']:,.0f} | "
            f"{_rows_per_s(many, c):,.0f} | {fmt(many['p99_ms'])} | "
            f"{fmt(ratio.get('p50'))} | {fmt(ratio.get('concurrent_throughput'))} | "
            f"{one['failures'] + many['failures']} |"
        )
    if results["growth"]:
        sizes = sorted({n for g in results["growth"] for n in g["items"]})
        lines += [
            "",
            "## Growth with catalog size (gRPC, batching off, one client)",
            "",
            "p50 / p99 in ms, and p50 relative to the smallest catalog. Exponent: slope of "
            "log p50 against log items (0: flat, 1: linear in the catalog size).",
            "",
            "| model | signature | rows | "
            + " | ".join(f"{n:,} items" for n in sizes)
            + " | exponent |",
            "|---|---|---:|" + "---:|" * (len(sizes) + 1),
        ]
        for g in results["growth"]:
            by_size = {
                n: f"{fmt(a)} / {fmt(b)} (x{fmt(r)})"
                for n, a, b, r in zip(
                    g["items"], g["p50_ms"], g["p99_ms"], g["p50_vs_smallest"], strict=True
                )
            }
            lines.append(
                f"| {g['model']} | {g['signature']} | {g.get('rows', 1)} | "
                + " | ".join(by_size.get(n, "-") for n in sizes)
                + f" | {fmt(g['p50_exponent'])} |"
            )
    if results["int8_vs_float32"]:
        lines += [
            "",
            "## int8 vs float32 index (`--with-compressed` layout, `retrieve`, gRPC, batching off)",
            "",
            "Ratios int8 / float32. The int8 model also stores its query tower's big weights in "
            "int8; both dequantize in the graph (no int8 matmul kernels), so int8 saves memory "
            "and disk, not compute.",
            "",
            "| items | rows | p50 | p99 | req/s, concurrent | export size |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        for r in results["int8_vs_float32"]:
            lines.append(
                f"| {r['items']:,} | {r.get('rows', 1)} | {fmt(r['p50'])} | {fmt(r['p99'])} | "
                f"{fmt(r['concurrent_throughput'])} | {fmt(r['size'])} |"
            )
    lines += [
        "",
        "## Exports",
        "",
        f"| items | {MAIN} index | build + export s | "
        + " | ".join(f"{n} MB" for n in (MAIN, F32, INT8))
        + " |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for e in results["exports"]:
        lines.append(
            f"| {e['items']:,} | {_index_cell(e)} | {e['seconds']:.1f} | "
            + " | ".join(fmt(e["size_mb"].get(n), 1) for n in (MAIN, F32, INT8))
            + " |"
        )
    servers = results.get("servers", [])
    if any(r.get("peak_rss_mb") is not None for r in servers):
        lines += [
            "",
            "## Server processes",
            "",
            "Peak resident memory (VmHWM) of each `tfrec serve` process, which loads every "
            "model of its catalog (the three models above), and its start time.",
            "",
            "| items | batching | start s | peak RSS MB |",
            "|---:|---|---:|---:|",
        ]
        for r in servers:
            lines.append(
                f"| {r['items']:,} | {'on' if r['batching'] else 'off'} | "
                f"{r['start_seconds']:.1f} | {fmt(r.get('peak_rss_mb'), 1)} |"
            )
    notes = list(results["skipped"]) + list(results.get("notes", []))
    if s["server_env"]["TF_ENABLE_ONEDNN_OPTS"] == "0":
        notes.append(
            "the server ran with TF_ENABLE_ONEDNN_OPTS=0: with TF 2.20's oneDNN kernels on, "
            "batching (the towers run concurrently on different batch sizes) corrupts the heap "
            "and the server aborts; set TF_ENABLE_ONEDNN_OPTS=1 to measure with them anyway"
        )
    if any(c["batching"] and not c["batchable"] for c in results["cells"]):
        notes.append(
            "batching on, `(runs alone)`: the signature has inputs without a batch dimension "
            "(scalar `k` / `exclude_recent`), so the server cannot merge its requests; each runs "
            "alone and these cells measure batching's overhead only"
        )
    lines += ["", "## Not measured, and notes", ""] + [f"- {n}" for n in notes or ["none"]]
    return "\n".join(lines) + "\n"
