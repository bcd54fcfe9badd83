"""Tests for interaction shards: the writer's files and manifest, the reader and its refusals."""

import json

import numpy as np
import pandas as pd
import pytest

import tfrec  # noqa: F401
from tests.data import shard_helpers
from tfrec import errors
from tfrec.data import shard_writer, shards


def _events(n: int, start: int = 1_700_000_000) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": [f"u{i % 3}" for i in range(n)],
            "item_id": [f"é{i}" for i in range(n)],  # non-ASCII survives the round trip
            "timestamp": np.arange(start, start + n, dtype=np.int64),
            "event_type": ["view", "cart", "purchase", "rating"] * (n // 4) + ["view"] * (n % 4),
            "value": np.linspace(1, 5, n),
            "quantity": np.ones(n),
            "price": [np.nan if i % 2 else 2.5 for i in range(n)],  # NaN: an unknown price
        }
    )


def _write(folder, frames, shard_rows):
    with shard_writer.ShardWriter(folder, shard_rows=shard_rows) as writer:
        for frame in frames:
            writer.write(frame)
        return writer.close({"dataset": "test"})


def test_round_trip_in_shards_of_shard_rows(tmp_path):
    events = _events(10)
    manifest = _write(tmp_path / "s", [events.iloc[:3], events.iloc[3:]], shard_rows=4)
    names = [s["file"] for s in manifest["shards"]]
    assert names == [f"part-0000{i}-of-00003.tfrecord" for i in range(3)]
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["manifest.json", *names]
    assert [s["rows"] for s in manifest["shards"]] == [4, 4, 2]
    assert manifest["num_events"] == 10 and manifest["sorted_by_timestamp"]
    assert manifest["time_range"] == {"min": 1_700_000_000, "max": 1_700_000_009}
    assert manifest["shards"][1]["min_timestamp"] == 1_700_000_004
    assert manifest["shards"][0]["sha256"] == shards.sha256(tmp_path / "s" / names[0])
    assert json.loads((tmp_path / "s" / "manifest.json").read_text()) == manifest
    back = shard_helpers.read_events(tmp_path / "s")
    pd.testing.assert_frame_equal(
        shard_helpers.canonical_order(back), shard_helpers.canonical_order(events)
    )


def test_unbatched_events_are_scalars(tmp_path):
    _write(tmp_path / "s", [_events(3)], shard_rows=10)
    first = next(shards.dataset(tmp_path / "s").as_numpy_iterator())
    assert first["user_id"] == b"u0" and first["timestamp"] == 1_700_000_000
    assert first["price"].dtype == np.float32 and first["price"].shape == ()


def test_unsorted_input_is_recorded(tmp_path):
    manifest = _write(tmp_path / "s", [_events(3, start=100), _events(3, start=50)], 10)
    assert not manifest["sorted_by_timestamp"]


def test_output_folder_with_shards_is_refused(tmp_path):
    _write(tmp_path / "s", [_events(3)], shard_rows=10)
    with pytest.raises(errors.DataError, match="expected an empty output folder"):
        shard_writer.ShardWriter(tmp_path / "s")


def test_failed_write_leaves_no_finished_looking_file(tmp_path):
    with pytest.raises(RuntimeError, match="source broke"):
        with shard_writer.ShardWriter(tmp_path / "s", shard_rows=2) as writer:
            writer.write(_events(5))  # two full shards and one open
            raise RuntimeError("source broke")
    assert list((tmp_path / "s").iterdir()) == []
    with pytest.raises(errors.DataError, match="manifest.json"):
        shards.dataset(tmp_path / "s")


def test_corrupt_shard_is_refused_naming_it(tmp_path):
    manifest = _write(tmp_path / "s", [_events(20)], shard_rows=10)
    shard = tmp_path / "s" / manifest["shards"][1]["file"]
    data = bytearray(shard.read_bytes())
    data[40] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(errors.DataError, match=f"{shard.name}.*sha256.*corrupt"):
        shards.dataset(tmp_path / "s")


def test_truncated_shard_is_refused_naming_it(tmp_path):
    manifest = _write(tmp_path / "s", [_events(20)], shard_rows=10)
    shard = tmp_path / "s" / manifest["shards"][0]["file"]
    shard.write_bytes(shard.read_bytes()[:-7])
    with pytest.raises(errors.DataError, match=f"{shard.name}.*truncated"):
        shards.dataset(tmp_path / "s")


def test_missing_shard_is_refused(tmp_path):
    manifest = _write(tmp_path / "s", [_events(20)], shard_rows=10)
    (tmp_path / "s" / manifest["shards"][1]["file"]).unlink()
    with pytest.raises(errors.DataError, match="part-00001-of-00002.*expected the shard"):
        shards.dataset(tmp_path / "s")


def test_other_schema_is_refused(tmp_path):
    _write(tmp_path / "s", [_events(3)], shard_rows=10)
    path = tmp_path / "s" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["schema"]["price"] = "float64"
    path.write_text(json.dumps(manifest))
    with pytest.raises(errors.DataError, match="field `schema`: expected the interaction schema"):
        shards.dataset(tmp_path / "s")
