"""The results tables rendered from a hand-made metrics.json and artifact.json."""

from __future__ import annotations

import copy

import pytest

from tfrec.evaluation import results_table


def _segment(recall10, recall50, ndcg10, mrr):
    return {"recall@10": recall10, "recall@50": recall50, "ndcg@10": ndcg10, "mrr": mrr}


def _comparison(difference, low, high, p_holm, significant, baseline):
    return {
        "difference": difference,
        "low": low,
        "high": high,
        "p_value": p_holm / 2,
        "queries": 40,
        "p_holm": p_holm,
        "significant": significant,
        "baseline": baseline,
    }


METRICS = {
    "protocol": {
        "split": "temporal",
        "test_queries": 42,
        "catalog_items": 117,
        "exclude_seen": True,
        "baselines_fit": "training + validation windows",
    },
    "split": {
        "validation_start_utc": "2014-01-01T00:00:00+00:00",
        "test_start_utc": "2014-04-01T12:30:00+00:00",
    },
    "models": {
        # Display order puts tfrec's rows first and the controls last, whatever the file's order.
        "control_new_random": {"metrics": {"all": _segment(0.01, 0.02, 0.03, 0.04)}},
        "most_popular": {
            "metrics": {
                "all": _segment(0.1111, 0.2222, 0.3333, 0.4444),
                "cold_items": _segment(0.0, 0.0, 0.0, 0.0),
                "cold_users": _segment(0.5, 0.6, 0.7, 0.8),
            }
        },
        "buy_again": {"metrics": {"all": _segment(0.12, 0.23, 0.34, 0.45)}},
        "tfrec_towers_only": {"metrics": {"all": _segment(0.21, 0.32, 0.43, 0.54)}},
        "tfrec": {
            "metrics": {
                "all": _segment(0.123456, 0.234567, 0.345678, 0.456789),
                "cold_items": _segment(0.9, 0.8765, 0.7, 0.6),
                "cold_users": _segment(0.5, 0.4321, 0.3, 0.2),
            }
        },
    },
    "baselines": {
        "most_popular": {"params": {}, "validation": {}, "seconds": 0.1},
        "buy_again": {"params": {"decay": 0.5}, "validation": {}, "seconds": 0.1},
    },
    "two_stage": {"two_stage": {"metrics": {"all": _segment(0.31, 0.41, 0.51, 0.61)}}},
    "comparisons": {
        "tfrec": {
            "recall@10": _comparison(0.0123, 0.0045, 0.0201, 0.012, True, "buy_again"),
            "ndcg@10": _comparison(-0.0034, -0.0101, 0.0033, 0.51, False, "most_popular"),
        },
        "tfrec_two_stage": {
            "recall@10": _comparison(0.002, -0.001, 0.005, 0.2, False, "buy_again"),
        },
    },
}
ARTIFACT = {
    "created": "2026-12-06T07:15:15+00:00",
    "name": "tiny-shop",
    "data": {
        "dataset": "csv",
        "source": "shop.csv",
        "fingerprint": "0123456789abcdef" * 4,
        "interactions": 1500,
        "items": 120,
        "users": 60,
    },
}
RUN = {
    "name": "tiny-shop",
    "config": "configs/tiny.yaml",
    "workdir": "runs/tiny-shop",
    "evaluated": "2026-12-06T08:01:02+00:00",
    "artifact": ARTIFACT,
    "metrics": METRICS,
}


