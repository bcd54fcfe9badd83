"""`tfrec bench search`: its metrics on a hand-made case, and how it refuses bad input."""

from pathlib import Path

import numpy as np

from tfrec import cli
from tfrec.pipelines import bench_search

ROOT = Path(__file__).resolve().parents[2]


def test_metrics_on_three_hand_made_queries():
    # Query 0: its item 1 ranks 1st; query 1: item 0 ranks 3rd (behind 2 and 1); query 2: item
    # 2 ties with item 0 at the top, and ties count against it, so it ranks 2nd.
    reference = np.array([[0.1, 0.9, 0.2], [0.1, 0.5, 0.7], [0.3, 0.1, 0.3]])
    other = np.array([[0.1, 0.9, 0.2], [0.9, 0.5, 0.7], [0.1, 0.2, 0.3]])
    report = bench_search.evaluate_scores(
        {"bm25": reference, "tfidf": other}, np.array([1, 0, 2]), 3
    )
    bm25 = report["bm25"]["metrics"]
    np.testing.assert_allclose(bm25["mrr"], (1 + 1 / 3 + 1 / 2) / 3)
    assert bm25["recall@10"] == 1.0  # 3 items: every one is in the top 10
    assert report["bm25"]["queries"] == 3 and "vs_bm25" not in report["bm25"]
    np.testing.assert_allclose(report["tfidf"]["metrics"]["mrr"], 1.0)
    diff = report["tfidf"]["vs_bm25"]["mrr"]
    np.testing.assert_allclose(diff["difference"], 1.0 - (1 + 1 / 3 + 1 / 2) / 3)
    assert diff["low"] <= diff["difference"] <= diff["high"]
    assert report["tfidf"]["vs_bm25"]["recall@10"]["difference"] == 0.0


def test_cli_refuses_a_missing_data_path_naming_it(tmp_path, capsys):
    missing = tmp_path / "nowhere" / "reviews.csv.gz"
    code = cli.main(["bench", "search", "--path", str(missing), "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2
    assert f"file `{missing}`: expected the Amazon review CSV" in err
    assert not (tmp_path / "o").exists()


def test_cli_refuses_a_config_without_review_data(tmp_path, capsys):
    config = str(ROOT / "configs" / "tiny.yaml")
    code = cli.main(["bench", "search", "--config", config, "--output", str(tmp_path)])
    assert code == 2
    assert "`data.dataset` must be `amazon-reviews` for the search benchmark" in (
        capsys.readouterr().err
    )


def test_format_table_marks_the_reference_and_significant_differences():
    report = {
        "scorers": bench_search.evaluate_scores(
            {"bm25": np.eye(4)[[1, 0, 0, 0]] * -1.0, "tfidf": np.eye(4)},
            np.arange(4),
            4,
        ),
        "data": {"queries": 4, "cutoff_utc": "2012-08-02T04:48:00", "items": 4, "text_reviews": 9},
        "settings": {"min_query_words": 2, "max_length": 128},
        "truncated": {"items": 0.5, "reviews": 0.25},
    }
    table = bench_search.format_table(report)
    assert "| BM25 (bm25s, defaults) |" in table and "reference | reference |" in table
    assert "| TF-IDF cosine (scikit-learn, defaults) | 1.000 | 1.000 |" in table
    assert "cut at 128 tokens (50% of item texts, 25% of reviews)" in table


def test_student_rows_score_every_item_for_every_query(preset, monkeypatch):
    import pandas as pd

    monkeypatch.setattr(bench_search, "LATENCY_CALLS", 5)

    from tfrec.evaluation.search import benchmark

    texts = ["red dog food", "the candle holder", "puppy kibble", "red candle", "dog food"]
    reviews = pd.DataFrame(
        {
            "record": range(10),
            "item_id": ["a", "b", "c", "a", "b", "c", "a", "b", "c", "a"],
            "summary": texts * 2,
            "text": ["the red dog"] * 10,
            "timestamp": range(0, 100, 10),
        }
    )
    sset = benchmark.build(reviews, text_share=0.6)
    assert list(sset.review_summaries) == texts[:5] + texts[:1]
    scores = {"tfidf": np.zeros([sset.queries.size, sset.num_items], np.float32)}
    reviews_vectors = np.random.default_rng(0).normal(size=[sset.review_texts.size, 32])
    facts = bench_search.student_scores(
        sset, scores, reviews_vectors, str(preset), 1, 3, 6, progress=False
    )
    for name in ("teacher", "student", "student_fusion", "student_int8"):
        assert scores[name].shape == (sset.queries.size, sset.num_items), name
        assert np.isfinite(scores[name]).all()
    assert facts["steps"] == 3 and facts["query_length"] == 6
    assert facts["latency_ms"]["student"]["p50"] > 0
    # One layer of two: the student is not the teacher, so some score differs.
    assert np.abs(scores["student"] - scores["teacher"]).max() > 0
    # int8 weights move the scores a little, and the float student is left as it was.
    assert facts["int8_weights"] > 0
    assert 0 < np.abs(scores["student_int8"] - scores["student"]).max() < 0.1
