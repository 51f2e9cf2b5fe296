"""The HTTP target: services by name (``[environments.NAME.services]``) and one requests session per run.

Every request is bounded in time and size: its timeout is a wall-clock bound on connecting, the headers and
the whole body together (requests' own timeout bounds each read, which a server trickling its body never
reaches), cut further by the step's deadline (:mod:`runbooks.deadlines`), and its body is read as it
arrives, up to the service's ``max_body_bytes``.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..deadlines import Deadline
from ..deadlines import current as current_deadline
from ..faults import CouldNotCheck, Fault, FaultKind, UnknownName
from ..names import did_you_mean
from . import Target, Where, register

if TYPE_CHECKING:
    import requests

    from ..config import Environment
    from ..resources import Resources

_SERVICE_KEYS = {"url", "verify_tls", "timeout_s", "headers", "max_body_bytes"}
DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024  # a health or metrics page is far smaller; a larger body is not read
CHUNK_BYTES = 64 * 1024


@dataclass(frozen=True)
class ServiceSettings:
    name: str
    url: str
    verify_tls: bool | str = True
    timeout_s: float = 10.0
    headers: dict[str, str] = field(default_factory=dict)  # values may use ${ENV_VAR}; they are treated as secrets
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES


def expand_env(value: str) -> str:
    """``${NAME}`` from the process environment: secrets stay out of runbooks.toml. KeyError if unset:
    an empty token would send an unauthenticated request and report the 401 as drift."""
    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: os.environ[m.group(1)], value)


def _value_problem(value: dict[str, Any]) -> str | None:
    """What is wrong with a service's timeout_s or verify_tls (checked when the file loads, not when a step runs)."""
    timeout = value.get("timeout_s", 10.0)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout < math.inf:
        return f"timeout_s must be a number of seconds above 0, got {timeout!r}"
    verify = value.get("verify_tls", True)
    if isinstance(verify, bool):
        return None
    if not isinstance(verify, str) or not verify:
        return f"verify_tls must be true, false or the path of a CA bundle, got {verify!r}"
    if not os.path.exists(verify):  # as requests will read it: relative to the working folder, no ~
        return f"verify_tls: CA bundle {verify!r} not found"
    return None


def parse_services(raw: dict[str, Any] | None, where: Where) -> dict[str, ServiceSettings]:
    services: dict[str, ServiceSettings] = {}
    for service, value in (raw or {}).items():
        if isinstance(value, str):
            value = {"url": value}
        if not isinstance(value, dict) or "url" not in value or set(value) - _SERVICE_KEYS:
            raise where.error(f"service {service!r} must be a URL or a table with {', '.join(sorted(_SERVICE_KEYS))}",
                              "services", service)
        if not isinstance(value["url"], str) or not re.match(r"^https?://", value["url"]):
            raise where.error(f"service {service!r} URL must start with http:// or https://", "services", service)
        problem = _value_problem(value)
        if problem:
            raise where.error(f"service {service!r}: {problem}", "services", service)
        limit = value.get("max_body_bytes", DEFAULT_MAX_BODY_BYTES)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise where.error(f"service {service!r}: max_body_bytes must be a whole number of bytes above 0, "
                              f"got {limit!r}", "services", service)
        headers = value.get("headers", {})
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
            raise where.error(f"service {service!r} headers must be a table of strings", "services", service)
        try:
            value = {**value, "headers": {k: expand_env(v) for k, v in headers.items()}}
        except KeyError as exc:
            raise where.error(f"service {service!r} header uses ${{{exc.args[0]}}}, which is not set in the "
                              "environment of this run", "services", service) from None
        services[service] = ServiceSettings(name=service, **value)
    return services


