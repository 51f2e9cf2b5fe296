"""A fault-injecting HTTP proxy in front of a moto server: what a bad network or a bad endpoint does.

Every request goes to the upstream server unchanged unless a rule matches it (by operation, by path or
all requests); a matching rule answers in its place with one fault: throttling, a 5xx, a hang, a reset
connection, a body that is not an AWS document, or a credentials/permission refusal. Error bodies
follow the request's protocol (JSON when it carries ``X-Amz-Target``, XML otherwise); a HEAD answer
has none, as with AWS. ``DNS_FAILURE_URL`` is an endpoint whose host never resolves.
"""

from __future__ import annotations

import contextlib
import enum
import http.client
import json
import socket
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

DNS_FAILURE_URL = "http://no-such-host.invalid:1"  # RFC 2606: .invalid never resolves


class Inject(enum.StrEnum):
    THROTTLE = "throttle"  # 400 ThrottlingException
    SLOW_DOWN = "slow-down"  # 503 SlowDown (S3's throttling)
    SERVER_ERROR = "server-error"  # 500 InternalError
    HANG = "hang"  # never answer (until the proxy stops or hang_s passes)
    RESET = "reset"  # close the connection with a TCP reset
    HTML_200 = "html-200"  # a captive portal / load balancer page
    EMPTY_200 = "empty-200"
    GARBAGE_200 = "garbage-200"  # truncated JSON
    EMPTY_OBJECT_200 = "empty-object-200"  # valid JSON, but not the operation's document: {}
    INVALID_KEY = "invalid-key"  # 403 InvalidAccessKeyId
    EXPIRED_TOKEN = "expired-token"  # 400 ExpiredToken
    ACCESS_DENIED = "access-denied"  # 403 AccessDenied


# fault -> (status, error code, message, the code a JSON protocol uses)
ERRORS: dict[Inject, tuple[int, str, str, str]] = {
    Inject.THROTTLE: (400, "ThrottlingException", "Rate exceeded", "ThrottlingException"),
    Inject.SLOW_DOWN: (503, "SlowDown", "Please reduce your request rate.", "ThrottlingException"),
    Inject.SERVER_ERROR: (500, "InternalError", "We encountered an internal error.", "InternalServerError"),
    Inject.INVALID_KEY: (403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.",
                         "UnrecognizedClientException"),
    Inject.EXPIRED_TOKEN: (400, "ExpiredToken", "The provided token has expired.", "ExpiredTokenException"),
    Inject.ACCESS_DENIED: (403, "AccessDenied", "Access Denied", "AccessDeniedException"),
}
BODIES: dict[Inject, tuple[str, bytes]] = {
    Inject.HTML_200: ("text/html; charset=utf-8",
                      b"<!DOCTYPE html><html><head><title>Sign in</title></head><body>Wi-Fi login</body></html>"),
    Inject.EMPTY_200: ("application/xml", b""),
    Inject.GARBAGE_200: ("application/x-amz-json-1.0", b'{"Table": {"TableStatus": "ACT'),
    Inject.EMPTY_OBJECT_200: ("application/x-amz-json-1.0", b"{}"),
}


def operation_of(method: str, path: str, headers: dict[str, str]) -> str:
    """The AWS operation a request calls, as far as tests need it: JSON targets and a few S3 ones."""
    target = headers.get("x-amz-target", "")
    if target:
        return target.rpartition(".")[2]
    parts = urlsplit(path)
    query = parse_qs(parts.query, keep_blank_values=True)
    key = parts.path.strip("/").partition("/")[2]
    if method == "HEAD":
        return "HeadObject" if key else "HeadBucket"
    for name, operation in (("versioning", "BucketVersioning"), ("encryption", "BucketEncryption"),
                            ("policy", "BucketPolicy"), ("tagging", "BucketTagging"),
                            ("publicAccessBlock", "PublicAccessBlock")):
        if name in query:
            return ("Get" if method == "GET" else method.capitalize()) + operation
    return f"{method} {parts.path}"


