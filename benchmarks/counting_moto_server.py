"""moto's server with a request counter, for benchmarks: ``python benchmarks/counting_moto_server.py PORT``.

Every AWS request is counted (by service, from the SigV4 credential scope) before moto handles it.
``GET /__bench__/calls`` returns the counts as JSON; ``POST /__bench__/calls`` returns them and starts
again from zero. moto's own ``/moto-api/`` requests are not counted. Binds 127.0.0.1 only.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

COUNT_PATH = "/__bench__/calls"  # never a bucket: S3 bucket names cannot contain '_'
_SCOPE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/")


class CountingMiddleware:
    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()

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
        if not path.startswith("/moto-api"):
            match = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
            with self.lock:
                self.counts[match.group(1) if match else "unsigned"] += 1
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
