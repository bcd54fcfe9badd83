"""The `tfrec replay` chart: each arm's metrics per evaluated month (Plotly, HTML and PNG)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

# Width and height of the chart, pixels: four panels side by side, the legend below them.
PNG_SIZE = (1500, 460)
_COLORS = {
    "never": "#969696",
    "never+refresh": "#2ca02c",
    "updated+refresh": "#1f77b4",
    "gated": "#ff7f0e",
    "retrained+refresh": "#d62728",
}
# `{refresh}` becomes e.g. "refresh 1 h behind" (the rows' `refresh_lag_seconds`).
_LABELS = {
    "never": "never updated, no refresh",
    "never+refresh": "never updated + {refresh}",
    "updated+refresh": "updated monthly + {refresh}",
    "gated": "gated: champion after each month's gates + {refresh}",
    "retrained+refresh": "retrained monthly + {refresh}",
}
_METRICS = {
    "recall@50": "Recall@50",
    "ndcg@10": "NDCG@10",
    "new_items_recall@50": "Recall@50 on new items",
    "same_day_recall@50": "... on items listed that day",
}


def _duration(seconds: int) -> str:
    """`3600` -> "1 h", `90` -> "90 s": the refresh lag as the chart's legend names it."""
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def plot(rows: Sequence[dict[str, Any]], path: Path) -> bool:
    """Recall@50, NDCG@10 and Recall@50 on the new-item slice and on its items listed the
    query's own day, per evaluated month, one line
    per arm (Plotly): `path` with an .html suffix always, and the PNG `path` when kaleido
    finds a Chromium to render it.

    Returns:
        bool: whether the PNG was written (a message on stderr says why not).
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    frame = pd.DataFrame(list(rows))
    lags = [int(v) for v in frame.get("refresh_lag_seconds", pd.Series()).dropna()]
    refresh = f"refresh {_duration(lags[0])} behind" if lags else "refresh"
    fig = make_subplots(rows=1, cols=len(_METRICS), subplot_titles=list(_METRICS.values()))
    for col, metric in enumerate(_METRICS, start=1):
        for arm in dict.fromkeys(frame["arm"]):
            part = frame[frame["arm"] == arm].sort_values("month")
            fig.add_trace(
                go.Scatter(
                    x=part["month"],
                    y=part[metric],
                    name=_LABELS[arm].format(refresh=refresh),
                    mode="lines+markers",
                    line={
                        "color": _COLORS[arm],
                        "width": 3,
                        # Dashed: it overlaps `updated+refresh` in every promoted month.
                        "dash": "dash" if arm == "gated" else "solid",
                    },
                    showlegend=col == 1,
                    legendgroup=arm,
                ),
                row=1,
                col=col,
            )
    fig.update_xaxes(type="category", title_text="evaluated month")
    fig.update_layout(
        template="plotly_white",
        width=PNG_SIZE[0],
        height=PNG_SIZE[1],
        margin={"t": 60},
        legend={"orientation": "h", "y": -0.25},
    )
    fig.write_html(str(Path(path).with_suffix(".html")), include_plotlyjs=True)
    try:
        fig.write_image(str(path))
    except Exception as error:  # kaleido's error types vary with its version and platform
        print(
            f"tfrec replay: {Path(path).with_suffix('.html')} written, the PNG not: {error} "
            "(install Chromium, e.g. Debian's `chromium`, for kaleido to render it)",
            file=sys.stderr,
        )
        return False
    return True
