"""One loaded model version: its SavedModel, SignatureDefs and in-flight request count."""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Optional

import numpy as np
import tensorflow as tf
from google.protobuf import text_format
from tensorflow.core.protobuf import saved_model_pb2

from tfrec.serving import status, tensors

DEFAULT_SIGNATURE = "serving_default"
# `tfrec export`'s item index: one price per catalog item (tfrec.exporting.index).
INDEX_FILE = "assets.extra/tfrec/index.npz"


def read_catalog_size(path: Path) -> Optional[int]:
    """Items in a tfrec export's index, or None for SavedModels without one."""
    index = path / INDEX_FILE
    if not index.is_file():
        return None
    with np.load(index) as arrays:
        return int(arrays["prices"].shape[0])


def read_signature_defs(path: Path) -> dict:
    """The SignatureDefs of a SavedModel's serving MetaGraph, as TF Serving reports them."""
    proto = saved_model_pb2.SavedModel()
    pb = path / "saved_model.pb"
    if pb.is_file():
        proto.ParseFromString(pb.read_bytes())
    else:
        text_format.Parse((path / "saved_model.pbtxt").read_text(encoding="utf-8"), proto)
    for meta_graph in proto.meta_graphs:
        if "serve" in meta_graph.meta_info_def.tags:
            return dict(meta_graph.signature_def)
    return dict(proto.meta_graphs[0].signature_def) if proto.meta_graphs else {}


class Servable:
    """A SavedModel version ready to answer Predict calls.

    The model store hands a Servable out with `acquire()` and takes it back with `release()`; a
    retired Servable frees its graph only once the last in-flight request has released it, so a
    version swap never fails a request that already started.

    Args:
        name: str. Model name.
        version: int. Version number.
        path: Path. The version folder holding saved_model.pb.
    """

    def __init__(self, name: str, version: int, path: Path):
        self.name = name
        self.version = version
        self.path = Path(path)
        self.signature_defs = read_signature_defs(self.path)
        self.catalog_size = read_catalog_size(self.path)  # the largest `k` worth asking for
        self._model = tf.saved_model.load(str(self.path), tags=["serve"])
        self._functions = dict(self._model.signatures)
        self._lock = threading.Lock()
        self._in_flight = 0
        self._retired = False
        self.num_calls = 0  # underlying signature executions (batching merges requests)

    def signature(self, signature_name: str):
        """The SignatureDef called `signature_name`, or INVALID_ARGUMENT naming it."""
        name = signature_name or DEFAULT_SIGNATURE
        if name not in self._functions:
            raise status.invalid(
                f"`signature_name`: unknown signature `{name}` of model `{self.name}` version "
                f"{self.version}; expected one of {sorted(self._functions)}"
            )
        return self.signature_defs[name]

    def run(self, signature_name: str, inputs: Mapping[str, np.ndarray]) -> dict:
        """Runs a signature on already-checked inputs; returns every output as a NumPy array."""
        name = signature_name or DEFAULT_SIGNATURE
        sig = self.signature(name)
        feeds = {
            k: tf.convert_to_tensor(
                tensors.to_string_array(v) if v.dtype.kind in ("O", "U", "S") else v,
                dtype=tf.dtypes.as_dtype(sig.inputs[k].dtype),
            )
            for k, v in inputs.items()
        }
        with self._lock:
            self.num_calls += 1
        try:
            outputs = self._functions[name](**feeds)
        except (tf.errors.InvalidArgumentError, ValueError, TypeError) as e:
            # Shapes the signature accepts can still break an op (e.g. mismatched batch sizes).
            raise status.invalid(f"`inputs`: signature `{name}` failed: {_short(e)}") from e
        return {k: _to_numpy(v) for k, v in outputs.items()}

    def acquire(self) -> bool:
        """Counts a request in; False if the version was retired meanwhile."""
        with self._lock:
            if self._retired:
                return False
            self._in_flight += 1
            return True

    def release(self) -> None:
        with self._lock:
            self._in_flight -= 1
            if self._retired and self._in_flight == 0:
                self._unload()

    def retire(self) -> None:
        """Stops new requests; unloads now or when the last in-flight request releases."""
        with self._lock:
            self._retired = True
            if self._in_flight == 0:
                self._unload()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def unloaded(self) -> bool:
        return self._model is None

    def _unload(self) -> None:
        self._functions = {}
        self._model = None


def _to_numpy(tensor) -> np.ndarray:
    value = tensor.numpy()
    if isinstance(value, bytes):  # scalar strings come back as bare bytes
        array = np.empty((), dtype=object)
        array[()] = value
        return array
    return np.asarray(value)


def _short(error: Exception) -> str:
    text = (getattr(error, "message", None) or str(error)).strip()
    # A failed tf.debugging assertion in a graph says "Graph execution error:" first; its own
    # message (which names the input) is on the "assertion failed: [...] [...]" line.
    found = re.search(r"^assertion failed: (.*)$", text, re.MULTILINE)
    if found:
        parts = [p.strip() for p in re.findall(r"\[([^\[\]]*)\]", found.group(1))]
        if parts:
            detail = " ".join(parts[1:])
            return (f"{parts[0]} ({detail})" if detail else parts[0])[:500]
    return text.splitlines()[0][:500]
