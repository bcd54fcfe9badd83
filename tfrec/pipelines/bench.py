"""`make bench`: speed and memory benchmarks, written as JSON and a markdown table.

Each benchmark runs in its own process so its peak memory is its own. Timings that compare
models are reported as ratios against a baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import collections
import json
import platform
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Optional

from tfrec import config as config_lib
from tfrec import console

ROOT = Path(__file__).resolve().parents[2]  # the repository (this is tfrec/pipelines/bench.py)
UCI = ROOT.parent / "shared" / "data" / "online-retail" / "online_retail.csv.gz"


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def bench_uci_load() -> dict[str, Any]:
    """Full UCI file: load and clean, then build examples and one pass of the tf.data pipeline."""
    from tfrec.data import online_retail

    start = time.perf_counter()
    ds = online_retail.load(str(UCI))
    load_s = time.perf_counter() - start
    rss_load = _peak_rss_mb()
    from tfrec.data import pipeline
    from tfrec.data import prepared as prepared_lib

    cfg = config_lib.load(str(ROOT / "configs" / "online_retail.yaml"), [f"data.path={UCI}"])
    start = time.perf_counter()
    prepared = prepared_lib.prepare(cfg)
    prepare_s = time.perf_counter() - start
    start = time.perf_counter()
    n = 0
    for batch in pipeline.retrieval_dataset(prepared.train, prepared.table, prepared.spec, 512):
        n += int(batch["user_id"].shape[0])
    pipe_s = time.perf_counter() - start
    return {
        "rows_read": ds.report.rows_read,
        "rows_kept": ds.report.rows_kept,
        "load_clean_seconds": round(load_s, 3),
        "load_clean_target_seconds": 5.0,
        "peak_rss_mb_after_load": round(rss_load, 1),
        "prepare_seconds": round(prepare_s, 3),
        "pipeline_epoch_seconds": round(pipe_s, 3),
        "pipeline_examples": n,
        "pipeline_examples_per_second": round(n / pipe_s, 1),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
    }


def bench_train_throughput(steps: int = 60) -> dict[str, Any]:
    """Training examples/s on CPU: tfrec's model vs the id-only two-tower, same data and run."""
    import tensorflow as tf

    from tfrec.data import pipeline
    from tfrec.data import prepared as prepared_lib
    from tfrec.training import trainer

    cfg = config_lib.load(str(ROOT / "configs" / "demo.yaml"))
    prepared = prepared_lib.prepare(cfg)
    out: dict[str, float] = {}
    for kind in ("id_two_tower", "tfrec"):
        tf.keras.utils.set_random_seed(0)
        model = trainer.build_model(cfg, prepared, kind)
        model.compile(optimizer=tf.keras.optimizers.Adam(cfg.train.learning_rate))
        ds = pipeline.retrieval_dataset(
            prepared.train,
            prepared.table,
            prepared.spec,
            cfg.train.batch_size,
            repeat=True,
            drop_remainder=True,
        )
        model.fit(ds, steps_per_epoch=10, epochs=1, verbose=0)  # warm-up: tracing
        start = time.perf_counter()
        model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)
        seconds = time.perf_counter() - start
        out[kind] = round(steps * cfg.train.batch_size / seconds, 1)
    return {
        "batch_size": cfg.train.batch_size,
        "steps": steps,
        "examples_per_second_id_two_tower": out["id_two_tower"],
        "examples_per_second_tfrec": out["tfrec"],
        "tfrec_to_id_two_tower_ratio": round(out["tfrec"] / out["id_two_tower"], 3),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
    }


def bench_serving(output: str) -> dict[str, Any]:
    """`tfrec bench serving` with its defaults: writes serving.json and serving.md to `output`.

    Trains the `make demo` model (configs/demo.yaml, one epoch per stage: latency does not
    depend on quality) into `<output>/serving-workdir` on first use (reused after), and
    measures what that config's `bench:` section says.
    """
    from tfrec.pipelines import bench_serving as bench

    results = bench.run(output=output)
    summary: dict[str, Any] = {"cells": len(results["cells"]), "seconds": results["seconds_total"]}
    for t in results["targets"]:
        key = f"{t['signature']}_p99_ms_{t['items'] // 1000}k_grpc"
        summary[key] = t["measured_p99_ms"]
        summary[f"{t['signature']}_target_met"] = t["met"]
    for g in results["growth"]:
        summary[f"{g['model']}_{g['signature']}_p50_growth_exponent"] = g["p50_exponent"]
    summary["report"] = str(Path(output) / "serving.md")
    return summary


BENCHMARKS: dict[str, Callable[..., dict[str, Any]]] = {
    "uci_load": bench_uci_load,
    "train_throughput": bench_train_throughput,
    "serving": bench_serving,
}
NEEDS_OUTPUT = {"serving"}  # benchmarks that write their own files into --output


def _run_child(name: str, output: str) -> dict[str, Any]:
    # stderr is passed through as it comes (progress), keeping its tail for the error message.
    proc = subprocess.Popen(
        [sys.executable, "-m", "tfrec.pipelines.bench", "--child", name, "--output", output],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    tail: collections.deque[str] = collections.deque(maxlen=1)
    # Both are pipes (PIPE above), never None.
    assert proc.stderr is not None and proc.stdout is not None
    stderr = proc.stderr

    def relay() -> None:
        for line in stderr:
            sys.stderr.write(line)
            sys.stderr.flush()
            if line.strip():
                tail.append(line.strip())

    relay_thread = threading.Thread(target=relay, daemon=True)
    relay_thread.start()
    stdout = proc.stdout.read()
    proc.wait()
    relay_thread.join()
    if proc.returncode != 0:
        return {"error": tail[-1] if tail else "failed"}
    return json.loads(stdout.strip().splitlines()[-1])


def _table(results: dict[str, Any]) -> str:
    lines = ["| benchmark | metric | value |", "|---|---|---|"]
    for name, values in results["benchmarks"].items():
        for key, value in values.items():
            lines.append(f"| {name} | {key} | {value} |")
    return "\n".join(lines) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the benchmarks (each in a child process) and writes bench.json and bench.md.

    Args:
        argv: sequence of str or None. Command-line arguments; defaults to `sys.argv[1:]`.

    Returns:
        The exit code: 1 if a benchmark failed, else 0.
    """
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", default="bench-results")
    parser.add_argument("--only", action="append", choices=sorted(BENCHMARKS))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        run = BENCHMARKS[args.child]
        print(json.dumps(run(args.output) if args.child in NEEDS_OUTPUT else run()))
        return 0
    names = args.only or list(BENCHMARKS)
    results: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "cpus": __import__("os").cpu_count(),
            "platform": platform.platform(),
        },
        "benchmarks": {},
    }
    for name in names:
        print(f"running {name} ...", flush=True)
        results["benchmarks"][name] = _run_child(name, str(Path(args.output).resolve()))
        print(json.dumps(results["benchmarks"][name], indent=2), flush=True)
    out = Path(args.output)
    config_lib.write_text_atomic(out / "bench.json", json.dumps(results, indent=2))
    config_lib.write_text_atomic(out / "bench.md", _table(results))
    print(f"wrote {out / 'bench.json'} and {out / 'bench.md'}")
    return 1 if any("error" in v for v in results["benchmarks"].values()) else 0


if __name__ == "__main__":
    # Ends without interpreter teardown, so the exit code is the run's own (see console).
    console.exit_process(main())
