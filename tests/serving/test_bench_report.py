"""The serving bench's report: ratios, growth, targets and markdown on known numbers."""

import json

import pytest

from tfrec.serving import bench_report


def _cell(items, model, signature, protocol, batching, p50, rps=100.0, rows=1):
    phase = {"requests": 10, "failures": 0, "p50_ms": p50, "p95_ms": p50 * 1.5}
    phase.update(p99_ms=p50 * 2, throughput_rps=rps, rows_per_s=rps * rows)
    return {
        "items": items,
        "model": model,
        "signature": signature,
        "protocol": protocol,
        "batching": batching,
        "rows": rows,
        "index": bench_report.INDEX[model],
        "batchable": model != "tfrec",
        "single": phase,
        "concurrent": dict(phase, clients=4),
        "errors": [],
    }


def _results(cells, settings=None, server_env=None, export=None, skipped=()):
    """A bench report around `cells`: one 100k-item export, `settings` and `export` added."""
    return {
        "settings": {
            "workdir": "w",
            "seconds_per_phase": 1.0,
            "rounds": 3,
            "warmup_requests": 20,
            "concurrent_clients": 4,
            "k": 10,
            **(settings or {}),
            "server_env": server_env or {"TF_ENABLE_ONEDNN_OPTS": "0"},
        },
        "model": {"embedding_dim": 16, "max_history": 5, "retrieve_n": 30},
        "machine": {"cpus": 2, "load_average_before": [1.0], "load_average_after": [1.5]},
        "exports": [
            {
                "items": 10**5,
                "seconds": 3.0,
                "size_mb": {"tfrec": 9, "tfrec_f32": 8, "tfrec_int8": 4},
                **(export or {}),
            }
        ],
        "cells": cells,
        "skipped": list(skipped),
        "notes": [],
    }


def test_ratios_growth_targets_and_markdown_on_known_numbers():
    # p50 doubles per 10x items: exponent log10(2) = 0.30.
    cells = [
        _cell(n, "tfrec", "retrieve", "grpc", False, p) for n, p in ((10**4, 2.0), (10**5, 4.0))
    ]
    cells += [_cell(10**5, "tfrec", "retrieve", "rest", True, 6.0, rps=50.0)]
    cells += [_cell(10**5, "tfrec", "recommend", "grpc", False, 15.0)]
    cells += [
        _cell(10**5, m, "retrieve", "grpc", False, p)
        for m, p in (("tfrec_f32", 3.0), ("tfrec_int8", 3.6))
    ]
    results = _results(cells, skipped=["1,000,000 items: REST and batching on not measured"])
    bench_report.add_ratios(results)
    assert cells[1]["vs_baseline"]["p50"] == 2.0
    assert cells[2]["vs_baseline"]["concurrent_throughput"] == 0.5
    assert "vs_baseline" not in cells[3]  # no recommend cell at the smallest catalog
    growth = {(g["model"], g["signature"]): g for g in results["growth"]}
    assert growth["tfrec", "retrieve"]["p50_exponent"] == pytest.approx(0.30, abs=0.005)
    assert growth["tfrec", "retrieve"]["p50_vs_smallest"] == [1.0, 2.0]
    assert results["int8_vs_float32"] == [
        {
            "items": 10**5,
            "rows": 1,
            "p50": 1.2,
            "p99": 1.2,
            "concurrent_throughput": 1.0,
            "size": 0.5,
        }
    ]
    targets = {t["signature"]: t for t in results["targets"]}
    assert targets["retrieve"]["measured_p99_ms"] == 8.0 and targets["retrieve"]["met"] is True
    assert targets["recommend"]["measured_p99_ms"] == 30.0 and targets["recommend"]["met"] is False
    md = bench_report.to_markdown(results)
    assert (
        "- `retrieve` p99 < 10 ms, single requests over gRPC: **met** (measured p99 8.00 ms)" in md
    )
    assert "- `recommend` p99 < 20 ms, single requests over gRPC: **NOT met**" in md
    assert (
        "| 100,000 | tfrec | float32 | retrieve | rest | on (runs alone) | 1 | 6.00 | 9.00 | "
        "12.00 | 50 | 50 | 50 | 50 | 12.00 |" in md
    )
    assert "| tfrec | retrieve | 1 | 2.00 / 4.00 (x1.00) | 4.00 / 8.00 (x2.00) | 0.30 |" in md
    assert "| 100,000 | 1 | 1.20 | 1.20 | 1.00 | 0.50 |" in md
    assert "One user per request, k = 10" in md
    assert "- 1,000,000 items: REST and batching on not measured" in md
    assert "TF_ENABLE_ONEDNN_OPTS=0" in md
    assert "Settings: the config's `bench:` section" in md
    assert "Model: the trained run `w` given as `--workdir` (embedding dim 16, max history 5" in md
    json.dumps(results, allow_nan=False)  # strict JSON
    results["settings"].update(
        config="configs/demo.yaml", train_overrides=["train.epochs=1", "eval.baselines=[]"]
    )
    md = bench_report.to_markdown(results)
    assert "Model: `configs/demo.yaml` trained by the bench into `w` with the overrides " in md
    assert "`tfrec train --config configs/demo.yaml --set train.epochs=1 --set eval." in md


