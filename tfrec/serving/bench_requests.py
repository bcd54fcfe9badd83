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


def _shape(info: dict[str, Any]) -> list[int]:
    return [int(d.get("size", -1)) for d in info.get("tensor_shape", {}).get("dim", [])]


def inputs_for(
    signature: dict[str, Any], row: dict[str, Any], signature_name: str = "?"
) -> dict[str, Any]:
    """`row` (one request of `request_rows`) shaped as `signature` (model metadata) declares.

    The served layouts differ: `k` and `exclude_recent` are scalars or [1] vectors, and the
    compressed layout takes fixed-width histories (padded with "" or truncated) and token ids
    of the query (none: all zeros).

    Args:
        signature: dict. One SignatureDef of `Client.metadata`.
        row: dict. Input name -> array [1] or [1, n], a one-row request.
        signature_name: str. Named in the error. Defaults to "?".

    Returns:
        dict input name -> plain value (lists, str, int, bool) with the declared rank.

    Raises:
        ConfigError: the signature has an input that `row` does not hold.
    """
    found: dict[str, Any] = {}
    for name, info in signature.get("inputs", {}).items():
        shape = _shape(info)
        value: Any
        if name == "query_token_ids":
            value = [0] * max(shape[-1], 0)
        elif name in row:
            value = np.asarray(row[name])[:1].tolist()[0]  # the one example, as plain values
        else:
            raise errors.ConfigError(
                f"signature `{signature_name}` has input `{name}` that the serving bench cannot "
                f"fill; expected inputs among {sorted(row) + ['query_token_ids']}"
            )
        if len(shape) == 2 and shape[1] >= 0 and isinstance(value, list):
            pad = "" if all(isinstance(v, str) for v in value) else 0
            value = (value + [pad] * shape[1])[: shape[1]]
        found[name] = value if not shape else [value]
    return found


def batchable(signature: dict[str, Any]) -> bool:
    """Whether a batching server can merge requests to it: every tensor has a free batch dim."""
    infos = list(signature.get("inputs", {}).values()) + list(signature.get("outputs", {}).values())
    return bool(infos) and all(_shape(i)[:1] == [-1] for i in infos)
