"""Request limits of `tfrec serve`, checked on declared shapes and sizes before decoding."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any, Optional

import numpy as np

from tfrec import config as config_lib
from tfrec import errors, request_schema
from tfrec.serving import status

# tfrec's request inputs that get checks beyond their SignatureDef (see tfrec.request_schema).
K = request_schema.K.name
QUERY_TEXT = request_schema.QUERY_TEXT.name
HISTORY_PAIR = request_schema.HISTORY_PAIR
# Deeper JSON than any signature input needs is refused before it is walked recursively.
MAX_JSON_DEPTH = 32


@dataclasses.dataclass(frozen=True)
class RequestLimits:
    """What one Predict request may ask of the server, over gRPC and REST alike.

    Shapes and sizes are checked as the request declares them (TensorProto dims, string lengths,
    JSON list lengths, Content-Length) before any tensor is built, so a small request cannot
    make the server allocate a large one. Mirrors `tfrec.config.ServingConfig`.

    Args:
        max_rows: int. Largest dimension 0 (batch rows) of any input. Defaults to 512.
        max_history: int. Largest inner dimension of any input (history lists). Defaults to 128.
        max_string_bytes: int. Longest string value of any input, in bytes. Defaults to 4096.
        max_query_chars: int. Longest `query_text`, in characters. Defaults to 1000.
        max_k: int. Largest `k`; `k` is also at most the catalog size. Defaults to 1000.
        max_request_bytes: int. Largest request body or message. Defaults to 4 MiB.
        idle_timeout_seconds: float. A REST connection silent this long is closed. Defaults
            to 30.

    Example:
        >>> RequestLimits(max_rows=64).max_rows
        64
    """

    # The defaults are tfrec.config.ServingConfig's: one source of truth.
    max_rows: int = config_lib.ServingConfig.max_rows
    max_history: int = config_lib.ServingConfig.max_history
    max_string_bytes: int = config_lib.ServingConfig.max_string_bytes
    max_query_chars: int = config_lib.ServingConfig.max_query_chars
    max_k: int = config_lib.ServingConfig.max_k
    max_request_bytes: int = config_lib.ServingConfig.max_request_bytes
    idle_timeout_seconds: float = config_lib.ServingConfig.idle_timeout_seconds

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise errors.ConfigError(
                    f"`serving.{field.name}` must be a number > 0, received {value!r}"
                )

    def check_shape(self, field: str, dims: Sequence[int]) -> None:
        """INVALID_ARGUMENT naming `field` when a declared shape is over the limits."""
        if any(d < 0 for d in dims):
            raise status.invalid(f"`{field}`: expected dimensions >= 0, received {list(dims)}")
        if dims and dims[0] > self.max_rows:
            raise status.invalid(
                f"`{field}`: expected at most {self.max_rows} rows (`serving.max_rows`), "
                f"received {dims[0]}"
            )
        for d in dims[1:]:
            if d > self.max_history:
                raise status.invalid(
                    f"`{field}`: expected lists of at most {self.max_history} values "
                    f"(`serving.max_history`), received shape {list(dims)}"
                )
        # Rank 3+ inputs could multiply small dimensions into a huge tensor.
        if math.prod(dims) > self.max_rows * self.max_history:
            raise status.invalid(
                f"`{field}`: expected at most {self.max_rows * self.max_history} values "
                f"(`serving.max_rows` x `serving.max_history`), received shape {list(dims)}"
            )

    def check_string_bytes(self, field: str, length: int) -> None:
        if length > self.max_string_bytes:
            raise status.invalid(
                f"`{field}`: expected strings of at most {self.max_string_bytes} bytes "
                f"(`serving.max_string_bytes`), received {length}"
            )

    def check_request_bytes(self, size: int) -> None:
        if size > self.max_request_bytes:
            raise status.invalid(
                f"`request`: expected at most {self.max_request_bytes} bytes "
                f"(`--max-message-bytes`, `serving.max_request_bytes`), received {size}"
            )

    def check_values(
        self, inputs: Mapping[str, np.ndarray], catalog_size: Optional[int] = None
    ) -> None:
        """Checks of tfrec's fields on decoded (already bounded) inputs.

        `k` must lie in [1, min(max_k, catalog_size)]; `history_item_ids` and
        `history_event_types` must have one shape (they are read pairwise); `query_text`
        must be at most `max_query_chars` long.
        """
        k = inputs.get(K)
        if k is not None and k.size and k.dtype.kind in "iu":
            top = self.max_k if catalog_size is None else min(self.max_k, catalog_size)
            low, high = int(k.min()), int(k.max())
            if low < 1 or high > top:
                bound = "`serving.max_k`" if top == self.max_k else "the catalog size"
                raise status.invalid(
                    f"`inputs.{K}`: expected values in [1, {top}] ({bound}), received "
                    f"{low if low < 1 else high}"
                )
        items, events = (inputs.get(n) for n in HISTORY_PAIR)
        if items is not None and events is not None and items.shape != events.shape:
            raise status.invalid(
                f"`inputs.{HISTORY_PAIR[1]}`: expected the shape of `{HISTORY_PAIR[0]}` "
                f"{list(items.shape)}, received {list(events.shape)}"
            )
        query = inputs.get(QUERY_TEXT)
        if query is not None and query.dtype.kind == "O":
            for value in query.reshape(-1):
                text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
                if isinstance(text, str) and len(text) > self.max_query_chars:
                    raise status.invalid(
                        f"`inputs.{QUERY_TEXT}`: expected at most {self.max_query_chars} "
                        f"characters (`serving.max_query_chars`), received {len(text)}"
                    )


def json_shape(value: Any, field: str) -> list[int]:
    """The shape a JSON value declares (lengths along its first elements), depth-capped."""
    dims: list[int] = []
    while isinstance(value, list):
        if len(dims) >= MAX_JSON_DEPTH:
            raise status.invalid(
                f"`{field}`: expected lists nested at most {MAX_JSON_DEPTH} deep, received more"
            )
        dims.append(len(value))
        if not value:
            break
        value = value[0]
    return dims