@register
class HttpTarget(Target):
    """The environment's services, plus those the run provides (the sandbox's reference API)."""

    name = "http"
    section = "services"

    def __init__(self, env: Environment, resources: Resources) -> None:
        super().__init__(env, resources)
        self.services: dict[str, ServiceSettings] = dict(env.services)
        self._session: requests.Session | None = None

    @classmethod
    def parse(cls, raw: Any, where: Where) -> dict[str, ServiceSettings]:
        return parse_services(raw, where)

    def provide(self, name: str, url: str) -> None:
        """A service the run started itself (the sandbox's API on a free port)."""
        self.services[name] = ServiceSettings(name=name, url=url)

    def service(self, name: str) -> ServiceSettings:
        try:
            return self.services[name]
        except KeyError:
            raise UnknownName(
                f"service {name!r} is not defined by environment {self.env.name!r}"
                + did_you_mean(name, self.services, known="defined")
            ) from None

    @property
    def session(self) -> requests.Session:
        if self._session is None:
            import requests

            from .. import __version__

            self._session = requests.Session()
            self._session.headers["User-Agent"] = f"runbooks/{__version__}"
        return self._session

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", url, **kwargs)

    def request(self, method: str, url: str, *, timeout: float | tuple[float, float] | None = None,
                max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, **kwargs: Any) -> requests.Response:
        """One request (no retries), its body read (``.content``/``.text`` as usual), bounded in time and size.

        ``timeout`` (seconds, or ``(connect, total)``) bounds connecting, the headers and the whole body
        together, and the step's deadline cuts it further; a server that trickles its status line and
        headers is bounded per read only (requests gives no hold on the socket before the headers end).
        Running out of it raises requests' ``ReadTimeout`` (``ConnectTimeout`` while connecting), or
        :class:`~runbooks.deadlines.DeadlineReached` when the step's deadline is what ran out. A body over
        ``max_body_bytes`` (by ``Content-Length``, or as it arrives) raises :class:`ResponseTooLarge` without
        being read further."""
        import requests

        deadline = current_deadline()
        if deadline is not None:
            deadline.attempt()  # DeadlineReached when the step has no time left
        connect, total = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        clock = _Clock(total, deadline)
        try:
            response = self.session.request(method, url, timeout=clock.timeouts(connect), stream=True, **kwargs)
        except requests.exceptions.Timeout as exc:
            clock.check(exc)
            raise
        try:
            # requests keeps a read body in _content: .content/.text then answer from it, as after a plain get
            response._content = _read_body(response, clock, max_body_bytes)
            response._content_consumed = True
        except BaseException:
            response.close()  # the rest of the body is never read: the connection is dropped, not pooled
            raise
        return response

    def close(self) -> None:
        if self._session is not None:
            self._session.close()


class ResponseTooLarge(CouldNotCheck):
    """A response body over the service's ``max_body_bytes``: not read further, so nothing of it is checked."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(Fault.of(
            FaultKind.SERVICE_ERROR, f"response body larger than {limit} bytes",
            "check the path (a health or metrics page is small); if the body is meant to be that large, raise "
            "max_body_bytes for this service in runbooks.toml"))


class _Clock:
    """The wall-clock bounds of one request: its total timeout and the step's deadline, whichever ends first."""

    def __init__(self, total: float | None, deadline: Deadline | None) -> None:
        self.total = total
        self.ends = time.monotonic() + total if total else None
        self.deadline = deadline

    def left(self) -> float | None:
        ends = [e for e in (self.ends, self.deadline.expires if self.deadline else None) if e is not None]
        return max(min(ends) - time.monotonic(), 0.001) if ends else None

    def timeouts(self, connect: float | None) -> tuple[float | None, float | None]:
        left = self.left()
        if left is None:
            return connect, None
        return (left if connect is None else min(connect, left)), left

    def check(self, cause: BaseException | None = None) -> None:
        """Raise when time is up: the deadline's error if it ended first, else requests' ``ReadTimeout``."""
        import requests

        now = time.monotonic() + (0.01 if cause is not None else 0)  # a socket timeout may fire a hair early
        deadline = self.deadline
        if deadline is not None and deadline.expires <= now and (self.ends is None or deadline.expires <= self.ends):
            raise deadline.reached() from cause
        if cause is None and self.ends is not None and self.ends <= now:  # with a cause the caller raises it
            raise requests.exceptions.ReadTimeout(f"no complete answer within {self.total:g} s")

    def bound_socket(self, response: requests.Response) -> None:
        """The socket's timeout for the next read: the time left (each read, not only the first, is bounded)."""
        left = self.left()
        sock = getattr(getattr(response.raw, "connection", None), "sock", None)
        if left is not None and sock is not None:
            with contextlib.suppress(OSError):  # a socket closed meanwhile: the read itself will say so
                sock.settimeout(left)


def _read_body(response: requests.Response, clock: _Clock, limit: int) -> bytes:
    """The body as it arrives, chunk by chunk (``read1``: what is there, not a full buffer), within the clock
    and the size limit; errors as requests' own reading raises them."""
    import requests
    from urllib3.exceptions import DecodeError, ProtocolError, ReadTimeoutError, SSLError

    length = response.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > limit:
        raise ResponseTooLarge(limit)
    body = bytearray()
    while True:
        clock.check()
        clock.bound_socket(response)
        try:
            chunk = response.raw.read1(CHUNK_BYTES, decode_content=True)
        except (ReadTimeoutError, TimeoutError) as exc:
            clock.check(exc)
            raise requests.exceptions.ReadTimeout(exc) from exc
        except ProtocolError as exc:
            raise requests.exceptions.ChunkedEncodingError(exc) from exc
        except DecodeError as exc:
            raise requests.exceptions.ContentDecodingError(exc) from exc
        except SSLError as exc:
            raise requests.exceptions.SSLError(exc) from exc
        if not chunk:
            return bytes(body)
        body += chunk
        if len(body) > limit:
            raise ResponseTooLarge(limit)
