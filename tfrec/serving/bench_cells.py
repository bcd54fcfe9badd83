"""The serving bench's cell runner: the cells of one server, measured in interleaved rounds."""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from tfrec.serving import bench_grid, bench_report, bench_requests, loadtest, server_process
from tfrec.serving import client as client_lib


@dataclasses.dataclass(frozen=True)
class Load:
    """How each cell is measured.

    Args:
        seconds: float. Length of each timed phase: sequential requests from one client
            (latency), then `concurrency` clients (throughput).
        rounds: int. Each phase is split into this many rounds, interleaved with the other
            cells of the same server.
        concurrency: int. Clients of the throughput phase.
        warmup_requests: int. Untimed requests per cell before its first round (0: none).
    """

    seconds: float
    rounds: int
    concurrency: int
    warmup_requests: int


class _Phase:
    """One phase (one client, or `concurrency` clients) of one cell, merged over its rounds."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.requests = self.failures = 0
        self.seconds = 0.0
        self.errors: set[str] = set()

    def add(self, result: loadtest.LoadTestResult) -> None:
        self.latencies += result.latencies_ms
        self.requests += result.requests
        self.failures += result.failures
        self.seconds += result.duration_s
        self.errors.update(result.errors)

    def summary(self, rows: int) -> dict[str, Any]:
        found: dict[str, Any] = {"requests": self.requests, "failures": self.failures}
        for q, value in zip((50, 95, 99), loadtest.percentiles(self.latencies), strict=True):
            found[f"p{q}_ms"] = None if math.isnan(value) else round(value, 3)
        answered = len(self.latencies) / self.seconds if self.seconds else 0.0
        found["throughput_rps"] = round(answered, 1)
        found["rows_per_s"] = round(answered * rows, 1)
        return found


@dataclasses.dataclass
class _Job:
    """A cell being measured: its signature, request maker, target and both phases."""

    cell: bench_grid.Cell
    signature: dict[str, Any]
    make_request: Callable[[int], dict[str, Any]]
    target: str
    single: _Phase = dataclasses.field(default_factory=_Phase)
    loaded: _Phase = dataclasses.field(default_factory=_Phase)

    def result(self, concurrency: int, **extra: Any) -> dict[str, Any]:
        return dict(
            dataclasses.asdict(self.cell),
            index=bench_report.INDEX[self.cell.model],
            batchable=bench_requests.batchable(self.signature),
            single=self.single.summary(self.cell.rows),
            concurrent=dict(self.loaded.summary(self.cell.rows), clients=concurrency),
            errors=sorted(self.single.errors | self.loaded.errors)[:5],
            **extra,
        )


def _jobs(
    group: bench_grid.ServerGroup,
    server: server_process.ServerProcess,
    pool: Sequence[dict[str, Any]],
) -> list[_Job]:
    models = sorted({c.model for c in group.cells})
    with client_lib.Client(server.grpc_target) as client:
        metadata = {m: client.metadata(m) for m in models}
    batches = {r: bench_requests.batches(pool, r) for r in sorted({c.rows for c in group.cells})}
    jobs = []
    for cell in group.cells:
        signature = metadata[cell.model][cell.signature]
        inputs = [
            bench_requests.inputs_for(signature, r, cell.signature) for r in batches[cell.rows]
        ]

        def make(
            i: int, cell: bench_grid.Cell = cell, inputs: list[dict[str, Any]] = inputs
        ) -> dict[str, Any]:
            return {
                "model": cell.model,
                "signature_name": cell.signature,
                "inputs": inputs[i % len(inputs)],
            }

        target = server.grpc_target if cell.protocol == "grpc" else server.rest_target
        jobs.append(_Job(cell, signature, make, target))
    return jobs


def measure_group(
    export_dir: os.PathLike | str,
    group: bench_grid.ServerGroup,
    pool: Sequence[dict[str, Any]],
    load: Load,
    log: os.PathLike | str,
    servers: list[dict[str, Any]],
    progress: Callable[[str], None],
) -> Iterator[dict[str, Any]]:
    """Yields the result dict of each cell of `group`, all measured on one server process.

    Cells are measured in `load.rounds` interleaved rounds of `load.seconds / load.rounds`
    per phase, so that load from other jobs on the machine spreads over all cells instead of
    hitting a few. If the server exits, the cells measured so far are yielded (the one during
    which it exited holds `server_exited`) and its log is kept at `log`; otherwise the log is
    removed.

    Args:
        export_dir: str or path-like. The synthetic export (`models.config` and its models).
        group: ServerGroup. The cells, one catalog and one batching setting.
        pool: sequence of one-row requests (`bench_requests.request_rows`). A cell of n rows
            sends requests of n consecutive moments of it (`bench_requests.batches`), in turn.
        load: Load. Phase length, rounds, clients and warm-up.
        log: str or path-like. The server's log file.
        servers: list. Receives one dict per server started (items, batching, start seconds).
        progress: callable. Receives one line per round.
    """
    log = Path(log)
    models = sorted({c.model for c in group.cells})
    switch = "on" if group.batching else "off"
    began = time.perf_counter()
    with server_process.ServerProcess(export_dir, group.batching, models, log) as server:
        record = {
            "items": group.items,
            "batching": group.batching,
            "start_seconds": round(time.perf_counter() - began, 1),
            "models": models,
        }
        servers.append(record)
        jobs = _jobs(group, server, pool)
        for round_ in range(load.rounds):
            progress(
                f"{group.items:,} items, batching {switch}: round {round_ + 1}/{load.rounds} "
                f"of {len(jobs)} cells"
            )
            for job in jobs:
                run = functools.partial(
                    loadtest.run, job.target, job.make_request, protocol=job.cell.protocol
                )
                if round_ == 0 and load.warmup_requests:
                    run(1, num_requests=load.warmup_requests)
                job.single.add(run(1, duration_s=load.seconds / load.rounds))
                job.loaded.add(run(load.concurrency, duration_s=load.seconds / load.rounds))
                code = server.exit_code()
                if code is not None:
                    for other in jobs:
                        if other is not job and other.single.requests:
                            yield other.result(load.concurrency)
                    yield job.result(load.concurrency, server_exited=code)
                    return
                if round_ == load.rounds - 1:
                    yield job.result(load.concurrency)
        # Every model of the group loaded and answered: its whole memory, all models.
        record["peak_rss_mb"] = server.peak_rss_mb()
    log.unlink(missing_ok=True)
