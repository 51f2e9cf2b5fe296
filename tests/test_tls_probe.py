"""runbooks.steps._tls on its own, against local TLS servers: the expiry read with and without verification.

The servers are those of tests/test_steps_http.py (``HttpApp`` with a trustme certificate, or the
expired-intermediate chain); the fixtures are rebuilt here from tests/support rather than imported from
that module, so that this test needs nothing of the engine, as ``steps._tls`` does not.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import trustme
from cryptography import x509

from runbooks.steps._tls import not_after, peer_not_after, unverified_context
from tests.support.http_servers import (
    HttpApp,
    Route,
    expired_intermediate_context,
    refused_port,
    server_context,
    silent_listener,
)

HOST = "127.0.0.1"
ROUTES = {"/": Route(200, "ok")}


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_pem(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def serve(ca: trustme.CA, valid_for: timedelta) -> tuple[HttpApp, datetime]:
    """A TLS server for 127.0.0.1 whose certificate (issued by ``ca``) ends ``valid_for`` from now, and that end."""
    now = datetime.now(UTC)
    cert = ca.issue_cert(HOST, not_before=now - timedelta(days=30), not_after=now + valid_for)
    end = x509.load_pem_x509_certificate(cert.cert_chain_pems[0].bytes()).not_valid_after_utc
    return HttpApp(ROUTES, tls=server_context(cert)), end


@pytest.fixture
def year_app(ca: trustme.CA) -> Iterator[tuple[HttpApp, datetime]]:
    app, end = serve(ca, timedelta(days=365, hours=1))
    with app:
        yield app, end


def verifying(cafile: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=cafile)


def test_verified_handshake_reads_the_expiry(year_app, ca_pem):
    app, end = year_app
    assert peer_not_after(HOST, app.port, verifying(ca_pem), 5) == end


def test_unverified_handshake_reads_the_same_expiry(year_app):
    app, end = year_app
    found = peer_not_after(HOST, app.port, unverified_context(), 5)  # decoded by cryptography, not the stdlib
    assert found == end and found.tzinfo is not None


def test_unverified_context_accepts_any_certificate():
    context = unverified_context()
    assert context.verify_mode is ssl.CERT_NONE and context.check_hostname is False


def test_an_expired_certificate_fails_verification_with_code_10_but_reads_unverified(ca, ca_pem):
    app, end = serve(ca, timedelta(days=-2))
    with app:
        with pytest.raises(ssl.SSLCertVerificationError) as info:
            peer_not_after(HOST, app.port, verifying(ca_pem), 5)
        assert info.value.verify_code == 10  # X509_V_ERR_CERT_HAS_EXPIRED: what the step turns into a FAIL
        assert peer_not_after(HOST, app.port, unverified_context(), 5) == end
    assert end < datetime.now(UTC)


def test_an_expired_intermediate_fails_verification_while_the_leaf_is_in_date(tmp_path):
    context, root = expired_intermediate_context(tmp_path, leaf_days=200)
    with HttpApp(ROUTES, tls=context) as app:
        with pytest.raises(ssl.SSLCertVerificationError) as info:
            peer_not_after(HOST, app.port, verifying(root), 5)
        assert info.value.verify_code == 10
        leaf_end = peer_not_after(HOST, app.port, unverified_context(), 5)
    assert timedelta(days=199) < leaf_end - datetime.now(UTC) < timedelta(days=201)


def test_an_untrusted_certificate_fails_verification(year_app, tmp_path):
    app, end = year_app
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    with pytest.raises(ssl.SSLCertVerificationError) as info:
        peer_not_after(HOST, app.port, verifying(str(other)), 5)
    assert info.value.verify_code == 20 and info.value.verify_message == "unable to get local issuer certificate"
    assert peer_not_after(HOST, app.port, unverified_context(), 5) == end


def test_a_name_the_certificate_does_not_cover_fails_verification(year_app, ca_pem):
    app, end = year_app
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch|IP address mismatch"):
        peer_not_after("localhost", app.port, verifying(ca_pem), 5)  # the certificate is for 127.0.0.1 only
    assert peer_not_after("localhost", app.port, unverified_context(), 5) == end


def test_connection_failures_escape_as_they_are():
    with refused_port() as port, pytest.raises(ConnectionRefusedError):
        peer_not_after(HOST, port, unverified_context(), 5)
    with silent_listener() as port:
        started = time.perf_counter()
        with pytest.raises(TimeoutError):
            peer_not_after(HOST, port, unverified_context(), 0.3)
        assert time.perf_counter() - started < 3


def test_a_port_without_tls_is_an_ssl_error():
    with HttpApp(ROUTES) as plain, pytest.raises(ssl.SSLError):
        peer_not_after(HOST, plain.port, unverified_context(), 5)


class FakeSocket:
    """What ``not_after`` asks of a connected socket, for the cases a real server does not produce."""

    def __init__(self, cert: dict[str, str] | None, der: bytes | None) -> None:
        self.cert, self.der = cert, der

    def getpeercert(self, binary_form: bool = False) -> object:
        return self.der if binary_form else self.cert


def test_not_after_decodes_the_stdlib_date_of_a_verified_peer():
    found = not_after(FakeSocket({"notAfter": "Jun  1 12:00:00 2031 GMT"}, None))  # type: ignore[arg-type]
    assert found == datetime(2031, 6, 1, 12, 0, tzinfo=UTC)


def test_not_after_without_a_certificate_is_an_ssl_error():
    with pytest.raises(ssl.SSLError, match="the server sent no certificate"):
        not_after(FakeSocket({}, None))  # type: ignore[arg-type]
