"""A small reference API for the sandbox: health endpoints and Prometheus metrics on 127.0.0.1.

``/metrics`` serves what a standard instrumented web service serves (prometheus-fastapi-instrumentator on
the Python client): ``http_requests_total{handler,method,status="2xx"|"4xx"|"5xx"}``, the latency
histograms ``http_request_duration_seconds{handler,method,le}`` (buckets 0.1, 0.5, 1) and
``http_request_duration_highr_seconds{le}`` (many buckets), the ``_created`` gauges of the client's text
format, and a few process metrics; no summary quantiles. The counters start from the stack's history
(``requests_ok``/``requests_error``/``p95_seconds``) and grow with the traffic the API serves while the
run checks it (``requests_per_second``, ``error_ratio``, ``live_p95_seconds``): a window between two
scrapes sees only that traffic, the totals mostly the history.
"""

from __future__ import annotations

import errno
import json
import math
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .stack import ServiceSpec

_HOST = "127.0.0.1"  # never another interface: the sandbox is for this machine only
# (handler, method, share of the traffic)
HANDLERS = (("/api/tenants", "GET", 0.55), ("/api/tenants/{tenant_id}", "GET", 0.25),
            ("/api/templates", "POST", 0.10), ("/health/ready", "GET", 0.10))
CLIENT_ERRORS = 0.02  # share of the requests that did not fail answered 4xx
# The instrumentator's default buckets (seconds): few by handler, many without labels.
BUCKETS = (0.1, 0.5, 1.0)
HIGHR_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0,
                 7.5, 10.0, 30.0, 60.0)
SIGMA = 0.5  # latency is log-normal with this spread; its 95th percentile is the spec's


class PortInUse(Exception):
    """The stack's fixed port is taken (another sandbox run, or some other program)."""


def latency_share(bound: float, p95: float) -> float:
    """The share of requests answered within ``bound`` seconds when the 95th percentile is ``p95``."""
    median = p95 / math.exp(1.6448536 * SIGMA)
    return 0.5 * (1 + math.erf(math.log(bound / median) / (SIGMA * math.sqrt(2))))


def mean_latency(p95: float) -> float:
    return p95 / math.exp(1.6448536 * SIGMA) * math.exp(SIGMA ** 2 / 2)


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def _number(value: float) -> str:
    return "+Inf" if value == math.inf else repr(float(value))  # as the Python client writes them: 1.0, 0.5


