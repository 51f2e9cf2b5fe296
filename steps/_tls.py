"""When the certificate a TLS server presents expires: one handshake, verified or not, and its ``notAfter``."""

from __future__ import annotations

import socket
import ssl
from datetime import UTC, datetime


def not_after(tls: ssl.SSLSocket) -> datetime:
    """The expiry of the peer's certificate on a connected socket; ``ssl.SSLError`` when it sent none."""
    cert = tls.getpeercert()
    if cert and "notAfter" in cert:  # verified: the stdlib decodes it
        return datetime.fromtimestamp(ssl.cert_time_to_seconds(str(cert["notAfter"])), UTC)
    der = tls.getpeercert(binary_form=True)
    if der is None:
        raise ssl.SSLError("the server sent no certificate")
    # Unverified connections only (the stdlib decodes nothing then); imported late so that runs
    # that never probe an untrusted certificate do not pay for it.
    from cryptography import x509

    return x509.load_der_x509_certificate(der).not_valid_after_utc


def peer_not_after(host: str, port: int, context: ssl.SSLContext, timeout: float) -> datetime:
    """Connect, handshake with ``context`` (SNI ``host``) and return the expiry of the server's certificate.
    Raises what the connection raises: ``ssl.SSLCertVerificationError``, ``TimeoutError``, ``OSError``."""
    with socket.create_connection((host, port), timeout=timeout) as raw, \
            context.wrap_socket(raw, server_hostname=host) as tls:
        return not_after(tls)


def unverified_context() -> ssl.SSLContext:
    """A client context that accepts any certificate, to read one that does not verify (e.g. expired)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
