"""The HTML report: self-contained, every variant named, failures shown with their error."""

from __future__ import annotations

import re

from tfrec.experiments import charts
from tfrec.experiments import report as report_lib
from tfrec.experiments import results as results_lib


def test_pareto_front():
    points = [
        {"quality": 0.5, "latency_ms": 2.0, "size_mb": 3.0},
        {"quality": 0.6, "latency_ms": 3.0, "size_mb": 2.0},
        {"quality": 0.4, "latency_ms": 4.0, "size_mb": 4.0},  # worse on all three
    ]
    assert charts.pareto_front(points) == [True, True, False]


def test_report_is_self_contained(fake_experiment):
    page = report_lib.render(results_lib.gather(fake_experiment))
    for variant in ("base", "better", "broken"):
        assert variant in page
    assert "ValueError: the towers diverged" in page
    assert page.count("plotly.js v") == 1  # the bundle's banner: inlined once
    assert not re.search(r"<script[^>]+src=", page)
    assert "&#9733; winner" in page
    charts_on_page = set(re.findall(r'data-chart="([^"]+)"', page))
    assert {"recall-at-k", "pareto", "segment-category", "segment-cold_users"} <= charts_on_page
    assert "Item 2 of better" in page  # example lists side by side
    assert "model.embedding_dim" in page  # config diff
