"""Result tables: best values marked, segments compared."""

import math

import pytest

from tfrec.evaluation import protocol, report


def result(recall, mrr, queries=100, cold=(0.1, 20)):
    def metrics(r, m, q):
        return {
            "recall@10": r,
            "ndcg@10": r / 2,
            "hit_rate@10": r,
            "mrr": m,
            "coverage@10": 0.5,
            "queries": q,
        }

    return protocol.EvalResult(
        metrics={
            "all": metrics(recall, mrr, queries),
            "cold_items": metrics(cold[0], mrr, cold[1]),
        },
        ks=(10,),
        num_items=1000,
        exclude_seen=True,
        dropped={"all": 3, "cold_items": 0},
    )


def test_format_table_marks_best_per_column():
    text = report.format_table({"most_popular": result(0.2, 0.05), "two_tower": result(0.3, 0.04)})
    lines = text.splitlines()
    header, rule, pop, model, footer = lines
    assert header.split("|")[1].strip() == "model"
    assert [c.strip() for c in header.split("|")[2:-1]] == [
        "recall@10",
        "ndcg@10",
        "hit_rate@10",
        "mrr",
        "coverage@10",
    ]
    assert set(rule) <= {"|", "-", ":"}
    assert "0.3000*" in model and "0.2000 " in pop  # recall: model best
    assert "0.0500*" in pop and "0.0400 " in model  # mrr: popularity best
    assert pop.count("0.5000*") == 1  # a tie marks both rows
    assert len({len(line) for line in lines[:4]}) == 1  # fixed width
    assert footer == "segment `all`, 100 queries, 1,000 items, exclude_seen=True"


def test_format_table_segment_metrics_and_query_column():
    results = {"a": result(0.2, 0.05, queries=100), "b": result(0.3, 0.04, queries=90)}
    text = report.format_table(results, segment="cold_items", metrics=["recall@10"])
    assert text.splitlines()[0].split("|")[2].strip() == "recall@10"
    # Differing query counts on `all` would add a column; on cold_items they agree (20).
    assert "queries" not in text.splitlines()[0]
    text = report.format_table(results, metrics=["mrr"])
    assert text.splitlines()[0].split("|")[-2].strip() == "queries"


def test_format_table_handles_nan_and_single_model():
    r = result(math.nan, 0.1)
    text = report.format_table({"only": r})
    assert " - " in text and "*" not in text  # nothing to compare against


def test_format_comparison_columns_per_segment():
    text = report.format_comparison(
        {"a": result(0.2, 0.05, cold=(0.01, 20)), "b": result(0.3, 0.04, cold=(0.05, 20))},
        metrics=["recall@10"],
    )
    lines = text.splitlines()
    assert [c.strip() for c in lines[0].split("|")[1:-1]] == [
        "model",
        "all recall@10",
        "cold_items recall@10",
    ]
    assert "0.0500*" in lines[3]
    assert [c.strip() for c in lines[4].split("|")[1:-1]] == ["queries", "100", "20"]
    assert lines[5] == "exclude_seen=True"


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="`results` must hold at least one model"):
        report.format_table({})
    with pytest.raises(ValueError, match="`segment` must be one of .* received 'cold_users'"):
        report.format_table({"a": result(0.1, 0.1)}, segment="cold_users")
    with pytest.raises(ValueError, match="`metrics` must be among .* received 'recall@5'"):
        report.format_table({"a": result(0.1, 0.1)}, metrics=["recall@5"])
    with pytest.raises(ValueError, match="`segments` must be among"):
        report.format_comparison({"a": result(0.1, 0.1)}, segments=["nope"])
