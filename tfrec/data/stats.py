"""`tfrec data stats`: what a dataset holds after cleaning, and how the temporal split cuts it."""

from __future__ import annotations

import datetime as dt

from tfrec import config as config_lib
from tfrec.data import loaders
from tfrec.data import split as split_lib


def _iso(ts: int) -> str:
    return dt.datetime.fromtimestamp(int(ts), dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def compute(data: config_lib.DataConfig) -> dict:
    """Counts, drop reasons, split sizes and cold-start counts, as plain JSON-ready data."""
    ds = loaders.load(data)
    inter = ds.interactions
    split = split_lib.temporal_split(inter, data.split)
    return {
        "dataset": ds.name,
        "source": ds.report.source,
        "interactions": int(len(inter)),
        "users": int(inter["user_id"].nunique()),
        "items": int(inter["item_id"].nunique()),
        "catalog_items": int(len(ds.items)),
        "event_types": {k: int(v) for k, v in inter["event_type"].value_counts().items()},
        "time_range": [_iso(inter["timestamp"].iloc[0]), _iso(inter["timestamp"].iloc[-1])],
        "rows_read": int(ds.report.rows_read),
        "dropped": {k: int(v) for k, v in ds.report.dropped.items()},
        "examples": {k: list(v) for k, v in ds.report.examples.items()},
        "treatments": dict(ds.report.treatments),
        "split": split.report(),
    }


def format_report(report: dict) -> str:
    lines = [
        f"dataset       {report['dataset']}  ({report['source']})",
        f"interactions  {report['interactions']:,}",
        f"users         {report['users']:,}",
        f"items         {report['items']:,} with events, {report['catalog_items']:,} in catalog",
        "event types   " + ", ".join(f"{k} {v:,}" for k, v in report["event_types"].items()),
        f"time range    {report['time_range'][0]} -> {report['time_range'][1]}",
        f"rows read     {report['rows_read']:,}",
        "dropped:",
    ]
    width = max((len(r) for r in report["dropped"]), default=0)
    for reason, count in report["dropped"].items():
        lines.append(f"  {reason:<{width}} {count:>10,}")
        for example in report.get("examples", {}).get(reason, []):
            lines.append(f"      e.g. {example}")
    if report["treatments"]:
        lines.append("treatments:")
        for problem, how in report["treatments"].items():
            lines.append(f"  {problem}: {how}")
    lines.append("split:")
    for key, value in report["split"].items():
        lines.append(f"  {key}: {value}")
    return "\n".join(lines)
