"""`tfrec logs stats`: what a `tfrec serve --log-dir` folder holds, and how outcomes followed."""

from __future__ import annotations

import collections
import csv
import datetime
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Optional

import tensorflow as tf
from google.protobuf import message as message_lib
from tensorflow_serving.apis import prediction_log_pb2

from tfrec import errors
from tfrec.serving import outcomes as outcomes_lib
from tfrec.serving import prediction_log, request_log, rotating_file

_TF_DATA_LOSS = re.compile(r"(truncated|corrupted) record at (\d+)")


def read_predictions(path: os.PathLike | str) -> Iterator[prediction_log.Entry]:
    """The records of one prediction log file, in order.

    Raises:
        DataError: naming the file and the record (1-based) that is truncated, corrupt or
            not a PredictionLog written by `tfrec serve`.
    """
    path = Path(path)
    number = 0
    try:
        for number, raw in enumerate(tf.data.TFRecordDataset(str(path)).as_numpy_iterator(), 1):
            record = prediction_log_pb2.PredictionLog()
            try:
                record.ParseFromString(raw)
                entry = prediction_log.parse(record)
            except (message_lib.DecodeError, ValueError) as e:
                raise errors.DataError(
                    f"record {number}: expected a PredictionLog written by `tfrec serve "
                    f"--log-dir`, received one that is not ({e})",
                    path=path,
                ) from None
            yield entry
    except tf.errors.DataLossError as e:
        found = _TF_DATA_LOSS.search(str(e))
        kind, offset = (found[1], found[2]) if found else ("unreadable", "?")
        raise errors.DataError(
            f"record {number + 1} is {kind} (reading stopped at byte {offset}): expected a complete "
            "TFRecord record (length, its CRC, the data, its CRC); the file was cut short or "
            "damaged after it was written",
            path=path,
        ) from None


def read_catalog(path: os.PathLike | str) -> set:
    """The `item_id` column of a CSV (e.g. a catalog's items.csv)."""
    path = Path(path)
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, [])
        if "item_id" not in header:
            raise errors.DataError(
                f"expected an `item_id` column, received columns {header}", path=path, row=1
            )
        column = header.index("item_id")
        items = set()
        for row in reader:
            if not row:
                continue
            if len(row) != len(header):
                raise errors.DataError(
                    f"expected {len(header)} values, received {len(row)}",
                    path=path,
                    row=reader.line_num,
                )
            if row[column]:
                items.add(row[column])
    return items


