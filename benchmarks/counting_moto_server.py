"""moto's server with a request counter, for benchmarks: ``python benchmarks/counting_moto_server.py PORT``.

Every AWS request is counted (by service, from the SigV4 credential scope) before moto handles it.
``GET /__bench__/calls`` returns the counts as JSON; ``POST /__bench__/calls`` returns them and starts
again from zero. moto's own ``/moto-api/`` requests are not counted. Binds 127.0.0.1 only.

``POST /__bench__/latency?ms=30`` makes every AWS request wait 30 ms before moto answers it (0: none),
as a network round trip to AWS would: each request has its own thread (werkzeug's threaded server), so
the waits of concurrent requests overlap and hold no lock, and cost no CPU.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

COUNT_PATH = "/__bench__/calls"  # never a bucket: S3 bucket names cannot contain '_'
LATENCY_PATH = "/__bench__/latency"
_SCOPE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/")


class CountingMiddleware:
    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.latency_s = 0.0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == COUNT_PATH:
            with self.lock:
                counts = dict(self.counts)
                if environ.get("REQUEST_METHOD") == "POST":
                    self.counts.clear()
            body = json.dumps({"total": sum(counts.values()), "by_service": counts}).encode()
            headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
            start_response("200 OK", headers)
            return [body]
        if path == LATENCY_PATH:
            ms = parse_qs(environ.get("QUERY_STRING", "")).get("ms", ["0"])[0]
            self.latency_s = max(float(ms), 0.0) / 1000
            start_response("204 No Content", [])
            return []
        if not path.startswith("/moto-api"):
            match = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
            with self.lock:
                self.counts[match.group(1) if match else "unsigned"] += 1
            if self.latency_s:
                time.sleep(self.latency_s)  # the simulated round trip, in this request's own thread
        return self.app(environ, start_response)


def main(port: int) -> None:
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import run_simple

    app = CountingMiddleware(DomainDispatcherApplication(create_backend_app))
    run_simple("127.0.0.1", port, app, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main(int(sys.argv[1]))
