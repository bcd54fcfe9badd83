"""Item index benchmark: IVF recall@k and latency against exact brute force, same run.

    python -m tfrec.pipelines.bench_index --items 100000,1000000 --output DIR

Item vectors are synthetic, dim 64 like `model.embedding_dim` of configs/demo.yaml, and shaped
like trained candidate-tower outputs: L2-normalised draws from a two-level Gaussian mixture
(`synthetic_items`). Queries come from the same mixture with more noise. For each catalog size
the exact top k of every query is computed by brute force; each index then reports
recall@k against it, in-process latency of `search` (p50/p99 over many calls after warmup,
`time.perf_counter`) at batch 1 and 32, build time and bytes. Brute force is timed in the same
run, so the ratios hold on a busy machine even when the absolute times do not.
gRPC latency through `tfrec serve` is not measured here.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

import numpy as np

from tfrec import config as config_lib
from tfrec import console

DIM = 64


def synthetic_items(
    n: int, dim: int = DIM, seed: int = 0, queries: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """L2-normalised item vectors [n, dim] and query vectors [queries, dim], float32.

    A two-level mixture, as trained towers place items: 64 unit "category" directions, 32
    sub-clusters around each (category + noise of norm ~0.6, renormalised), sub-cluster
    popularity Zipf-like (weight 1 / rank), items at sub-cluster + noise of norm ~0.7,
    queries at a sub-cluster drawn with the same weights + noise of norm ~0.9.
    """
    rng = np.random.default_rng(seed)

    def unit(x: np.ndarray) -> np.ndarray:
        return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)

    def noise(rows: int, norm: float) -> np.ndarray:
        return rng.standard_normal((rows, dim), dtype=np.float32) * np.float32(norm / dim**0.5)

    categories = unit(rng.standard_normal((64, dim)))
    subclusters = unit(np.repeat(categories, 32, axis=0) + noise(64 * 32, 0.6))
    weights = 1.0 / rng.permutation(np.arange(1, len(subclusters) + 1))
    weights /= weights.sum()
    items = np.empty((n, dim), np.float32)
    chunk = 1 << 18
    for start in range(0, n, chunk):
        rows = min(chunk, n - start)
        picked = rng.choice(len(subclusters), size=rows, p=weights)
        items[start : start + rows] = unit(subclusters[picked] + noise(rows, 0.7))
    picked = rng.choice(len(subclusters), size=queries, p=weights)
    return items, unit(subclusters[picked] + noise(queries, 0.9))


def _batches(total: int, size: int):
    for start in range(0, total, size):
        yield slice(start, min(start + size, total))


def _top_rows(index, queries: np.ndarray, k: int, batch: int) -> np.ndarray:
    import tensorflow as tf

    return np.concatenate(
        [index.search(tf.constant(queries[s]), k)[1].numpy() for s in _batches(len(queries), batch)]
    )


def recall(found: np.ndarray, exact: np.ndarray) -> float:
    """Mean over queries of |found ∩ exact| / |exact| (rows [q, k]; -1 in `found` = none)."""
    hits = [len(np.intersect1d(f[f >= 0], e)) for f, e in zip(found, exact, strict=True)]
    return float(np.mean(hits) / exact.shape[1])


def latency(index, queries: np.ndarray, batch: int, k: int, calls: int) -> dict[str, float]:
    """p50/p99 milliseconds of `index.search` over `calls` calls after warmup (cycled queries)."""
    import tensorflow as tf

    inputs = [
        tf.constant(np.roll(queries, -i * batch, axis=0)[:batch]) for i in range(min(calls, 50))
    ]
    for x in inputs[:10]:
        index.search(x, k)[1].numpy()
    times = []
    for i in range(calls):
        start = time.perf_counter()
        index.search(inputs[i % len(inputs)], k)[1].numpy()
        times.append((time.perf_counter() - start) * 1000.0)
    return {
        "p50_ms": round(float(np.percentile(times, 50)), 3),
        "p99_ms": round(float(np.percentile(times, 99)), 3),
    }


def index_bytes(index) -> dict[str, int]:
    """Bytes of the index's variables, and of those float vectors kept only for re-scoring."""
    total = sum(
        int(v.shape.num_elements()) * v.dtype.size for v in index.variables if v.dtype.is_numeric
    )
    vectors = getattr(index, "vectors", None)
    rescore = 0
    if vectors is not None and type(index).__name__ == "IVFIndex":
        rescore = int(vectors.shape.num_elements()) * 4
    return {"index_bytes": total, "rescore_vector_bytes": rescore}