def _iso(seconds: Optional[float]) -> Optional[str]:
    if seconds is None:
        return None
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def compute(
    log_dir: os.PathLike | str,
    outcomes_csv: Sequence[os.PathLike | str] = (),
    catalog: Optional[os.PathLike | str] = None,
    top: int = 10,
    progress: bool = False,
) -> dict:
    """Summarises a log folder: records, versions, users, items shown and outcome rates.

    Outcome rates: `rate` per event type is the share of logged requests with at least one
    outcome of that type; per position p (1-based, within a returned `item_ids` row) it is
    the outcomes on the item shown at p over the rows that showed an item at p. Outcomes whose
    request id is not in the logs (not sampled, or deleted by retention) are counted apart.

    Args:
        log_dir: path. A `tfrec serve --log-dir` folder.
        outcomes_csv: paths. Outcome CSVs (request_id,item_id,event_type,timestamp), read with
            the folder's own `outcomes-*.jsonl` files.
        catalog: path or None. A CSV with an `item_id` column: coverage is measured against it.
        top: int. How many of the most shown items to list.
        progress: bool. Show a progress bar over the files' bytes.

    Returns:
        dict, JSON-ready.

    Raises:
        DataError: the folder is missing, or a file is corrupt (naming file and record/row).
    """
    folder = Path(log_dir)
    if not folder.is_dir():
        raise errors.DataError(
            "expected a log folder written by `tfrec serve --log-dir`, found none", path=folder
        )
    prediction_files = rotating_file.finished_files(folder, *request_log.PREDICTIONS)
    outcome_files = rotating_file.finished_files(folder, *request_log.OUTCOMES)
    in_progress = sorted(folder.glob(".*" + rotating_file.TEMP_SUFFIX))
    sizes = {p: p.stat().st_size for p in prediction_files + outcome_files}

    records = 0
    first: Optional[float] = None
    last: Optional[float] = None
    by_version: collections.Counter = collections.Counter()
    rates: collections.Counter = collections.Counter()
    schemes: collections.Counter = collections.Counter()
    users: set = set()
    shown: collections.Counter = collections.Counter()
    rows_at: collections.Counter = collections.Counter()  # rows that showed an item at p
    lists: dict = {}  # request id -> returned rows
    bar = None
    if progress:
        import tqdm  # only needed for the bar

        bar = tqdm.tqdm(total=sum(sizes.values()), unit="B", unit_scale=True, desc="read logs")
    for path in prediction_files:
        for entry in read_predictions(path):
            records += 1
            first = entry.served_at if first is None else min(first, entry.served_at)
            last = entry.served_at if last is None else max(last, entry.served_at)
            by_version[(entry.model, entry.version, entry.signature)] += 1
            rates[entry.sample_rate] += 1
            schemes[entry.user_scheme] += 1
            users.update((entry.user_scheme, u) for u in entry.user_ids)
            for row in entry.lists:
                shown.update(row)
                rows_at.update(range(1, len(row) + 1))
            if entry.lists:
                lists[entry.request_id] = entry.lists
        if bar is not None:
            bar.update(sizes[path])

    reported: list = []
    sources = []
    for path in outcome_files:
        reported.extend(outcomes_lib.read_jsonl(path))
        sources.append(str(path))
        if bar is not None:
            bar.update(sizes[path])
    if bar is not None:
        bar.close()
    for csv_path in outcomes_csv:
        reported.extend(outcomes_lib.read_csv(csv_path))
        sources.append(str(csv_path))

    catalog_items = read_catalog(catalog) if catalog is not None else None
    impressions = sum(shown.values())
    return {
        "log_dir": str(folder),
        "files": {
            "predictions": len(prediction_files),
            "outcomes": len(outcome_files),
            "in_progress": len(in_progress),
            "bytes": sum(sizes.values()),
        },
        "records": records,
        "time_span": {
            "first": _iso(first),
            "last": _iso(last),
            "seconds": None if first is None or last is None else round(last - first, 3),
        },
        "by_model_version_signature": [
            {"model": m, "version": v, "signature": s, "records": n}
            for (m, v, s), n in sorted(by_version.items())
        ],
        "sampling_rates": [{"rate": r, "records": n} for r, n in sorted(rates.items())],
        "users": {
            "distinct": len(users),
            "schemes": [{"scheme": s, "records": n} for s, n in sorted(schemes.items())],
        },
        "items": {
            "impressions": impressions,
            "distinct_shown": len(shown),
            "catalog_size": None if catalog_items is None else len(catalog_items),
            "coverage": None
            if not catalog_items
            else round(len(set(shown) & catalog_items) / len(catalog_items), 6),
            "most_shown": [
                {"item_id": item, "impressions": n, "share": round(n / impressions, 6)}
                for item, n in sorted(shown.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
            ],
        },
        "outcomes": _outcome_stats(reported, sources, lists, records, rows_at) if sources else None,
    }


def _outcome_stats(reported, sources, lists, requests: int, rows_at) -> dict:
    unmatched = not_shown = 0
    seen = set()
    requests_with: dict = collections.defaultdict(set)
    at: dict = collections.defaultdict(collections.Counter)
    for outcome in reported:
        key = (outcome.request_id, outcome.item_id, outcome.event_type)
        if key in seen:
            continue  # a repeated report of the same event counts once
        seen.add(key)
        rows = lists.get(outcome.request_id)
        if rows is None:
            unmatched += 1
            continue
        position = next(
            (row.index(outcome.item_id) + 1 for row in rows if outcome.item_id in row), 0
        )
        requests_with[outcome.event_type].add(outcome.request_id)
        if position:
            at[outcome.event_type][position] += 1
        else:
            not_shown += 1
    types = sorted(set(requests_with) | {o.event_type for o in reported})
    return {
        "sources": sources,
        "reported": len(reported),
        "distinct": len(seen),
        "unmatched_request": unmatched,
        "item_not_shown": not_shown,
        "by_event_type": [
            {
                "event_type": t,
                "requests": len(requests_with[t]),
                "rate": round(len(requests_with[t]) / requests, 6) if requests else None,
            }
            for t in types
        ],
        "by_position": [
            {
                "position": p,
                "rows": rows_at[p],
                **{
                    t: {"outcomes": at[t][p], "rate": round(at[t][p] / rows_at[p], 6)}
                    for t in types
                },
            }
            for p in sorted(rows_at)
        ],
    }


def format_report(report: dict) -> str:
    """The report as aligned text for a terminal."""
    files = report["files"]
    span = report["time_span"]
    lines = [
        f"log folder {report['log_dir']}: {files['predictions']} prediction file(s), "
        f"{files['outcomes']} outcome file(s), {files['bytes']} bytes"
        + (f" ({files['in_progress']} being written, not read)" if files["in_progress"] else ""),
        f"records: {report['records']}   from {span['first']} to {span['last']} "
        f"({span['seconds']} s)",
        "by model, version, signature:",
    ]
    lines += [
        f"  {row['model']} v{row['version']} {row['signature']}: {row['records']}"
        for row in report["by_model_version_signature"]
    ]
    lines.append(
        "sampling rate: "
        + ", ".join(f"{r['rate']:g} ({r['records']} records)" for r in report["sampling_rates"])
    )
    users = report["users"]
    lines.append(
        f"distinct users: {users['distinct']}   user ids logged as "
        + ", ".join(f"{s['scheme']} ({s['records']})" for s in users["schemes"])
    )
    items = report["items"]
    coverage = (
        f"{items['coverage']:.2%} of {items['catalog_size']} catalog items"
        if items["coverage"] is not None
        else "no --catalog given"
    )
    lines.append(
        f"items shown: {items['impressions']} impressions, {items['distinct_shown']} distinct "
        f"({coverage})"
    )
    lines += ["most shown:"] + [
        f"  {row['item_id']:<24} {row['impressions']:>8}  {row['share']:.2%}"
        for row in items["most_shown"]
    ]
    outcomes = report["outcomes"]
    if outcomes is None:
        return "\n".join(lines)
    lines.append(
        f"outcomes: {outcomes['reported']} reported ({outcomes['distinct']} distinct) from "
        f"{len(outcomes['sources'])} source(s); {outcomes['unmatched_request']} for requests "
        f"not in the logs, {outcomes['item_not_shown']} on items not shown"
    )
    types = [row["event_type"] for row in outcomes["by_event_type"]]
    for row in outcomes["by_event_type"]:
        rate = "n/a" if row["rate"] is None else f"{row['rate']:.2%}"
        lines.append(f"  {row['event_type']:<10} {row['requests']:>8} requests  {rate}")
    if outcomes["by_position"]:
        lines.append("by position: " + "  ".join(f"{t:>10}" for t in ["rows", *types]))
        for row in outcomes["by_position"]:
            cells = [f"{row['rows']:>10}"] + [f"{row[t]['rate']:>10.2%}" for t in types]
            lines.append(f"  {row['position']:>9}  " + "  ".join(cells))
    return "\n".join(lines)
