"""`RequestLogger`: samples Predict calls and writes them and outcomes on a background thread."""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Optional

from tfrec import config as config_lib
from tfrec.serving import metrics as metrics_lib
from tfrec.serving import outcomes as outcomes_lib
from tfrec.serving import prediction_log, pseudonym, rotating_file, status

log = logging.getLogger(__name__)

PREDICTIONS = ("predictions", ".tfrecord")
OUTCOMES = ("outcomes", ".jsonl")
_STOP = object()
_IDLE_WAKE_S = 1.0  # how often an idle writer checks file age and retention
_SWEEP_EVERY_S = 60.0
_WARN_EVERY_S = 60.0


class Sampler:
    """Draws which requests are logged: each independently with probability `rate`.

    Args:
        rate: float. In [0, 1]; 0 and 1 draw nothing from the generator.
        seed: int or None. Seed of the generator; the same seed and call sequence give the
            same sample. Defaults to None (random).
    """

    def __init__(self, rate: float, seed: Optional[int] = None):
        self.rate = rate
        self._rng = random.Random(seed)
        self._lock = threading.Lock()  # request threads draw concurrently

    def __call__(self) -> bool:
        if self.rate >= 1.0:
            return True
        if self.rate <= 0.0:
            return False
        with self._lock:
            return self._rng.random() < self.rate


class _Prediction:
    __slots__ = ("request_id", "served_at", "protos")

    def __init__(self, request_id: str, served_at: float, protos: Callable[[], tuple]):
        self.request_id = request_id
        self.served_at = served_at
        self.protos = protos


