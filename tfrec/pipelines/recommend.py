"""`tfrec recommend`: one recommendation request to a running server, printed as a table."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Optional

from tfrec import errors
from tfrec.pipelines import export as run_lib
from tfrec.ranking import requests

DEFAULT_EVENT = "view"


def parse_recent(recent: str, events: Optional[str]) -> tuple[list, list]:
    """`i1,i2` and `view,cart` -> item ids and event types (most recent first).

    One event type applies to all items; otherwise there must be one per item. Without
    `events` every item counts as a view.
    """
    items = [i.strip() for i in (recent or "").split(",") if i.strip()]
    types = [e.strip() for e in (events or "").split(",") if e.strip()] or [DEFAULT_EVENT]
    if len(types) == 1:
        types = types * len(items)
    if len(types) != len(items):
        raise errors.ConfigError(
            f"`--events` must give one event type or one per `--recent` item ({len(items)}), "
            f"received {len(types)}"
        )
    return items, types


def recommend(
    server: str,
    user: str,
    recent: Sequence[str] = (),
    events: Sequence[str] = (),
    query: Optional[str] = None,
    k: int = 10,
    rest: bool = False,
    model_name: str = "tfrec",
    signature: str = "recommend",
    now: Optional[datetime.datetime] = None,
) -> list:
    """Calls `signature` of the served model and returns [(rank, item_id, title, score)].

    A query text goes to `<model_name>_text` (the variant with in-graph tokenization).
    """
    from tfrec.serving import client as client_lib

    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise errors.ConfigError(f"`--k` must be a positive int, received {k!r}")
    if len(recent) != len(events):
        raise errors.ConfigError(
            f"`events` must give one event type per `recent` item ({len(recent)}), "
            f"received {len(events)}"
        )
    pairs = list(zip(recent, events, strict=True))
    inputs = requests.build(user, pairs, now=now, k=k, query_text=query or None)
    name = model_name + run_lib.TEXT_SUFFIX if query else model_name
    with client_lib.Client(server, protocol="rest" if rest else "grpc") as client:
        out = client.predict(name, inputs, signature_name=signature)
    rows = []
    for rank, (item, title, score) in enumerate(
        zip(out["item_ids"][0], out["titles"][0], out["scores"][0], strict=True), start=1
    ):
        item = item.decode() if isinstance(item, bytes) else str(item)
        if item:  # "" fills slots nothing was left for
            title = title.decode() if isinstance(title, bytes) else str(title)
            rows.append((rank, item, title, float(score)))
    return rows


def format_rows(rows: list) -> str:
    lines = [f"{'rank':>4}  {'item_id':<16} {'score':>9}  title"]
    lines += [f"{r:>4}  {i:<16} {s:>9.4f}  {t}" for r, i, t, s in rows]
    return "\n".join(lines)
