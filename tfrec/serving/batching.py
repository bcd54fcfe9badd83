"""Merges concurrent Predict calls on one signature into a single batched call (TF Serving style)."""

from __future__ import annotations

import dataclasses
import os
import re
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Optional, cast

import numpy as np

from tfrec import errors
from tfrec.serving import status, tensors

if TYPE_CHECKING:
    from tensorflow.core.protobuf import meta_graph_pb2

    from tfrec.serving import metrics as metrics_lib
    from tfrec.serving import servable as servable_lib


@dataclasses.dataclass(frozen=True)
class BatchingParameters:
    """TF Serving's `batching_parameters.txt`, the fields this server honours.

    Args:
        max_batch_size: int. Most rows merged into one call. Defaults to 32.
        batch_timeout_micros: int. How long the first request of a batch waits for others.
        num_batch_threads: int. Batched calls that may run at once. Defaults to the CPU count.
        max_enqueued_batches: int. Queue bound in batches; beyond it requests get UNAVAILABLE.
    """

    max_batch_size: int = 32
    batch_timeout_micros: int = 2000
    num_batch_threads: int = os.cpu_count() or 1
    max_enqueued_batches: int = 100

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            minimum = 0 if field.name == "batch_timeout_micros" else 1
            if not isinstance(value, int) or value < minimum:
                raise errors.ConfigError(
                    f"`{field.name}` must be an integer >= {minimum}, received {value!r}"
                )


# Accepted for compatibility with TF Serving's files but without effect here.
_IGNORED = {
    "allowed_batch_sizes",
    "pad_variable_length_inputs",
    "thread_pool_name",
    "enable_large_batch_splitting",
    "max_execution_batch_size",
}


def parse_batching_parameters(text: str) -> BatchingParameters:
    """Parses the text proto of `batching_parameters.txt` (`max_batch_size { value: 128 }`)."""
    text = re.sub(r"#[^\n]*", "", text)
    values = {}
    wrapped = re.compile(r"(\w+)\s*\{\s*value\s*:\s*(\"[^\"]*\"|[^\s}]+)\s*\}")
    for key, raw in wrapped.findall(text):
        values[key] = raw
    rest = wrapped.sub(" ", text)
    plain = re.compile(r"(\w+)\s*:\s*(\"[^\"]*\"|[^\s{}]+)")
    for key, raw in plain.findall(rest):
        values.setdefault(key, raw)
    leftover = plain.sub(" ", rest).strip()
    if leftover:
        raise errors.ConfigError(f"batching parameters: cannot parse {leftover[:80]!r}")
    known = {f.name for f in dataclasses.fields(BatchingParameters)}
    kwargs = {}
    for key, raw in values.items():
        if key in _IGNORED:
            continue
        if key not in known:
            raise errors.ConfigError(
                f"batching parameters: unknown field `{key}`; expected one of "
                f"{sorted(known | _IGNORED)}"
            )
        try:
            kwargs[key] = int(raw)
        except ValueError:
            raise errors.ConfigError(
                f"batching parameters: `{key}` must be an integer, received {raw!r}"
            ) from None
    return BatchingParameters(**kwargs)


class _Item:
    def __init__(self, inputs: Mapping[str, np.ndarray], rows: int) -> None:
        self.inputs = inputs
        self.rows = rows
        self.enqueued = time.monotonic()
        self.leader = False
        self.done = False
        self.result: Optional[dict] = None
        self.error: Optional[BaseException] = None


class _Queue:
    def __init__(self) -> None:
        self.items: list[_Item] = []
        self.rows = 0


def batch_rows(
    signature_def: meta_graph_pb2.SignatureDef, inputs: Mapping[str, np.ndarray]
) -> Optional[int]:
    """Rows of a batchable request, or None when the request must run alone.

    Batchable: every input and output of the signature has a free leading dimension, and every
    input of the request has the same leading size (tfrec's signatures qualify: even `k` and
    `exclude_recent` are per row).
    """
    specs = list(signature_def.inputs.values()) + list(signature_def.outputs.values())
    for info in specs:
        shape = tensors.shape_of(info)
        if not shape or shape[0] >= 0:
            return None
    sizes = {array.shape[0] for array in inputs.values() if array.ndim >= 1}
    if len(sizes) != 1 or any(array.ndim == 0 for array in inputs.values()):
        return None
    rows = sizes.pop()
    return rows if rows > 0 else None