class RequestLogger:
    """Writes sampled Predict calls (as PredictionLogs) and reported outcomes to a log folder.

    The request path only draws the sample and puts a small item on a bounded queue: it never
    waits for the disk. Protos are copied, user ids pseudonymised and records written by one
    background thread, which also rotates the files (`tfrec.serving.rotating_file`) and
    applies retention. A full queue or a failed write drops the record and counts it in
    `metrics`; the request is answered either way.

    Args:
        config: PredictionLogConfig. Folder, sampling, file limits, retention and key.
        metrics: Metrics. Where written, dropped and deleted records are counted.
        clock: callable returning seconds since the epoch. Defaults to `time.time`.

    Raises:
        ConfigError: the key file lies in the log folder or holds no valid key.
    """

    def __init__(
        self,
        config: config_lib.PredictionLogConfig,
        metrics: metrics_lib.Metrics,
        clock: Callable[[], float] = time.time,
    ):
        self.config = config
        self.folder = Path(config.log_dir).expanduser()
        self.metrics = metrics
        self._clock = clock
        self.pseudonymiser: Optional[pseudonym.Pseudonymiser] = None
        if not config.raw_user_ids:
            assert config.key_file is not None  # PredictionLogConfig requires it
            key = pseudonym.load_or_create_key(config.key_file, self.folder)
            self.pseudonymiser = pseudonym.Pseudonymiser(key)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.scheme = self.pseudonymiser.scheme if self.pseudonymiser else prediction_log.RAW
        self.sampled = Sampler(config.sample_rate, config.sample_seed)
        self._queue: queue.Queue = queue.Queue(maxsize=config.queue_size)
        self.predictions = self._stream(*PREDICTIONS, "tfrecord")
        self.outcomes = self._stream(*OUTCOMES, "lines")
        self._last_sweep = 0.0
        self._files_closed = 0
        self._last_warning = 0.0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="request-log", daemon=True)
        self._thread.start()

    def _stream(self, prefix: str, suffix: str, framing: str) -> rotating_file.RotatingFile:
        return rotating_file.RotatingFile(
            self.folder,
            prefix,
            suffix,
            framing,
            self.config.max_file_bytes,
            self.config.rotate_seconds,
            self._clock,
        )

    # -- request path --------------------------------------------------------------------------

    def log_predict(self, request_id: str, protos: Callable[[], tuple]) -> bool:
        """Queues one answered request; returns False when it was dropped (queue full).

        Args:
            request_id: str. The id returned to the client.
            protos: callable returning (PredictRequest, PredictResponse). Called on the
                writer thread, so REST requests are converted to protos off the request path.
        """
        try:
            self._queue.put_nowait(_Prediction(request_id, self._clock(), protos))
        except queue.Full:
            self.metrics.observe_log_dropped("prediction", "queue_full")
            return False
        return True

    def log_outcomes(self, outcomes: Sequence[outcomes_lib.Outcome]) -> None:
        """Queues reported outcomes.

        Raises:
            ServingError: RESOURCE_EXHAUSTED when the queue is full; the client should retry.
        """
        try:
            self._queue.put_nowait((self._clock(), list(outcomes)))
        except queue.Full:
            self.metrics.observe_log_dropped("outcome", "queue_full", len(outcomes))
            raise status.ServingError(
                "RESOURCE_EXHAUSTED",
                "`outcomes`: the log writer is behind (queue full); nothing was recorded, retry "
                "later",
            ) from None

    # -- control -------------------------------------------------------------------------------

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Waits until everything queued so far is written; whether that happened in time."""
        done = threading.Event()
        try:
            self._queue.put(done, timeout=timeout_s)
        except queue.Full:
            return False
        return done.wait(timeout_s)

    def close(self, timeout_s: float = 30.0) -> None:
        """Writes what is queued, closes (publishes) the current files and stops the thread."""
        if self._closed:
            return
        self._closed = True
        try:
            self._queue.put(_STOP, timeout=timeout_s)
        except queue.Full:
            log.warning("request log: writer is stuck; stopping without draining the queue")
        self._thread.join(timeout_s)

    # -- writer thread -------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                try:
                    item = self._queue.get(timeout=_IDLE_WAKE_S)
                except queue.Empty:
                    item = None
                if item is _STOP:
                    break
                if isinstance(item, _Prediction):
                    self._write_prediction(item)
                elif isinstance(item, tuple):
                    self._write_outcomes(*item)
                self._maintain()
                if isinstance(item, threading.Event):
                    item.set()  # a flush: everything before it is written and maintained
        finally:
            for stream in (self.predictions, self.outcomes):
                try:
                    stream.close()
                except Exception as e:  # noqa: BLE001 (shutting down: report, do not raise)
                    log.warning("request log: closing %s failed: %s", stream.prefix, e)
            self._sweep()

    def _write_prediction(self, item: _Prediction) -> None:
        try:
            request, response = item.protos()
            record = prediction_log.build(
                request,
                response,
                request_id=item.request_id,
                served_at=item.served_at,
                sample_rate=self.config.sample_rate,
                pseudonymise=self.pseudonymiser,
                scheme=self.scheme,
            )
            size = self.predictions.write(record.SerializeToString())
        except Exception as e:  # noqa: BLE001 (never let one record stop the writer)
            self._dropped("prediction", 1, e)
            return
        self.metrics.observe_log_written("prediction", size)

    def _write_outcomes(self, received_at: float, outcomes: list) -> None:
        for i, outcome in enumerate(outcomes):
            try:
                size = self.outcomes.write(outcome.to_json_line(received_at))
            except Exception as e:  # noqa: BLE001 (never let one record stop the writer)
                self._dropped("outcome", len(outcomes) - i, e)
                return
            self.metrics.observe_log_written("outcome", size)

    def _dropped(self, kind: str, count: int, error: Exception) -> None:
        self.metrics.observe_log_dropped(kind, "write_error", count)
        now = time.monotonic()
        if now - self._last_warning >= _WARN_EVERY_S:  # a full disk must not flood the log
            self._last_warning = now
            log.warning(
                "request log: %s record(s) dropped: %s: %s", kind, type(error).__name__, error
            )

    def _maintain(self) -> None:
        for stream in (self.predictions, self.outcomes):
            stream.maybe_rotate()
        closed = self.predictions.files_closed + self.outcomes.files_closed
        if closed != self._files_closed or time.monotonic() - self._last_sweep >= _SWEEP_EVERY_S:
            self._files_closed = closed  # a file was finished (size or age): apply retention
            self._sweep()

    def _sweep(self) -> None:
        self._last_sweep = time.monotonic()
        if self.config.retention_days is None and self.config.max_total_bytes is None:
            return
        swept = rotating_file.sweep(
            self.folder,
            (PREDICTIONS, OUTCOMES),
            max_age_seconds=None
            if self.config.retention_days is None
            else self.config.retention_days * 86400.0,
            max_total_bytes=self.config.max_total_bytes,
            in_progress_bytes=self.predictions.size + self.outcomes.size,
            now=self._clock(),
        )
        if swept.files:
            self.metrics.observe_log_deleted(len(swept.files))
            log.info(
                "request log: retention deleted %d file(s), %d bytes", len(swept.files), swept.bytes
            )
