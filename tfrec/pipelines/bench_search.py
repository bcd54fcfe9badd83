"""`tfrec bench search`: search quality (Recall@10, MRR) of lexical, embedding and fused scorers.

The benchmark (`evaluation.search.benchmark`) turns an Amazon review log into queries (review
summaries of the last 20% of the time range) and a catalog whose text is the reviews of the
first 80%. Five scorers rank the whole catalog for every query:

* `bm25`: BM25 over each item's text (`bm25s`, library defaults);
* `tfidf`: TF-IDF cosine over each item's text (scikit-learn defaults);
* `minilm_concat`: the frozen default text model (all-MiniLM-L6-v2 through
  `text.sentence_encoder`), one vector per item's text, cut at `max_length` tokens;
* `minilm_best_review`: the same model, an item scored by its best-matching single review;
* `fusion`: reciprocal-rank fusion (k = 60) of `tfidf` and `minilm_best_review`;

and, as a served model reads queries (`--student-layers`, default 2; 0 leaves them out), with
queries cut at `--query-length` WordPiece tokens (`data.query_text_length`) and reviews
embedded by the full model as `minilm_best_review` does:

* `teacher`: queries through the full model at that length;
* `student`: queries through the distilled query student (`layers.query_student`, distilled
  by `training.query_student` on the text-window review summaries and vocabulary words, never
  on a query);
* `student_fusion`: reciprocal-rank fusion of `tfidf` and `student`.

The report also times one 6-word query through teacher and student, batch 1, in process.

Metrics follow `evaluation.protocol` (full catalog, pessimistic ties); every scorer is compared
with BM25 on the same queries by a paired bootstrap (`evaluation.significance.compare`, 95%
interval, Holm over the two metrics). Embeddings are cached under `<output>/cache`, so a rerun
only scores. Cost on the musical-instruments set, 2 busy CPU cores: 9 min the first time
(2,587 reviews, 719 item texts and 5,742 short queries to embed), 37 s on a rerun.
"""

from __future__ import annotations

import datetime
import json
import platform
import sys
import time
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any, Optional

import numpy as np

from tfrec import config as config_lib
from tfrec import errors
from tfrec.data import amazon_reviews
from tfrec.evaluation import protocol, significance
from tfrec.evaluation.search import benchmark, dense, fusion, lexical

REFERENCE = "bm25"
METRICS = ("recall@10", "mrr")
LABELS = {
    "bm25": "BM25 (bm25s, defaults)",
    "tfidf": "TF-IDF cosine (scikit-learn, defaults)",
    "minilm_concat": "MiniLM frozen, item's concatenated reviews",
    "minilm_best_review": "MiniLM frozen, item's best-matching review",
    "fusion": "RRF of TF-IDF and MiniLM best review",
    "teacher": "MiniLM (6 layers), query cut to the served length, best review",
    "student": "distilled query student, best review",
    "student_fusion": "RRF of TF-IDF and the student",
    "student_int8": "the student over int8 weights (as in `tfrec compress`'s int8 SavedModel)",
}
# A six-word query, for the latency of one query through teacher and student.
LATENCY_QUERY = "warm sounding strings for acoustic guitar"
LATENCY_CALLS = 200
MAX_LENGTH = 128  # tokens per text, [CLS] and [SEP] included: MiniLM's training length


def data_path(config: config_lib.Config, path: Optional[str]) -> Path:
    """The review file to read: `path`, else the config's `data.path`.

    Raises:
        errors.ConfigError: the config is not an `amazon-reviews` dataset and no path is given.
        errors.DataError: the file does not exist (naming it).
    """
    if path is None:
        if config.data.dataset != "amazon-reviews":
            raise errors.ConfigError(
                f"`data.dataset` must be `amazon-reviews` for the search benchmark (it needs "
                f"review summaries), received {config.data.dataset!r}"
            )
        path = config.data.path
    if not path or not Path(path).is_file():
        raise errors.DataError(
            "expected the Amazon review CSV (the config's `data.path` or --path), received a "
            "path that is not a file",
            path=path,
        )
    return Path(path)


