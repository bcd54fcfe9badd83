"""Outcomes a shop reports for served recommendations (click, cart, purchase), by request id.

They arrive as `POST /v1/outcomes` on the server, or as a CSV file with the columns
`request_id,item_id,event_type,timestamp`. The server appends them to JSON-lines files
`outcomes-*.jsonl` in its log folder, one object per line with the same four fields plus
`received_at`; timestamps are written as ISO 8601 UTC.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tfrec import errors
from tfrec.serving import status

EVENT_TYPES = ("click", "cart", "purchase")
FIELDS = ("request_id", "item_id", "event_type", "timestamp")
MAX_ID_CHARS = 256
MAX_PER_REQUEST = 10_000


@dataclasses.dataclass(frozen=True)
class Outcome:
    """One thing a user did with a recommended item.

    Args:
        request_id: str. The `x-request-id` of the Predict call that showed the item.
        item_id: str. The item acted on.
        event_type: str. One of `EVENT_TYPES`.
        timestamp: float. When it happened, seconds since the epoch (UTC).
    """

    request_id: str
    item_id: str
    event_type: str
    timestamp: float

    def to_json_line(self, received_at: float) -> bytes:
        """The line the server writes (no newline)."""
        return json.dumps(
            {
                "request_id": self.request_id,
                "item_id": self.item_id,
                "event_type": self.event_type,
                "timestamp": _iso(self.timestamp),
                "received_at": _iso(received_at),
            },
            ensure_ascii=False,
        ).encode("utf-8")


class _Invalid(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def _iso(seconds: float) -> str:
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _timestamp(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if math.isfinite(value) and value >= 0:
            return float(value)
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            return float(text)
        except ValueError:
            pass
        try:
            moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=datetime.UTC)
            return moment.timestamp()
    raise _Invalid(
        "timestamp",
        "expected an ISO 8601 time (e.g. 2024-05-01T12:00:00Z; no zone means UTC) or seconds "
        f"since the epoch, received {value!r}",
    )


def _identifier(entry: Mapping, field: str) -> str:
    value = entry.get(field)
    if not isinstance(value, str) or not value or len(value) > MAX_ID_CHARS:
        raise _Invalid(
            field, f"expected a non-empty string of at most {MAX_ID_CHARS} characters, "
            f"received {value!r}"
        )  # fmt: skip
    return value


def _outcome(entry: Mapping) -> Outcome:
    unknown = sorted(set(entry) - set(FIELDS) - {"received_at"})
    if unknown:
        raise _Invalid(unknown[0], f"unknown field; expected only {list(FIELDS)}")
    for field in FIELDS:
        if field not in entry or entry[field] in (None, ""):
            raise _Invalid(field, "missing; every outcome needs " + ", ".join(FIELDS))
    event_type = entry["event_type"]
    if event_type not in EVENT_TYPES:
        raise _Invalid(
            "event_type", f"expected one of {list(EVENT_TYPES)}, received {event_type!r}"
        )
    return Outcome(
        request_id=_identifier(entry, "request_id"),
        item_id=_identifier(entry, "item_id"),
        event_type=event_type,
        timestamp=_timestamp(entry["timestamp"]),
    )


def from_json(body: Any) -> list[Outcome]:
    """The outcomes of a `POST /v1/outcomes` body `{"outcomes": [{...}, ...]}`.

    Raises:
        ServingError: INVALID_ARGUMENT naming the field, e.g. `outcomes[2].event_type`.
    """
    if not isinstance(body, dict) or set(body) != {"outcomes"}:
        keys = sorted(body) if isinstance(body, dict) else type(body).__name__
        raise status.invalid(
            f'`outcomes`: expected a JSON object {{"outcomes": [...]}}, received {keys}'
        )
    entries = body["outcomes"]
    if not isinstance(entries, list) or not entries:
        raise status.invalid(f"`outcomes`: expected a non-empty list, received {entries!r:.80}")
    if len(entries) > MAX_PER_REQUEST:
        raise status.invalid(
            f"`outcomes`: expected at most {MAX_PER_REQUEST} per request, received {len(entries)}"
        )
    result = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise status.invalid(
                f"`outcomes[{i}]`: expected an object with {list(FIELDS)}, received {entry!r:.80}"
            )
        try:
            result.append(_outcome(entry))
        except _Invalid as e:
            raise status.invalid(f"`outcomes[{i}].{e.field}`: {e.message}") from None
    return result


def read_csv(path: os.PathLike | str) -> list[Outcome]:
    """Reads an outcomes CSV with the header `request_id,item_id,event_type,timestamp`.

    Raises:
        DataError: naming the file, the row (the header is row 1) and the field.
    """
    path = Path(path)
    result = []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, [])
            if sorted(header) != sorted(FIELDS):
                raise errors.DataError(
                    f"unknown outcomes schema: expected the columns {','.join(FIELDS)}, "
                    f"received {','.join(header) or 'an empty file'}",
                    path=path,
                    row=1,
                )
            for row in reader:
                if not row:
                    continue  # a blank line
                if len(row) != len(header):
                    raise errors.DataError(
                        f"expected {len(header)} values ({','.join(header)}), received {len(row)}",
                        path=path,
                        row=reader.line_num,
                    )
                try:
                    result.append(_outcome(dict(zip(header, row, strict=True))))
                except _Invalid as e:
                    raise errors.DataError(
                        e.message, path=path, row=reader.line_num, field=e.field
                    ) from None
    except UnicodeDecodeError as e:
        raise errors.DataError(f"expected UTF-8 text ({e})", path=path) from e
    return result


def read_jsonl(path: os.PathLike | str) -> list[Outcome]:
    """Reads an `outcomes-*.jsonl` file the server wrote.

    Raises:
        DataError: naming the file, the line and the field.
    """
    path = Path(path)
    result = []
    with open(path, "rb") as f:
        for line_number, line in enumerate(f, start=1):
            if not line.endswith(b"\n"):
                raise errors.DataError(
                    "expected a complete line ending in a newline, received a truncated one",
                    path=path,
                    row=line_number,
                )
            try:
                entry = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise errors.DataError(
                    f"expected one JSON object per line ({e})", path=path, row=line_number
                ) from None
            if not isinstance(entry, dict):
                raise errors.DataError(
                    f"expected a JSON object, received {entry!r:.80}", path=path, row=line_number
                )
            try:
                result.append(_outcome(entry))
            except _Invalid as e:
                raise errors.DataError(
                    e.message, path=path, row=line_number, field=e.field
                ) from None
    return result
