"""`tfrec serve`: a development server for TF Serving's gRPC and REST APIs on an export folder."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Optional, Union

from tfrec import config as config_lib
from tfrec import errors
from tfrec.serving import (
    batching,
    grpc_server,
    limits,
    metrics,
    model_store,
    request_log,
    rest_server,
)
from tfrec.serving import service as service_lib

log = logging.getLogger(__name__)

DEFAULT_MAX_MESSAGE_BYTES = limits.RequestLimits.max_request_bytes
LAYOUT = "<model-base-path>/<model>/<version>/saved_model.pb"  # what the server looks for


class RunningServer:
    """A started server: its bound ports, model store, metrics, and `stop()`.

    Use `start()` to make one. Also a context manager that stops on exit.
    """

    def __init__(self, store, service, grpc, grpc_port: int, rest, host: str):
        self.store = store
        self.service = service
        self.request_log = service.request_log  # None unless logging is on
        self.batcher = service.batcher
        self.metrics = service.metrics
        self.metrics_path = rest.metrics_path  # None when monitoring is off
        self.host = host
        self.grpc_port = grpc_port
        self.rest_port = rest.port
        self._grpc = grpc
        self._rest = rest
        self._stopped = False

    @property
    def grpc_target(self) -> str:
        return f"{self.host}:{self.grpc_port}"

    @property
    def rest_target(self) -> str:
        return f"{self.host}:{self.rest_port}"

    @property
    def metrics_url(self) -> Optional[str]:
        """`http://<REST>/<path>` of the Prometheus metrics, or None when monitoring is off."""
        return f"http://{self.rest_target}{self.metrics_path}" if self.metrics_path else None

    def stop(self, grace_s: float = 10.0) -> None:
        """Stops accepting requests, lets in-flight ones finish (up to `grace_s`), unloads."""
        if self._stopped:
            return
        self._stopped = True
        grpc_done = self._grpc.stop(grace_s)  # returns at once; in-flight RPCs keep running
        self._rest.stop(grace_s)
        grpc_done.wait(grace_s + 1)
        if self.request_log is not None:  # after the front ends: their last records count
            self.request_log.close()
        self.store.stop()

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start(
    model_base_path: Union[str, Path],
    *,
    model_config_file=None,
    model_name: Optional[str] = None,
    host: str = "127.0.0.1",
    grpc_port: int = 8500,
    rest_port: int = 8501,
    enable_batching: bool = True,
    batching_parameters: Union[None, str, Path, batching.BatchingParameters] = None,
    poll_seconds: float = 1.0,
    max_message_bytes: Optional[int] = None,
    warmup_iterations: int = 1,
    monitoring_config: Union[None, str, Path, metrics.MonitoringConfig] = None,
    model_config_poll_seconds: float = 0.0,
    request_limits: Optional[limits.RequestLimits] = None,
    wait_for_models: bool = False,
    prediction_log: Optional[config_lib.PredictionLogConfig] = None,
) -> RunningServer:
    """Loads the models and starts gRPC and REST in this process (port 0 picks a free port).

    Args:
        model_base_path: path. One folder per model (or one model's version folders).
        model_config_file: path or None. `models.config`; defaults to the one in
            `model_base_path` when present.
        model_name: str or None. Model name when `model_base_path` holds version folders.
        host: str. Address to bind. Defaults to loopback.
        grpc_port: int. Defaults to 8500.
        rest_port: int. Defaults to 8501.
        enable_batching: bool. Merge concurrent Predict calls. Defaults to True.
        batching_parameters: BatchingParameters, a `batching_parameters.txt` path, or None for
            the one in `model_base_path` when present, else the defaults.
        poll_seconds: float. File-system poll period for new versions; 0 disables polling.
        max_message_bytes: int or None. Largest request accepted over either protocol; None
            keeps `request_limits.max_request_bytes`.
        warmup_iterations: int. Replays of each warmup record before a version goes live.
        monitoring_config: MonitoringConfig, a `monitoring.config` path, or None for the one in
            `model_base_path` when present, else off. Serves Prometheus metrics on the REST
            port when `prometheus_config.enable` is set.
        model_config_poll_seconds: float. Period of re-reading `models.config` (labels,
            policies, models); 0 reads it at start only. Defaults to 0.
        request_limits: RequestLimits or None. What one request may ask (rows, history
            width, string lengths, `k`, bytes, idle connection time); None: the defaults.
        wait_for_models: bool. Start even when no version folder is found, and wait for
            exports to appear. Defaults to False: nothing to serve is an error.
        prediction_log: PredictionLogConfig or None. Log sampled Predict calls and accept
            `POST /v1/outcomes` into a log folder; None (the default) logs nothing.

    Returns:
        RunningServer.

    Raises:
        ConfigError: when a config is invalid, or nothing is found to serve (unless
            `wait_for_models`).
    """
    base = Path(model_base_path)
    if model_config_file is None and (base / "models.config").is_file():
        model_config_file = base / "models.config"
    request_limits = request_limits or limits.RequestLimits()
    if max_message_bytes is not None:
        if max_message_bytes < 1:
            raise errors.ConfigError(
                f"`max_message_bytes` must be >= 1, received {max_message_bytes}"
            )
        request_limits = dataclasses.replace(request_limits, max_request_bytes=max_message_bytes)
    if model_config_poll_seconds < 0:
        raise errors.ConfigError(
            f"`model_config_poll_seconds` must be >= 0, received {model_config_poll_seconds}"
        )
    if model_config_poll_seconds > 0 and model_config_file is None:
        log.warning("`model_config_poll_seconds` has no effect without a models.config")
    monitoring = monitoring_config
    if monitoring is None and (base / "monitoring.config").is_file():
        monitoring = base / "monitoring.config"
    if isinstance(monitoring, (str, Path)):
        monitoring = metrics.parse_monitoring_config(Path(monitoring).read_text(encoding="utf-8"))
    metrics_path = monitoring.path if monitoring is not None and monitoring.enable else None
    store = model_store.ModelStore(
        base,
        model_config_file,
        model_name,
        poll_seconds,
        warmup_iterations,
        config_poll_seconds=model_config_poll_seconds,
    )
    counters = metrics.Metrics(store.version_states)
    batcher = None
    if enable_batching:
        params = batching_parameters
        if params is None and (base / "batching_parameters.txt").is_file():
            params = base / "batching_parameters.txt"
        if isinstance(params, (str, Path)):
            params = batching.parse_batching_parameters(Path(params).read_text(encoding="utf-8"))
        batcher = batching.Batcher(params or batching.BatchingParameters(), counters)
    # Before any model loads: a misplaced key file fails in a moment, not after the loads.
    logger = None if prediction_log is None else request_log.RequestLogger(prediction_log, counters)
    store.start()
    if not wait_for_models and not store.found_versions():
        _stop_early(store, logger)
        raise errors.ConfigError(_nothing_to_serve(base, model_config_file, store))
    service = service_lib.PredictionService(store, batcher, counters, request_limits, logger)
    try:
        grpc, bound = grpc_server.build(service, host, grpc_port, request_limits)
    except BaseException:
        _stop_early(store, logger)
        raise
    try:
        rest = rest_server.RestServer(service, host, rest_port, request_limits, metrics_path)
    except OSError:
        grpc.stop(0)
        _stop_early(store, logger)
        raise
    rest.start()
    return RunningServer(store, service, grpc, bound, rest, host)


def _stop_early(store, logger) -> None:
    if logger is not None:
        logger.close()
    store.stop()


def _nothing_to_serve(base: Path, config_file, store) -> str:
    where = f"`--model-base-path` {str(base.resolve())!r}"
    if config_file is not None:
        where += f" with `--model-config-file` {str(config_file)!r}"
    models = store.model_paths()
    found = (
        "models " + ", ".join(f"`{n}` at {str(p)!r}" for n, p in models.items())
        if models
        else "no model folder"
    )
    return (
        f"nothing to serve under {where}: expected {LAYOUT} (an integer version folder holding "
        f"a SavedModel), found {found} without any version; export a model first, or pass "
        "`--wait-for-models` to start anyway and load exports as they appear"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds `tfrec serve`'s flags (named after tensorflow_model_server's) to `parser`."""
    parser.add_argument("--model-base-path", default="export", help="folder of model folders")
    parser.add_argument("--model-config-file", help="models.config (ModelServerConfig text)")
    parser.add_argument("--model-name", help="model name when the base path holds versions")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--grpc-port", type=int, default=8500, help="0 picks a free port")
    parser.add_argument("--rest-port", type=int, default=8501, help="0 picks a free port")
    parser.add_argument(
        "--enable-batching",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="merge concurrent Predict calls (default on)",
    )
    parser.add_argument("--batching-parameters-file", help="batching_parameters.txt")
    parser.add_argument(
        "--file-system-poll-wait-seconds",
        type=float,
        default=1.0,
        help="period of the poll for new or removed versions; 0 disables it",
    )
    parser.add_argument(
        "--model-config-file-poll-wait-seconds",
        type=float,
        default=0.0,
        help="period of re-reading --model-config-file (labels, policies, models); 0: never",
    )
    parser.add_argument(
        "--monitoring-config-file",
        help="monitoring.config (MonitoringConfig text): Prometheus metrics on the REST port",
    )
    parser.add_argument(
        "--wait-for-models",
        action="store_true",
        help="start even when nothing is found to serve, and wait for exports",
    )
    parser.add_argument("--config", help="YAML config; its `serving` section sets the limits")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field, e.g. --set serving.max_rows=64 (repeatable)",
    )
    defaults = limits.RequestLimits()
    for flag, field, kind, help_text in [
        ("--max-message-bytes", "max_request_bytes", int, "largest request accepted (bytes)"),
        ("--max-rows", "max_rows", int, "most rows (dimension 0) of any input"),
        ("--max-history", "max_history", int, "longest list (inner dimension) of any input"),
        ("--max-string-bytes", "max_string_bytes", int, "longest string value of any input"),
        ("--max-query-chars", "max_query_chars", int, "longest `query_text`"),
        ("--max-k", "max_k", int, "largest `k` (also at most the catalog size)"),
        ("--idle-timeout-seconds", "idle_timeout_seconds", float, "close idle REST connections"),
    ]:
        parser.add_argument(
            flag,
            type=kind,
            default=None,
            dest=f"serving_{field}",
            help=f"{help_text} (`serving.{field}`, default {getattr(defaults, field)})",
        )
    _add_log_arguments(parser)
    parser.add_argument("--warmup-iterations", type=int, default=1)
    parser.add_argument("--grace-seconds", type=float, default=10.0, help="drain time on stop")


