"""Real HTTP(S) servers on 127.0.0.1 for the HTTP step tests: routes with status, body and delay.

``HttpApp(routes, tls=context)`` serves plain HTTP, or HTTPS with a server ``ssl.SSLContext`` (see
:func:`server_context` for a trustme certificate, :func:`expired_intermediate_context` for a chain
whose intermediate CA has expired). ``silent_listener`` accepts TCP connections and never answers;
``refused_port`` is a port where connections are refused.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass
class Route:
    status: int = 200
    body: str = ""
    content_type: str = "text/plain; charset=utf-8"
    delay_s: float = 0.0  # answer only after this long (or when the server stops)
    headers: dict[str, str] = field(default_factory=dict)


def server_context(cert: trustme.LeafCert) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    return context


def _certificate(subject: str, key: ec.EllipticCurvePrivateKey, issuer: tuple[x509.Certificate, Any] | None,
                 not_before: datetime, not_after: datetime, ca: bool) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_cert, issuer_key = issuer if issuer else (None, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_cert.subject if issuer_cert else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                          encipher_only=False, decipher_only=False), critical=True)
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def expired_intermediate_context(directory: Path, leaf_days: int = 200) -> tuple[ssl.SSLContext, str]:
    """A server context for 127.0.0.1 whose chain is leaf (valid ``leaf_days`` more days) -> intermediate CA
    (expired yesterday) -> root CA (valid); returns it and the path of the root's PEM to trust."""
    now = datetime.now(UTC)
    keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(3)]
    root = _certificate("runbooks test root", keys[0], None, now - timedelta(days=60), now + timedelta(days=3650),
                        ca=True)
    intermediate = _certificate("runbooks test intermediate", keys[1], (root, keys[0]), now - timedelta(days=60),
                                now - timedelta(days=1), ca=True)
    leaf = _certificate("127.0.0.1", keys[2], (intermediate, keys[1]), now - timedelta(days=30),
                        now + timedelta(days=leaf_days, hours=1), ca=False)
    pem = serialization.Encoding.PEM
    (directory / "chain.pem").write_bytes(leaf.public_bytes(pem) + intermediate.public_bytes(pem))
    (directory / "leaf.key").write_bytes(keys[2].private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (directory / "root.pem").write_bytes(root.public_bytes(pem))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(directory / "chain.pem"), str(directory / "leaf.key"))
    return context, str(directory / "root.pem")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, app: HttpApp) -> None:
        self.app = app
        super().__init__(("127.0.0.1", 0), _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake happens here, in the request's thread, so a client that never completes
        # it cannot block the accept loop.
        if self.app.tls is not None:
            request.settimeout(5)
            request = self.app.tls.wrap_socket(request, server_side=True)
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that give up (timeouts, failed TLS verification) are part of the tests


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        app = self.server.app
        path = self.path.split("?", 1)[0]
        with app.lock:
            app.hits[path] += 1
            route = app.routes.get(path, Route(404, "not found"))
        if route.delay_s:
            app.stopping.wait(route.delay_s)
        data = route.body.encode()
        self.send_response(route.status)
        self.send_header("Content-Type", route.content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in route.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


class HttpApp:
    """A threaded server with configurable routes; ``hits`` counts requests per path."""

    def __init__(self, routes: dict[str, Route] | None = None, tls: ssl.SSLContext | None = None) -> None:
        self.routes: dict[str, Route] = dict(routes or {})
        self.tls = tls
        self.hits: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self._server: _Server | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> HttpApp:
        self._server = _Server(self)
        threading.Thread(target=self._server.serve_forever, args=(0.05,), name="test-http", daemon=True).start()
        return self

    def stop(self) -> None:
        self.stopping.set()  # releases delayed handlers
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> HttpApp:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def silent_listener() -> Iterator[int]:
    """A port whose connections the kernel accepts but nobody reads or answers (a hung service)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


@contextmanager
def refused_port() -> Iterator[int]:
    """A port that refuses connections: bound (so no one else takes it) but not listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])