def score_all(
    sset: benchmark.SearchSet,
    encoder: Any,
    cache_dir: Path,
    progress: bool = True,
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Every scorer's [num_queries, num_items] scores, and each one's seconds (cache reads
    included)."""
    scores: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {}

    def timed(name, fn):
        t0 = time.perf_counter()
        scores[name] = fn()
        seconds[name] = round(time.perf_counter() - t0, 2)

    timed("bm25", lambda: lexical.bm25_scores(sset.item_texts, sset.queries))
    timed("tfidf", lambda: lexical.tfidf_scores(sset.item_texts, sset.queries))
    t0 = time.perf_counter()
    queries = dense.cached_encode(encoder, sset.queries, cache_dir, "queries", progress)
    seconds["embed_queries"] = round(time.perf_counter() - t0, 2)
    timed(
        "minilm_concat",
        lambda: dense.cosine_scores(
            queries, dense.cached_encode(encoder, sset.item_texts, cache_dir, "items", progress)
        ),
    )
    timed(
        "minilm_best_review",
        lambda: dense.best_review_scores(
            queries,
            dense.cached_encode(encoder, sset.review_texts, cache_dir, "reviews", progress),
            sset.review_items,
            sset.num_items,
        ),
    )
    timed(
        "fusion",
        lambda: fusion.reciprocal_rank_fusion([scores["tfidf"], scores["minilm_best_review"]]),
    )
    return scores, seconds


def _query_encoders(preset: str, layers: int, query_length: int):
    """A `PretrainedTextEncoder` of `preset` with a query student of `layers`, and its spec.

    Built as the towers build theirs (`builders.build_pretrained_text_encoder`, mode frozen)
    over a spec that holds the preset's vocabulary and nothing else.
    """
    import tensorflow as tf

    from tfrec import features, presets
    from tfrec.models import builders

    vocabulary = presets.vocabulary(presets.resolve(preset))
    spec = features.FeatureSpec(
        max_history=1,
        text_length=query_length,
        query_text_length=query_length,
        event_types=(),
        users=[],
        items=["-"],  # no item is cached: a placeholder for the lookup's vocabulary
        categories=[],
        wordpiece=list(vocabulary.tokens),
        lowercase=vocabulary.lowercase,
        strip_accents=vocabulary.strip_accents,
    )
    text_config = config_lib.TextEncoderConfig(
        mode="frozen",
        preset=preset,
        query_student=config_lib.QueryStudentConfig(layers=layers),
    )
    # output_dim 1: only the frozen part and the student are read, never the projection.
    encoder = builders.build_pretrained_text_encoder(text_config, spec, output_dim=1)
    encoder.build(tf.TensorShape([None, query_length]))
    return encoder, spec


def _pooled(encoder, token_ids: np.ndarray, student: bool, batch_size: int = 256) -> np.ndarray:
    """Unit-length pooled vectors of the frozen part (or the student) [n, hidden]."""
    import tensorflow as tf

    run = tf.function(lambda ids: encoder.frozen_outputs(ids, student=student)[0])
    parts = [
        run(tf.constant(token_ids[i : i + batch_size])).numpy()
        for i in range(0, len(token_ids), batch_size)
    ]
    out = np.concatenate(parts).astype(np.float32)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms > 0, norms, 1.0)


def _latency_ms(encoder, spec, student: bool) -> dict[str, float]:
    """p50 / p99 ms of one `LATENCY_QUERY` (batch 1) through teacher or student, in process."""
    import tensorflow as tf

    from tfrec.data import vocab

    ids = tf.constant(
        vocab.tokenize(np.array([LATENCY_QUERY], dtype=object), spec, spec.query_text_length)
    )
    run = tf.function(lambda t: encoder.frozen_outputs(t, student=student)[0])
    for _ in range(5):
        run(ids).numpy()
    times = []
    for _ in range(LATENCY_CALLS):
        start = time.perf_counter()
        run(ids).numpy()
        times.append(1000 * (time.perf_counter() - start))
    return {"p50": float(np.percentile(times, 50)), "p99": float(np.percentile(times, 99))}


def student_scores(
    sset: benchmark.SearchSet,
    scores: dict[str, np.ndarray],
    review_vectors: np.ndarray,
    preset: str,
    layers: int,
    steps: int,
    query_length: int,
    progress: bool = True,
) -> dict[str, Any]:
    """Adds the `teacher`, `student` and `student_fusion` scores; returns the student's facts.

    The student is distilled here, on the text-window review summaries (as catalog titles are
    in training) and vocabulary words; the queries are never distillation text.
    """
    from tfrec.compression import int8_round_trip
    from tfrec.data import vocab
    from tfrec.training import query_student

    encoder, spec = _query_encoders(preset, layers, query_length)
    distilled = query_student.distil(
        encoder, spec, list(sset.review_summaries), steps=steps, progress=progress
    )
    ids = vocab.tokenize(sset.queries, spec, query_length)
    for name, student in (("teacher", False), ("student", True)):
        scores[name] = dense.best_review_scores(
            _pooled(encoder, ids, student), review_vectors, sset.review_items, sset.num_items
        )
    scores["student_fusion"] = fusion.reciprocal_rank_fusion([scores["tfidf"], scores["student"]])
    # The item side stays float: only the query encoder is what an int8 query tower changes.
    with int8_round_trip.int8_weights(encoder) as replaced:
        scores["student_int8"] = dense.best_review_scores(
            _pooled(encoder, ids, True), review_vectors, sset.review_items, sset.num_items
        )
    return {
        **distilled,
        "int8_weights": replaced,
        "query_length": query_length,
        "latency_ms": {
            "query": LATENCY_QUERY,
            "calls": LATENCY_CALLS,
            "teacher": _latency_ms(encoder, spec, student=False),
            "student": _latency_ms(encoder, spec, student=True),
        },
    }


def _rows(matrix: np.ndarray) -> protocol.ScoreFn:
    return lambda start, end: matrix[start:end]


def evaluate_scores(
    scores: dict[str, np.ndarray], relevant: np.ndarray, num_items: int
) -> dict[str, dict[str, Any]]:
    """Per scorer: its metrics, and its paired difference from BM25 with a 95% interval.

    Args:
        scores: dict name -> float [num_queries, num_items]; must hold REFERENCE.
        relevant: int [num_queries]. Each query's one relevant item.
        num_items: int. Catalog size.

    Returns:
        dict name -> {"metrics": {recall@10, mrr, queries}, "vs_bm25": {metric: ...}} (no
        `vs_bm25` for BM25 itself).
    """
    lists = [np.array([r]) for r in relevant]
    results = {
        name: protocol.evaluate(_rows(s), lists, num_items, ks=(10,)) for name, s in scores.items()
    }
    out: dict[str, dict[str, Any]] = {}
    for name, result in results.items():
        entry: dict[str, Any] = {
            "metrics": {m: float(result["all"][m]) for m in METRICS},
            "queries": int(result["all"]["queries"]),
        }
        if name != REFERENCE:
            entry["vs_bm25"] = significance.compare(
                result.per_query, results[REFERENCE].per_query, METRICS
            )
        out[name] = entry
    return out


def _truncated_share(encoder: Any, texts: Collection[str]) -> float:
    lengths = np.array([len(ids) for ids in encoder.token_ids(list(texts))])
    return float(np.mean(lengths > encoder.max_length - 2)) if lengths.size else 0.0


def format_table(report: dict) -> str:
    """The results as a Markdown table: metric, then the difference from BM25 [95% CI]."""
    lines = [
        "| scorer | Recall@10 | MRR | Recall@10 - BM25 [95% CI] | MRR - BM25 [95% CI] |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, entry in report["scorers"].items():
        cells = [LABELS.get(name, name)]
        cells += [f"{entry['metrics'][m]:.3f}" for m in METRICS]
        for m in METRICS:
            diff = entry.get("vs_bm25", {}).get(m)
            if diff is None:
                cells.append("reference")
            else:
                mark = "*" if diff["significant"] else ""
                cells.append(
                    f"{diff['difference']:+.3f} [{diff['low']:+.3f}, {diff['high']:+.3f}]{mark}"
                )
        lines.append("| " + " | ".join(cells) + " |")
    d = report["data"]
    lines.append("")
    lines.append(
        f"{d['queries']:,} queries (review summaries of >= {report['settings']['min_query_words']}"
        f" words written from {d['cutoff_utc']} UTC), {d['items']:,} items whose text is "
        f"{d['text_reviews']:,} earlier reviews; full-catalog ranking, pessimistic ties; "
        f"MiniLM texts cut at {report['settings']['max_length']} tokens "
        f"({report['truncated']['items']:.0%} of item texts, "
        f"{report['truncated']['reviews']:.0%} of reviews). * : the 95% paired bootstrap "
        "interval excludes 0 and the Holm-adjusted Wilcoxon p < 0.05."
    )
    return "\n".join(lines)


def run(
    config_path: Optional[str],
    output: str,
    overrides: Sequence[str] = (),
    path: Optional[str] = None,
    preset: str = "default",
    max_length: int = MAX_LENGTH,
    max_queries: Optional[int] = None,
    text_share: float = 0.8,
    min_query_words: int = 2,
    student_layers: int = 2,
    student_steps: int = 400,
    query_length: Optional[int] = None,
    progress: bool = True,
) -> dict:
    """Builds the benchmark, scores, evaluates; writes `search.json` and `search.md`.

    Args:
        config_path: str or None. A config naming the review file (`data.path`).
        output: str. Folder for the results and `cache/` (created).
        overrides: sequence of str. `key=value` config overrides.
        path: str or None. The review file, instead of the config's.
        preset: str. The text model's preset folder, or "default".
        max_length: int. Tokens per text for MiniLM.
        max_queries: int or None. Score a fixed random subset of the queries (seed 0).
        text_share: float. Share of the time range that makes item text.
        min_query_words: int. Fewest words of a query.
        student_layers: int. Layers of the distilled query student; 0: no student rows.
        student_steps: int. Its distillation steps.
        query_length: int or None. WordPiece tokens per query for teacher and student rows;
            None: the config's `data.query_text_length`.
        progress: bool. Progress bars.

    Returns:
        The report written to `search.json`.
    """
    from tfrec.text import sentence_encoder

    t0 = time.perf_counter()
    config = config_lib.load(config_path, overrides)
    source = data_path(config, path)
    sset = benchmark.build(amazon_reviews.read_reviews(source), text_share, min_query_words)
    if max_queries is not None and max_queries < sset.queries.size:
        keep = np.sort(
            np.random.default_rng(0).choice(sset.queries.size, max_queries, replace=False)
        )
        sset.queries, sset.relevant = sset.queries[keep], sset.relevant[keep]
        sset.query_records = sset.query_records[keep]
    out_dir = Path(output)
    out_dir.mkdir(parents=True, exist_ok=True)
    encoder: Any = sentence_encoder.SentenceEncoder(preset, max_length=max_length)
    scores, seconds = score_all(sset, encoder, out_dir / "cache", progress)
    student = None
    if student_layers:
        t1 = time.perf_counter()
        reviews = dense.cached_encode(encoder, sset.review_texts, out_dir / "cache", "reviews")
        student = student_scores(
            sset,
            scores,
            reviews,
            preset,
            student_layers,
            student_steps,
            query_length or config.data.query_text_length,
            progress,
        )
        seconds["student"] = round(time.perf_counter() - t1, 2)
    report: dict[str, Any] = {
        "benchmark": "search",
        "date_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": " ".join(["tfrec", *sys.argv[1:]]) if sys.argv[1:] else None,
        "data": {"path": str(source), **sset.summary()},
        "settings": {
            "text_share": text_share,
            "min_query_words": min_query_words,
            "max_length": max_length,
            "max_queries": max_queries,
            "preset": encoder.preset,
            "rrf_k": fusion.RRF_K,
            "reference": REFERENCE,
        },
        "truncated": {
            "items": _truncated_share(encoder, sset.item_texts),
            "reviews": _truncated_share(encoder, sset.review_texts),
        },
        "scorers": evaluate_scores(scores, sset.relevant, sset.num_items),
        "query_student": student,
        "seconds": {**seconds, "total": round(time.perf_counter() - t0, 2)},
        "platform": {"python": platform.python_version(), "machine": platform.machine()},
    }
    (out_dir / "search.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    table = format_table(report)
    (out_dir / "search.md").write_text(
        f"# Search quality ({report['date_utc'][:10]})\n\n{table}\n", encoding="utf-8"
    )
    print(table)
    print(f"wrote {out_dir / 'search.json'} and {out_dir / 'search.md'}")
    return report
