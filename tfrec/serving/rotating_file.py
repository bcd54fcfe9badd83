"""Append-only record files that rotate by size and age, renamed into place when closed."""

from __future__ import annotations

import dataclasses
import datetime
import itertools
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Optional, Protocol

import tensorflow as tf

log = logging.getLogger(__name__)

TEMP_SUFFIX = ".tmp"
# TFRecord framing around each record: length (8), its masked CRC (4), data CRC (4).
TFRECORD_OVERHEAD = 16
_SEQUENCE = itertools.count(1)  # file names stay unique across streams of one process


class _Sink(Protocol):
    def write(self, data: bytes) -> None: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...


class _LineSink:
    """One record per line (JSON lines): the data must not hold a newline."""

    def __init__(self, path: Path):
        self._file = open(path, "wb")  # noqa: SIM115 (closed by close())

    def write(self, data: bytes) -> None:
        self._file.write(data + b"\n")

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()


FRAMINGS: dict[str, tuple[Callable[[Path], _Sink], int]] = {
    "tfrecord": (lambda path: tf.io.TFRecordWriter(str(path)), TFRECORD_OVERHEAD),
    "lines": (_LineSink, 1),
}


def finished_name(prefix: str, suffix: str, opened: float) -> str:
    """`<prefix>-<UTC open time>-<pid>-<n><suffix>`: names sort by open time."""
    stamp = datetime.datetime.fromtimestamp(opened, datetime.UTC)
    return f"{prefix}-{stamp:%Y%m%dT%H%M%S%fZ}-{os.getpid()}-{next(_SEQUENCE):04d}{suffix}"


def finished_files(folder: Path, prefix: str, suffix: str) -> list[Path]:
    """The closed files of one stream in `folder`, oldest first (temporary files excluded)."""
    return sorted(folder.glob(f"{prefix}-*{suffix}"))


class RotatingFile:
    """One stream of records (e.g. prediction logs) written to a series of bounded files.

    A file is written under a hidden temporary name (`.<name>.tmp`) and renamed to `<name>`
    when closed, so a reader that lists finished names never sees a half-written file. Each
    record is flushed after it is written, so the temporary file always ends on a record
    boundary; when a write fails, the file is cut back to the last whole record, closed and
    renamed, and the error is raised (the next write starts a new file). Not thread-safe: one
    writer thread owns it.

    Args:
        folder: path. Where the files go (created).
        prefix: str. File name prefix, e.g. `"predictions"`.
        suffix: str. File name suffix, e.g. `".tfrecord"`.
        framing: str. `"tfrecord"` (TFRecord records) or `"lines"` (one record per line).
        max_file_bytes: int. A file is closed before it would grow past this size (a record
            larger than this gets a file of its own).
        rotate_seconds: float or None. A file is closed this long after it was opened, by
            `maybe_rotate()`. None: only by size.
        clock: callable returning the time in seconds. Defaults to `time.time`.
    """

    def __init__(
        self,
        folder: os.PathLike | str,
        prefix: str,
        suffix: str,
        framing: str,
        max_file_bytes: int,
        rotate_seconds: Optional[float] = None,
        clock: Callable[[], float] = time.time,
    ):
        if framing not in FRAMINGS:
            raise ValueError(f"`framing` must be one of {sorted(FRAMINGS)}, received {framing!r}")
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.prefix = prefix
        self.suffix = suffix
        self.framing = framing
        self.max_file_bytes = max_file_bytes
        self.rotate_seconds = rotate_seconds
        self._open_sink, self._overhead = FRAMINGS[framing]
        self._clock = clock
        self._sink: Optional[_Sink] = None
        self._final: Optional[Path] = None
        self._opened = 0.0
        self.size = 0  # bytes of whole records in the current file
        self.files_closed = 0

    @property
    def temp_path(self) -> Optional[Path]:
        """The file being written, or None between files."""
        return None if self._final is None else _temp(self._final)

    def write(self, data: bytes) -> int:
        """Appends one record; returns the bytes it added to the file.

        Raises:
            Exception: whatever the file system raised; the record is not in any file.
        """
        added = len(data) + self._overhead
        if self._sink is not None and self.size and self.size + added > self.max_file_bytes:
            self.close()
        if self._sink is None:
            self._open()
        assert self._sink is not None
        try:
            self._sink.write(data)
            self._sink.flush()
        except Exception:
            self._abandon()
            raise
        self.size += added
        return added

    def maybe_rotate(self) -> bool:
        """Closes the current file if it is older than `rotate_seconds`; whether it did."""
        if (
            self._sink is None
            or self.rotate_seconds is None
            or self._clock() - self._opened < self.rotate_seconds
        ):
            return False
        self.close()
        return True

    def close(self) -> Optional[Path]:
        """Closes and renames the current file; returns its finished path (None if none)."""
        if self._sink is None or self._final is None:
            return None
        sink, final = self._sink, self._final
        self._sink, self._final = None, None
        try:
            sink.close()
        finally:
            self._publish(final)
        return final

    def _open(self) -> None:
        self._opened = self._clock()
        final = self.folder / finished_name(self.prefix, self.suffix, self._opened)
        self._sink = self._open_sink(_temp(final))
        self._final = final
        self.size = 0

    def _abandon(self) -> None:
        sink, final = self._sink, self._final
        self._sink, self._final = None, None
        if sink is None or final is None:
            return
        try:
            sink.close()
        except Exception:  # noqa: BLE001 (the write already failed; its error is raised)
            pass
        try:
            os.truncate(_temp(final), self.size)  # drop the partial record
        except OSError:
            pass
        self._publish(final)

    def _publish(self, final: Path) -> None:
        temp = _temp(final)
        try:
            if self.size:
                os.replace(temp, final)
            else:
                temp.unlink(missing_ok=True)  # nothing in it: no empty finished file
        except OSError as e:
            log.warning("could not finish log file %s: %s", temp, e)
        self.size = 0
        self.files_closed += 1


