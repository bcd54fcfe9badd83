"""Request ids: taken from the client's `x-request-id` (gRPC metadata or HTTP header) or made."""

from __future__ import annotations

import re
import uuid
from typing import Optional

from tfrec.serving import status

HEADER = "x-request-id"  # lowercase: gRPC metadata keys must be
MAX_CHARS = 128
_VALID = re.compile(rf"[\x21-\x7e]{{1,{MAX_CHARS}}}")  # printable ASCII, no spaces


def resolve(received: Optional[str]) -> str:
    """The client's id when it sent a valid one, else a new random one (32 hex characters).

    Raises:
        ServingError: INVALID_ARGUMENT when the client sent an id that cannot be echoed
            safely in a header.
    """
    if not received:
        return uuid.uuid4().hex
    if not _VALID.fullmatch(received):
        raise status.invalid(
            f"`{HEADER}`: expected 1 to {MAX_CHARS} printable ASCII characters without spaces, "
            f"received {received[: MAX_CHARS + 8]!r}"
        )
    return received
