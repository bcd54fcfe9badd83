"""Helpers for the loader tests: small fixture files written into pytest's tmp_path."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest


def write_text(path: Path, text: str | bytes, encoding: str = "utf-8") -> Path:
    """Writes `text` (bytes as they are) to `path`, gzipped when the name ends in `.gz`."""
    data = text if isinstance(text, bytes) else text.encode(encoding)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


@pytest.fixture
def write(tmp_path):
    """`write(name, text_or_lines, encoding="utf-8")` -> Path of a file under tmp_path."""

    def _write(name: str, content, encoding: str = "utf-8") -> Path:
        if isinstance(content, (list, tuple)):
            content = "\n".join(content) + "\n"
        return write_text(tmp_path / name, content, encoding)

    return _write
