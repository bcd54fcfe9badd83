"""An experiment's output folder written by hand: the report's inputs without any training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests import harness
from tfrec.experiments import runner
from tfrec.experiments import spec as spec_lib

QUERIES = 60
SEEDS = (0, 1, 2)


def write_experiment(folder: Path, variants: str, extra: str = "") -> Path:
    """An experiment file over configs/tiny.yaml with the given `variants:` block."""
    path = folder / "exp.yaml"
    path.write_text(
        f"name: fake\nbase: {Path(harness.TINY_CONFIG).resolve()}\nseeds: [0, 1, 2]\n"
        f"baselines: [most_popular]\nmetrics: [recall@10, mrr]\nreference: base\n{extra}"
        f"variants:\n{variants}",
        encoding="utf-8",
    )
    return path


def _per_query(rng: np.random.Generator, model: str, level: float) -> dict[str, np.ndarray]:
    out = {}
    for k in range(1, spec_lib.MAX_K + 1):
        p = min(1.0, level * (1 + np.log(k)))
        out[f"{model}/recall@{k}"] = (rng.random(QUERIES) < p).astype(float)
    out[f"{model}/mrr"] = rng.random(QUERIES) * level
    return out


def fake_run(workdir: Path, model: str, level: float, seed: int) -> None:
    """A finished run: `done.json`, the artifact's manifest and per-query metrics."""
    rng = np.random.default_rng(seed)
    (workdir / "artifact").mkdir(parents=True)
    frame = {"user_id": [f"u{i % 20}" for i in range(QUERIES)], "timestamp": np.arange(QUERIES)}
    frame.update(_per_query(rng, model, level))
    frame.update(_per_query(rng, "most_popular", 0.05))
    if model == "tfrec_two_stage":
        frame.update(_per_query(rng, "tfrec", level))
    pd.DataFrame(frame).to_parquet(workdir / "artifact" / "per_query.parquet")
    runner.write_json(workdir / "artifact" / "artifact.json", {"data": {"fingerprint": "ab" * 32}})
    runner.write_json(
        workdir / runner.DONE,
        {"train_seconds": 12.0, "evaluate_seconds": 3.0, "code_version": "0.0 (test)"},
    )


def fake_serving(output: Path, variant: str, p50: float, size: int) -> None:
    items = [
        {
            "item_id": f"i{j}",
            "title": f"Item {j} of {variant}",
            "explanation": "because of your recent view of Item 1",
        }
        for j in range(3)
    ]
    runner.write_json(
        output / variant / "serving.json",
        {
            "size_bytes": size,
            "latency": {"signature": "recommend", "p50_ms": p50, "p99_ms": 2 * p50},
            "examples": [
                {
                    "user_id": "u1",
                    "recent": [{"item_id": "i1", "title": "Item 1", "event_type": "view"}],
                    "items": items,
                }
            ],
        },
    )


@pytest.fixture
def fake_experiment(tmp_path):
    """Three variants: `base` (reference), `better` (clearly better), `broken` (failed)."""
    path = write_experiment(
        tmp_path,
        "  base: {}\n  better:\n    set: {model.embedding_dim: 8}\n"
        "  broken:\n    set: {model.embedding_dim: 4}\n",
    )
    exp = spec_lib.load(path, output=tmp_path / "out")
    for seed in SEEDS:
        fake_run(exp.run_dir("base", seed), "tfrec_two_stage", 0.1, seed)
        fake_run(exp.run_dir("better", seed), "tfrec_two_stage", 0.3, seed + 10)
        runner.mark_failed(exp.run_dir("broken", seed), "ValueError: the towers diverged", "trace")
    fake_serving(exp.output, "base", 2.0, 3_000_000)
    fake_serving(exp.output, "better", 3.0, 2_000_000)
    labels = pd.DataFrame(
        {
            "user_id": [f"u{i % 20}" for i in range(QUERIES)],
            "timestamp": np.arange(QUERIES),
            "cold_users": np.where(np.arange(QUERIES) < 10, "cold user", "known user"),
            "cold_items": "known item",
            "category": np.where(np.arange(QUERIES) % 2 == 0, "shoes", "dresses"),
            "popularity": "tail (bottom 50%)",
            "history_length": "1-2",
        }
    )
    labels.to_parquet(exp.output / "segments.parquet")
    return exp
