"""Why a check could not check: one classification from exception to (kind, reason, hint).

Every "could not check" path — the engine's catch-all around a step, a fleet step judging one resource,
a step that keeps going after one read failed — asks :func:`classify` and gets the same answer. A
:class:`Fault` is never a verdict about the infrastructure: it always becomes an ERROR.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass


class FaultKind(enum.StrEnum):
    ACCESS_DENIED = "access-denied"  # the identity lacks a permission
    CREDENTIALS_REJECTED = "credentials-rejected"  # expired, invalid or mis-signed credentials
    NO_CREDENTIALS = "no-credentials"  # none found, incomplete, or an unknown profile
    THROTTLED = "throttled"
    TIMEOUT = "timeout"
    CONNECTION = "connection"  # refused, reset, DNS
    SERVICE_ERROR = "service-error"  # 5xx / InternalError from the target
    MALFORMED_RESPONSE = "malformed-response"  # a 2xx that is not the expected document (HTML, empty, garbage)
    READ_ONLY = "read-only"  # a check asked for a mutation; the request was never sent
    NOT_IMPLEMENTED = "not-implemented"  # a stub target cannot answer this operation
    NO_TARGET = "no-target"  # the environment declares no target of this kind
    UNKNOWN_NAME = "unknown-name"  # a service/host/container the environment does not declare
    CLIENT_ERROR = "client-error"  # a library error that is not one of the above
    DEFECT = "defect"  # an exception nobody expected: a bug in the check or the target


HINTS: dict[FaultKind, str] = {
    FaultKind.ACCESS_DENIED: "grant the read permission named above to the identity running the checks "
    "(see `runbooks iam-policy`)",
    FaultKind.CREDENTIALS_REJECTED: "refresh or fix the credentials of this environment "
    "(expired session, wrong key or clock skew)",
    FaultKind.NO_CREDENTIALS: "configure AWS credentials for this environment (profile, environment variables or role)",
    FaultKind.READ_ONLY: "checks must only read; use a Describe/Get/List call",
    FaultKind.THROTTLED: "re-run later or lower concurrency; botocore already retried in adaptive mode",
    FaultKind.TIMEOUT: "check network access to the endpoint (VPN, proxy, security groups) and that it is up",
    FaultKind.CONNECTION: "check network access to the endpoint (VPN, proxy, security groups) and that it is up",
    FaultKind.NOT_IMPLEMENTED: "verify this fact against a real environment; the stub cannot answer it",
    FaultKind.UNKNOWN_NAME: "declare it in runbooks.toml for this environment",
    FaultKind.NO_TARGET: "declare the target for this environment in runbooks.toml",
    FaultKind.SERVICE_ERROR: "the service could not answer; re-run later, and check the service's health",
    FaultKind.MALFORMED_RESPONSE: "something that is not the service answered (a proxy, captive portal or load "
    "balancer?): check the endpoint URL, HTTPS_PROXY and the network path, then re-run",
    FaultKind.CLIENT_ERROR: "this is a defect in the check or the target; re-run with -v and report it",
    FaultKind.DEFECT: "this is a defect in the check or the target; re-run with -v and report it",
}


@dataclass(frozen=True)
class Fault:
    """What stopped a check: its kind, a one-line reason naming the fault, and what to do about it."""

    kind: FaultKind
    reason: str
    hint: str = ""

    @classmethod
    def of(cls, kind: FaultKind, reason: str, hint: str | None = None) -> Fault:
        return cls(kind, reason, HINTS[kind] if hint is None else hint)


class CouldNotCheck(Exception):
    """Raised by a target or a step: the fact could not be read. Always an ERROR, never a FAIL."""

    def __init__(self, fault: Fault) -> None:
        super().__init__(fault.reason)
        self.fault = fault


class UnknownName(CouldNotCheck):
    """A step names a service/host/container the environment does not declare."""

    def __init__(self, message: str) -> None:
        super().__init__(Fault.of(FaultKind.UNKNOWN_NAME, message))

    @property
    def message(self) -> str:
        return self.fault.reason


Classifier = Callable[[BaseException, str], "Fault | None"]
_CLASSIFIERS: list[Classifier] = []


def register_classifier(func: Classifier) -> Classifier:
    """Targets teach the classification their library's exceptions (botocore, requests, docker)."""
    if func not in _CLASSIFIERS:
        _CLASSIFIERS.append(func)
    return func


def classify(exc: BaseException, target: str = "aws") -> Fault:
    """The fault behind ``exc``: a registered target's reading of it, else a defect."""
    if isinstance(exc, CouldNotCheck):
        return exc.fault
    for classifier in _CLASSIFIERS:
        fault = classifier(exc, target)
        if fault is not None:
            return fault
    return Fault.of(FaultKind.DEFECT, f"{type(exc).__name__}: {exc}")
