"""Read-only beyond the run's own clients: every botocore client in the process, while a run is open.

The run's clients carry the ``before-call`` guard (:func:`runbooks.targets.aws._guard`), but step code
can build clients of its own (``boto3.client``, ``botocore.session.get_session()``, ``boto3.resource``),
presign a request and send it with ``requests``, ask STS for fresh credentials, or unregister an event
handler. So while a ``live`` or ``endpoint`` run is open, :func:`enforce` replaces two botocore methods
(not event handlers, which any code holding a client or session can unregister):

- ``BaseClient._make_api_call``, the funnel of every API call of every client (resources, paginators,
  waiters and s3transfer all end there): an operation that is not a read is refused, and so is every
  operation that hands out credentials (:data:`~runbooks.targets.aws.CREDENTIAL_OPERATIONS`), except
  for clients marked with :func:`exempt` (the engine's own AssumeRole client; test fixtures that
  provision a server);
- ``RequestSigner.sign``: nothing that is not a read is signed, and a presigned URL or POST is only
  signed for a read sent as GET or HEAD (``generate_presigned_url('get_object', HttpMethod='PUT')``
  would otherwise be a PutObject; ``generate_presigned_post`` is always an upload).

Both refuse with :class:`~runbooks.targets.aws.ReadOnlyViolation` before anything is sent. The
replacements pass through when no run is open, so a patch stacked on top of them stays harmless.
:func:`check_installed` notices a step that put the original method back and reports it at the run's
next AWS call.

The in-process ``moto`` target is left alone: its sandbox provisions through its own clients.

What this cannot stop: code that signs a request by hand with the credentials (``botocore.auth``),
sends raw HTTP, reaches botocore's private internals, restores the originals and writes before the
run notices, or runs in another process. That boundary is AWS's: a role assumed with a read-only
session policy (:func:`runbooks.iam_policy.session_policy`). See docs/operators.md.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

import botocore.client
import botocore.signers

from .aws import CREDENTIAL_NAMES, ReadOnlyViolation, is_read_operation

_lock = threading.Lock()
_holders = 0  # open runs that enforce
_originals: dict[str, Any] = {}  # what was there when the guard went in (kept: a replacement left in passes through)
_exempt: weakref.WeakSet[Any] = weakref.WeakSet()  # clients and their request signers
PRESIGN_METHODS = ("GET", "HEAD")


class GuardRemoved(ReadOnlyViolation):
    """Step code put botocore's original method back while the run was read-only."""

    def __init__(self, what: str) -> None:
        self.service, self.operation = "botocore", what
        Exception.__init__(self, f"refused: the read-only guard on {what} was removed by code in this process "
                                 "(put back now); writes made meanwhile were not refused")


def _refusal(service: str, operation: str) -> ReadOnlyViolation | None:
    if operation in CREDENTIAL_NAMES or not is_read_operation(operation):
        return ReadOnlyViolation(service, operation)
    return None


def _make_api_call(self: Any, operation_name: str, api_params: Any) -> Any:
    if _holders and self not in _exempt:
        refused = _refusal(self.meta.service_model.service_name, operation_name)
        if refused is not None:
            raise refused
    return _originals["_make_api_call"](self, operation_name, api_params)


def _sign(self: Any, operation_name: str, request: Any, region_name: Any = None, signing_type: str = "standard",
          *args: Any, **kwargs: Any) -> Any:
    if _holders and self not in _exempt:
        service = self._service_id.hyphenize()
        refused = _refusal(service, operation_name)
        if refused is None and signing_type != "standard" and str(request.method).upper() not in PRESIGN_METHODS:
            refused = ReadOnlyViolation(service, f"{operation_name} presigned for {request.method}")
        if refused is not None:
            raise refused
    return _originals["sign"](self, operation_name, request, region_name, signing_type, *args, **kwargs)


_REPLACEMENTS: dict[str, tuple[type, Any]] = {
    "_make_api_call": (botocore.client.BaseClient, _make_api_call),
    "sign": (botocore.signers.RequestSigner, _sign),
}


def enforce() -> None:
    """A run that must stay read-only opens: guard every client in the process until :func:`release`."""
    global _holders
    with _lock:
        if not _holders:
            for name, (owner, replacement) in _REPLACEMENTS.items():
                if owner.__dict__.get(name) is not replacement:
                    _originals[name] = owner.__dict__[name]
                    setattr(owner, name, replacement)
        _holders += 1


def release() -> None:
    """The run ends; the last one to end puts botocore's methods back (unless something patched them since)."""
    global _holders
    with _lock:
        _holders = max(0, _holders - 1)
        if _holders:
            return
        for name, (owner, replacement) in _REPLACEMENTS.items():
            if owner.__dict__.get(name) is replacement:
                setattr(owner, name, _originals[name])


def active() -> bool:
    return _holders > 0


def check_installed() -> None:
    """Raise :class:`GuardRemoved` (after re-installing) when botocore's original method was put back
    during a run. A patch stacked on top that calls through (a test's recorder) is left alone."""
    if not _holders:
        return
    removed = []
    with _lock:
        for name, (owner, replacement) in _REPLACEMENTS.items():
            if owner.__dict__.get(name) is _originals.get(name):
                setattr(owner, name, replacement)
                removed.append(f"{owner.__name__}.{name}")
    if removed:
        raise GuardRemoved(", ".join(removed))


def exempt(client: Any) -> Any:
    """``client`` is not guarded by the process-wide guard (its own ``before-call`` handlers still apply).

    For the engine's AssumeRole client and for test fixtures that provision a server during a run.
    Step code that uses it bypasses the in-process guard on purpose; a role's session policy still holds.
    """
    _exempt.add(client)
    _exempt.add(client._request_signer)
    return client
