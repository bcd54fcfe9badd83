"""Serving errors as status codes shared by gRPC and REST (INVALID_ARGUMENT, NOT_FOUND, ...)."""

from __future__ import annotations

from typing import Optional

from tfrec import errors

# TF Serving's REST layer maps canonical codes to HTTP statuses this way.
HTTP_STATUS = {
    "OK": 200,
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "RESOURCE_EXHAUSTED": 429,
    "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
    "INTERNAL": 500,
    "UNKNOWN": 500,
}


class ServingError(errors.TfrecError):
    """A request the server refused or could not answer.

    Raised inside the server (and turned into a gRPC status or an HTTP error) and raised by
    `tfrec.serving.Client`, so callers handle both protocols the same way.

    Args:
        code: str. Canonical status code name, e.g. `"INVALID_ARGUMENT"` or `"NOT_FOUND"`.
        message: str. What is wrong; names the request field in backticks.
        http: int or None. An HTTP status for REST-only errors (e.g. 405 for a wrong method);
            None maps `code` as TF Serving does.
    """

    def __init__(self, code: str, message: str, http: Optional[int] = None):
        self.code = code
        self.message = message
        self._http = http
        super().__init__(f"{code}: {message}")

    @property
    def http_status(self) -> int:
        """The HTTP status TF Serving's REST API answers for this code."""
        return self._http or HTTP_STATUS.get(self.code, 500)


def invalid(message: str) -> ServingError:
    return ServingError("INVALID_ARGUMENT", message)


def not_found(message: str) -> ServingError:
    return ServingError("NOT_FOUND", message)


def code_from_http(http_status: int) -> str:
    """The canonical code a client reports for an HTTP status (inverse of `HTTP_STATUS`)."""
    for code in ("INVALID_ARGUMENT", "NOT_FOUND", "UNAVAILABLE", "UNIMPLEMENTED", "INTERNAL"):
        if HTTP_STATUS[code] == http_status:
            return code
    if http_status == 429:
        return "RESOURCE_EXHAUSTED"
    return "UNKNOWN"
