"""Sizes on disk of exported models: raw bytes and deterministic gzip bytes."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path
from typing import Any, Union


def _gzip_size(data: bytes) -> int:
    # mtime=0: the same content always gives the same size (and bytes).
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def _deterministic_tar(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(p for p in directory.rglob("*")):
            info = tar.gettarinfo(str(path), arcname=str(path.relative_to(directory)))
            # Strip what varies between two exports of the same model.
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            info.mode = 0o755 if path.is_dir() else 0o644
            if path.is_file():
                with open(path, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
    return buffer.getvalue()


def size_on_disk(path: Union[str, os.PathLike]) -> dict[str, int]:
    """Raw and gzip-compressed size of a file or a directory (e.g. a SavedModel).

    For a directory, `raw_bytes` sums its files and `gzip_bytes` is the size of a gzipped tar of
    it, built deterministically (sorted entries, zeroed times and owners, gzip mtime 0), so the
    same export always gives the same figure. Gzip shows what sparsity buys: pruned zeros
    compress, dense float weights barely do.

    Args:
        path: str or PathLike. A file or directory.

    Returns:
        `{"raw_bytes": int, "gzip_bytes": int}`.

    Example:
        >>> size_on_disk("export/tower/1")
        {'raw_bytes': 15259082, 'gzip_bytes': 13873420}
    """
    path = Path(path)
    if path.is_file():
        data = path.read_bytes()
        return {"raw_bytes": len(data), "gzip_bytes": _gzip_size(data)}
    if path.is_dir():
        return {"raw_bytes": raw_bytes(path), "gzip_bytes": _gzip_size(_deterministic_tar(path))}
    raise ValueError(f"`path` must be an existing file or directory, received `{path}`")


def raw_bytes(directory: os.PathLike | str) -> int:
    """Bytes of every file under `directory`: what a server loads and a deploy copies."""
    return sum(p.stat().st_size for p in Path(directory).rglob("*") if p.is_file())


_INDEX_PREFIX = "candidates/"  # `int8_savedmodel.Int8Model`'s candidate index variables
_METADATA_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"


def _part(chunks: list[bytes]) -> dict[str, Any]:
    data = b"".join(chunks)
    return {"raw_bytes": len(data), "gzip_bytes": _gzip_size(data) if data else 0}


def savedmodel_parts(path: Union[str, os.PathLike]) -> dict[str, dict[str, Any]]:
    """Where the bytes of a SavedModel go, each part with its raw and gzip size.

    Parts: `weights` (numeric variables but the index; `dtypes` gives raw bytes per dtype, e.g.
    for `Int8Model`'s int8 layout its three packed variables: int8 values, float16 scales, and
    the small float32 weights, alignment padding included), `index` (numeric variables under
    `candidates/`: `Int8Model` keeps its item index out of the packed variables),
    `id_strings` (string variables, e.g. the candidate ids), `lookup_tables` (vocabularies
    embedded in `saved_model.pb` as 1-D constants: string keys, integer indices; `Int8Model`
    stores less and makes them when the SavedModel is loaded: index ranges by `tf.range`,
    item ids as positions among the candidate ids, numeric ids as integers) and `graph` (the
    rest: functions, signatures, object graph, checkpoint metadata). Raw parts sum to
    `size_on_disk(path)["raw_bytes"]`; each gzip size compresses its part alone.

    Args:
        path: str or PathLike. A SavedModel directory.

    Returns:
        Part name -> `{"raw_bytes", "gzip_bytes"}` (`weights` also has `dtypes`).
    """
    import numpy as np
    import tensorflow as tf
    from tensorflow.core.protobuf import saved_model_pb2

    path = Path(path)
    if not (path / "saved_model.pb").is_file():
        raise ValueError(f"`path` must be a SavedModel directory, received `{path}`")
    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((path / "saved_model.pb").read_bytes())
    tables = []
    for meta in saved.meta_graphs:
        for node in meta.graph_def.node:
            tensor = node.attr["value"].tensor if node.op == "Const" else None
            if tensor is not None and len(tensor.tensor_shape.dim) == 1:
                tables.append(tensor.SerializeToString())
                tensor.Clear()
    chunks: dict[str, list[bytes]] = {"weights": [], "index": [], "id_strings": []}
    dtypes: dict[str, int] = {}
    reader = tf.train.load_checkpoint(str(path / "variables" / "variables"))
    for key, dtype in sorted(reader.get_variable_to_dtype_map().items()):
        if key == _METADATA_KEY:
            continue
        value = reader.get_tensor(key)
        if dtype == tf.string:
            chunks["id_strings"] += [bytes(v) + b"\0" for v in np.ravel(value)]
            continue
        part = "index" if key.startswith(_INDEX_PREFIX) else "weights"
        chunks[part].append(np.ascontiguousarray(value).tobytes())
        if part == "weights":
            dtypes[dtype.name] = dtypes.get(dtype.name, 0) + value.nbytes
    parts = {name: _part(values) for name, values in chunks.items()}
    parts["weights"]["dtypes"] = dtypes
    parts["lookup_tables"] = _part(tables)
    # Raw bytes only: gzipping the whole SavedModel again here is `size_on_disk`'s work.
    total = raw_bytes(path)
    graph = saved.SerializeToString()
    parts["graph"] = {
        "raw_bytes": total - sum(p["raw_bytes"] for p in parts.values()),
        "gzip_bytes": _gzip_size(graph),
    }
    return parts