def bench_size(
    n: int,
    nprobes: Sequence[int],
    quantisations: Sequence[str],
    num_queries: int,
    calls: int,
    batch_calls: int,
    k: int,
    seed: int,
) -> dict[str, Any]:
    """Every index over one synthetic catalog of `n` items (see the module docstring)."""
    import tensorflow as tf

    from tfrec.exporting import ivf_build, ivf_index

    start = time.perf_counter()
    items, queries = synthetic_items(n, seed=seed, queries=max(num_queries, 64))
    out: dict[str, Any] = {"items": n, "dim": DIM, "k": k, "queries": num_queries}
    # Other processes on the machine move p99 most: their load is kept with the figures.
    out["load_average_at_start"] = [round(v, 2) for v in os.getloadavg()]
    out["data_seconds"] = round(time.perf_counter() - start, 2)
    # Exact answers in batches whose [batch, n] score matrix stays near 400 MB.
    batch = max(1, min(256, 100_000_000 // n))
    start = time.perf_counter()
    brute = ivf_index.BruteForceIndex(items, fingerprint="bench")
    exact = _top_rows(brute, queries[:num_queries], k, batch)
    out["exact_seconds"] = round(time.perf_counter() - start, 2)
    rows: list[dict[str, Any]] = [
        {
            "index": "brute_force",
            "build_s": 0.0,
            **index_bytes(brute),
            "recall": 1.0,
            "batch1": latency(brute, queries, 1, k, calls),
            "batch32": latency(brute, queries, 32, k, batch_calls),
        }
    ]
    del brute
    print(json.dumps(rows[-1]), flush=True)
    for quantisation in quantisations:
        config = config_lib.IndexConfig(quantisation=quantisation, seed=seed)
        start = time.perf_counter()
        index = ivf_build.build_ivf(items, config)
        build_s = time.perf_counter() - start
        sizes = index.sizes.numpy()
        rescores = [config.rescore, 0] if quantisation == "int8" else [0]
        for rescore in rescores:
            index.rescore.assign(rescore)
            for nprobe in nprobes:
                index.nprobe.assign(nprobe)
                bytes_ = index_bytes(index)
                if rescore == 0:
                    bytes_["index_bytes"] -= bytes_.pop("rescore_vector_bytes")
                    bytes_["rescore_vector_bytes"] = 0
                probed = np.sort(sizes)[::-1][:nprobe].sum()
                rows.append(
                    {
                        "index": f"ivf_{quantisation}" + (f"_rescore{rescore}" if rescore else ""),
                        "nlist": int(len(sizes)),
                        "nprobe": nprobe,
                        "largest_partition": int(sizes.max()),
                        "max_candidates": int(probed),
                        "build_s": round(build_s, 2),
                        **bytes_,
                        "recall": round(
                            recall(_top_rows(index, queries[:num_queries], k, 100), exact), 4
                        ),
                        "batch1": latency(index, queries, 1, k, calls),
                        "batch32": latency(index, queries, 32, k, batch_calls),
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
        del index
    base1, base32 = rows[0]["batch1"]["p50_ms"], rows[0]["batch32"]["p50_ms"]
    for row in rows:
        row["speedup_p50_batch1"] = round(base1 / row["batch1"]["p50_ms"], 1)
        row["speedup_p50_batch32"] = round(base32 / row["batch32"]["p50_ms"], 1)
    out["results"] = rows
    out["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    out["tf_threads"] = {
        "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
    }
    return out


def table(results: dict[str, Any]) -> str:
    """The results as one markdown table per catalog size."""
    lines = []
    for size in results["sizes"]:
        lines += [
            f"### {size['items']:,} items, dim {size['dim']}, recall@{size['k']} over "
            f"{size['queries']} queries",
            "",
            "| index | nlist | nprobe | recall | b1 p50 ms | b1 p99 ms | b32 p50 ms | b32 p99 ms "
            "| speedup b1 | build s | index MB | of which rescore MB |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in size["results"]:
            lines.append(
                f"| {r['index']} | {r.get('nlist', '')} | {r.get('nprobe', '')} | {r['recall']} "
                f"| {r['batch1']['p50_ms']} | {r['batch1']['p99_ms']} | {r['batch32']['p50_ms']} "
                f"| {r['batch32']['p99_ms']} | {r['speedup_p50_batch1']} | {r['build_s']} "
                f"| {r['index_bytes'] / 2**20:.1f} | {r['rescore_vector_bytes'] / 2**20:.1f} |"
            )
        lines.append("")
    return "\n".join(lines)


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the benchmark and writes bench_index.json and bench_index.md to `--output`.

    Args:
        argv: sequence of str or None. Command-line arguments; defaults to `sys.argv[1:]`.

    Returns:
        The exit code, 0.
    """
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--items", default="100000,1000000", help="catalog sizes, comma-separated")
    parser.add_argument("--output", default="bench-results")
    parser.add_argument(
        "--nprobe", default="8,16,32,64", help="partitions searched, comma-separated"
    )
    parser.add_argument("--quantisation", default="float32,int8", help="IVF code types to build")
    parser.add_argument("--queries", type=int, default=1000, help="queries for recall")
    parser.add_argument("--calls", type=int, default=300, help="timed calls at batch 1")
    parser.add_argument("--batch-calls", type=int, default=30, help="timed calls at batch 32")
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    results: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "data": synthetic_items.__doc__,
        "sizes": [],
    }
    out = Path(args.output)
    for n in _ints(args.items):
        print(f"{n} items ...", flush=True)
        results["sizes"].append(
            bench_size(
                n,
                _ints(args.nprobe),
                [q for q in args.quantisation.split(",") if q],
                args.queries,
                args.calls,
                args.batch_calls,
                args.k,
                args.seed,
            )
        )
        # Written after each size, so a long run leaves what it has measured.
        config_lib.write_text_atomic(out / "bench_index.json", json.dumps(results, indent=2))
        config_lib.write_text_atomic(out / "bench_index.md", table(results))
    print(table(results))
    print(f"wrote {out / 'bench_index.json'} and {out / 'bench_index.md'}")
    return 0


if __name__ == "__main__":
    console.quiet(loads_models=False)
    console.exit_process(main())
