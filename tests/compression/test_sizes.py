"""size_on_disk: raw sums files; gzip is deterministic and rewards zeros."""

import os

import numpy as np
import pytest

from tfrec.compression import sizes


def test_file_and_directory(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "zeros.bin").write_bytes(bytes(100_000))
    noise = np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes()
    (tmp_path / "noise.bin").write_bytes(noise)
    file_size = sizes.size_on_disk(tmp_path / "sub" / "zeros.bin")
    assert file_size["raw_bytes"] == 100_000 and file_size["gzip_bytes"] < 1_000
    first = sizes.size_on_disk(tmp_path)
    assert first["raw_bytes"] == 150_000
    assert 50_000 < first["gzip_bytes"] < 52_000  # noise does not compress, zeros do
    os.utime(tmp_path / "noise.bin", (1, 1))  # a later export of the same bytes
    assert sizes.size_on_disk(tmp_path) == first


def test_missing_path(tmp_path):
    with pytest.raises(ValueError, match=r"`path` must be an existing file or directory.*nope"):
        sizes.size_on_disk(tmp_path / "nope")
