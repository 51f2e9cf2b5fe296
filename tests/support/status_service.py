"""A real HTTP service on 127.0.0.1 whose answers a test sets per path: status, delay, body.

Used to drive runbooks through controlled PASS/FAIL/ERROR outcomes across several runs.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class Route:
    status: int = 200
    delay_s: float = 0.0
    body: str = '{"status": "ok"}'
    echo: bool = False  # answer with the request's query string and headers (as a server echoing them would)


@dataclass
class StatusService:
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    def set(self, path: str, status: int = 200, delay_s: float = 0.0, body: str = '{"status": "ok"}',
            echo: bool = False) -> None:
        self.routes[path] = Route(status, delay_s, body, echo)


def serve(service: StatusService) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            service.requests.append(
                {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body.decode()}
            )
            route = service.routes.get(self.path.split("?")[0], Route(404, 0.0, json.dumps({"error": "no route"})))
            if route.delay_s:
                time.sleep(route.delay_s)
            data = route.body.encode()
            if route.echo:  # credentials first: a body excerpt shows only its start
                headers = sorted(self.headers.items(), key=lambda kv: kv[0].lower() != "authorization")
                query = self.path.partition("?")[2]
                data = json.dumps({"query": query, "headers": dict(headers)}).encode()
            try:
                self.send_response(route.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
                pass

        do_GET = _answer  # noqa: N815
        do_POST = _answer  # noqa: N815

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    service.url = f"http://127.0.0.1:{server.server_address[1]}"
    return server


@pytest.fixture
def status_service() -> Iterator[StatusService]:
    service = StatusService()
    server = serve(service)
    yield service
    server.shutdown()
    server.server_close()