def _temp(final: Path) -> Path:
    return final.with_name("." + final.name + TEMP_SUFFIX)


@dataclasses.dataclass(frozen=True)
class Swept:
    """What one retention pass deleted."""

    files: tuple[Path, ...] = ()
    bytes: int = 0


def sweep(
    folder: Path,
    streams: Iterable[tuple[str, str]],
    *,
    max_age_seconds: Optional[float],
    max_total_bytes: Optional[int],
    in_progress_bytes: int = 0,
    now: Optional[float] = None,
) -> Swept:
    """Deletes finished files older than `max_age_seconds`, then the oldest while too large.

    Only finished files of the given streams are candidates: a file being written has a
    temporary name and is never deleted, but its size (`in_progress_bytes`) counts toward
    `max_total_bytes`.

    Args:
        folder: Path. The log folder.
        streams: (prefix, suffix) pairs of the streams sharing the folder and its limits.
        max_age_seconds: float or None. Age limit, by last modification time.
        max_total_bytes: int or None. Cap on the streams' finished plus in-progress bytes.
        in_progress_bytes: int. Bytes of the files being written.
        now: float or None. The current time; None reads the clock.

    Returns:
        Swept.
    """
    now = time.time() if now is None else now
    files: list[tuple[float, str, Path, int]] = []
    for prefix, suffix in streams:
        for path in finished_files(folder, prefix, suffix):
            try:
                info = path.stat()
            except FileNotFoundError:
                continue
            files.append((info.st_mtime, path.name, path, info.st_size))
    files.sort()
    doomed: list[tuple[Path, int]] = []
    if max_age_seconds is not None:
        doomed = [(p, size) for mtime, _, p, size in files if now - mtime > max_age_seconds]
    kept = [(p, size) for _, _, p, size in files if (p, size) not in doomed]
    if max_total_bytes is not None:
        total = in_progress_bytes + sum(size for _, size in kept)
        while kept and total > max_total_bytes:
            path, size = kept.pop(0)
            doomed.append((path, size))
            total -= size
    return _delete(doomed)


def _delete(doomed: Sequence[tuple[Path, int]]) -> Swept:
    gone: list[Path] = []
    freed = 0
    for path, size in doomed:
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        except OSError as e:
            log.warning("retention could not delete %s: %s", path, e)
            continue
        gone.append(path)
        freed += size
    return Swept(tuple(gone), freed)
