"""The serving bench's requests: synthetic users' moments, shaped as each signature declares."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tfrec import errors, features
from tfrec.ranking import requests as requests_lib

_WEEK_SECONDS = 7 * 24 * 3600


def request_rows(
    spec: features.FeatureSpec,
    item_ids: np.ndarray | Sequence[str],
    count: int,
    k: int,
    seed: int = 0,
) -> list[dict[str, np.ndarray]]:
    """`count` single-user requests: known users, 1..max_history recent synthetic items.

    Each is built by `tfrec.ranking.requests.build`, the one place requests are made, at a
    random moment of the week (so `hour_of_day` and `day_of_week` vary), with an empty
    `query_text` for the signatures that declare one.

    Args:
        spec: FeatureSpec. The run's users, event types and history length.
        item_ids: array or sequence of str. Items the histories are drawn from.
        count: int. Requests to make.
        k: int. Items each request asks for.
        seed: int. Random seed. Defaults to 0.

    Returns:
        List of one-row requests (input name -> array [1] or [1, n]).
    """
    rng = np.random.default_rng(seed)
    users = list(spec.users) or ["u"]
    types = [t for t in spec.event_types if t] or ["view"]
    rows = []
    for _ in range(count):
        length = int(rng.integers(1, spec.max_history + 1))
        items = rng.integers(0, len(item_ids), length)
        kinds = rng.integers(0, len(types), length)
        recent = [
            (str(item_ids[int(i)]), str(types[int(t)])) for i, t in zip(items, kinds, strict=True)
        ]
        user = str(users[int(rng.integers(len(users)))])
        now = int(rng.integers(_WEEK_SECONDS))
        rows.append(requests_lib.build(user, recent, now=now, k=k, query_text=""))
    return rows


def batches(
    pool: Sequence[dict[str, np.ndarray]], rows: int, step: int = 1
) -> list[dict[str, np.ndarray]]:
    """Requests of `rows` rows each: request j holds the moments `j * step`, `j * step + 1`,
    ... `j * step + rows - 1` of `pool`, wrapping around, stacked by
    `tfrec.ranking.requests.stack` (histories padded with "").

    `step` 1 (the load) gives `len(pool)` different requests; `step` = `rows` sends each
    moment once (the recall check).

    Args:
        pool: sequence of one-row requests (`request_rows`).
        rows: int in [1, len(pool)]. Rows per request, distinct moments of the pool.
        step: int >= 1. Moments between the first rows of consecutive requests. Defaults to 1.

    Returns:
        List of requests (input name -> array [rows] or [rows, n]).

    Raises:
        ValueError: `rows` is outside [1, len(pool)] or `step` < 1.
    """
    if not 1 <= rows <= len(pool):
        raise ValueError(
            f"`rows` must be in [1, len(pool) = {len(pool)}] (distinct moments per request), "
            f"received {rows!r}"
        )
    if step < 1:
        raise ValueError(f"`step` must be >= 1, received {step!r}")
    if rows == 1:
        return [pool[j] for j in range(0, len(pool), step)]
    return [
        requests_lib.stack([pool[(start + i) % len(pool)] for i in range(rows)])
        for start in range(0, len(pool), step)
    ]


def _shape(info: dict[str, Any]) -> list[int]:
    return [int(d.get("size", -1)) for d in info.get("tensor_shape", {}).get("dim", [])]


def inputs_for(
    signature: dict[str, Any], request: dict[str, Any], signature_name: str = "?"
) -> dict[str, Any]:
    """`request` (of `request_rows` or `batches`) shaped as `signature` (model metadata) declares.

    The served layouts differ: `k` and `exclude_recent` are scalars or per-row vectors (a
    scalar takes the first row's value: the bench's rows all ask alike), and the compressed
    layout takes fixed-width histories (padded with "" or truncated) and token ids of the
    query (none: all zeros).

    Args:
        signature: dict. One SignatureDef of `Client.metadata`.
        request: dict. Input name -> array [b] or [b, n], a request of b rows.
        signature_name: str. Named in the error. Defaults to "?".

    Returns:
        dict input name -> plain value (lists, str, int, bool) with the declared rank; inputs
        with a batch dimension hold all b rows.

    Raises:
        ConfigError: the signature has an input that `request` does not hold.
    """
    rows = len(next(iter(request.values())))
    found: dict[str, Any] = {}
    for name, info in signature.get("inputs", {}).items():
        shape = _shape(info)
        values: list[Any]
        if name == "query_token_ids":
            values = [[0] * max(shape[-1], 0)] * rows
        elif name in request:
            values = np.asarray(request[name]).tolist()  # plain values, one per row
        else:
            raise errors.ConfigError(
                f"signature `{signature_name}` has input `{name}` that the serving bench cannot "
                f"fill; expected inputs among {sorted(request) + ['query_token_ids']}"
            )
        if len(shape) == 2 and shape[1] >= 0:
            width = shape[1]
            values = [
                (v + ["" if all(isinstance(x, str) for x in v) else 0] * width)[:width]
                for v in values
            ]
        found[name] = values if shape else values[0]
    return found


def batchable(signature: dict[str, Any]) -> bool:
    """Whether a batching server can merge requests to it: every tensor has a free batch dim."""
    infos = list(signature.get("inputs", {}).values()) + list(signature.get("outputs", {}).values())
    return bool(infos) and all(_shape(i)[:1] == [-1] for i in infos)