class Traffic:
    """The requests the API has served by a point in time: the history it started with, then
    ``requests_per_second`` with the live error ratio and latency. Every count is a whole number that only
    grows."""

    def __init__(self, spec: ServiceSpec, started: float | None = None, epoch: float | None = None) -> None:
        self.spec = spec
        self.started = time.monotonic() if started is None else started
        self.epoch = time.time() if epoch is None else epoch  # what the _created gauges report

    def _status_rates(self) -> dict[str, tuple[int, float]]:
        """status class -> (requests before the start, requests per second since)."""
        spec = self.spec
        ok_live = spec.requests_per_second * (1 - spec.error_ratio)
        client_errors = round(spec.requests_ok * CLIENT_ERRORS)
        return {
            "2xx": (spec.requests_ok - client_errors, ok_live * (1 - CLIENT_ERRORS)),
            "4xx": (client_errors, ok_live * CLIENT_ERRORS),
            "5xx": (spec.requests_error, spec.requests_per_second * spec.error_ratio),
        }

    def requests(self, now: float) -> dict[tuple[str, str, str], tuple[int, int]]:
        """(handler, method, status) -> (count, of which served before the start). The history is split
        among the handlers exactly (the totals are the spec's); the live traffic adds a whole number that
        only grows."""
        elapsed = max(now - self.started, 0.0)
        out: dict[tuple[str, str, str], tuple[int, int]] = {}
        for status, (before, rate) in self._status_rates().items():
            cumulative = 0.0
            for handler, method, share in HANDLERS:
                start = round(before * cumulative)
                cumulative += share
                history = round(before * cumulative) - start
                out[(handler, method, status)] = (history + math.floor(rate * share * elapsed), history)
        return dict(sorted(out.items(), key=lambda kv: [h for h, _, _ in HANDLERS].index(kv[0][0])))

    def text(self, now: float | None = None) -> str:
        """The /metrics page at ``now`` (time.monotonic)."""
        spec = self.spec
        counts = self.requests(time.monotonic() if now is None else now)
        lines = ["# HELP http_requests_total Total number of requests by method, status and handler.",
                 "# TYPE http_requests_total counter"]
        lines += [f"http_requests_total{_labels(handler=h, method=m, status=s)} {_number(c)}"
                  for (h, m, s), (c, _) in counts.items() if c]
        lines += ["# HELP http_requests_created Total number of requests by method, status and handler.",
                  "# TYPE http_requests_created gauge"]
        lines += [f"http_requests_created{_labels(handler=h, method=m, status=s)} {self.epoch!r}"
                  for (h, m, s), (c, _) in counts.items() if c]
        by_handler: dict[tuple[str, str], tuple[int, int]] = {}
        for (h, m, _), (count, history) in counts.items():
            total, before = by_handler.get((h, m), (0, 0))
            by_handler[(h, m)] = (total + count, before + history)
        all_total = sum(t for t, _ in by_handler.values())
        all_before = sum(b for _, b in by_handler.values())

        def histogram(name: str, help_text: str, buckets: tuple[float, ...],
                      groups: dict[tuple[tuple[str, str], ...], tuple[int, int]]) -> list[str]:
            out = [f"# HELP {name} {help_text}", f"# TYPE {name} histogram"]
            for labels, (total, before) in groups.items():
                live = total - before
                for bound in (*buckets, math.inf):
                    within = total if bound == math.inf else math.floor(
                        before * latency_share(bound, spec.p95_seconds)
                        + live * latency_share(bound, spec.live_p95_seconds))
                    out.append(f"{name}_bucket{_labels(**dict(labels), le=_number(bound))} {_number(within)}")
                seconds = before * mean_latency(spec.p95_seconds) + live * mean_latency(spec.live_p95_seconds)
                out.append(f"{name}_count{_labels(**dict(labels)) if labels else ''} {_number(total)}")
                out.append(f"{name}_sum{_labels(**dict(labels)) if labels else ''} {seconds!r}")
            out += [f"# HELP {name}_created {help_text}", f"# TYPE {name}_created gauge"]
            out += [f"{name}_created{_labels(**dict(labels)) if labels else ''} {self.epoch!r}" for labels in groups]
            return out

        lines += histogram("http_request_duration_highr_seconds", "Latency with many buckets but no API specific "
                           "labels. Made for more accurate percentile calculations.", HIGHR_BUCKETS,
                           {(): (all_total, all_before)})
        lines += histogram("http_request_duration_seconds", "Latency with only few buckets by handler. Made to be "
                           "only used if aggregation by handler is important.", BUCKETS,
                           {(("handler", h), ("method", m)): v for (h, m), v in by_handler.items()})
        lines += [
            "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.",
            "# TYPE process_start_time_seconds gauge",
            f"process_start_time_seconds {self.epoch!r}",
            "# HELP process_resident_memory_bytes Resident memory size in bytes.",
            "# TYPE process_resident_memory_bytes gauge",
            "process_resident_memory_bytes 8.4033536e+07",
            "# HELP python_info Python platform information",
            "# TYPE python_info gauge",
            'python_info{implementation="CPython",major="3",minor="12",patchlevel="1",version="3.12.1"} 1.0',
        ]
        return "\n".join(lines) + "\n"


def metrics_text(spec: ServiceSpec, elapsed: float = 0.0) -> str:
    """The /metrics page of an API with this spec, ``elapsed`` seconds after it started."""
    return Traffic(spec, started=0.0).text(elapsed)


class ReferenceService:
    """Start with :meth:`start`, stop with :meth:`stop`; ``url`` is known once started."""

    def __init__(self, spec: ServiceSpec) -> None:
        self.spec = spec
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.traffic = Traffic(spec)  # restarted by start()

    @property
    def url(self) -> str:
        assert self._server is not None, "service not started"
        return f"http://{_HOST}:{self._server.server_port}"

    def start(self, port: int = 0) -> ReferenceService:
        """Serve on 127.0.0.1:``port`` (0: any free port); :class:`PortInUse` if that port is taken."""
        spec = self.spec
        traffic = self.traffic = Traffic(spec)

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
                    self._send(200, "text/plain; version=0.0.4; charset=utf-8", traffic.text())
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
