"""An item index on disk: a SavedModel that refuses to load for items it was not built from."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

import numpy as np
import tensorflow as tf

from tfrec import errors

_CHUNK_ROWS = 1 << 16  # hash in slices: no second copy of a multi-gigabyte matrix


def fingerprint(vectors: np.ndarray, item_ids: Optional[Sequence[str] | np.ndarray] = None) -> str:
    """A SHA-256 hex digest of the item matrix [n, d] (as float32) and, if given, the item ids.

    A new model version changes its item vectors, so an index built for one version has a
    different fingerprint from the next one's items.
    """
    vectors = np.asarray(vectors)
    if vectors.ndim != 2:
        raise errors.DataError(f"`vectors` must be [n, dim], received {list(vectors.shape)}")
    digest = hashlib.sha256(f"float32 {vectors.shape[0]} {vectors.shape[1]}\n".encode())
    for start in range(0, len(vectors), _CHUNK_ROWS):
        chunk = np.ascontiguousarray(vectors[start : start + _CHUNK_ROWS], dtype=np.float32)
        digest.update(chunk.tobytes())
    if item_ids is not None:
        ids = [str(i) for i in item_ids]
        if len(ids) != len(vectors):
            raise errors.DataError(
                f"`item_ids` must hold one id per vector ({len(vectors)}), received {len(ids)}"
            )
        digest.update(b"\nids\n" + "\0".join(ids).encode("utf-8"))
    return digest.hexdigest()


def save(index: tf.Module, directory: os.PathLike | str) -> Path:
    """Writes the index (an `ivf_index` module) as a SavedModel with its signatures."""
    directory = Path(directory)
    tf.saved_model.save(index, str(directory), signatures=index.signatures())
    return directory


def load(
    directory: os.PathLike | str,
    vectors: Optional[np.ndarray] = None,
    item_ids: Optional[Sequence[str]] = None,
    expected_fingerprint: Optional[str] = None,
) -> Any:
    """Loads a saved index after checking it was built from these items.

    Give the items the index must serve (`vectors` and, if the index was built with them,
    `item_ids`) or their `expected_fingerprint`. The loaded object answers `search` and
    `search_forced` as the saved module did, and has its `signatures`.

    Raises:
        WorkdirError: no SavedModel at `directory`, or it was built from other items.
    """
    directory = Path(directory)
    if not (directory / "saved_model.pb").is_file():
        raise errors.WorkdirError(f"no item index at `{directory}` (no saved_model.pb)")
    if expected_fingerprint is None:
        if vectors is None:
            raise errors.ConfigError(
                "`vectors` or `expected_fingerprint` must be given: an index is only loaded "
                "for the items it was built from"
            )
        expected_fingerprint = fingerprint(vectors, item_ids)
    loaded = tf.saved_model.load(str(directory))
    stored = loaded.fingerprint.numpy().decode()
    if stored != expected_fingerprint:
        built = json.loads(loaded.metadata.numpy().decode())
        raise errors.WorkdirError(
            f"the item index at `{directory}` was built for other items (fingerprint "
            f"{stored[:16]}..., {built.get('n')} items of dim {built.get('dim')}) than the "
            f"ones given (fingerprint {expected_fingerprint[:16]}...); rebuild it for this "
            f"model version with `tfrec.exporting.ivf_build.build`"
        )
    return loaded
