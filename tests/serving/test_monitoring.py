"""Prometheus metrics: monitoring.config parsing and scraping the REST port after requests."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tfrec import errors
from tfrec.serving import Client, ServingError, metrics

REPO = Path(__file__).resolve().parents[2]
GOOD = {"query": ["ab", "c"], "item_ids": [[1, 2], [3, 4]]}
_SAMPLE = re.compile(r"^(\w+)(?:\{(.*)\})? (\S+)$")


def scrape(url: str) -> dict:
    """{(metric name, frozenset of label pairs): value} of a Prometheus text page."""
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, labels, value = _SAMPLE.match(line).groups()
        pairs = _canonical(re.findall(r'(\w+)="([^"]*)"', labels or ""))
        samples[(name, pairs)] = float(value)
    return samples


def _canonical(pairs) -> frozenset:
    # Prometheus reads bucket bounds as numbers: le="2" and le="2.0" are one bucket.
    return frozenset((k, str(float(v)) if k == "le" else v) for k, v in pairs)


def _get(samples: dict, name: str, **labels) -> float:
    return samples.get((name, _canonical(labels.items())), 0.0)


def test_monitoring_config_template_and_errors():
    text = (REPO / "serving" / "monitoring.config").read_text()
    assert metrics.parse_monitoring_config(text) == metrics.MonitoringConfig(
        enable=True, path="/monitoring/prometheus/metrics"
    )
    assert metrics.parse_monitoring_config("prometheus_config { enable: true }").path == (
        metrics.DEFAULT_PATH
    )
    assert not metrics.parse_monitoring_config("# nothing").enable
    for text, pattern in [
        ("prometheus_config { enabled: true }", r'no field named "enabled"'),
        ("prometheus_config { enable: yes }", r'Expected "true" or "false"'),
        ("prometheus_config { enable: true ", r'Expected "}"'),
        ('prometheus_config { path: "metrics" }', r"`prometheus_config.path` must start with '/'"),
        ('prometheus_config { path: "/v1/models/x" }', r"and not with '/v1/'"),
    ]:
        with pytest.raises(errors.ConfigError, match=pattern):
            metrics.parse_monitoring_config(text)


def test_metrics_are_scraped_over_http_after_requests(make_export, start_server):
    server = start_server(
        make_export((1,)), monitoring_config=metrics.MonitoringConfig(enable=True)
    )
    assert server.metrics_url == f"http://{server.rest_target}/monitoring/prometheus/metrics"
    grpc_client = Client(server.grpc_target)
    rest_client = Client(server.rest_target, "rest")
    for _ in range(2):
        grpc_client.predict("toy", GOOD)
    rest_client.predict("toy", {"x": [[1.0, 1.0, 1.0]]}, signature_name="rank")
    for client in (grpc_client, rest_client):
        with pytest.raises(ServingError):
            client.predict("ghost", GOOD)  # unknown names are not label values
    with pytest.raises(ServingError):
        grpc_client.predict("toy", {"query": ["a"]})  # missing input
    samples = scrape(server.metrics_url)
    name = "tfrec_serving_requests_total"
    ok = dict(model_name="toy", signature_name="serving_default", protocol="grpc")
    assert _get(samples, name, **ok, status="OK") == 2
    assert _get(samples, name, **ok, status="INVALID_ARGUMENT") == 1
    rank = dict(model_name="toy", signature_name="rank", protocol="rest")
    assert _get(samples, name, **rank, status="OK") == 1
    for protocol in ("grpc", "rest"):
        unknown = dict(model_name="", signature_name="", protocol=protocol)
        assert _get(samples, name, **unknown, status="NOT_FOUND") == 1
    latency = "tfrec_serving_request_latency_seconds"
    assert _get(samples, latency + "_count", **ok) == 3
    assert _get(samples, latency + "_bucket", **ok, le="+Inf") == 3
    assert 0 < _get(samples, latency + "_sum", **ok) < 10
    # Two requests of 2 rows each ran (one at a time): two executions of 2 rows.
    batch = dict(model_name="toy", signature_name="serving_default")
    assert _get(samples, "tfrec_serving_batch_size_count", **batch) == 2
    assert _get(samples, "tfrec_serving_batch_size_sum", **batch) == 4
    assert _get(samples, "tfrec_serving_batch_size_bucket", **batch, le="1") == 0
    assert _get(samples, "tfrec_serving_batch_size_bucket", **batch, le="2") == 2
    versions = "tfrec_serving_model_versions"
    assert _get(samples, versions, model_name="toy", version="1", state="AVAILABLE") == 1


def test_metrics_follow_the_config_file_and_are_off_by_default(make_export, start_server):
    base = make_export((1,))
    off = start_server(base)
    assert off.metrics_url is None
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(f"http://{off.rest_target}{metrics.DEFAULT_PATH}", timeout=10)
    assert caught.value.code == 404
    # A monitoring.config in the model base path is picked up, like models.config.
    (base / "monitoring.config").write_text(
        'prometheus_config {\n  enable: true\n  path: "/metrics"  # custom\n}\n'
    )
    on = start_server(base, enable_batching=False)
    Client(on.grpc_target).predict("toy", GOOD)
    samples = scrape(f"http://{on.rest_target}/metrics")
    default = dict(model_name="toy", signature_name="serving_default")
    assert (
        _get(samples, "tfrec_serving_requests_total", **default, protocol="grpc", status="OK") == 1
    )
    # Without batching every request is its own batch.
    assert _get(samples, "tfrec_serving_batch_size_sum", **default) == 2