def _add_log_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "prediction logging (off unless --log-dir is given; see tfrec.serving.prediction_log)"
    )
    group.add_argument(
        "--log-dir",
        help="write sampled Predict calls as PredictionLog TFRecords, and outcomes POSTed to "
        "/v1/outcomes as JSON lines, into this folder",
    )
    group.add_argument(
        "--log-sample-rate", type=float, help="share of answered Predict calls logged (default 1)"
    )
    group.add_argument("--log-sample-seed", type=int, help="seed of the sampler (reproducible)")
    group.add_argument(
        "--log-max-file-bytes", type=int, help="start a new file before this size (default 64 MiB)"
    )
    group.add_argument(
        "--log-rotate-seconds",
        type=float,
        help="also close a file this long after opening it (default 3600)",
    )
    group.add_argument(
        "--log-retention-days", type=float, help="delete finished files older than this"
    )
    group.add_argument(
        "--log-max-total-bytes", type=int, help="delete the oldest files while the logs are larger"
    )
    group.add_argument(
        "--log-key-file",
        help="key of the keyed hash (HMAC-SHA256) that replaces user_id values; created (mode "
        "0600) when missing; must lie outside --log-dir",
    )
    group.add_argument(
        "--log-raw-user-ids",
        action="store_true",
        default=None,
        help="log user_id values as received instead of pseudonyms",
    )
    group.add_argument(
        "--log-queue-size",
        type=int,
        help="records waiting for the writer; more are dropped and counted (default 1024)",
    )


