"""The REST front end: TF Serving's `/v1/models/...` endpoints, and tfrec's `/v1/outcomes`."""

from __future__ import annotations

import http.server
import json
import logging
import re
import sys
import threading
import time
import urllib.parse
from typing import Optional

from tfrec.serving import (
    limits,
    metrics,
    outcomes,
    prediction_log,
    request_id,
    rest_json,
    status,
)
from tfrec.serving import service as service_lib

log = logging.getLogger(__name__)

_ROUTE = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)"
    r"(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
    r"(?P<action>/metadata|:predict|:classify|:regress)?$"
)
OUTCOMES_PATH = "/v1/outcomes"


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: load tests measure the model, not TCP setup
    disable_nagle_algorithm = True  # headers and body go out in two writes: avoid 40 ms stalls
    server: RestServer
    _request_id: Optional[str] = None

    def setup(self):
        # Every read and write on the connection times out, so an idle keep-alive connection
        # (or a client trickling its body) cannot hold a worker thread forever.
        self.timeout = self.server.limits.idle_timeout_seconds
        super().setup()

    def log_message(self, format, *args):  # noqa: A002 (signature fixed by http.server)
        log.debug("%s " + format, self.address_string(), *args)

    def send_error(self, code, message=None, explain=None):
        """http.server's own errors (bad request line, unknown method) as JSON, not HTML."""
        self.close_connection = True
        self._request_id = None  # not a Predict call (e.g. a malformed request line)
        self._send(code, {"error": message or self.responses.get(code, ("error",))[0]})

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def _not_allowed(self):
        self._discard_body()
        self.close_connection = True
        self._send(
            405,
            {"error": f"`method`: expected GET or POST, received {self.command}"},
            {"Allow": "GET, POST"},
        )

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = do_TRACE = do_CONNECT = _not_allowed

    def _dispatch(self, method: str) -> None:
        self.server.enter()
        self._request_id = None  # set for Predict calls, and returned in a header
        try:
            if self.server.stopping:
                self.close_connection = True
                self._send(503, {"error": "server is shutting down"})
                return
            try:
                code, body = self._answer(method)
            except status.ServingError as e:
                code, body = e.http_status, {"error": e.message}
            except (ConnectionError, TimeoutError):
                self._disconnected()
                return
            except Exception as e:  # noqa: BLE001 (the server keeps serving; the caller sees why)
                log.exception("REST request failed")
                code, body = 500, {"error": f"{type(e).__name__}: {e}"}
            self._send(code, body)
        finally:
            self.server.leave()

    def _disconnected(self) -> None:
        self.close_connection = True
        self.server.service.metrics.observe_disconnect("rest")

    def _answer(self, method: str):
        path = urllib.parse.urlsplit(self.path).path
        service = self.server.service
        if path == self.server.metrics_path:
            self._discard_body()
            if method != "GET":
                raise status.ServingError(
                    "INVALID_ARGUMENT",
                    f"`method`: expected GET for {path!r}, received {method}",
                    http=405,
                )
            return 200, service.metrics.render()
        if path == OUTCOMES_PATH:
            return self._outcomes(method)
        match = _ROUTE.match(path)
        if match is None:
            self._discard_body()
            raise status.not_found(f"`path`: expected /v1/models/<name>[...], received {path!r}")
        spec = {
            "name": urllib.parse.unquote(match["name"]),
            "version": int(match["version"]) if match["version"] else None,
            "label": urllib.parse.unquote(match["label"]) if match["label"] else None,
        }
        action = match["action"] or ""
        expected = "POST" if action.startswith(":") else "GET"
        if method != expected:
            self._discard_body()
            raise status.ServingError(
                "INVALID_ARGUMENT",
                f"`method`: expected {expected} for {path!r}, received {method}",
                http=405,
            )
        if action == "":
            return 200, service_lib.to_dict(service.status(**spec))
        if action == "/metadata":
            return 200, service.metadata_json(**spec)
        if action != ":predict":
            self._discard_body()
            raise status.ServingError("UNIMPLEMENTED", f"`{action[1:]}` is not supported here")
        with service.track("rest") as record:
            record.model = spec["name"]
            try:
                self._request_id = request_id.resolve(self.headers.get(request_id.HEADER))
                return 200, self._predict(spec, record)
            except status.ServingError as e:
                record.status = e.code
                raise
            except Exception:
                record.status = "INTERNAL"
                raise

    def _predict(self, spec: dict, record) -> dict:
        body = self._read_json()
        signature_name = body.get("signature_name", "") if isinstance(body, dict) else ""
        if not isinstance(signature_name, str):
            raise status.invalid(
                f"`signature_name`: expected a string, received {signature_name!r}"
            )
        record.signature = signature_name
        used = []  # the SignatureDef the JSON was read with, and the inputs read

        def read_inputs(signature) -> dict:
            inputs = rest_json.parse_predict(body, signature, self.server.limits)[0]
            used.append((signature, inputs))
            return inputs

        service = self.server.service
        result = service.predict(inputs=read_inputs, signature_name=signature_name, **spec)
        signature, inputs = used[0]
        # Keep the SignatureDef's output order, as TF Serving does.
        ordered = {k: result.outputs[k] for k in signature.outputs if k in result.outputs}
        assert self._request_id is not None  # resolved by _answer before the call
        service.log_predict(
            self._request_id,
            lambda: (
                prediction_log.request_from_arrays(
                    spec["name"], signature_name, inputs, spec["version"], spec["label"]
                ),
                prediction_log.response_from_arrays(
                    spec["name"], result.version, result.signature_name, ordered
                ),
            ),
        )
        return rest_json.format_predict(ordered, "instances" in body)

    def _outcomes(self, method: str):
        """`POST /v1/outcomes`: appends the shop's reported outcomes to the log folder."""
        if method != "POST":
            self._discard_body()
            raise status.ServingError(
                "INVALID_ARGUMENT",
                f"`method`: expected POST for {OUTCOMES_PATH!r}, received {method}",
                http=405,
            )
        body = self._read_json()
        request_log = self.server.service.request_log
        if request_log is None:
            raise status.ServingError(
                "FAILED_PRECONDITION",
                "`outcomes`: this server keeps no log; start `tfrec serve` with `--log-dir` "
                "to record outcomes",
            )
        reported = outcomes.from_json(body)
        request_log.log_outcomes(reported)
        return 200, {"accepted": len(reported)}

    def _read_json(self):
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self.close_connection = True
            raise status.invalid(f"`Content-Length`: expected a byte count, received {length!r}")
        size = int(length)
        if size > self.server.limits.max_request_bytes:
            self.close_connection = True  # the unread body must not be parsed as a request
            self.server.limits.check_request_bytes(size)
        raw = self.rfile.read(size)
        if len(raw) < size:
            raise ConnectionResetError(f"body ended after {len(raw)} of {size} bytes")
        return rest_json.decode_body(raw)

    def _discard_body(self) -> None:
        length = self.headers.get("Content-Length", "0")
        size = int(length) if length.isdigit() else 0
        if 0 < size <= self.server.limits.max_request_bytes:
            self.rfile.read(size)
        elif size:
            self.close_connection = True

    def _send(self, code: int, body, headers=None) -> None:
        """Sends `body` as JSON, or as Prometheus text when it is a str."""
        text = isinstance(body, str)
        data = body.encode("utf-8") if text else json.dumps(body).encode("utf-8")
        try:
            self.send_response(code)
            self.send_header("Content-Type", metrics.CONTENT_TYPE if text else "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            if self._request_id is not None:
                self.send_header(request_id.HEADER, self._request_id)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
        except (ConnectionError, TimeoutError):
            self._disconnected()


class RestServer(http.server.ThreadingHTTPServer):
    """A threading HTTP server that counts in-flight requests for a graceful stop.

    Args:
        service: PredictionService.
        host: str. Address to bind.
        port: int. Port to bind; 0 picks a free one.
        request_limits: RequestLimits. Body size, shapes and the idle connection timeout.
        metrics_path: str or None. Where GET serves Prometheus metrics; None: nowhere.
    """

    daemon_threads = True  # idle keep-alive connections must not block shutdown
    allow_reuse_address = True

    def __init__(
        self,
        service,
        host: str,
        port: int,
        request_limits: limits.RequestLimits,
        metrics_path=None,
    ):
        self.service = service
        self.limits = request_limits
        self.metrics_path = metrics_path
        self.stopping = False
        self._in_flight = 0
        self._cv = threading.Condition()
        super().__init__((host, port), _Handler)
        # A short poll interval makes stop() prompt (shutdown waits for the next poll).
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, name="rest", daemon=True
        )

    @property
    def port(self) -> int:
        return self.server_address[1]

    def enter(self) -> None:
        with self._cv:
            self._in_flight += 1

    def leave(self) -> None:
        with self._cv:
            self._in_flight -= 1
            self._cv.notify_all()

    def start(self) -> None:
        self._thread.start()

    def handle_error(self, request, client_address) -> None:
        """A client that vanished is counted quietly; anything else is logged, not printed."""
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            self.service.metrics.observe_disconnect("rest")
            log.debug("REST client %s went away: %s", client_address, error)
        else:
            log.exception("REST connection from %s failed", client_address)

    def stop(self, grace_s: float = 10.0) -> None:
        """Stops accepting, waits up to `grace_s` for in-flight requests, then closes."""
        self.stopping = True
        self.shutdown()
        deadline = time.monotonic() + grace_s
        with self._cv:
            while self._in_flight and time.monotonic() < deadline:
                self._cv.wait(deadline - time.monotonic())
        self.server_close()
