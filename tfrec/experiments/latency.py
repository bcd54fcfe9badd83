"""An exported SavedModel measured in process: its size, and the latency of one signature."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf


def folder_bytes(path: Path) -> int:
    """Bytes of every file under `path` (what a server loads and a deploy copies)."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


class Served:
    """A SavedModel loaded with `tf.saved_model.load`, its signatures called as a server would.

    Args:
        path: Path. A SavedModel folder (a version folder of `tfrec export`).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.module = tf.saved_model.load(str(self.path))

    def _feed(self, signature: str, inputs: Mapping[str, np.ndarray]) -> tuple[Any, dict]:
        if signature not in self.module.signatures:
            raise ValueError(
                f"`signature` must be one of {sorted(self.module.signatures)} of "
                f"`{self.path}`, received {signature!r}"
            )
        fn = self.module.signatures[signature]
        specs = fn.structured_input_signature[1]
        missing = sorted(set(specs) - set(inputs))
        if missing:
            raise ValueError(f"`inputs` lack {missing} of signature {signature!r}")
        feed = {name: tf.constant(inputs[name], dtype=spec.dtype) for name, spec in specs.items()}
        return fn, feed

    def call(self, signature: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One call; each output's first row (a batch of one)."""
        fn, feed = self._feed(signature, inputs)
        return {name: value.numpy()[0] for name, value in fn(**feed).items()}

    def time(
        self,
        signature: str,
        inputs: Mapping[str, np.ndarray],
        calls: int = 200,
        warmup: int = 20,
    ) -> dict[str, Any]:
        """Latency of `calls` sequential calls with one request row, after `warmup` calls.

        Returns:
            dict: p50_ms, p99_ms, mean_ms, calls, warmup, batch_size, signature.
        """
        if calls < 1:
            raise ValueError(f"`calls` must be >= 1, received {calls}")
        fn, feed = self._feed(signature, inputs)
        for _ in range(warmup):
            fn(**feed)
        times = np.empty(calls)
        for i in range(calls):
            start = time.perf_counter()
            fn(**feed)
            times[i] = time.perf_counter() - start
        return {
            "signature": signature,
            "p50_ms": float(np.percentile(times, 50) * 1e3),
            "p99_ms": float(np.percentile(times, 99) * 1e3),
            "mean_ms": float(times.mean() * 1e3),
            "calls": calls,
            "warmup": warmup,
            "batch_size": 1,
        }