_LOG_FLAGS = {
    "sample_rate": "log_sample_rate",
    "sample_seed": "log_sample_seed",
    "max_file_bytes": "log_max_file_bytes",
    "rotate_seconds": "log_rotate_seconds",
    "retention_days": "log_retention_days",
    "max_total_bytes": "log_max_total_bytes",
    "key_file": "log_key_file",
    "raw_user_ids": "log_raw_user_ids",
    "queue_size": "log_queue_size",
}


def log_config_from_args(args: argparse.Namespace) -> Optional[config_lib.PredictionLogConfig]:
    """The prediction log settings of the `--log-*` flags; None without `--log-dir`.

    Raises:
        ConfigError: a `--log-*` flag without `--log-dir`, or an invalid value.
    """
    given = {
        field: getattr(args, dest)
        for field, dest in _LOG_FLAGS.items()
        if getattr(args, dest, None) is not None
    }
    log_dir = getattr(args, "log_dir", None)
    if log_dir is None:
        if given:
            flag = "--" + _LOG_FLAGS[next(iter(given))].replace("_", "-")
            raise errors.ConfigError(f"`{flag}` needs `--log-dir` (logging is off without it)")
        return None
    return config_lib.PredictionLogConfig(log_dir=log_dir, **given)


def limits_from_args(args: argparse.Namespace) -> limits.RequestLimits:
    """The request limits of `--config`, `--set serving.*=...` and the limit flags (last wins)."""
    overrides = list(getattr(args, "set", None) or [])
    for field in dataclasses.fields(limits.RequestLimits):
        value = getattr(args, f"serving_{field.name}", None)
        if value is not None:
            overrides.append(f"serving.{field.name}={value}")
    cfg = config_lib.load(getattr(args, "config", None), overrides)
    return limits.RequestLimits(**dataclasses.asdict(cfg.serving))


