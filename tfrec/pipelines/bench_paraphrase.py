"""`tfrec bench paraphrase`: can a model's search find a category from words its catalog never uses?

Each query of a CSV (`query,category`) is sent as a search with no user and no history (at a
fixed moment, `MOMENT`: hour and weekday are features) through
the artifact's own two-stage `Recommender` (the path the `_text` export serves); its score is
the share of the top `k` in the expected category (precision@k), next to the share a random
catalog item would have. The report lists, per query, the query words that do occur in the
catalog's titles and descriptions, so "paraphrase" is checked rather than assumed. It also
times `repeats` calls per query of that in-process `recommend` (batch 1, after one untimed
call per query): the serving module's own cost, without a server or network; and as many
calls of one six-word query (`TIMING_QUERY`), the length the latency targets are stated for.
Given an export folder, it starts `tfrec serve` on it and times the same calls over gRPC to
the `_text` model, checking that each served answer lists the in-process answer's items.
"""

from __future__ import annotations

import csv
import datetime
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import numpy as np

from tfrec import artifact as artifact_lib
from tfrec import errors

_WORD = re.compile(r"[a-z]+")
# Six words, timed beside the CSV's (mostly shorter) queries.
TIMING_QUERY = "a soft warm blanket for winter"
# Every request's time (hour and weekday are query features): a rerun gives the same answers.
MOMENT = datetime.datetime(2024, 1, 3, 12, tzinfo=datetime.UTC)  # a Wednesday, noon


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


def _percentiles(times: list[float]) -> dict[str, Any]:
    return {
        "calls": len(times),
        "p50": float(np.percentile(times, 50)) if times else None,
        "p99": float(np.percentile(times, 99)) if times else None,
    }


def _timed(call: Callable[[str], list[str]], queries: list[str], repeats: int) -> list[float]:
    """ms of `repeats` calls of each query, after one untimed call of each (warm-up)."""
    for query in queries:
        call(query)
    times = []
    for query in queries:
        for _ in range(repeats):
            start = time.perf_counter()
            call(query)
            times.append(1000 * (time.perf_counter() - start))
    return times


def _text_model(export_dir: str | Path, model: str) -> str:
    """The name of `model`'s query-text variant; ConfigError when `export_dir` lacks it."""
    from tfrec.pipelines import export as export_run

    name = model + export_run.TEXT_SUFFIX
    if not (Path(export_dir) / name).is_dir():
        raise errors.ConfigError(
            f"`--export-dir` {export_dir} has no `{name}` model: export the run with its "
            "query-text model (`tfrec export` without `--no-text`)"
        )
    return name


def _served(
    export_dir: str | Path,
    model: str,
    k: int,
    timed: dict[str, tuple[list[str], int]],
    expected: dict[str, list[str]],
    log_path: Path,
) -> dict[str, Any]:
    """Times `recommend` of `<model>_text` served by `tfrec serve` on `export_dir` (gRPC,
    batching off, one client) and counts the queries whose served items equal `expected`.

    Args:
        timed: dict key -> (queries, calls of each). Timed in turn, each after a warm-up.
        expected: dict query -> item ids the in-process `recommend` answered.
    """
    from tfrec.ranking import requests as requests_lib
    from tfrec.serving import client as client_lib
    from tfrec.serving import server_process

    name = _text_model(export_dir, model)
    with (
        server_process.ServerProcess(export_dir, False, [name], log_path) as server,
        client_lib.Client(server.grpc_target) as client,
    ):

        def call(query: str) -> list[str]:
            inputs = requests_lib.build("", [], now=MOMENT, k=k, query_text=query)
            out = client.predict(name, inputs, signature_name="recommend")
            return [i.decode() for i in out["item_ids"][0] if i]

        same = sum(call(q) == items for q, items in expected.items())
        report: dict[str, Any] = {
            key: _percentiles(_timed(call, qs, n)) for key, (qs, n) in timed.items()
        }
        report["server_peak_rss_mb"] = server.peak_rss_mb()
    return {**report, "same_items": same, "compared": len(expected)}


def run(
    workdir: str,
    queries: str,
    output: str,
    k: int = 10,
    repeats: int = 10,
    export_dir: Optional[str] = None,
    model: str = "tfrec",
) -> dict[str, Any]:
    """Scores every query; writes `<output>/paraphrase.json` and `paraphrase.md`.

    With `export_dir`, also times the served `recommend` of `<model>_text` there; the export
    must be of this run (its answers are compared with the in-process ones).
    """
    if export_dir is not None:
        _text_model(export_dir, model)  # before the slow part
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
    answers: dict[str, list[str]] = {}
    for query, category in rows:
        answer = recommender.recommend("", [], k=k, query_text=query, now=MOMENT)
        answers[query] = [r["item_id"] for r in answer]
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
    # The six-word query gets as many calls as all the CSV's queries together.
    timed = {
        "queries": ([q for q, _ in rows], repeats),
        "six_words": ([TIMING_QUERY], repeats * len(rows)),
    }

    def local(query: str) -> list[str]:
        answer = recommender.recommend("", [], k=k, query_text=query, now=MOMENT)
        return [r["item_id"] for r in answer]

    in_process = {key: _percentiles(_timed(local, qs, n)) for key, (qs, n) in timed.items()}
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    served = None
    if export_dir is not None:
        served = _served(export_dir, model, k, timed, answers, out / "server.log")
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
        # Batch 1, one call at a time: "queries" are the CSV's, "six_words" `TIMING_QUERY`.
        "timing_query": TIMING_QUERY,
        "recommend_ms": in_process,
        "served_recommend_ms": served,
        "queries": results,
    }
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
    lines += ["", _timing_table(report)]
    return "\n".join(lines)


def _timing_table(report: dict) -> str:
    """`recommend` with the query, batch 1: p50 / p99 ms in process and, if measured, served."""
    served = report["served_recommend_ms"]
    lines = [
        "| `recommend` with the query, batch 1 | in process p50 / p99 ms | "
        + ("served (gRPC) p50 / p99 ms | calls |" if served else "calls |"),
        "|---|---:|" + ("---:|---:|" if served else "---:|"),
    ]
    labels = {
        "queries": "the queries above",
        "six_words": f'six words: "{report["timing_query"]}"',
    }
    for key, label in labels.items():
        local = report["recommend_ms"][key]
        if not local["calls"]:
            continue
        cells = [label, f"{local['p50']:.1f} / {local['p99']:.1f}"]
        if served:
            cells.append(f"{served[key]['p50']:.1f} / {served[key]['p99']:.1f}")
        cells.append(str(local["calls"]))
        lines.append("| " + " | ".join(cells) + " |")
    if served:
        lines.append("")
        lines.append(
            f"Served answers with the in-process items: {served['same_items']} of "
            f"{served['compared']} queries; server peak RSS {served['server_peak_rss_mb']:.0f} MB."
        )
    return "\n".join(lines)
