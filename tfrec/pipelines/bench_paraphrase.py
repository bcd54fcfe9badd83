"""`tfrec bench paraphrase`: can a model's search find a category from words its catalog never uses?

Each query of a CSV (`query,category`) is sent as a search with no user and no history through
the artifact's own two-stage `Recommender` (the path the `_text` export serves); its score is
the share of the top `k` in the expected category (precision@k), next to the share a random
catalog item would have. The report lists, per query, the query words that do occur in the
catalog's titles and descriptions, so "paraphrase" is checked rather than assumed. It also
times `repeats` calls per query of that in-process `recommend` (batch 1, after one untimed
call per query): the serving module's own cost, without a server or network.
"""

from __future__ import annotations

import csv
import datetime
import json
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from tfrec import artifact as artifact_lib
from tfrec import errors

_WORD = re.compile(r"[a-z]+")


def read_queries(path: str | Path) -> list[tuple[str, str]]:
    """(query, category) rows of a UTF-8 CSV with a `query,category` header."""
    path = Path(path)
    if not path.is_file():
        raise errors.DataError("expected a CSV of query,category rows, found no file", path=path)
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or {"query", "category"} - set(reader.fieldnames):
            raise errors.DataError(
                f"expected the columns query,category, received {reader.fieldnames}",
                path=path,
                row=1,
            )
        rows = []
        for number, row in enumerate(reader, start=2):
            query, category = (row.get("query") or "").strip(), (row.get("category") or "").strip()
            if not query or not category:
                field = "query" if not query else "category"
                raise errors.DataError(
                    "expected a non-empty value", path=path, row=number, field=field
                )
            rows.append((query, category))
    if not rows:
        raise errors.DataError("expected at least one query row, received none", path=path)
    return rows


def run(workdir: str, queries: str, output: str, k: int = 10, repeats: int = 10) -> dict[str, Any]:
    """Scores every query; writes `<output>/paraphrase.json` and `paraphrase.md`."""
    art = artifact_lib.Artifact(workdir)
    catalog = art.catalog()
    categories = catalog["category"].fillna("").astype(str)
    text = (catalog["title"].fillna("") + " " + catalog["description"].fillna("")).str.lower()
    vocabulary = set(_WORD.findall(" ".join(text)))
    rows = read_queries(queries)
    unknown = sorted({c for _, c in rows} - set(categories))
    if unknown:
        raise errors.DataError(
            f"expected categories of the model's catalog, received {unknown}", path=queries
        )
    recommender = artifact_lib.load(workdir)
    category_of = dict(zip(catalog["item_id"].astype(str), categories, strict=True))
    results = []
    times: list[float] = []
    for query, category in rows:
        answer = recommender.recommend("", [], k=k, query_text=query)
        for _ in range(repeats):
            start = time.perf_counter()
            recommender.recommend("", [], k=k, query_text=query)
            times.append(1000 * (time.perf_counter() - start))
        got = [category_of.get(r["item_id"], "") for r in answer]
        results.append(
            {
                "query": query,
                "category": category,
                "catalog_words": [w for w in _WORD.findall(query.lower()) if w in vocabulary],
                "precision": sum(c == category for c in got) / k,
                "chance": float(np.mean(categories == category)),
                "top": [r["item_id"] for r in answer[:3]],
            }
        )
    config = art.config
    report = {
        "benchmark": "paraphrase",
        "date_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "workdir": str(workdir),
        "text_encoder": {
            "mode": config.model.text_encoder.mode,
            "preset": config.model.text_encoder.preset,
            "query_student_layers": config.model.text_encoder.query_student.layers,
        },
        "k": k,
        "mean_precision": float(np.mean([r["precision"] for r in results])),
        "mean_chance": float(np.mean([r["chance"] for r in results])),
        "recommend_ms": {
            "calls": len(times),
            "p50": float(np.percentile(times, 50)) if times else None,
            "p99": float(np.percentile(times, 99)) if times else None,
        },
        "queries": results,
    }
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "paraphrase.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    (out / "paraphrase.md").write_text(format_table(report) + "\n", encoding="utf-8")
    print(format_table(report))
    return report


def format_table(report: dict) -> str:
    """Per query: expected category, precision@k, chance, catalog words in the query."""
    k = report["k"]
    lines = [
        f"| query | category | precision@{k} | chance | query words in the catalog |",
        "|---|---|---:|---:|---|",
    ]
    for r in report["queries"]:
        words = ", ".join(r["catalog_words"]) or "none"
        lines.append(
            f"| {r['query']} | {r['category']} | {r['precision']:.1f} | {r['chance']:.2f} | "
            f"{words} |"
        )
    lines.append(
        f"| **mean** | | **{report['mean_precision']:.2f}** | {report['mean_chance']:.2f} | |"
    )
    timing = report["recommend_ms"]
    if timing["calls"]:
        lines.append("")
        lines.append(
            f"In-process `recommend` with the query, batch 1: p50 {timing['p50']:.1f} ms, "
            f"p99 {timing['p99']:.1f} ms over {timing['calls']} calls."
        )
    return "\n".join(lines)
