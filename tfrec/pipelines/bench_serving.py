"""`tfrec bench serving`: latency and throughput of the served signatures on synthetic catalogs.

What is measured and how long is the config's `bench:` section (`config.BenchConfig`); the
command line's `--items`, `--seconds` and `--set bench.KEY=VALUE` override it. The concepts
live beside this orchestration: the model (`bench_model`), the synthetic catalogs and exports
(`bench_catalog`), the grid (`serving.bench_grid`), requests (`serving.bench_requests`), the
server process and cell runner (`serving.server_process`, `serving.bench_cells`) and the
report (`serving.bench_report`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Optional

from tfrec import config as config_lib
from tfrec import errors
from tfrec.pipelines import bench_catalog, bench_model
from tfrec.serving import bench_cells, bench_grid, bench_report, bench_requests, server_process


def parse_items(text: str) -> tuple[int, ...]:
    """`--items "10000,100000"` -> (10000, 100000); ConfigError on anything but positive ints.

    Whether each size is large enough (>= `bench.k`) is the config's check.
    """
    values = []
    for part in str(text).split(","):
        try:
            value = int(part.strip().replace("_", ""))
        except ValueError:
            value = 0
        if value < 1:
            raise errors.ConfigError(
                "`--items` must be comma-separated positive integers (catalog sizes, e.g. "
                f"10000,100000), received {text!r}"
            )
        values.append(value)
    return tuple(values)


def check_seconds(seconds: Any) -> float:
    """`--seconds` as a float in (0, BenchConfig.MAX_SECONDS], else ConfigError.

    Args:
        seconds: float, or anything `float()` reads (as given on the command line).

    Returns:
        float.
    """
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        value = float("nan")
    limit = config_lib.BenchConfig.MAX_SECONDS
    if not 0 < value <= limit:
        raise errors.ConfigError(
            f"`--seconds` must be a number in (0, {limit:g}] (time per measurement), "
            f"received {seconds!r}"
        )
    return value


def flag_overrides(items: Optional[str] = None, seconds: Optional[str] = None) -> list[str]:
    """`--items` and `--seconds` as `bench.` overrides (None: the config's value stays)."""
    found = []
    if items is not None:
        found.append(f"bench.items=[{', '.join(str(n) for n in parse_items(items))}]")
    if seconds is not None:
        found.append(f"bench.seconds={check_seconds(seconds)!r}")
    return found


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(
    workdir: Optional[os.PathLike | str] = None,
    output: os.PathLike | str = "bench-results",
    config: Optional[str] = None,
    overrides: Sequence[str] = (),
    progress: Optional[Callable[[str], None]] = None,
) -> dict[str, Any]:
    """Measures every cell of the grid; writes serving.json and serving.md to `output`.

    Args:
        workdir: str, path-like or None. A trained run, measured as it is; None trains
            `config` into `<output>/serving-workdir` (reused by later runs of the same model).
        output: str or path-like. Folder of serving.json and serving.md.
        config: path or None. YAML config trained when `workdir` is None, with
            `bench_model.TRAIN_OVERRIDES`. Defaults to `bench_model.DEFAULT_CONFIG`.
        overrides: sequence of str. `bench.KEY=VALUE` changes of the `bench:` section.
        progress: callable or None. Receives one line per step; None prints to stderr.

    Returns:
        The results dict written to serving.json, with the resolved config under `config`.
    """
    from tfrec.pipelines import export as export_run

    progress = progress or _stderr
    if workdir and config:
        raise errors.ConfigError(
            "`--config` names the model the bench trains when no `--workdir` is given; "
            f"received both (`--workdir` {str(workdir)!r}, `--config` {str(config)!r})"
        )
    # Resolved before anything is written, so a bad setting fails with an empty output.
    if workdir:
        resolved = bench_model.workdir_config(workdir, overrides)
    else:
        resolved = bench_model.bench_config(config, overrides)
    bench = resolved.bench
    items = tuple(sorted(set(bench.items)))
    rows = tuple(sorted(set(bench.request_rows)))
    load = bench_cells.Load(bench.seconds, bench.rounds, bench.concurrency, bench.warmup_requests)
    started = time.perf_counter()
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    # The YAML file the bench trains; None: a given --workdir, measured as it was trained.
    trained_by_bench = None if workdir else (config or bench_model.DEFAULT_CONFIG)
    if not workdir:
        workdir = bench_model.train_model(out / "serving-workdir", resolved, progress)
    workdir = Path(workdir)
    train_seconds = round(time.perf_counter() - started, 1)  # ~0 when reused or given
    progress(f"loading {workdir} ...")
    trained = export_run.load(workdir)
    # The exports build the index `--set index.*` asks for (the trained model is unchanged).
    trained = dataclasses.replace(
        trained, config=dataclasses.replace(trained.config, index=resolved.index)
    )
    groups, skipped = bench_grid.plan(
        items, trained.ranker is not None, bench.full_grid_max_items, rows
    )
    total = sum(len(g.cells) for g in groups)
    progress(
        f"{total} cells, each {bench.warmup_requests} warm-up requests + 2 x {bench.seconds:g} "
        f"s: about {total * (2 * bench.seconds + 1) / 60:.0f} min of measurement plus exports "
        "and server starts"
    )
    cells: list[dict[str, Any]] = []
    exports: list[dict[str, Any]] = []
    servers: list[dict[str, Any]] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(dir=out, prefix=".serving-bench-") as tmp:
        for n in items:
            progress(f"{n:,} items: building the synthetic catalog and its exports ...")
            begun = time.perf_counter()
            index = bench_catalog.synthetic_index(trained, n, seed=bench.seed)
            export_dir = Path(tmp) / str(n)
            sizes = bench_catalog.build_export(workdir, trained, index, export_dir, bench.k)
            index_label = _index_label(n, resolved.index)
            seconds = round(time.perf_counter() - begun, 1)
            pool = bench_requests.request_rows(
                trained.spec, index.item_ids, bench.request_pool, bench.k, seed=bench.seed
            )
            recall: dict[str, Any] = {}
            if index_label != bench_report.INDEX[bench_report.MAIN]:
                progress(f"{n:,} items: recall of the {index_label} index against exact ...")
                # Each moment of the pool once, alone and in requests of every measured size:
                # a batched search that ranks a row differently shows as a lower recall.
                by_rows = bench_catalog.served_recall(
                    trained,
                    index,
                    export_dir,
                    {r: bench_requests.batches(pool, r, step=r) for r in sorted({1, *rows})},
                    sorted({bench.k, 100}),
                )
                recall = dict(by_rows[1])
                if len(by_rows) > 1:
                    recall["recall_by_rows"] = {str(r): v for r, v in by_rows.items() if r > 1}
            exports.append(
                {
                    "items": n,
                    "seconds": seconds,
                    "size_mb": sizes,
                    "index": index_label,
                    **recall,
                }
            )
            del index
            for group in (g for g in groups if g.items == n):
                switch = "on" if group.batching else "off"
                log = out / f"serving-server-{n}-batching-{switch}.log"
                measured = bench_cells.measure_group(
                    export_dir, group, pool, load, log, servers, progress
                )
                for cell in measured:
                    if cell["model"] == bench_report.MAIN:
                        cell["index"] = index_label
                    cells.append(cell)
                    label = bench_grid.Cell.from_result(cell).label
                    progress(f"[{len(cells):>2}/{total}] {label}: {bench_report.brief(cell)}")
                    if cell.get("server_exited") is not None:
                        notes.append(
                            f"{n:,} items, batching {switch}: the server exited with code "
                            f"{cell['server_exited']} during {cell['model']} "
                            f"{cell['signature']} {cell['protocol']}; its log is `{log}`; the "
                            "cells of that server were not (fully) measured"
                        )
            shutil.rmtree(export_dir)
    results: dict[str, Any] = {
        "benchmark": "serving",
        "settings": _settings(resolved, workdir, trained_by_bench, train_seconds),
        "model": {
            "embedding_dim": trained.catalog.dim,
            "max_history": trained.spec.max_history,
            "history_encoder": trained.config.model.history_encoder,
            "retrieve_n": trained.config.recommend.retrieve_n,
            "ranker": trained.ranker is not None,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        },
        "exports": exports,
        "servers": servers,
        "cells": cells,
        "skipped": skipped,
        "notes": notes,
        # Everything the run was given, so serving.json alone says what was measured.
        "config": config_lib.to_dict(resolved),
    }
    bench_report.add_ratios(results)
    results["seconds_total"] = round(time.perf_counter() - started, 1)
    config_lib.write_text_atomic(out / "serving.json", json.dumps(results, indent=2) + "\n")
    config_lib.write_text_atomic(out / "serving.md", bench_report.to_markdown(results))
    progress(f"wrote {out / 'serving.json'} and {out / 'serving.md'}")
    return results


def _index_label(n: int, index: config_lib.IndexConfig) -> str:
    """How the main model of an `n`-item export searches its items, e.g. "ivf 632/32"."""
    from tfrec.exporting import ivf_build

    if ivf_build.choose(n, index) == ivf_build.BRUTE_FORCE:
        return "float32"
    nlist = ivf_build.lists_for(n, index)
    rescore = f" rescore {index.rescore}" if index.quantisation == "int8" else ""
    return f"ivf {index.quantisation} {min(index.nprobe, nlist)}/{nlist}{rescore}"


def _settings(
    config: config_lib.Config,
    workdir: Path,
    config_path: Optional[str],
    train_seconds: float,
) -> dict[str, Any]:
    """The report's settings: the `bench:` section as the report names it, and provenance.

    Args:
        config: Config. The resolved config.
        workdir: Path. The measured run.
        config_path: str or None. The YAML file the bench trained; None: a given --workdir,
            measured as it was trained.
        train_seconds: float. Time spent training (~0 when reused or given).
    """
    bench = config.bench
    return {
        "workdir": str(workdir),
        "config": config_path,
        "train_overrides": list(bench_model.TRAIN_OVERRIDES) if config_path else [],
        "train_seconds": train_seconds,
        "items": sorted(set(bench.items)),
        "seconds_per_phase": bench.seconds,
        "rounds": bench.rounds,
        "warmup_requests": bench.warmup_requests,
        "concurrent_clients": bench.concurrency,
        "k": bench.k,
        "request_pool": bench.request_pool,
        "request_rows": sorted(set(bench.request_rows)),
        "full_grid_max_items": bench.full_grid_max_items,
        "index": config_lib.to_dict(config)["index"],
        "seed": bench.seed,
        "server_env": server_process.server_env(),
    }


def main(args: argparse.Namespace) -> int:
    """`tfrec bench serving` (arguments parsed by tfrec.cli).

    Args:
        args: argparse.Namespace. `workdir`, `config`, `items`, `seconds`, `set` and `output`.

    Returns:
        The exit code, 0.
    """
    # The flags come last: they override `--set` of the same key.
    overrides = [*args.set, *flag_overrides(args.items, args.seconds)]
    results = run(args.workdir, args.output, config=args.config, overrides=overrides)
    for t in results["targets"]:
        verdict = {True: "met", False: "NOT met", None: "not measured"}[t["met"]]
        print(
            f"{t['signature']} {t['target']} at {t['items']:,} items: {verdict} "
            f"(p99 {bench_report.fmt(t['measured_p99_ms'])} ms)"
        )
    return 0
