"""A small reference API for the sandbox: health endpoints and Prometheus metrics on 127.0.0.1.

``/metrics`` serves request counters by status, a latency histogram and a latency summary whose
quantiles (``http_request_latency_seconds{quantile="0.95"}``) runbooks compare with their thresholds.
"""

from __future__ import annotations

import errno
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .stack import ServiceSpec

_HOST = "127.0.0.1"  # never another interface: the sandbox is for this machine only
# Histogram buckets (seconds) the metrics page reports for request latency.
_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
# Summary quantiles as a fraction of p95, roughly the shape of a real latency distribution.
_QUANTILES = (("0.5", 0.35), ("0.9", 0.75), ("0.95", 1.0), ("0.99", 1.9))


class PortInUse(Exception):
    """The stack's fixed port is taken (another sandbox run, or some other program)."""


def metrics_text(spec: ServiceSpec) -> str:
    total = spec.requests_ok + spec.requests_error
    lines = [
        "# HELP http_requests_total Requests served, by status class.",
        "# TYPE http_requests_total counter",
        f'http_requests_total{{status="200"}} {spec.requests_ok}',
        f'http_requests_total{{status="500"}} {spec.requests_error}',
        "# HELP http_request_duration_seconds Request latency.",
        "# TYPE http_request_duration_seconds histogram",
    ]
    # 95% of requests at or under p95; the rest in the next bucket up.
    for bound in _BUCKETS:
        share = 0.0 if bound < spec.p95_seconds else 0.95 if bound < spec.p95_seconds * 2 else 1.0
        lines.append(f'http_request_duration_seconds_bucket{{le="{bound}"}} {int(total * share)}')
    lines += [
        f'http_request_duration_seconds_bucket{{le="+Inf"}} {total}',
        f"http_request_duration_seconds_sum {total * spec.p95_seconds * 0.6:.3f}",
        f"http_request_duration_seconds_count {total}",
        "# HELP http_request_latency_seconds Request latency over the last 10 minutes.",
        "# TYPE http_request_latency_seconds summary",
        *(f'http_request_latency_seconds{{quantile="{q}"}} {spec.p95_seconds * f:.4g}' for q, f in _QUANTILES),
        f"http_request_latency_seconds_sum {total * spec.p95_seconds * 0.6:.3f}",
        f"http_request_latency_seconds_count {total}",
        "# HELP process_up Whether the process is up.",
        "# TYPE process_up gauge",
        "process_up 1",
    ]
    return "\n".join(lines) + "\n"


class ReferenceService:
    """Start with :meth:`start`, stop with :meth:`stop`; ``url`` is known once started."""

    def __init__(self, spec: ServiceSpec) -> None:
        self.spec = spec
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "service not started"
        return f"http://{_HOST}:{self._server.server_port}"

    def start(self, port: int = 0) -> ReferenceService:
        """Serve on 127.0.0.1:``port`` (0: any free port); :class:`PortInUse` if that port is taken."""
        spec = self.spec

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if self.path == "/health/live":
                    self._send(200, "application/json", json.dumps({"status": "alive"}))
                elif self.path == "/health/ready":
                    ready = spec.ready_status == 200
                    body = {
                        "status": "ready" if ready else "not ready",
                        "checks": {"dynamodb": "ok", "s3": "ok" if ready else "timeout", "cache": spec.cache_status},
                    }
                    self._send(spec.ready_status, "application/json", json.dumps(body))
                elif self.path == "/metrics":
                    self._send(200, "text/plain; version=0.0.4", metrics_text(spec))
                else:
                    self._send(404, "application/json", json.dumps({"error": "not found"}))

            def _send(self, status: int, content_type: str, body: str) -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:  # keep the procedure output clean
                pass

        try:
            self._server = ThreadingHTTPServer((_HOST, port), Handler)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUse(f"the reference API cannot listen on {_HOST}:{port}: the port is in use "
                                "(another sandbox run, or another program)") from None
            raise
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="reference-api", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