def run(args: argparse.Namespace) -> int:
    """Serves until SIGTERM or SIGINT, then drains in-flight requests and returns 0."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    server = start(
        args.model_base_path,
        model_config_file=args.model_config_file,
        model_name=args.model_name,
        host=args.host,
        grpc_port=args.grpc_port,
        rest_port=args.rest_port,
        enable_batching=args.enable_batching,
        batching_parameters=args.batching_parameters_file,
        poll_seconds=args.file_system_poll_wait_seconds,
        warmup_iterations=args.warmup_iterations,
        monitoring_config=args.monitoring_config_file,
        model_config_poll_seconds=args.model_config_file_poll_wait_seconds,
        request_limits=limits_from_args(args),
        wait_for_models=args.wait_for_models,
        prediction_log=log_config_from_args(args),
    )
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        print(
            f"serving {server.store.model_names()} on gRPC {server.grpc_target} and REST "
            f"{server.rest_target}",
            flush=True,
        )
        if server.metrics_url:
            print(f"Prometheus metrics at {server.metrics_url}", flush=True)
        if server.request_log is not None:
            print(
                f"logging {server.request_log.config.sample_rate:g} of Predict calls to "
                f"{server.request_log.folder} (user ids: {server.request_log.scheme}); "
                f"outcomes: POST http://{server.rest_target}/v1/outcomes",
                flush=True,
            )
        while not stop.wait(0.5):
            pass
        log.info("signal received: draining in-flight requests")
        server.stop(args.grace_seconds)
    finally:
        server.stop(0)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("stopped", flush=True)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="tfrec serve", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except (errors.TfrecError, OSError) as e:  # bad config, or a port already in use
        print(f"error: {e}", flush=True)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
