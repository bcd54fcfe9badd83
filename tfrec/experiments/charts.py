"""The report's Plotly figures: recall@k curves, segment bars and the quality/latency/size front."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

_LAYOUT = {
    "template": "plotly_white",
    "height": 420,
    "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
}


def recall_curves(
    variants: Mapping[str, np.ndarray], baselines: Mapping[str, np.ndarray]
) -> go.Figure:
    """Recall@k for k = 1..len(curve): variants solid, baselines dotted."""
    fig = go.Figure()
    for dash, curves in (("solid", variants), ("dot", baselines)):
        for name, curve in curves.items():
            ks = np.arange(1, len(curve) + 1)
            fig.add_trace(go.Scatter(x=ks, y=curve, mode="lines", name=name, line={"dash": dash}))
    fig.update_layout(
        title="Recall@k (mean over seeds; dotted: baselines)",
        xaxis_title="k",
        yaxis_title="recall@k",
        **_LAYOUT,
    )
    return fig


def segment_bars(title: str, metric: str, by_variant: Mapping[str, pd.DataFrame]) -> go.Figure:
    """Grouped bars: the metric per segment label, one bar per variant.

    Args:
        by_variant: variant -> DataFrame with `label`, `mean`, `queries` (`segments.segment_means`).
    """
    fig = go.Figure()
    for name, frame in by_variant.items():
        fig.add_trace(
            go.Bar(
                x=frame["label"],
                y=frame["mean"],
                name=name,
                customdata=frame["queries"],
                hovertemplate="%{x}: %{y:.4f} (%{customdata} queries)<extra>" + name + "</extra>",
            )
        )
    fig.update_layout(title=title, barmode="group", yaxis_title=metric, **_LAYOUT)
    return fig


def pareto_front(points: Sequence[Mapping[str, Any]]) -> list[bool]:
    """Whether each point is on the front: no other is at least as good on quality (higher),
    latency and size (lower) and better on one."""

    def dominates(a, b) -> bool:
        no_worse = (
            a["quality"] >= b["quality"]
            and a["latency_ms"] <= b["latency_ms"]
            and a["size_mb"] <= b["size_mb"]
        )
        better = (
            a["quality"] > b["quality"]
            or a["latency_ms"] < b["latency_ms"]
            or a["size_mb"] < b["size_mb"]
        )
        return no_worse and better

    return [not any(dominates(o, p) for o in points if o is not p) for p in points]


def quality_latency_size(points: Sequence[Mapping[str, Any]], metric: str) -> go.Figure:
    """Quality against p50 latency, marker area by export size; the Pareto front marked.

    Args:
        points: dicts with `variant`, `quality`, `latency_ms`, `p99_ms`, `size_mb`.
    """
    front = pareto_front(points)
    fig = go.Figure()
    sizes = [p["size_mb"] for p in points]
    scale = max(sizes) if sizes else 1.0
    for on_front, label, symbol in ((True, "Pareto front", "star"), (False, "dominated", "circle")):
        chosen = [p for p, f in zip(points, front, strict=True) if f == on_front]
        if not chosen:
            continue
        fig.add_trace(
            go.Scatter(
                x=[p["latency_ms"] for p in chosen],
                y=[p["quality"] for p in chosen],
                mode="markers+text",
                text=[p["variant"] for p in chosen],
                textposition="top center",
                name=label,
                marker={
                    "symbol": symbol,
                    "size": [18 + 30 * p["size_mb"] / scale for p in chosen],
                },
                customdata=[[p["p99_ms"], p["size_mb"]] for p in chosen],
                hovertemplate="%{text}<br>p50 %{x:.2f} ms, p99 %{customdata[0]:.2f} ms<br>"
                "%{customdata[1]:.1f} MB<br>" + metric + " %{y:.4f}<extra></extra>",
            )
        )
    ordered = sorted(
        (p for p, f in zip(points, front, strict=True) if f), key=lambda p: p["latency_ms"]
    )
    if len(ordered) > 1:
        fig.add_trace(
            go.Scatter(
                x=[p["latency_ms"] for p in ordered],
                y=[p["quality"] for p in ordered],
                mode="lines",
                line={"dash": "dash", "color": "grey"},
                showlegend=False,
                hoverinfo="skip",
            )
        )
    fig.update_layout(
        title=f"{metric} vs p50 latency (marker size: export size)",
        xaxis_title="p50 latency, ms (batch of 1, in process)",
        yaxis_title=metric,
        **_LAYOUT,
    )
    return fig
