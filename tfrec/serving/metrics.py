"""Prometheus metrics of `tfrec serve` (via prometheus_client) and `monitoring.config`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable

import prometheus_client
import prometheus_client.core
import prometheus_client.exposition
import prometheus_client.registry
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format

from tfrec import errors

DEFAULT_PATH = "/monitoring/prometheus/metrics"  # tensorflow_model_server's default
CONTENT_TYPE = prometheus_client.exposition.CONTENT_TYPE_PLAIN_0_0_4
LATENCY_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


@dataclasses.dataclass(frozen=True)
class MonitoringConfig:
    """TF Serving's MonitoringConfig: whether and where the REST port serves Prometheus metrics.

    Args:
        enable: bool. Serve the metrics. Defaults to False.
        path: str. URL path of the metrics. Defaults to `/monitoring/prometheus/metrics`.
    """

    enable: bool = False
    path: str = DEFAULT_PATH

    def __post_init__(self):
        if not self.path.startswith("/") or self.path.startswith("/v1/"):
            raise errors.ConfigError(
                "monitoring config: `prometheus_config.path` must start with '/' and not with "
                f"'/v1/' (the model API), received {self.path!r}"
            )


def _monitoring_config_message():
    try:  # not shipped by tensorflow-serving-api 2.20, but use it if a release adds it
        from tensorflow_serving.config import monitoring_config_pb2

        return monitoring_config_pb2.MonitoringConfig
    except ImportError:
        pass
    # The same two messages as tensorflow_serving/config/monitoring_config.proto, built at run
    # time, so text_format accepts exactly what tensorflow_model_server accepts.
    proto = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(
        name="tfrec/monitoring_config.proto", package="tensorflow.serving", syntax="proto3"
    )
    prometheus = file.message_type.add(name="PrometheusConfig")
    prometheus.field.add(name="enable", number=1, type=proto.TYPE_BOOL, label=proto.LABEL_OPTIONAL)
    prometheus.field.add(name="path", number=2, type=proto.TYPE_STRING, label=proto.LABEL_OPTIONAL)
    file.message_type.add(name="MonitoringConfig").field.add(
        name="prometheus_config",
        number=1,
        type=proto.TYPE_MESSAGE,
        type_name=".tensorflow.serving.PrometheusConfig",
        label=proto.LABEL_OPTIONAL,
    )
    pool = descriptor_pool.DescriptorPool()  # private: never clashes with a real registration
    pool.Add(file)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("tensorflow.serving.MonitoringConfig")
    )


def parse_monitoring_config(text: str) -> MonitoringConfig:
    """Parses `monitoring.config` (`prometheus_config { enable: true path: "..." }`)."""
    message = _monitoring_config_message()()
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as e:
        raise errors.ConfigError(
            "monitoring config is not a valid MonitoringConfig (expected "
            f'`prometheus_config {{ enable: true path: "/..." }}`): {e}'
        ) from e
    config = message.prometheus_config
    return MonitoringConfig(enable=config.enable, path=config.path or DEFAULT_PATH)


class _VersionCollector(prometheus_client.registry.Collector):
    """`tfrec_serving_model_versions`, read from the model store on every scrape."""

    def __init__(self, versions: Callable[[], Iterable[tuple]]):
        self._versions = versions

    def collect(self):
        family = prometheus_client.core.GaugeMetricFamily(
            "tfrec_serving_model_versions",
            "Known model versions by state.",
            labels=["model_name", "version", "state"],
        )
        for name, version, state in sorted(self._versions()):
            family.add_metric([name, str(version), state], 1)
        yield family


class Metrics:
    """What `tfrec serve` counts, exposed by `prometheus_client` in Prometheus' text format.

    Series (label values of requests that name no served model or signature are ""):
        tfrec_serving_requests_total{model_name, signature_name, protocol, status}: Predict
            requests by canonical status code (OK, INVALID_ARGUMENT, NOT_FOUND, ...).
        tfrec_serving_request_latency_seconds{model_name, signature_name, protocol}: histogram
            of Predict wall time inside the server.
        tfrec_serving_batch_size{model_name, signature_name}: histogram of rows per signature
            execution (merged requests count once, with their total rows).
        tfrec_serving_model_versions{model_name, version, state}: 1 per known version, state
            as in GetModelStatus (LOADING, AVAILABLE, END, ...).
        tfrec_serving_client_disconnects_total{protocol}: requests whose client went away
            before the answer was written.
        tfrec_serving_log_records_written_total{kind}: records written to the log folder
            (`kind` is `prediction` or `outcome`).
        tfrec_serving_log_bytes_written_total{kind}: bytes those records took on disk.
        tfrec_serving_log_records_dropped_total{kind, reason}: records not written, because
            the writer's queue was full (`queue_full`) or writing failed (`write_error`).
        tfrec_serving_log_files_deleted_total: finished log files deleted by retention.

    Each instance has its own registry, so servers in one process never share counts.

    Args:
        versions: callable returning (model_name, version, state) tuples; read on every scrape.
    """

    def __init__(self, versions: Callable[[], Iterable[tuple]] = tuple):
        self.registry = prometheus_client.CollectorRegistry(auto_describe=True)
        self._requests = prometheus_client.Counter(
            "tfrec_serving_requests",
            "Predict requests.",
            ["model_name", "signature_name", "protocol", "status"],
            registry=self.registry,
        )
        self._latency = prometheus_client.Histogram(
            "tfrec_serving_request_latency_seconds",
            "Predict wall time in the server.",
            ["model_name", "signature_name", "protocol"],
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self._batch_sizes = prometheus_client.Histogram(
            "tfrec_serving_batch_size",
            "Rows per signature execution.",
            ["model_name", "signature_name"],
            buckets=BATCH_SIZE_BUCKETS,
            registry=self.registry,
        )
        self._disconnects = prometheus_client.Counter(
            "tfrec_serving_client_disconnects",
            "Requests whose client went away before the answer was written.",
            ["protocol"],
            registry=self.registry,
        )
        self._log_records = prometheus_client.Counter(
            "tfrec_serving_log_records_written",
            "Records written to the log folder.",
            ["kind"],
            registry=self.registry,
        )
        self._log_bytes = prometheus_client.Counter(
            "tfrec_serving_log_bytes_written",
            "Bytes of the records written to the log folder.",
            ["kind"],
            registry=self.registry,
        )
        self._log_dropped = prometheus_client.Counter(
            "tfrec_serving_log_records_dropped",
            "Records not written: queue full or write error.",
            ["kind", "reason"],
            registry=self.registry,
        )
        self._log_deleted = prometheus_client.Counter(
            "tfrec_serving_log_files_deleted",
            "Finished log files deleted by retention.",
            registry=self.registry,
        )
        self.registry.register(_VersionCollector(versions))

    def observe_request(self, model, signature, protocol, status, seconds: float) -> None:
        self._requests.labels(model, signature, protocol, status).inc()
        self._latency.labels(model, signature, protocol).observe(seconds)

    def observe_batch(self, model: str, signature: str, rows: int) -> None:
        self._batch_sizes.labels(model, signature).observe(rows)

    def observe_disconnect(self, protocol: str) -> None:
        self._disconnects.labels(protocol).inc()

    def observe_log_written(self, kind: str, size: int) -> None:
        self._log_records.labels(kind).inc()
        self._log_bytes.labels(kind).inc(size)

    def observe_log_dropped(self, kind: str, reason: str, count: int = 1) -> None:
        self._log_dropped.labels(kind, reason).inc(count)

    def observe_log_deleted(self, files: int) -> None:
        self._log_deleted.inc(files)

    def value(self, name: str, **labels: str) -> float:
        """The current value of one sample, e.g. `value("tfrec_serving_log_records_dropped_total",
        kind="prediction", reason="queue_full")`; 0 when it was never counted."""
        return self.registry.get_sample_value(name, labels) or 0.0

    def disconnects(self, protocol: str) -> float:
        """How many clients of `protocol` disconnected before their answer."""
        value = self.registry.get_sample_value(
            "tfrec_serving_client_disconnects_total", {"protocol": protocol}
        )
        return value or 0.0

    def render(self) -> str:
        """The exposition text of every series (format 0.0.4, `CONTENT_TYPE`)."""
        return prometheus_client.generate_latest(self.registry).decode("utf-8")
