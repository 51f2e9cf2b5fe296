"""A read-only JSON HTTP API named by one URL in an environment's section: the base of the Prometheus
and Alertmanager targets.

The section (``[environments.NAME.prometheus]``, ...) is a table: ``url`` (the server's base URL, with
its path prefix if it has one), ``verify_tls`` (false, or a CA bundle path), ``timeout_s`` and ``headers``
(values may use ``${ENV_VAR}``; they are credentials and masked in every report). It is read into the
HTTP target's :class:`ServiceSettings`, so manual commands ask with the same trust and headers.

Only GET is ever sent: the write endpoints of these servers (silences, admin, reload) are never called.
Every way a read can fail is an :class:`ApiUnavailable` (a :class:`CouldNotCheck`) whose reason names the
server and what went wrong: an ERROR, never a FAIL.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from ..faults import CouldNotCheck, Fault, FaultKind
from ..names import did_you_mean
from . import Target, Where
from .http import DEFAULT_MAX_BODY_BYTES, HttpTarget, ServiceSettings, expand_env

if TYPE_CHECKING:
    import requests

    from ..config import Environment

API_KEYS = ("url", "verify_tls", "timeout_s", "headers", "max_body_bytes")
EXCERPT = 160


class ApiUnavailable(CouldNotCheck):
    """The server could not answer a read: unreachable, timed out, refused the request, or not its API."""

    def __init__(self, fault: Fault, status: int | None = None, message: str = "") -> None:
        super().__init__(fault)
        self.status = status  # the HTTP status when there was an answer
        self.message = message  # the server's own error message (e.g. a PromQL parse error)


def parse_api(raw: Any, where: Where, section: str, product: str) -> ServiceSettings | None:
    """``[environments.NAME.<section>]`` as ServiceSettings (None when the environment has no such section)."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise where.error(f"{section} must be a table with {', '.join(API_KEYS)}", "", section)
    for key in raw:
        if key not in API_KEYS:
            raise where.error(f"unknown {section} key {key!r}" + did_you_mean(key, API_KEYS), section, key)
    url = raw.get("url")
    if not isinstance(url, str) or not re.match(r"^https?://[^/\s]", url):
        raise where.error(f"{section}.url must be the {product} URL, starting with http:// or https://",
                          section, "url")
    verify = raw.get("verify_tls", True)
    if not isinstance(verify, bool | str):
        raise where.error(f"{section}.verify_tls must be true, false or the path of a CA bundle", section,
                          "verify_tls")
    timeout = raw.get("timeout_s", 10.0)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise where.error(f"{section}.timeout_s must be a number of seconds above 0", section, "timeout_s")
    limit = raw.get("max_body_bytes", DEFAULT_MAX_BODY_BYTES)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise where.error(f"{section}.max_body_bytes must be a whole number of bytes above 0", section,
                          "max_body_bytes")
    headers = raw.get("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise where.error(f"{section}.headers must be a table of strings", section, "headers")
    try:
        expanded = {k: expand_env(v) for k, v in headers.items()}
    except KeyError as exc:
        raise where.error(f"{section} header uses ${{{exc.args[0]}}}, which is not set in the environment of "
                          "this run", section, "headers") from None
    return ServiceSettings(name=section, url=url.rstrip("/"), verify_tls=verify, timeout_s=float(timeout),
                           headers=expanded, max_body_bytes=limit)


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= EXCERPT else text[:EXCERPT] + "..."


class JsonApiTarget(Target):
    """A server read through its JSON API. Subclasses set ``name``, ``section``, ``product``,
    ``capabilities`` and add the reads their steps need."""

    product: ClassVar[str]  # "Prometheus", "Alertmanager": how reasons name the server

    @classmethod
    def parse(cls, raw: Any, where: Where) -> ServiceSettings | None:
        return parse_api(raw, where, cls.section, cls.product)

    @classmethod
    def can(cls, env: Environment, capability: str) -> bool:
        return getattr(env, cls.section, None) is not None

    @classmethod
    def secrets(cls, env: Environment) -> Iterable[str]:
        """Header values (tokens) and credentials in the URL: masked in every output."""
        from ..redact import header_secrets, url_secrets

        settings: ServiceSettings | None = getattr(env, cls.section, None)
        if settings is None:
            return ()
        return {form for v in settings.headers.values() for form in header_secrets(v)} | url_secrets(settings.url)

    @property
    def settings(self) -> ServiceSettings:
        """The server's settings; ``CouldNotCheck`` (no target) when the environment declares none."""
        settings: ServiceSettings | None = getattr(self.env, self.section, None)
        if settings is None:
            raise CouldNotCheck(Fault.of(
                FaultKind.NO_TARGET,
                f"environment {self.env.name!r} declares no {self.product} "
                f"([environments.{self.env.name}.{self.section}] url)",
                f"declare url under [environments.{self.env.name}.{self.section}] in runbooks.toml, or tag the "
                f"scenario @requires:{self.section} so that environments without one skip it"))
        return settings

    def url(self, path: str) -> str:
        return self.settings.url + path

    def _transport(self) -> HttpTarget:
        """The HTTP target's bounded requests (time, body size, the step's deadline) on a session of its own."""
        transport: HttpTarget = self.resources.get(("api", self.name), lambda: HttpTarget(self.env, self.resources),
                                                   close=lambda t: t.close())
        return transport

    def get_json(self, path: str, params: dict[str, str] | None = None) -> Any:
        """GET ``path`` (below the server's URL) and return its JSON; ``ApiUnavailable`` for anything else
        (a body over ``max_body_bytes`` and the step's deadline raise the HTTP target's own faults)."""
        import requests

        settings = self.settings
        url = self.url(path)
        try:
            response = self._transport().request(
                "GET", url, params=params, headers=settings.headers, verify=settings.verify_tls,
                timeout=(min(5.0, settings.timeout_s), settings.timeout_s), max_body_bytes=settings.max_body_bytes,
                allow_redirects=False)
        except requests.RequestException as exc:
            raise ApiUnavailable(self._request_fault(exc, url)) from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code == 200 and body is not None:
            return body
        raise self._answer_error(response.status_code, path, body, response)

    def _request_fault(self, exc: BaseException, url: str) -> Fault:
        import requests

        where = f"{self.product} at {self.settings.url}"
        check = f"check that {self.product} is running and that [environments.{self.env.name}.{self.section}] url " \
                "points at it (network, VPN, proxy)"
        if isinstance(exc, requests.exceptions.SSLError):
            return Fault.of(FaultKind.CONNECTION, f"TLS error talking to {where}: {exc}",
                            f"fix the server's certificate chain, or set verify_tls of [environments.{self.env.name}."
                            f"{self.section}] to the CA bundle that signs it")
        if isinstance(exc, requests.exceptions.Timeout) or "timed out" in str(exc).lower():
            return Fault.of(FaultKind.TIMEOUT, f"{where} did not answer within {self.settings.timeout_s:g} s "
                            "(timeout)", check)
        if isinstance(exc, requests.exceptions.ConnectionError):
            reason = "connection refused" if "refused" in str(exc).lower() else f"connection failed: {exc}"
            return Fault.of(FaultKind.CONNECTION, f"cannot reach {where}: {reason}", check)
        return Fault.of(FaultKind.CLIENT_ERROR, f"request to {url} failed: {exc}", check)

    def _answer_error(self, status: int, path: str, body: Any, response: requests.Response) -> ApiUnavailable:
        message = ""
        if isinstance(body, dict):  # Prometheus: {"status": "error", "errorType": ..., "error": ...}
            message = ": ".join(str(body[k]) for k in ("errorType", "error") if body.get(k))
        elif isinstance(body, str):  # Alertmanager v2 answers a JSON string
            message = body
        shown = message or _excerpt(response.text) or "(empty body)"
        where = f"{self.product} at {self.settings.url}"
        section = f"[environments.{self.env.name}.{self.section}]"
        if status == 200:
            fault = Fault.of(FaultKind.SERVICE_ERROR,
                             f"{where} answered {path} with something that is not JSON "
                             f"({response.headers.get('Content-Type') or 'no Content-Type'}): {shown}",
                             f"check that url of {section} is the {self.product} API itself (not a proxy's login "
                             "page)")
        elif status in (401, 403):
            fault = Fault.of(FaultKind.ACCESS_DENIED, f"{where} refused {path}: HTTP {status}: {shown}",
                             f"set the credentials the server expects in headers of {section} "
                             "(e.g. Authorization = \"Bearer ${TOKEN}\")")
        elif 300 <= status < 400:
            fault = Fault.of(FaultKind.CLIENT_ERROR,
                             f"{where} redirects {path} to {response.headers.get('Location', '?')} (HTTP {status})",
                             f"set url of {section} to the address where the API answers (a login redirect "
                             "means the credentials are missing)")
        elif status == 404:
            fault = Fault.of(FaultKind.CLIENT_ERROR, f"{where} has no {path} (HTTP 404)",
                             f"check url of {section}: the server's base URL, with its path prefix if it has one "
                             f"(e.g. https://host/{self.section})")
        elif 400 <= status < 500:
            fault = Fault.of(FaultKind.CLIENT_ERROR, f"{where} refused the request: {shown}",
                             "fix the request in the runbook step as the server's message says")
        else:
            fault = Fault.of(FaultKind.SERVICE_ERROR, f"{where} failed to answer {path}: HTTP {status}: {shown}")
        return ApiUnavailable(fault, status, message)
