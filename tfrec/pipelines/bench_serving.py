"""`tfrec bench serving`: latency and throughput of the served signatures on synthetic catalogs."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from tfrec import config as config_lib
from tfrec import errors, features
from tfrec.serving import bench_report, loadtest
from tfrec.serving import client as client_lib

if TYPE_CHECKING:  # imported where used: they load TensorFlow, which `--help` does not need
    from tfrec.exporting import index as index_lib
    from tfrec.pipelines import export as export_run

DEFAULT_ITEMS = (10_000, 100_000, 1_000_000)
DEFAULT_SECONDS = 6.0
MAX_SECONDS = 300.0  # loadtest's own bound per phase
MIN_ITEMS = 10  # at least `K`, the top-k every request asks for
# Larger catalogs: gRPC with batching off only. With the defaults every catalog gets the full
# grid: 36 cells, about 9-11 min on 2 CPU cores (each cell is time-bounded, whatever its
# latency; the 1M exports and server starts add about a minute), plus ~1 min of training the
# default model on first use.
FULL_GRID_MAX_ITEMS = 1_000_000
CONCURRENCY = 4
K = 10
WARMUP_REQUESTS = 20
ROUNDS = 3  # each cell's phases are split into interleaved rounds (see `_measure_group`)
REQUEST_POOL = 64
# Without --workdir the bench trains the model `make demo` trains (embedding dim 64, attention
# over 20 events, BERT text tower): targets measured on the test-sized tiny model mean little.
DEFAULT_CONFIG = "configs/demo.yaml"
# Latency does not depend on how well the model learned: one epoch per stage, no baselines
# and no histograms keep training under a minute on 2 CPU cores. The ranker is still trained,
# since `recommend` needs it.
TRAIN_OVERRIDES = (
    "train.epochs=1",
    "ranking.epochs=1",
    "eval.baselines=[]",
    "train.histogram_freq=0",
)
# Served models of each synthetic export (see bench_report, which names them in its tables).
MAIN, F32, INT8 = bench_report.MAIN, bench_report.F32, bench_report.INT8


@dataclasses.dataclass(frozen=True)
class Cell:
    """One measured combination: catalog size, served model, signature, protocol, batching."""

    items: int
    model: str
    signature: str
    protocol: str
    batching: bool

    @property
    def label(self) -> str:
        return (
            f"{self.items:>9,} items {self.model:<10} {self.signature:<9} {self.protocol:<4} "
            f"batching {'on ' if self.batching else 'off'}"
        )


def parse_items(text: str) -> tuple[int, ...]:
    """`"10000,100000"` -> (10000, 100000), sorted and unique; ConfigError on anything else."""
    parts = [p.strip() for p in str(text).split(",")]
    values = []
    for part in parts:
        try:
            value = int(part.replace("_", ""))
        except ValueError:
            value = None
        if value is None or value < MIN_ITEMS:
            raise errors.ConfigError(
                f"`--items` must be comma-separated integers >= {MIN_ITEMS} (catalog sizes, "
                f"e.g. 10000,100000), received {text!r}"
            )
        values.append(value)
    return tuple(sorted(set(values)))


def check_seconds(seconds: Any) -> float:
    """`seconds` as a float in (0, MAX_SECONDS], else ConfigError.

    Args:
        seconds: float, or anything `float()` reads (as given on the command line).

    Returns:
        float.
    """
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        value = float("nan")
    if not 0 < value <= MAX_SECONDS:
        raise errors.ConfigError(
            f"`--seconds` must be a number in (0, {MAX_SECONDS:g}] (time per measurement), "
            f"received {seconds!r}"
        )
    return value


def plan(
    items: Sequence[int], with_recommend: bool = True, full_grid_max: int = FULL_GRID_MAX_ITEMS
) -> tuple[list[tuple[int, bool, list[Cell]]], list[str]]:
    """Cells grouped by server run, and what was skipped (with why).

    Args:
        items: sequence of int. Catalog sizes.
        with_recommend: bool. Measure the `recommend` signature too. Defaults to True.
        full_grid_max: int. Largest catalog measured on the full grid. Defaults to
            FULL_GRID_MAX_ITEMS.

    Returns:
        `(groups, skipped)`: groups is a list of `(items, batching, [Cell])`, one server each.
    """
    signatures = ("retrieve", "recommend") if with_recommend else ("retrieve",)
    groups: list[tuple[int, bool, list[Cell]]] = []
    skipped: list[str] = []
    if not with_recommend:
        skipped.append("recommend: the workdir has no trained ranker, so the export has none")
    for n in items:
        full = n <= full_grid_max
        for batching in (False, True) if full else (False,):
            protocols = ("grpc", "rest") if full else ("grpc",)
            cells = [Cell(n, MAIN, s, p, batching) for s in signatures for p in protocols]
            cells += [Cell(n, m, "retrieve", "grpc", batching) for m in (F32, INT8)]
            groups.append((n, batching, cells))
        if not full:
            skipped.append(
                f"{n:,} items: REST and batching on not measured, only gRPC with batching off "
                f"(time budget on 2 CPU cores; catalogs up to {full_grid_max:,} items get the "
                "full grid)"
            )
    return groups, skipped


# -- synthetic catalogs and their exports ------------------------------------------------------


def synthetic_index(
    trained: export_run.Trained, num_items: int, seed: int = 0
) -> index_lib.ItemIndex:
    """`num_items` items `syn-0000001`...: random unit vectors of the model's dimension.

    Categories and prices are drawn from the trained catalog, so the ranker sees real values.

    Args:
        trained: export.Trained. The loaded run.
        num_items: int. Catalog size.
        seed: int. Random seed. Defaults to 0.

    Returns:
        An ItemIndex of `num_items` synthetic items.
    """
    from tfrec.exporting import index as index_lib

    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((num_items, trained.catalog.dim), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    numbers = np.arange(1, num_items + 1)
    return index_lib.ItemIndex(
        item_ids=np.char.add("syn-", np.char.zfill(numbers.astype(str), 7)).astype(object),
        vectors=vectors,
        titles=np.char.add("Synthetic item ", numbers.astype(str)).astype(object),
        categories=rng.choice(trained.catalog.categories, num_items),
        prices=rng.choice(trained.catalog.prices, num_items),
    )


def build_export(
    workdir: os.PathLike | str,
    trained: export_run.Trained,
    index: index_lib.ItemIndex,
    export_dir: os.PathLike | str,
) -> dict[str, float]:
    """Writes MAIN (`tfrec export` of `index`, no text model), F32 and INT8 into `export_dir`.

    Args:
        workdir: str or path-like. The trained run.
        trained: export.Trained. The loaded run.
        index: ItemIndex. The catalog to export.
        export_dir: str or path-like. Folder of the three models.

    Returns:
        dict model name -> size of its version folder in MB.
    """
    from tfrec.compression import int8_savedmodel
    from tfrec.exporting import writer
    from tfrec.pipelines import export as export_run

    out = Path(export_dir)
    ids = list(index.item_ids)
    for name, quantize in ((F32, False), (INT8, True)):
        module = int8_savedmodel.Int8Model(
            trained.query_model, candidates=index.vectors, candidate_ids=ids, k=K, quantize=quantize
        )

        def fill(tmp: Path, module: int8_savedmodel.Int8Model = module) -> None:
            int8_savedmodel.save(module, tmp)

        writer.write_atomically(out / name, 1, fill)
    # Last, so the models.config it writes lists all three models.
    catalog = dataclasses.replace(trained, catalog=index)
    export_run.export(workdir, out, version=1, with_text=False, trained=catalog)
    return {name: round(_folder_bytes(out / name / "1") / 2**20, 1) for name in (MAIN, F32, INT8)}


def _folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# -- requests ----------------------------------------------------------------------------------


def request_rows(
    spec: features.FeatureSpec,
    item_ids: np.ndarray | Sequence[str],
    count: int = REQUEST_POOL,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """`count` single-user requests: known users, 1..max_history recent synthetic items.

    Args:
        spec: FeatureSpec. The run's users, event types and history length.
        item_ids: array or sequence of str. Items the histories are drawn from.
        count: int. Requests to make. Defaults to REQUEST_POOL.
        seed: int. Random seed. Defaults to 0.

    Returns:
        List of request rows (`user_id`, `history_item_ids`, ... as `inputs_for` reads).
    """
    rng = np.random.default_rng(seed)
    users = list(spec.users) or ["u"]
    types = [t for t in spec.event_types if t] or ["view"]
    rows = []
    for _ in range(count):
        length = int(rng.integers(1, spec.max_history + 1))
        rows.append(
            {
                "user_id": str(users[int(rng.integers(len(users)))]),
                "history_item_ids": [
                    str(item_ids[int(i)]) for i in rng.integers(0, len(item_ids), length)
                ],
                "history_event_types": [
                    str(types[int(i)]) for i in rng.integers(0, len(types), length)
                ],
                "hour_of_day": int(rng.integers(24)),
                "day_of_week": int(rng.integers(7)),
            }
        )
    return rows


def _shape(info: dict[str, Any]) -> list[int]:
    return [int(d.get("size", -1)) for d in info.get("tensor_shape", {}).get("dim", [])]


def inputs_for(
    signature: dict[str, Any], row: dict[str, Any], signature_name: str = "?"
) -> dict[str, Any]:
    """A one-row request for `signature` (model metadata), shaped as the signature declares.

    `k` and `exclude_recent` are sent as scalars or as [1] vectors, whichever is declared;
    fixed-width history inputs are padded with "" or truncated.
    """
    fills = dict(row, k=K, exclude_recent=False, query_text="")
    found: dict[str, Any] = {}
    for name, info in signature.get("inputs", {}).items():
        shape = _shape(info)
        value: Any
        if name == "query_token_ids":
            value = [0] * max(shape[-1], 0)
        elif name in fills:
            value = fills[name]
        else:
            raise errors.ConfigError(
                f"signature `{signature_name}` has input `{name}` that the serving bench cannot "
                f"fill; expected inputs among {sorted(fills) + ['query_token_ids']}"
            )
        if len(shape) == 2 and shape[1] >= 0 and isinstance(value, list):
            pad = "" if all(isinstance(v, str) for v in value) else 0
            value = (value + [pad] * shape[1])[: shape[1]]
        found[name] = value if not shape else [value]
    return found


def batchable(signature: dict[str, Any]) -> bool:
    """Whether a batching server can merge requests to it: every tensor has a free batch dim."""
    infos = list(signature.get("inputs", {}).values()) + list(signature.get("outputs", {}).values())
    return bool(infos) and all(_shape(i)[:1] == [-1] for i in infos)


# -- the server --------------------------------------------------------------------------------


def server_env() -> dict[str, str]:
    """Environment of the server process: oneDNN off unless TF_ENABLE_ONEDNN_OPTS is set.

    With TF 2.20's oneDNN kernels on, the query tower run concurrently on different batch
    sizes (what request batching produces) corrupts the heap and the server aborts
    ("free(): invalid next size"); with them off it does not.
    """
    return {
        "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "0"),
        "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """`tfrec serve` on an export folder in a child process, on free loopback ports."""

    def __init__(
        self,
        export_dir: os.PathLike | str,
        batching: bool,
        models: Sequence[str],
        log_path: os.PathLike | str,
    ) -> None:
        self.grpc_target = f"127.0.0.1:{_free_port()}"
        self.rest_target = f"127.0.0.1:{_free_port()}"
        self.log_path = Path(log_path)
        command = [
            sys.executable,
            "-m",
            "tfrec",
            "serve",
            "--model-base-path",
            str(export_dir),
            "--grpc-port",
            self.grpc_target.rpartition(":")[2],
            "--rest-port",
            self.rest_target.rpartition(":")[2],
            "--file-system-poll-wait-seconds",
            "0",
            "--enable-batching" if batching else "--no-enable-batching",
        ]
        self._log = open(self.log_path, "w", encoding="utf-8")  # noqa: SIM115 (closed in stop)
        env = dict(os.environ, **server_env())
        self.proc = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        try:
            self._wait_ready(models)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, models: Sequence[str], timeout_s: float = 600.0) -> None:
        from tfrec.serving import status

        deadline = time.monotonic() + timeout_s
        with client_lib.Client(self.grpc_target, timeout_s=5) as client:
            pending = list(models)
            while pending:
                if self.proc.poll() is not None:
                    raise errors.TfrecError(
                        f"the server exited with code {self.proc.returncode}; its log ends "
                        f"with: {self._tail()}"
                    )
                if time.monotonic() > deadline:
                    raise errors.TfrecError(f"the server did not load {pending} in {timeout_s} s")
                try:
                    versions = client.status(pending[0]).get("model_version_status", [])
                    if any(v.get("state") == "AVAILABLE" for v in versions):
                        pending.pop(0)
                        continue
                except status.ServingError:
                    pass
                time.sleep(0.5)

    def _tail(self) -> str:
        self._log.flush()
        lines = self.log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        return " | ".join(lines[-5:]) or "(empty)"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # drains and unloads
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- measuring ---------------------------------------------------------------------------------


class _Phase:
    """One phase (one client, or CONCURRENCY clients) of one cell, merged over its rounds."""

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

    def summary(self) -> dict[str, Any]:
        found: dict[str, Any] = {"requests": self.requests, "failures": self.failures}
        for q, value in zip((50, 95, 99), loadtest.percentiles(self.latencies), strict=True):
            found[f"p{q}_ms"] = None if math.isnan(value) else round(value, 3)
        found["throughput_rps"] = (
            round(len(self.latencies) / self.seconds, 1) if self.seconds else 0.0
        )
        return found


# A cell being measured: cell, signature metadata, request maker, target, both phases.
_Job = tuple[Cell, dict[str, Any], Callable[[int], dict[str, Any]], str, _Phase, _Phase]


def bench_config(config: Optional[str] = None) -> config_lib.Config:
    """`config` (default DEFAULT_CONFIG) with TRAIN_OVERRIDES: what the bench trains."""
    # The default is found beside the package, so the bench runs from any folder.
    path = Path(config) if config else Path(__file__).resolve().parents[2] / DEFAULT_CONFIG
    if not path.is_file():
        raise errors.ConfigError(
            f"`--config` must be a YAML config file (the model the bench trains), "
            f"received {str(config or path)!r}"
        )
    return config_lib.load(str(path), TRAIN_OVERRIDES)


def train_model(
    workdir: os.PathLike | str, config: config_lib.Config, progress: Callable[[str], None]
) -> Path:
    """`config` trained (retrieval + ranker) into `workdir`, or reused if trained there.

    Args:
        workdir: str or path-like. Where to train (or what to reuse).
        config: Config. What to train.
        progress: callable. Receives one line per step.

    Returns:
        The workdir's path.

    Raises:
        WorkdirError: `workdir` holds a run of another config; silently measuring it would
            report the wrong model.
    """
    from tfrec import artifact as artifact_lib
    from tfrec.pipelines import train as train_run
    from tfrec.ranking import training as ranking_training
    from tfrec.training import workdir as workdir_lib

    wd = workdir_lib.Workdir(workdir)
    if wd.config.is_file() and wd.load_config() != config:
        raise errors.WorkdirError(
            f"`{wd.root}` holds a run of another config than `{config.name}` with "
            f"{list(TRAIN_OVERRIDES)}: delete it to train that config there, or pass it as "
            "`--workdir` to measure it as it is"
        )
    if ranking_training.has_ranker(wd.root) and (wd.root / artifact_lib.DIRNAME).is_dir():
        progress(f"reusing the trained `{config.name}` model in {wd.root}")
        return wd.root
    progress(f"no --workdir: training `{config.name}` ({' '.join(TRAIN_OVERRIDES)}) into {wd.root}")
    train_run.train_all(config, wd.root, baselines=False)
    return wd.root


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(
    workdir: Optional[os.PathLike | str] = None,
    items: Sequence[int] = DEFAULT_ITEMS,
    seconds: float = DEFAULT_SECONDS,
    output: os.PathLike | str = "bench-results",
    progress: Optional[Callable[[str], None]] = None,
    full_grid_max: int = FULL_GRID_MAX_ITEMS,
    config: Optional[str] = None,
) -> dict[str, Any]:
    """Measures every cell of `plan(items)`; writes serving.json and serving.md to `output`.

    Args:
        workdir: str, path-like or None. A trained run; None trains `config` into
            `<output>/serving-workdir` (reused by later runs of the same config).
        items: sequence of int. Synthetic catalog sizes. Defaults to 10k, 100k and 1M.
        seconds: float. Length of each timed phase (one client, then CONCURRENCY clients).
        output: str or path-like. Folder of serving.json and serving.md.
        progress: callable or None. Receives one line per step; None prints to stderr.
        full_grid_max: int. Largest catalog measured on the full grid (see `plan`).
        config: path or None. YAML config trained when `workdir` is None, with
            TRAIN_OVERRIDES. Defaults to DEFAULT_CONFIG.

    Returns:
        The results dict written to serving.json.
    """
    from tfrec.pipelines import export as export_run

    items = parse_items(",".join(str(n) for n in items))
    seconds = check_seconds(seconds)
    progress = progress or _stderr
    if workdir and config:
        raise errors.ConfigError(
            "`--config` names the model the bench trains when no `--workdir` is given; "
            f"received both (`--workdir` {str(workdir)!r}, `--config` {str(config)!r})"
        )
    # Resolved before anything is written, so a bad config fails with an empty output.
    train_config = None if workdir else bench_config(config)
    started = time.perf_counter()
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    if train_config is not None:
        workdir = train_model(out / "serving-workdir", train_config, progress)
    assert workdir  # given, or trained just above
    workdir = Path(workdir)
    train_seconds = round(time.perf_counter() - started, 1)  # ~0 when reused or given
    progress(f"loading {workdir} ...")
    trained = export_run.load(workdir)
    groups, skipped = plan(items, trained.ranker is not None, full_grid_max)
    total = sum(len(cells) for _, _, cells in groups)
    progress(
        f"{total} cells, each {WARMUP_REQUESTS} warm-up requests + 2 x {seconds:g} s: about "
        f"{total * (2 * seconds + 1) / 60:.0f} min of measurement plus exports and server starts"
    )
    cells: list[dict[str, Any]] = []
    exports: list[dict[str, Any]] = []
    servers: list[dict[str, Any]] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(dir=out, prefix=".serving-bench-") as tmp:
        for n in items:
            progress(f"{n:,} items: building the synthetic catalog and its exports ...")
            begun = time.perf_counter()
            index = synthetic_index(trained, n)
            export_dir = Path(tmp) / str(n)
            sizes = build_export(workdir, trained, index, export_dir)
            exports.append(
                {"items": n, "seconds": round(time.perf_counter() - begun, 1), "size_mb": sizes}
            )
            requests = request_rows(trained.spec, index.item_ids)
            del index
            for _, batching, group in (g for g in groups if g[0] == n):
                log = out / f"serving-server-{n}-batching-{'on' if batching else 'off'}.log"
                for cell in _measure_group(
                    export_dir, batching, group, requests, seconds, log, servers, progress
                ):
                    cells.append(cell)
                    progress(
                        f"[{len(cells):>2}/{total}] {Cell(**_key(cell)).label}: {bench_report.brief(cell)}"
                    )
                    if cell.get("server_exited") is not None:
                        notes.append(
                            f"{n:,} items, batching {'on' if batching else 'off'}: the server "
                            f"exited with code {cell['server_exited']} during {cell['model']} "
                            f"{cell['signature']} {cell['protocol']}; its log is `{log}`; the "
                            "cells of that server were not (fully) measured"
                        )
            shutil.rmtree(export_dir)
    results: dict[str, Any] = {
        "benchmark": "serving",
        "settings": {
            "workdir": str(workdir),
            # None: a given --workdir, measured as it was trained.
            "config": (config or DEFAULT_CONFIG) if train_config else None,
            "train_overrides": list(TRAIN_OVERRIDES) if train_config else [],
            "train_seconds": train_seconds,
            "items": list(items),
            "seconds_per_phase": seconds,
            "rounds": ROUNDS,
            "warmup_requests": WARMUP_REQUESTS,
            "concurrent_clients": CONCURRENCY,
            "k": K,
            "full_grid_max_items": full_grid_max,
            "server_env": server_env(),
        },
        "model": {
            "embedding_dim": trained.catalog.dim,
            "max_history": trained.spec.max_history,
            "history_encoder": trained.config.model.history_encoder,
            "retrieve_n": trained.config.recommend.retrieve_n,
            "ranker": trained.ranker is not None,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        },
        "exports": exports,
        "servers": servers,
        "cells": cells,
        "skipped": skipped,
        "notes": notes,
    }
    bench_report.add_ratios(results)
    results["seconds_total"] = round(time.perf_counter() - started, 1)
    config_lib.write_text_atomic(out / "serving.json", json.dumps(results, indent=2) + "\n")
    config_lib.write_text_atomic(out / "serving.md", bench_report.to_markdown(results))
    progress(f"wrote {out / 'serving.json'} and {out / 'serving.md'}")
    return results


def _key(cell: dict[str, Any]) -> dict[str, Any]:
    return {f.name: cell[f.name] for f in dataclasses.fields(Cell)}


def _measure_group(
    export_dir: Path,
    batching: bool,
    group: list[Cell],
    requests: list[dict[str, Any]],
    seconds: float,
    log: Path,
    servers: list[dict[str, Any]],
    progress: Callable[[str], None],
) -> Iterator[dict[str, Any]]:
    """Yields the result dict of each cell of `group`, all measured on one server process.

    Cells are measured in ROUNDS interleaved rounds of `seconds / ROUNDS` per phase, so that
    load from other jobs on the machine spreads over all cells instead of hitting a few.
    If the server exits, the cells measured so far are yielded (the one during which it
    exited holds `server_exited`) and its log is kept at `log`; otherwise the log is removed.
    """
    models = sorted({c.model for c in group})
    began = time.perf_counter()
    with ServerProcess(export_dir, batching, models, log) as server:
        servers.append(
            {
                "items": group[0].items,
                "batching": batching,
                "start_seconds": round(time.perf_counter() - began, 1),
            }
        )
        with client_lib.Client(server.grpc_target) as client:
            metadata = {m: client.metadata(m) for m in models}
        jobs: list[_Job] = []
        for cell in group:
            signature = metadata[cell.model][cell.signature]
            inputs = [inputs_for(signature, r, cell.signature) for r in requests]

            def make(
                i: int, cell: Cell = cell, inputs: list[dict[str, Any]] = inputs
            ) -> dict[str, Any]:
                return {
                    "model": cell.model,
                    "signature_name": cell.signature,
                    "inputs": inputs[i % len(inputs)],
                }

            target = server.grpc_target if cell.protocol == "grpc" else server.rest_target
            jobs.append((cell, signature, make, target, _Phase(), _Phase()))

        def result(job: _Job, **extra: Any) -> dict[str, Any]:
            cell, signature, _, _, single, loaded = job
            return dict(
                dataclasses.asdict(cell),
                index=bench_report.INDEX[cell.model],
                batchable=batchable(signature),
                single=single.summary(),
                concurrent=dict(loaded.summary(), clients=CONCURRENCY),
                errors=sorted(single.errors | loaded.errors)[:5],
                **extra,
            )

        for round_ in range(ROUNDS):
            progress(
                f"{group[0].items:,} items, batching {'on' if batching else 'off'}: round "
                f"{round_ + 1}/{ROUNDS} of {len(group)} cells"
            )
            for job in jobs:
                cell, _, make_request, target, single, loaded = job
                run = functools.partial(loadtest.run, target, make_request, protocol=cell.protocol)
                if round_ == 0:
                    run(1, num_requests=WARMUP_REQUESTS)
                single.add(run(1, duration_s=seconds / ROUNDS))
                loaded.add(run(CONCURRENCY, duration_s=seconds / ROUNDS))
                code = server.proc.poll()
                if code is not None:
                    for other in jobs:
                        if other is not job and other[4].requests:
                            yield result(other)
                    yield result(job, server_exited=code)
                    return
                if round_ == ROUNDS - 1:
                    yield result(job)
    log.unlink(missing_ok=True)


def main(args: argparse.Namespace) -> int:
    """`tfrec bench serving` (arguments parsed by tfrec.cli).

    Args:
        args: argparse.Namespace. `items`, `seconds`, `workdir`, `output` and `config`.

    Returns:
        The exit code, 0.
    """
    items = DEFAULT_ITEMS if args.items is None else parse_items(args.items)
    seconds = DEFAULT_SECONDS if args.seconds is None else check_seconds(args.seconds)
    if args.workdir and not Path(args.workdir, "config.yaml").is_file():
        raise errors.WorkdirError(
            f"`--workdir` must be a trained run (with config.yaml), received {args.workdir!r}"
        )
    results = run(args.workdir, items, seconds, args.output, config=args.config)
    for t in results["targets"]:
        verdict = {True: "met", False: "NOT met", None: "not measured"}[t["met"]]
        print(
            f"{t['signature']} {t['target']} at {t['items']:,} items: {verdict} "
            f"(p99 {bench_report.fmt(t['measured_p99_ms'])} ms)"
        )
    return 0