def test_cells_of_several_rows_compare_with_their_own_rows():
    # 10k and 100k items, retrieve over gRPC, 1 and 32 rows per request; int8 and f32 at 100k.
    cells = [
        _cell(10**4, "tfrec", "retrieve", "grpc", False, 2.0),
        _cell(10**4, "tfrec", "retrieve", "grpc", False, 8.0, rps=40.0, rows=32),
        _cell(10**5, "tfrec", "retrieve", "grpc", False, 4.0),
        _cell(10**5, "tfrec", "retrieve", "grpc", False, 32.0, rps=20.0, rows=32),
        _cell(10**5, "tfrec_f32", "retrieve", "grpc", False, 3.0),
        _cell(10**5, "tfrec_int8", "retrieve", "grpc", False, 3.6),
        _cell(10**5, "tfrec_f32", "retrieve", "grpc", False, 10.0, rows=32),
        _cell(10**5, "tfrec_int8", "retrieve", "grpc", False, 30.0, rows=32),
    ]
    results = _results(
        cells,
        settings={"request_pool": 64, "request_rows": [1, 32]},
        server_env={"TF_ENABLE_ONEDNN_OPTS": "1"},
        export={
            "index": "ivf float32 8/32",
            "recall@10": 0.99,
            "recall@100": 0.95,
            "recall_by_rows": {"32": {"recall@10": 0.98, "recall@100": 0.94}},
        },
    )
    bench_report.add_ratios(results)
    # 32 rows divide by 32 rows at 10k (32 / 8), not by one row (32 / 2).
    assert (
        cells[3]["vs_baseline"]["p50"] == 4.0 and "32 rows" in cells[3]["vs_baseline"]["baseline"]
    )
    assert cells[3]["vs_baseline"]["concurrent_throughput"] == 0.5
    growth = {(g["model"], g["signature"], g["rows"]): g for g in results["growth"]}
    assert growth["tfrec", "retrieve", 1]["p50_ms"] == [2.0, 4.0]
    assert growth["tfrec", "retrieve", 32]["p50_ms"] == [8.0, 32.0]
    assert [(r["rows"], r["p50"]) for r in results["int8_vs_float32"]] == [(1, 1.2), (32, 3.0)]
    # The targets are of one-row requests: p99 8 ms, not the 32-row 64 ms.
    assert {t["measured_p99_ms"] for t in results["targets"] if t["signature"] == "retrieve"} == {
        8.0
    }
    md = bench_report.to_markdown(results)
    assert "Rows per request: 1, 32 (distinct synthetic users of the pool of 64" in md
    # rows 32: 20 req/s is 640 rows/s, with one client and with 4.
    assert (
        "| 100,000 | tfrec | float32 | retrieve | grpc | off | 32 | 32.00 | 48.00 | 64.00 |" in md
    )
    assert "| 20 | 640 | 20 | 640 | 64.00 |" in md
    assert "| tfrec | retrieve | 32 | 8.00 / 16.00 (x1.00) | 32.00 / 64.00 (x4.00) | 0.60 |" in md
    assert (
        "ivf float32 8/32 (recall@10 0.990, recall@100 0.950; 32 rows per request: recall@10 "
        "0.980, recall@100 0.940)"
    ) in md
    assert " = 640 rows/s" in bench_report.brief(cells[3])
    assert "rows/s" not in bench_report.brief(cells[2])