class Batcher:
    """Runs requests through a servable, merging concurrent compatible ones along axis 0.

    Requests join a queue keyed by servable, signature and inner shapes (so only tensors that
    concatenate meet; values do not matter, so requests with different per-row `k` merge). The
    first request in a queue leads: it waits up to `batch_timeout_micros` or until
    `max_batch_size` rows are queued, runs the merged call and hands each follower its slice
    along dimension 0, as tensorflow_model_server does: an output whose width depends on the
    batch (tfrec's [batch, max(k)]) comes back at the merged batch's width. No threads of its
    own: callers' threads do the work.

    Args:
        params: BatchingParameters.
        metrics: Metrics or None. Receives the rows of every signature execution.
    """

    def __init__(
        self, params: BatchingParameters, metrics: Optional[metrics_lib.Metrics] = None
    ) -> None:
        self.params = params
        self.metrics = metrics
        self._cv = threading.Condition()
        self._queues: dict = {}
        self._slots = threading.Semaphore(params.num_batch_threads)
        self.num_batches = 0  # merged calls that held more than one request

    def run(
        self,
        servable: servable_lib.Servable,
        signature_name: str,
        signature_def: meta_graph_pb2.SignatureDef,
        inputs: Mapping[str, np.ndarray],
    ) -> dict:
        """Same contract as `servable.run`, possibly sharing the call with other requests."""
        rows = batch_rows(signature_def, inputs)
        if rows is None or rows > self.params.max_batch_size:
            return self._run(servable, signature_name, inputs, rows)
        inner = tuple(sorted((k, v.dtype.str, v.shape[1:]) for k, v in inputs.items()))
        key = (servable, signature_name, inner)
        item = _Item(inputs, rows)
        max_rows = self.params.max_batch_size
        with self._cv:
            queue = self._queues.setdefault(key, _Queue())
            if queue.rows + rows > max_rows * self.params.max_enqueued_batches:
                raise status.ServingError(
                    "UNAVAILABLE", "batch queue is full: `max_enqueued_batches` reached"
                )
            queue.items.append(item)
            queue.rows += rows
            if len(queue.items) == 1:
                item.leader = True
            if queue.rows >= max_rows:
                self._cv.notify_all()
            while not item.done and not item.leader:
                self._cv.wait()
            if item.done:
                return self._result(item)
            timeout = self.params.batch_timeout_micros / 1e6
            while queue.rows < max_rows:
                remaining = item.enqueued + timeout - time.monotonic()
                if remaining <= 0:
                    break
                self._cv.wait(remaining)
            batch, taken = [], 0
            while queue.items and taken + queue.items[0].rows <= max_rows:
                taken += queue.items[0].rows
                batch.append(queue.items.pop(0))
            queue.rows -= taken
            if queue.items:
                queue.items[0].leader = True
                self._cv.notify_all()
            else:
                del self._queues[key]
        try:
            self._execute(servable, signature_name, batch)
        finally:
            with self._cv:
                for done in batch:
                    done.done = True
                self._cv.notify_all()
        return self._result(item)

    def _execute(
        self, servable: servable_lib.Servable, signature_name: str, batch: list[_Item]
    ) -> None:
        with self._slots:
            if len(batch) > 1:
                try:
                    merged = {
                        k: np.concatenate([b.inputs[k] for b in batch]) for k in batch[0].inputs
                    }
                    total = sum(b.rows for b in batch)
                    outputs = self._run(servable, signature_name, merged, total)
                    if all(v.ndim >= 1 and v.shape[0] == total for v in outputs.values()):
                        with self._cv:
                            self.num_batches += 1
                        offsets = np.cumsum([b.rows for b in batch])[:-1]
                        parts = {k: np.split(v, offsets) for k, v in outputs.items()}
                        for i, b in enumerate(batch):
                            b.result = {k: p[i] for k, p in parts.items()}
                        return
                except Exception:  # noqa: BLE001
                    pass  # rerun one by one so only the faulty request sees its error
            for b in batch:
                try:
                    b.result = self._run(servable, signature_name, b.inputs, b.rows)
                except BaseException as e:  # noqa: BLE001 (handed to the request's thread)
                    b.error = e

    def _run(
        self,
        servable: servable_lib.Servable,
        signature_name: str,
        inputs: Mapping[str, np.ndarray],
        rows: Optional[int],
    ) -> dict:
        outputs = servable.run(signature_name, inputs)
        if self.metrics is not None and rows is not None:
            self.metrics.observe_batch(servable.name, signature_name, rows)
        return outputs

    @staticmethod
    def _result(item: _Item) -> dict:
        if item.error is not None:
            raise item.error
        # Set whenever `error` is not, unless the leader's merged call was cut short by a
        # BaseException that is not an Exception (its own thread re-raises that one).
        return cast(dict, item.result)