def _rows(markdown: str) -> dict[str, list[str]]:
    """Table rows by their first cell."""
    rows = {}
    for line in markdown.splitlines():
        if line.startswith("| ") and not line.startswith("| ---"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows.setdefault(cells[0], cells[1:])
    return rows


def test_the_model_table_shows_every_model_in_display_order_with_four_decimals():
    text = results_table.render_run(RUN)
    rows = _rows(results_table.models_table(METRICS))
    assert list(rows)[1:] == [
        "tfrec, two-stage (served `recommend`)",
        "tfrec, retrieval (towers + repeat prior)",
        "tfrec, towers only (ablation)",
        "most popular",
        "buy again [decay 0.5]",
        "control: new items first, random order",
    ]
    assert rows["tfrec, retrieval (towers + repeat prior)"] == [
        "0.1235",
        "0.2346",
        "0.3457",
        "0.4568",
        "0.8765",
        "0.4321",
    ]
    assert rows["most popular"] == ["0.1111", "0.2222", "0.3333", "0.4444", "0.0000", "0.6000"]
    assert "| tfrec, retrieval (towers + repeat prior) | 0.1235 |" in text


def test_missing_segments_and_metrics_are_shown_as_a_dash():
    rows = _rows(results_table.models_table(METRICS))
    # The two-stage evaluation and the ablation have no cold segments here.
    assert rows["tfrec, two-stage (served `recommend`)"][4:] == ["-", "-"]
    assert rows["tfrec, towers only (ablation)"] == [
        "0.2100",
        "0.3200",
        "0.4300",
        "0.5400",
        "-",
        "-",
    ]
    # A run evaluated at k in [5, 10] has no Recall@50.
    metrics = copy.deepcopy(METRICS)
    del metrics["models"]["tfrec"]["metrics"]["all"]["recall@50"]
    rows = _rows(results_table.models_table(metrics))
    assert rows["tfrec, retrieval (towers + repeat prior)"][:2] == ["0.1235", "-"]


def test_only_significant_comparisons_are_bold():
    rows = [
        line
        for line in results_table.comparisons_table(METRICS["comparisons"]).splitlines()
        if line.startswith("| ") and "---" not in line
    ][1:]
    assert len(rows) == 3
    bold = [r for r in rows if "**" in r]
    assert bold == [
        "| retrieval | Recall@10 | buy again | **+0.0123 [+0.0045, +0.0201]** | 0.012 |"
    ]
    assert "| two-stage | Recall@10 | buy again | +0.0020 [-0.0010, +0.0050] | 0.2 |" in rows
    assert "| retrieval | NDCG@10 | most popular | -0.0034 [-0.0101, +0.0033] | 0.51 |" in rows
    # The served pipeline comes first.
    assert rows[0].startswith("| two-stage |")


def test_the_context_line_gives_dates_fingerprint_split_catalog_and_protocol():
    text = results_table.render_run(RUN)
    assert text.startswith("### tiny-shop\n")
    assert "trained 2026-12-06 07:15 UTC, evaluated 2026-12-06 08:01 UTC" in text
    assert "fingerprint `0123456789ab`;" in text
    assert "1,500 interactions, 60 users, 120 items" in text
    assert "validation from 2014-01-01, test from 2014-04-01 12:30 UTC" in text
    assert "catalog 117 items, 42 test queries" in text
    assert "exclude_seen on" in text
    assert "baselines fit on the training + validation windows" in text
    assert "over the 40 paired test queries" in text


def test_a_run_without_baselines_says_so_and_older_files_render():
    metrics = copy.deepcopy(METRICS)
    del metrics["comparisons"], metrics["protocol"]["catalog_items"]
    text = results_table.render_run(dict(RUN, metrics=metrics))
    assert "No baseline was evaluated" in text and "**" not in text
    assert "catalog - items" in text


def test_render_lists_skipped_configs_with_their_reason():
    text = results_table.render(
        [RUN], [{"config": "configs/movielens.yaml", "reason": "data file `x` not found"}], level=2
    )
    assert text.startswith("## tiny-shop\n") and text.endswith("\n")
    assert "- `configs/movielens.yaml`: data file `x` not found" in text
    assert results_table.render([]) == "No run was evaluated.\n"


@pytest.mark.parametrize(
    "metric, label", [("recall@50", "Recall@50"), ("ndcg@10", "NDCG@10"), ("mrr", "MRR")]
)
def test_metric_labels(metric, label):
    assert results_table.metric_label(metric) == label