@dataclass(frozen=True)
class Rule:
    fault: Inject
    operation: str | None = None  # None: every operation
    path: str | None = None  # a substring of the request path

    def matches(self, operation: str, path: str) -> bool:
        return (self.operation in (None, operation)) and (self.path is None or self.path in path)


class FaultProxy:
    """A threaded proxy on 127.0.0.1 forwarding to ``upstream`` except where a rule injects a fault."""

    def __init__(self, upstream: str, hang_s: float = 30.0) -> None:
        self.upstream = urlsplit(upstream)
        self.hang_s = hang_s
        self.rules: list[Rule] = []
        self.seen: list[str] = []  # "operation -> fault or 'forwarded'", in arrival order
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()  # releases hanging handlers
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def inject(self, fault: Inject, operation: str | None = None, path: str | None = None) -> Rule:
        rule = Rule(fault, operation, path)
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()
            self.seen.clear()

    def rule_for(self, operation: str, path: str) -> Rule | None:
        with self._lock:
            return next((r for r in self.rules if r.matches(operation, path)), None)

    def note(self, entry: str) -> None:
        with self._lock:
            self.seen.append(entry)

    def hang(self) -> None:
        self._stop.wait(self.hang_s)


def _handler_for(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as botocore's pool expects

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
            return

        def do_HEAD(self) -> None:
            self._handle()

        def do_GET(self) -> None:
            self._handle()

        def do_POST(self) -> None:
            self._handle()

        def do_PUT(self) -> None:
            self._handle()

        def do_DELETE(self) -> None:
            self._handle()

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            operation = operation_of(self.command, self.path, headers)
            rule = proxy.rule_for(operation, self.path)
            proxy.note(f"{operation} -> {rule.fault if rule else 'forwarded'}")
            if rule is None:
                self._forward(body)
            else:
                self._inject(rule.fault, json_protocol="x-amz-target" in headers)

        def _forward(self, body: bytes) -> None:
            upstream = http.client.HTTPConnection(proxy.upstream.netloc, timeout=30)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                upstream.request(self.command, self.path, body=body or None, headers=headers)
                response = upstream.getresponse()
                payload = response.read()
                self.send_response(response.status, response.reason)
                for key, value in response.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length", "date", "server"):
                        self.send_header(key, value)
                length = response.getheader("Content-Length") if self.command == "HEAD" else None
                self.send_header("Content-Length", length or str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)
            finally:
                upstream.close()

        def _inject(self, fault: Inject, json_protocol: bool) -> None:
            if fault is Inject.HANG:
                proxy.hang()
                self.close_connection = True
                return
            if fault is Inject.RESET:
                # SO_LINGER 0: close() sends RST, so the client reads "connection reset by peer"
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.close()
                return
            if fault in BODIES:
                content_type, payload = BODIES[fault]
                self._answer(200, content_type, payload)
                return
            status, code, message, json_code = ERRORS[fault]
            if json_protocol:
                status = 400 if status == 403 else status  # JSON services (DynamoDB) refuse with 400
                payload = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{json_code}",
                                      "message": message}).encode()
                self._answer(status, "application/x-amz-json-1.0", payload, code=json_code)
            else:
                payload = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
                           f"<Message>{message}</Message><RequestId>FAULTPROXY</RequestId></Error>").encode()
                self._answer(status, "application/xml", payload)

        def _answer(self, status: int, content_type: str, payload: bytes, code: str = "") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("x-amz-request-id", "FAULTPROXY")
            if code:
                self.send_header("x-amzn-ErrorType", code)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":  # a HEAD answer never has a body, errors included
                self.wfile.write(payload)

    return Handler


@contextlib.contextmanager
def fault_proxy(upstream: str, hang_s: float = 30.0) -> Iterator[FaultProxy]:
    proxy = FaultProxy(upstream, hang_s).start()
    try:
        yield proxy
    finally:
        proxy.stop()
