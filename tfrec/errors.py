"""Errors raised at tfrec's boundaries: data files, configs, workdirs and requests."""

from __future__ import annotations

import os
from typing import Optional


class TfrecError(Exception):
    """Base class for every error tfrec raises on bad input."""


class DataError(TfrecError, ValueError):
    """Bad input data. The message names the file, row, field, what was expected and received.

    Args:
        message: str. What is wrong.
        path: str, path-like or None. The file.
        row: int or None. 1-based line number in the file (the header is line 1).
        field: str or None. The column.
    """

    def __init__(
        self,
        message: str,
        *,
        path: Optional[os.PathLike | str] = None,
        row: Optional[int] = None,
        field: Optional[str] = None,
    ) -> None:
        self.path = None if path is None else str(path)
        self.row = row
        self.field = field
        where: list[str] = []
        if self.path is not None:
            where.append(f"file `{self.path}`")
        if row is not None:
            where.append(f"row {row}")
        if field is not None:
            where.append(f"field `{field}`")
        prefix = (", ".join(where) + ": ") if where else ""
        super().__init__(prefix + message)


class ConfigError(TfrecError, ValueError):
    """Bad configuration: unknown key, wrong type, invalid value."""


class WorkdirError(TfrecError, ValueError):
    """A workdir that does not hold what the command needs, or holds another model."""
