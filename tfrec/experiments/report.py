"""The experiment report: one self-contained HTML page (plotly.js inlined once, no network)."""

from __future__ import annotations

import datetime
import html
import math
from typing import Any

import numpy as np
import plotly.io as pio
import plotly.offline

from tfrec.experiments import charts, segments
from tfrec.experiments import results as results_lib
from tfrec.experiments import spec as spec_lib

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222;padding:0 1em}
table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top;font-size:.92em}
th{background:#f3f3f3} .num{text-align:right;font-variant-numeric:tabular-nums}
.verdict{font-size:1.15em;padding:.8em;border-left:5px solid #2a7;background:#eefaf2}
.failed{color:#b00} .winner{background:#eefaf2;font-weight:bold} .muted{color:#777}
.chart{margin:1em 0} pre{white-space:pre-wrap;font-size:.8em;background:#f8f8f8;padding:.5em}
small{color:#666}
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _f(x: float, digits: int = 4, sign: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def _figure(name: str, fig) -> str:
    body = pio.to_html(fig, full_html=False, include_plotlyjs=False, div_id=f"chart-{name}")
    return f'<div class="chart" data-chart="{_e(name)}">{body}</div>'


def _summary_table(results: results_lib.Results, summary: dict) -> str:
    exp = results.experiment
    head = "".join(
        f"<th>{_e(m)}<br><small>mean [95% CI over seeds]</small></th>" for m in exp.metrics
    )
    diff_head = "".join(
        f"<th>&Delta; {_e(m)} vs {_e(exp.reference)}<br><small>[95% CI], Holm p</small></th>"
        for m in exp.metrics
    )
    rows = []
    for v, variant in exp.variants.items():
        state = results.status(v)
        cls = ' class="winner"' if v == summary["winner"] else ""
        mark = " &#9733; winner" if v == summary["winner"] else ""
        ref = " (reference)" if v == exp.reference else ""
        name = f"<td>{_e(v)}{ref}{mark}<br><small>{_e(variant.description)}</small></td>"
        if state != "done":
            text = results.error(v) if state == "failed" else "not run yet"
            span = 2 * len(exp.metrics)
            rows.append(
                f'<tr{cls}>{name}<td colspan="{span}" class="failed">{_e(state)}: {_e(text)}</td></tr>'
            )
            continue
        cells = []
        for m in exp.metrics:
            s = summary["metrics"][v][m]
            cells.append(f'<td class="num">{_f(s["mean"])} [{_f(s["low"])}, {_f(s["high"])}]</td>')
        for m in exp.metrics:
            d = summary["differences"].get(v, {}).get(m)
            if v == exp.reference:
                cells.append('<td class="muted">reference</td>')
            elif d is None or "reason" in d:
                cells.append(f'<td class="muted">{_e(d["reason"] if d else "n/a")}</td>')
            else:
                star = " &#10003;" if d.get("significant") else ""
                cells.append(
                    f'<td class="num">{_f(d["difference"], sign=True)} '
                    f"[{_f(d['low'], sign=True)}, {_f(d['high'], sign=True)}], "
                    f"p {_e(results_lib.format_p(d['p_holm']))}{star}</td>"
                )
        rows.append(f"<tr{cls}>{name}{''.join(cells)}</tr>")
    for b in exp.baselines:
        found = [results.baseline_values(b, m) for m in exp.metrics]
        values = [x for x in found if x is not None]
        if len(values) != len(found) or exp.reference not in results.done():
            continue
        baseline_cells = "".join(
            f'<td class="num">{_f(float(np.mean(results_lib.nanmean(x, axis=1))))}</td>'
            for x in values
        )
        rows.append(
            f'<tr class="muted"><td>baseline: {_e(b)}</td>{baseline_cells}'
            f'<td colspan="{len(exp.metrics)}">tuned on validation, fit with the reference runs</td></tr>'
        )
    return (
        f"<table id='summary'><tr><th>variant</th>{head}{diff_head}</tr>{''.join(rows)}</table>"
        "<p><small>&#10003;: the paired difference is significant (bootstrap 95% CI excludes 0 "
        "and the Holm-adjusted Wilcoxon p &lt; 0.05, corrected over every variant and metric). "
        "Per-query values are averaged over seeds before pairing.</small></p>"
    )


def _charts(results: results_lib.Results) -> list[str]:
    exp = results.experiment
    done = results.done()
    out = []
    if done:
        curves = {v: results_lib.recall_curve(results, v) for v in done}
        baselines = {}
        if exp.reference in done:
            for b in exp.baselines:
                if results.baseline_values(b, "recall@1") is not None:
                    baselines[b] = _baseline_curve(results, b)
        out.append(_figure("recall-at-k", charts.recall_curves(curves, baselines)))
    if done and results.segments is not None:
        for dim, title in segments.DIMENSIONS.items():
            by_variant = {}
            for v in done:
                values = results_lib.nanmean(results.values(v, exp.primary), axis=0)
                if len(values) != len(results.segments):
                    continue
                by_variant[v] = segments.segment_means(values, results.segments[dim].tolist())
            if by_variant:
                out.append(
                    _figure(f"segment-{dim}", charts.segment_bars(title, exp.primary, by_variant))
                )
    points = []
    for v in done:
        serving = results.serving.get(v) or {}
        if "latency" in serving:
            points.append(
                {
                    "variant": v,
                    "quality": float(results_lib.nanmean(results.values(v, exp.primary))),
                    "latency_ms": serving["latency"]["p50_ms"],
                    "p99_ms": serving["latency"]["p99_ms"],
                    "size_mb": serving["size_bytes"] / 1e6,
                }
            )
    if points:
        out.append(_figure("pareto", charts.quality_latency_size(points, exp.primary)))
    return out


def _baseline_curve(results: results_lib.Results, baseline: str) -> np.ndarray:
    out = np.full(spec_lib.MAX_K, math.nan)
    for k in range(1, spec_lib.MAX_K + 1):
        values = results.baseline_values(baseline, f"recall@{k}")
        if values is not None:
            out[k - 1] = float(results_lib.nanmean(values))
    return out


def _serving_table(results: results_lib.Results) -> str:
    rows = []
    for v in results.experiment.variants:
        s = results.serving.get(v) or {}
        if "latency" in s:
            lat = s["latency"]
            rows.append(
                f"<tr><td>{_e(v)}</td><td>{_e(lat['signature'])}</td>"
                f'<td class="num">{_f(lat["p50_ms"], 2)}</td><td class="num">{_f(lat["p99_ms"], 2)}</td>'
                f'<td class="num">{s["size_bytes"] / 1e6:.1f}</td></tr>'
            )
        elif "error" in s:
            rows.append(
                f'<tr><td>{_e(v)}</td><td colspan="4" class="failed">{_e(s["error"])}</td></tr>'
            )
    if not rows:
        return "<p class='muted'>No variant was exported and timed.</p>"
    return (
        "<table><tr><th>variant</th><th>signature</th><th>p50 ms</th><th>p99 ms</th>"
        f"<th>export MB</th></tr>{''.join(rows)}</table>"
        "<p><small>Measured on the served model: the first seed's model exported with "
        "`tfrec export` (without the query-text model) behind `tfrec serve` (batching off), "
        "one request row (the first example user) sent over gRPC on loopback by one client of "
        "the serving bench's load generator, 20 untimed requests then 200 timed ones in "
        "sequence on this machine; size: every file of the exported version folder.</small></p>"
    )


def _examples(results: results_lib.Results) -> str:
    done = [v for v in results.done() if (results.serving.get(v) or {}).get("examples")]
    if not done:
        return "<p class='muted'>No example lists (no variant was exported).</p>"
    first = results.serving[done[0]]["examples"]
    parts = []
    for i, ex in enumerate(first):
        recent = ", ".join(f"{_e(r['title'])} ({_e(r['event_type'])})" for r in ex["recent"][:5])
        head = "".join(f"<th>{_e(v)}</th>" for v in done)
        k = max(len(results.serving[v]["examples"][i]["items"]) for v in done)
        rows = []
        for rank in range(k):
            cells = []
            for v in done:
                items = results.serving[v]["examples"][i]["items"]
                if rank >= len(items):
                    cells.append("<td></td>")
                    continue
                item = items[rank]
                why = (
                    f"<br><small>{_e(item['explanation'])}</small>"
                    if item.get("explanation")
                    else ""
                )
                cells.append(
                    f"<td>{_e(item['title'])} <small>({_e(item['item_id'])})</small>{why}</td>"
                )
            rows.append(f"<tr><td>{rank + 1}</td>{''.join(cells)}</tr>")
        parts.append(
            f"<h3>User {_e(ex['user_id'])}</h3><p><small>recent: {recent or 'none'}</small></p>"
            f"<table><tr><th>#</th>{head}</tr>{''.join(rows)}</table>"
        )
    return "".join(parts)


def _config_diffs(results: results_lib.Results) -> str:
    exp = results.experiment
    ref = exp.variants[exp.reference]
    parts = []
    for v, variant in exp.variants.items():
        diff = spec_lib.config_diff(variant.config, ref.config)
        shared = f" (shares the runs of `{exp.owner(v)}`)" if exp.owner(v) != v else ""
        measured = "two-stage (retrieve, rank)" if variant.ranker else "retrieval only"
        rows = "".join(
            f"<tr><td>{_e(k)}</td><td>{_e(old)}</td><td>{_e(new)}</td></tr>"
            for k, (old, new) in diff.items()
        )
        body = (
            f"<table><tr><th>config key</th><th>{_e(exp.reference)}</th><th>{_e(v)}</th></tr>{rows}</table>"
            if rows
            else "<p class='muted'>same config as the reference</p>"
        )
        parts.append(f"<h3>{_e(v)}{_e(shared)}</h3><p>measured: {measured}</p>{body}")
    return "".join(parts)


def _provenance(results: results_lib.Results) -> str:
    rows = []
    for (v, seed), run in results.runs.items():
        info = run.info
        error = f'<span class="failed">{_e(run.error)}</span>' if run.status == "failed" else ""
        rows.append(
            f"<tr><td>{_e(v)}</td><td>{seed}</td><td>{_e(run.status)} {error}</td>"
            f'<td class="num">{_f(info.get("train_seconds", math.nan), 0)}</td>'
            f'<td class="num">{_f(info.get("evaluate_seconds", math.nan), 0)}</td>'
            f"<td><code>{_e(run.fingerprint[:16])}</code></td><td>{_e(info.get('code_version', ''))}</td>"
            f"<td><code>{_e(run.workdir)}</code></td></tr>"
        )
    details = "".join(
        f"<details><summary>{_e(v)} seed {seed}: {_e(r.error)}</summary><pre>{_e(r.details)}</pre></details>"
        for (v, seed), r in results.runs.items()
        if r.status == "failed"
    )
    return (
        "<table><tr><th>variant</th><th>seed</th><th>status</th><th>train s</th><th>evaluate s</th>"
        f"<th>data fingerprint</th><th>code version</th><th>workdir</th></tr>{''.join(rows)}</table>"
        + details
    )


def render(results: results_lib.Results) -> str:
    """The whole page as one HTML string."""
    exp = results.experiment
    summary = results_lib.summarize(results)
    figures = "".join(_charts(results))
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    sections = [
        f"<h1>Experiment {_e(exp.name)}</h1>",
        f"<p>{_e(exp.description)}</p>" if exp.description else "",
        f"<p><small>{_e(exp.path)} &middot; {len(exp.variants)} variants &times; "
        f"{len(exp.seeds)} seeds {list(exp.seeds)} &middot; primary metric {_e(exp.primary)} "
        f"&middot; written {now}</small></p>",
        f'<p class="verdict" id="verdict">{_e(summary["verdict"])}</p>',
        "<h2>Summary</h2>",
        _summary_table(results, summary),
        "<h2>Charts</h2>",
        figures or "<p class='muted'>No finished variant to chart yet.</p>",
        "<h2>Serving cost</h2>",
        _serving_table(results),
        "<h2>Example lists</h2>",
        _examples(results),
        "<h2>Config of each variant (difference from the reference)</h2>",
        _config_diffs(results),
        "<h2>Runs</h2>",
        _provenance(results),
    ]
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>Experiment {_e(exp.name)}</title><style>{_STYLE}</style>"
        f"<script type='text/javascript'>{plotly.offline.get_plotlyjs()}</script></head>"
        f"<body>{''.join(sections)}</body></html>"
    )
