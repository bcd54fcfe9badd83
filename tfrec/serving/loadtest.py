"""A bounded loopback load generator: latency percentiles, throughput and failures."""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import json
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Optional

import numpy as np

from tfrec.serving import client as client_lib
from tfrec.serving import status

MAX_CONCURRENCY = 64
MAX_DURATION_S = 300.0
MAX_REQUESTS = 1_000_000


@dataclasses.dataclass
class LoadTestResult:
    """What a load test measured. Latencies are in milliseconds, over successful requests."""

    requests: int
    failures: int
    duration_s: float
    throughput_rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: list  # up to 10 distinct failure messages
    # Every successful request's latency, in completion order (to merge runs, e.g. rounds).
    latencies_ms: list = dataclasses.field(default_factory=list, repr=False)

    def summary(self) -> str:
        return (
            f"{self.requests} requests, {self.failures} failures in {self.duration_s:.2f} s: "
            f"{self.throughput_rps:.1f} req/s, p50 {self.p50_ms:.2f} ms, "
            f"p95 {self.p95_ms:.2f} ms, p99 {self.p99_ms:.2f} ms"
        )


def percentiles(samples: Sequence[float], qs: Sequence[float] = (50, 95, 99)) -> list:
    """Percentiles of `samples`, interpolating linearly between order statistics.

    `np.percentile(..., method="linear")`, with a check of `qs` and NaN for no samples.

    Args:
        samples: sequence of float. E.g. latencies in milliseconds.
        qs: sequence of float in [0, 100]. Defaults to (50, 95, 99).

    Returns:
        list of float, one per q; NaN for each when `samples` is empty.

    Example:
        >>> percentiles([1.0, 2.0, 3.0, 4.0], [0, 50, 100])
        [1.0, 2.5, 4.0]
    """
    for q in qs:
        if not 0 <= q <= 100:
            raise ValueError(f"`qs` must be in [0, 100], received {q!r}")
    values = np.asarray(list(samples), dtype=np.float64)
    if values.size == 0:
        return [float("nan")] * len(qs)
    return [float(v) for v in np.percentile(values, list(qs), method="linear")]


def _check_loopback(target: str) -> None:
    host = target.rpartition(":")[0].strip("[]")
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except socket.gaierror as e:
        raise ValueError(f"`target`: cannot resolve {host!r}: {e}") from e
    if not addresses or not all(ipaddress.ip_address(a).is_loopback for a in addresses):
        raise ValueError(f"`target`: load tests only run against loopback, received {target!r}")


def run(
    target: str,
    make_request: Callable[[int], dict],
    concurrency: int = 4,
    duration_s: Optional[float] = None,
    num_requests: Optional[int] = None,
    protocol: str = "grpc",
) -> LoadTestResult:
    """Sends Predict requests from `concurrency` threads until a count or a time bound is hit.

    Args:
        target: str. `host:port` of a loopback server.
        make_request: callable. Given the request index, returns keyword arguments for
            `Client.predict` (`model`, `inputs` and optionally `signature_name`, `version`, ...).
        concurrency: int. Threads, each with requests in flight one at a time (at most 64).
        duration_s: float or None. Stop after this long (at most 300 s).
        num_requests: int or None. Stop after this many requests (at most 1e6).
        protocol: str. `"grpc"` or `"rest"`.

    Returns:
        LoadTestResult.
    """
    _check_loopback(target)
    if duration_s is None and num_requests is None:
        raise ValueError("`duration_s` or `num_requests` is required, received neither")
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise ValueError(f"`concurrency` must be in [1, {MAX_CONCURRENCY}], received {concurrency}")
    if duration_s is not None and not 0 < duration_s <= MAX_DURATION_S:
        raise ValueError(f"`duration_s` must be in (0, {MAX_DURATION_S}], received {duration_s}")
    if num_requests is not None and not 1 <= num_requests <= MAX_REQUESTS:
        raise ValueError(f"`num_requests` must be in [1, {MAX_REQUESTS}], received {num_requests}")
    limit = num_requests if num_requests is not None else MAX_REQUESTS
    deadline = time.monotonic() + (duration_s if duration_s is not None else MAX_DURATION_S)
    client = client_lib.Client(target, protocol=protocol)
    lock = threading.Lock()
    counter = iter(range(limit))
    latencies: list[float] = []
    errors: dict[str, int] = {}

    def worker() -> None:
        while time.monotonic() < deadline:
            with lock:
                index = next(counter, None)
            if index is None:
                return
            began = time.perf_counter()
            try:
                client.predict(**make_request(index))
            except (status.ServingError, OSError, ValueError) as e:
                with lock:
                    errors[str(e)[:300]] = errors.get(str(e)[:300], 0) + 1
                continue
            elapsed = (time.perf_counter() - began) * 1000
            with lock:
                latencies.append(elapsed)

    # Fetch the signature once before timing so the first requests do not pay for it.
    try:
        client.predict(**make_request(0))
    except (status.ServingError, OSError, ValueError):
        pass
    started = time.perf_counter()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    client.close()
    failures = sum(errors.values())
    done = len(latencies) + failures
    pct = percentiles(latencies)
    return LoadTestResult(
        requests=done,
        failures=failures,
        duration_s=elapsed,
        throughput_rps=len(latencies) / elapsed if elapsed > 0 else 0.0,
        p50_ms=float(pct[0]),
        p95_ms=float(pct[1]),
        p99_ms=float(pct[2]),
        errors=sorted(errors)[:10],
        latencies_ms=latencies,
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--target", default="127.0.0.1:8500")
    parser.add_argument("--protocol", choices=["grpc", "rest"], default="grpc")
    parser.add_argument("--model", required=True)
    parser.add_argument("--signature-name", default="serving_default")
    parser.add_argument("--inputs", required=True, help='JSON, e.g. \'{"query": ["shoes"]}\'')
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--duration-s", type=float)
    parser.add_argument("--num-requests", type=int, default=1000)
    args = parser.parse_args(argv)
    request = {
        "model": args.model,
        "inputs": json.loads(args.inputs),
        "signature_name": args.signature_name,
    }
    result = run(
        args.target,
        lambda _: request,
        args.concurrency,
        args.duration_s,
        args.num_requests,
        args.protocol,
    )
    print(result.summary())
    for message in result.errors:
        print("error:", message)
    return 1 if result.failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
