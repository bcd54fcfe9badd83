"""Log files: rotation, atomic publication, retention, pseudonym keys, sampling, config."""

from __future__ import annotations

import os
import stat

import pytest
import tensorflow as tf

from tfrec import config as config_lib
from tfrec import errors
from tfrec.serving import metrics, outcomes, pseudonym, request_log, rotating_file


class Clock:
    def __init__(self, now: float = 1_700_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def _records(path) -> list:
    return list(tf.data.TFRecordDataset(str(path)).as_numpy_iterator())


def test_files_rotate_by_size_and_are_published_only_when_closed(tmp_path):
    # Each 100-byte record takes 116 bytes framed: two fit under 300, a third does not.
    stream = rotating_file.RotatingFile(tmp_path, "predictions", ".tfrecord", "tfrecord", 300)
    sizes = [stream.write(bytes([i]) * 100) for i in range(5)]
    assert sizes == [116] * 5
    finished = rotating_file.finished_files(tmp_path, "predictions", ".tfrecord")
    assert [len(_records(p)) for p in finished] == [2, 2]
    assert stream.temp_path is not None and stream.temp_path.exists()
    assert stream.temp_path.name.startswith(".") and stream.temp_path.name.endswith(".tmp")
    assert stream.temp_path not in finished  # readers never list the file being written
    last = stream.close()
    assert last is not None and _records(last) == [bytes([4]) * 100]
    assert sorted(tmp_path.iterdir()) == sorted([*finished, last])
    assert all(p.stat().st_size <= 300 for p in tmp_path.iterdir())
    # A record larger than the limit gets a file of its own.
    big = stream.write(b"x" * 500)
    assert big == 516 and stream.close().stat().st_size == 516


def test_files_rotate_by_age_and_empty_files_are_not_published(tmp_path):
    clock = Clock()
    stream = rotating_file.RotatingFile(
        tmp_path, "outcomes", ".jsonl", "lines", 1 << 20, rotate_seconds=60, clock=clock
    )
    stream.write(b'{"a": 1}')
    clock.now += 59
    assert not stream.maybe_rotate()
    clock.now += 2
    assert stream.maybe_rotate()
    (path,) = rotating_file.finished_files(tmp_path, "outcomes", ".jsonl")
    assert path.read_bytes() == b'{"a": 1}\n'
    assert stream.close() is None  # nothing open, nothing written
    assert list(tmp_path.iterdir()) == [path]


def test_a_failed_write_leaves_a_readable_file_cut_at_the_last_whole_record(tmp_path):
    stream = rotating_file.RotatingFile(tmp_path, "outcomes", ".jsonl", "lines", 1 << 20)
    stream.write(b"first")
    stream.write(b"second")
    real = stream._sink._file

    class HalfWrite:  # writes part of the record, then the disk fills up
        def write(self, data):
            real.write(data[:3])
            real.flush()
            raise OSError(28, "No space left on device")

    stream._sink._file = HalfWrite()
    with pytest.raises(OSError, match="No space"):
        stream.write(b"third")
    (path,) = rotating_file.finished_files(tmp_path, "outcomes", ".jsonl")
    assert path.read_bytes() == b"first\nsecond\n"
    assert stream.temp_path is None
    stream.write(b"fourth")  # the next record starts a new file
    assert stream.close().read_bytes() == b"fourth\n"


def _finished(folder, name: str, size: int, age_days: float, now: float):
    path = folder / name
    path.write_bytes(b"x" * size)
    mtime = now - age_days * 86400
    os.utime(path, (mtime, mtime))
    return path


def test_retention_deletes_old_then_oldest_files_but_never_the_one_being_written(tmp_path):
    now = 1_700_000_000.0
    old = _finished(tmp_path, "predictions-20230101T000000000000Z-1-0001.tfrecord", 100, 10, now)
    mid = _finished(tmp_path, "outcomes-20230105T000000000000Z-1-0002.jsonl", 100, 5, now)
    new = _finished(tmp_path, "predictions-20230108T000000000000Z-1-0003.tfrecord", 100, 2, now)
    writing = _finished(tmp_path, ".predictions-20221201T000000000000Z-1-0004.tfrecord.tmp", 100, 40, now)  # fmt: skip
    other = _finished(tmp_path, "notes.txt", 100, 40, now)
    streams = (request_log.PREDICTIONS, request_log.OUTCOMES)
    swept = rotating_file.sweep(
        tmp_path, streams, max_age_seconds=7 * 86400, max_total_bytes=None, now=now
    )
    assert swept.files == (old,) and swept.bytes == 100
    # 200 finished + 150 in progress > 300: the oldest finished file goes.
    swept = rotating_file.sweep(
        tmp_path, streams, max_age_seconds=None, max_total_bytes=300, in_progress_bytes=150,
        now=now,
    )  # fmt: skip
    assert swept.files == (mid,)
    assert new.exists() and writing.exists() and other.exists()
    # Even a cap smaller than the file being written never deletes it.
    rotating_file.sweep(tmp_path, streams, max_age_seconds=None, max_total_bytes=1, now=now)
    assert not new.exists() and writing.exists()


def test_logger_applies_retention_when_a_file_is_finished(tmp_path):
    clock = Clock()
    outcome = outcomes.Outcome("r1", "i1", "click", clock.now)
    line = len(outcome.to_json_line(clock.now)) + 1
    counters = metrics.Metrics()
    config = config_lib.PredictionLogConfig(
        log_dir=str(tmp_path / "logs"),
        raw_user_ids=True,
        max_file_bytes=line,  # one outcome per file
        max_total_bytes=2 * line + 10,
    )
    logger = request_log.RequestLogger(config, counters, clock=clock)
    try:
        old = _finished(tmp_path / "logs", "outcomes-20230101T000000000000Z-1-0001.jsonl", 200, 1, clock.now)  # fmt: skip
        logger.log_outcomes([outcome, outcome])  # the second closes the first one's file
        assert logger.flush()
        assert not old.exists()
        assert counters.value("tfrec_serving_log_files_deleted_total") == 1
        (kept,) = rotating_file.finished_files(tmp_path / "logs", *request_log.OUTCOMES)
        assert kept.stat().st_size == line
    finally:
        logger.close()
    assert len(rotating_file.finished_files(tmp_path / "logs", *request_log.OUTCOMES)) == 2


def test_key_file_is_created_private_reused_and_kept_out_of_the_log_folder(tmp_path):
    key_file = tmp_path / "keys" / "log.key"
    key = pseudonym.load_or_create_key(key_file, tmp_path / "logs")
    assert len(key) == pseudonym.KEY_BYTES
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert pseudonym.load_or_create_key(key_file, tmp_path / "logs") == key
    hashed = pseudonym.Pseudonymiser(key)
    assert hashed(b"u1") == hashed(b"u1") != hashed(b"u2")
    assert len(hashed(b"u1")) == pseudonym.DIGEST_CHARS
    assert pseudonym.Pseudonymiser(b"k" * 32)(b"u1") != hashed(b"u1")  # keyed
    with pytest.raises(errors.ConfigError, match=r"lies inside `--log-dir`"):
        pseudonym.load_or_create_key(tmp_path / "logs" / "sub" / "k", tmp_path / "logs")
    (tmp_path / "bad.key").write_text("not hex")
    with pytest.raises(errors.ConfigError, match=r"expected at least 32 hex characters"):
        pseudonym.load_or_create_key(tmp_path / "bad.key", tmp_path / "logs")


def test_sampler_draws_the_configured_rate_reproducibly():
    draws = 4000
    for rate in (0.1, 0.5):
        sampler = request_log.Sampler(rate, seed=0)
        hits = sum(sampler() for _ in range(draws))
        sd = (draws * rate * (1 - rate)) ** 0.5
        assert abs(hits - draws * rate) < 4 * sd, (rate, hits)
    first, second = request_log.Sampler(0.3, seed=5), request_log.Sampler(0.3, seed=5)
    assert [first() for _ in range(200)] == [second() for _ in range(200)]
    never, always = request_log.Sampler(0.0), request_log.Sampler(1.0)
    assert not any(never() for _ in range(100)) and all(always() for _ in range(100))


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"sample_rate": 1.5, "raw_user_ids": True}, r"`--log-sample-rate` must be in \[0, 1\]"),
        ({"max_file_bytes": 0, "raw_user_ids": True}, r"`--log-max-file-bytes` must be > 0"),
        ({"retention_days": -1, "raw_user_ids": True}, r"`--log-retention-days` must be > 0"),
        ({}, r"`--log-key-file` is required"),
    ],
)
def test_log_config_is_checked(kwargs, pattern):
    with pytest.raises(errors.ConfigError, match=pattern):
        config_lib.PredictionLogConfig(log_dir="logs", **kwargs)


def test_log_flags_need_a_log_dir():
    import argparse

    from tfrec.serving import server

    parser = argparse.ArgumentParser()
    server.add_arguments(parser)
    assert server.log_config_from_args(parser.parse_args([])) is None
    with pytest.raises(errors.ConfigError, match=r"`--log-sample-rate` needs `--log-dir`"):
        server.log_config_from_args(parser.parse_args(["--log-sample-rate", "0.1"]))
    config = server.log_config_from_args(
        parser.parse_args(["--log-dir", "L", "--log-key-file", "K", "--log-sample-rate", "0.25"])
    )
    assert (config.log_dir, config.key_file, config.sample_rate) == ("L", "K", 0.25)
