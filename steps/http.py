"""HTTP services named per environment: requests and their responses, Prometheus metrics, TLS certificates.

``When I GET`` stores the response in the scenario; the ``the response ...`` steps read it. The metric
steps, which read the service's ``/metrics`` page, are in steps/metrics.py. All requests use the run's session with the
service's ``timeout_s`` (a bound on the whole exchange, body included), ``max_body_bytes`` and ``verify_tls``
settings, within the step's deadline.
"""

from __future__ import annotations

import shlex
import ssl
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from runbooks.sdk import CheckContext, CheckResult, CouldNotCheck, DeadlineReached, Finding, ServiceSettings, check

from ._jsonpointer import jq_path, json_kind, json_text, load_json, resolve_pointer, validate_pointer
from ._shared import EXCERPT_CHARS, excerpt
from ._tls import peer_not_after, unverified_context

if TYPE_CHECKING:  # requests is imported when a step sends one: a run without HTTP services never needs it
    import requests

TITLE = "HTTP services"  # its heading in the step catalogue
CATALOG_ORDER = 80

BODY_EXCERPT = EXCERPT_CHARS
RESPONSE_KEY = "http.response"  # ctx.scenario.values: the last StoredResponse, or None after a failed GET
RESPONSE_ERROR_KEY = "http.response_error"  # ...and why that GET got no answer
NO_RESPONSE = "no response: add `When I GET ...` before this step"
# The metric steps moved to steps/metrics.py; these names stay importable from here.
_MOVED = ("metric_below", "metric_ratio_below", "MetricsPage", "metrics_page", "number", "series")


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        from . import metrics

        return getattr(metrics, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def service_url(ctx: CheckContext, service: str, path: str) -> str:
    return ctx.service(service).url.rstrip("/") + "/" + path.lstrip("/")


def curl_base(settings: ServiceSettings) -> str:
    """``curl -sS`` with the service's TLS trust and headers, so that a manual command asks what the check
    asked. Header values are credentials: only their names are shown (``-H 'Authorization: ***'``)."""
    if isinstance(settings.verify_tls, str):
        parts = ["curl -sS --cacert", shlex.quote(settings.verify_tls)]
    else:
        parts = ["curl -sS -k" if settings.verify_tls is False else "curl -sS"]
    parts += [f"-H {shlex.quote(name + ': ***')}" for name in settings.headers]
    return " ".join(parts)


def _timeouts(settings: ServiceSettings) -> tuple[float, float]:
    return (min(5.0, settings.timeout_s), settings.timeout_s)


def _ssl_reason(exc: BaseException) -> str:
    """The innermost ssl error's reason (e.g. 'certificate has expired'), found through the exception chain."""
    seen: set[int] = set()
    stack: list[Any] = [exc]
    while stack:
        current = stack.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return f"certificate verify failed: {current.verify_message}"
        if isinstance(current, ssl.SSLError):
            return str(current.reason or current).lower().replace("_", " ")
        stack.extend([current.__cause__, current.__context__, *current.args, getattr(current, "reason", None)])
    return str(exc)


def request_error(exc: requests.RequestException, url: str, settings: ServiceSettings, manual: str
                  ) -> CheckResult:
    """ERROR for a request that got no HTTP answer: TLS failure, timeout, refused or other connection trouble."""
    import requests

    if isinstance(exc, requests.exceptions.SSLError):
        trust = f"the CA bundle {settings.verify_tls}" if isinstance(settings.verify_tls, str) else "the system CAs"
        return CheckResult.errored(
            url, f"TLS error: {_ssl_reason(exc)} (verified against {trust})",
            "fix the certificate chain on the server, or point verify_tls for this service in runbooks.toml "
            "at the CA bundle that signs it", manual_command=manual)
    if isinstance(exc, requests.exceptions.Timeout) or "timed out" in str(exc).lower():
        return CheckResult.errored(url, f"no answer within {settings.timeout_s:g} s (timeout)",
                                   "check that the service is up and reachable from here", manual_command=manual)
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason = "connection refused" if "refused" in str(exc).lower() else f"connection failed: {exc}"
        return CheckResult.errored(url, reason, "check that the service is running and the URL/port is right",
                                   manual_command=manual)
    return CheckResult.errored(url, f"request failed: {exc}", "check the service URL in runbooks.toml",
                               manual_command=manual)


@dataclass(frozen=True)
class Answer:
    """One GET that got an HTTP answer, with what a manual command needs to repeat it."""

    url: str
    curl: str  # curl_base of the service
    manual: str  # the manual command of the step that asked
    response: requests.Response
    elapsed_ms: float


def _get(ctx: CheckContext, service: str, path: str, options: str = "") -> Answer:
    """GET the service's path once (no retries, redirects not followed) with its timeout, trust and headers;
    the time runs from sending to having read the body. ``Finding`` with an ERROR when no answer arrives
    (refused, DNS, TLS, timeout); ``options`` go into the manual command between curl and the URL."""
    import requests

    settings = ctx.service(service)
    url = service_url(ctx, service, path)
    curl = curl_base(settings)
    manual = f"{curl}{' ' + options if options else ''} {shlex.quote(url)}"  # '&', '(' in a URL are shell syntax
    started = time.perf_counter()
    try:
        response = ctx.http.get(url, timeout=_timeouts(settings), max_body_bytes=settings.max_body_bytes,
                                verify=settings.verify_tls, allow_redirects=False,
                                headers=settings.headers)
    except requests.RequestException as exc:
        raise Finding(request_error(exc, url, settings, manual)) from None
    except DeadlineReached:
        raise  # the step's time, not the service's answer: never remembered for a later step (metrics_page)
    except CouldNotCheck as exc:  # a body over max_body_bytes
        raise Finding(CheckResult.errored(url, exc.fault.reason, exc.fault.hint, manual_command=manual)) from None
    return Answer(url, curl, manual, response, (time.perf_counter() - started) * 1000)


@check(
    'the service "{service}" answers GET "{path}" with status {status:d} within {ms:d} ms',
    manual="curl -sS -o /dev/null -w '%{{http_code}} %{{time_total}}s\\n' <{service} URL>{path}",
)
def service_answers(ctx: CheckContext, service: str, path: str, status: int, ms: int) -> CheckResult:
    """GET the path once (no retries: a retry would hide the latency being measured). FAIL on another
    status or a slower answer; ERROR when no answer arrives (refused, DNS, TLS, timeout)."""
    expected = f"HTTP {status} within {ms} ms"
    answer = _get(ctx, service, path, "-o /dev/null -w '%{http_code} %{time_total}s\\n'")
    url, manual, response, took = answer.url, answer.manual, answer.response, answer.elapsed_ms
    observed = f"HTTP {response.status_code} in {took:.0f} ms"
    if response.status_code != status:
        body = excerpt(response.text)
        return CheckResult.failed(
            url, expected, f"{observed}{': ' + body if body else ''}",
            f"{service} is not answering {path} as expected: check its logs and the dependencies its "
            "response names; roll back if this started with a deployment",
            manual_command=manual,
        )
    if took > ms:
        return CheckResult.failed(url, expected, observed,
                                  f"{service} is slow: check its latency metrics, saturation and downstream calls",
                                  manual_command=manual)
    return CheckResult.passed(url, expected, observed, manual_command=manual)


# --- one request, then checks on its response ----------------------------------------------------------


@dataclass(frozen=True)
class StoredResponse:
    """What ``When I GET`` keeps for the scenario's later steps."""

    service: str
    url: str
    status: int
    elapsed_ms: float
    text: str
    content_type: str
    curl: str  # "curl -sS" with this service's TLS options, for the manual commands

    def manual(self, options: str = "", pipe: str = "") -> str:
        url = shlex.quote(self.url)
        return f"{self.curl}{' ' + options if options else ''} {url}{' | ' + pipe if pipe else ''}"


@check(
    'I GET "{path}" from "{service}"',
    manual="curl -sS -i <{service} URL>{path}",
)
def http_get(ctx: CheckContext, path: str, service: str) -> CheckResult:
    """GET the path once (no retries, redirects not followed) and keep the response and its time for the
    scenario's ``the response ...`` steps. PASS when any HTTP answer arrives, whatever its status;
    ERROR when none does (refused, timeout, TLS failure)."""
    ctx.scenario.values[RESPONSE_KEY] = None  # a failed GET must not leave an earlier response to be checked
    try:
        answer = _get(ctx, service, path, "-i")
    except Finding as exc:
        url, reason = exc.result.resource, exc.result.observed
        ctx.scenario.values[RESPONSE_ERROR_KEY] = f"no response: GET {url} got no answer ({reason})"
        raise
    except DeadlineReached as exc:
        url = service_url(ctx, service, path)
        ctx.scenario.values[RESPONSE_ERROR_KEY] = f"no response: GET {url} got no answer ({exc.fault.reason})"
        raise
    response = answer.response
    stored = StoredResponse(service, answer.url, response.status_code, answer.elapsed_ms, response.text,
                            response.headers.get("Content-Type", ""), answer.curl)
    ctx.scenario.values[RESPONSE_KEY] = stored
    ctx.scenario.values.pop(RESPONSE_ERROR_KEY, None)
    return CheckResult.passed(answer.url, "an HTTP answer",
                              f"HTTP {stored.status} in {answer.elapsed_ms:.0f} ms ({len(response.content)} bytes)",
                              manual_command=answer.manual)


def last_response(ctx: CheckContext) -> StoredResponse:
    """The response of the scenario's last ``When I GET``; ends the check with ERROR when there is none."""
    stored = ctx.scenario.values.get(RESPONSE_KEY)
    if isinstance(stored, StoredResponse):
        return stored
    failed = ctx.scenario.values.get(RESPONSE_ERROR_KEY)
    if failed:
        raise Finding(CheckResult.errored("last HTTP response", failed,
                                          "make the service answer first: see the ERROR of the GET step"))
    raise Finding(CheckResult.errored("last HTTP response", NO_RESPONSE,
                                      "put `When I GET \"<path>\" from \"<service>\"` earlier in the same scenario"))


@check('the response status is {status:d}', manual="curl -sS -o /dev/null -w '%{{http_code}}\\n' <URL>")
def response_status(ctx: CheckContext, status: int) -> CheckResult:
    """The status code of the scenario's last ``When I GET`` response (redirects are not followed, so a
    3xx is seen as such)."""
    stored = last_response(ctx)
    expected = f"HTTP {status}"
    manual = stored.manual("-o /dev/null -w '%{http_code}\\n'")
    if stored.status == status:
        return CheckResult.passed(stored.url, expected, f"HTTP {stored.status}", manual_command=manual)
    body = excerpt(stored.text)
    return CheckResult.failed(
        stored.url, expected, f"HTTP {stored.status}{': ' + body if body else ''}",
        f"{stored.service} answered differently: check its logs and the dependencies its response names; "
        "roll back if this started with a deployment", manual_command=manual)


@check('the response arrives within {ms:d} ms', manual="curl -sS -o /dev/null -w '%{{time_total}}s\\n' <URL>")
def response_within(ctx: CheckContext, ms: int) -> CheckResult:
    """The scenario's last ``When I GET`` took at most this long, measured from sending the request to
    having read the whole body."""
    stored = last_response(ctx)
    expected = f"within {ms} ms"
    observed = f"{stored.elapsed_ms:.0f} ms"
    manual = stored.manual("-o /dev/null -w '%{time_total}s\\n'")
    if stored.elapsed_ms <= ms:
        return CheckResult.passed(stored.url, expected, observed, manual_command=manual)
    return CheckResult.failed(
        stored.url, expected, observed,
        f"{stored.service} is slow: check its latency metrics, saturation and downstream calls",
        manual_command=manual)


@check(
    'the response JSON at "{pointer}" is "{value}"',
    manual="curl -sS <URL> | jq '<path of {pointer}>'",
    validators={"pointer": validate_pointer},
)
def response_json_at(ctx: CheckContext, pointer: str, value: str) -> CheckResult:
    """The JSON body of the scenario's last ``When I GET`` has this value at the JSON Pointer (RFC 6901,
    e.g. ``/checks/dynamodb``; ``~1`` is a '/' and ``~0`` a '~' inside a name). Compared as text: a
    string as it is, a number as written in the body, ``true``/``false``/``null``. FAIL when the body
    is not JSON or has nothing at the pointer."""
    stored = last_response(ctx)
    expected = f'{pointer or "the document"} is "{value}"'
    manual = stored.manual(pipe="jq " + shlex.quote(jq_path(pointer)))
    try:
        document = load_json(stored.text)
    except ValueError:
        return CheckResult.failed(
            stored.url, expected,
            f"the body is not JSON (Content-Type {stored.content_type or 'not set'}): {excerpt(stored.text)!r}",
            f"{stored.service} did not answer with JSON: check the path and that the request reached the "
            "service (not a proxy or error page)", manual_command=manual)
    try:
        found = resolve_pointer(document, pointer)
    except LookupError as exc:
        return CheckResult.failed(stored.url, expected, f"nothing at {pointer}: {exc}",
                                  "check the pointer against the body, or the service's response format changed",
                                  manual_command=manual)
    text = json_text(found)
    observed = f'{pointer or "the document"} is "{text}" ({json_kind(found)})'
    if text == value:
        return CheckResult.passed(stored.url, expected, observed, manual_command=manual)
    return CheckResult.failed(stored.url, expected, observed,
                              f"{stored.service} reports {text!r} there: check its logs and the dependency "
                              "this field describes", manual_command=manual)


@check('the response body contains "{text}"', manual="curl -sS <URL> | grep -F '{text}'")
def response_body_contains(ctx: CheckContext, text: str) -> CheckResult:
    """The body of the scenario's last ``When I GET`` contains the text (case-sensitive, as is)."""
    stored = last_response(ctx)
    expected = f"body contains {text!r}"
    manual = stored.manual(pipe="grep -F " + shlex.quote(text))
    if text in stored.text:
        return CheckResult.passed(stored.url, expected, f"found in {len(stored.text)} characters",
                                  manual_command=manual)
    return CheckResult.failed(stored.url, expected, f"not found in: {excerpt(stored.text)!r}",
                              f"{stored.service} answered something else: check the path and its logs",
                              manual_command=manual)


# --- TLS certificates ---------------------------------------------------------------------------------


def _days(delta: timedelta) -> str:
    days = abs(delta) // timedelta(days=1)
    return "1 day" if days == 1 else f"{days} days"


@check(
    'the TLS certificate of "{service}" is valid for at least {days:d} more days',
    manual="openssl s_client -connect <{service} host:port> -servername <host> </dev/null 2>/dev/null "
           "| openssl x509 -noout -enddate",
)
def tls_certificate_valid_for(ctx: CheckContext, service: str, days: int) -> CheckResult:
    """The certificate the service presents on its https host:port expires no sooner than this many days
    from now. It is verified against the service's ``verify_tls`` CA bundle (or the system CAs): a
    certificate that does not verify is an ERROR (no trust, so no answer), except an expired one,
    which is a FAIL: "expired <date>" for the server's own certificate, "the chain contains an expired
    certificate" when it is an intermediate or root that expired. FAIL when the service URL is plain http."""
    settings = ctx.service(service)
    parts = urlsplit(settings.url)
    expected = f"certificate valid for at least {days} more days"
    if parts.scheme != "https" or not parts.hostname:
        return CheckResult.failed(settings.url, expected, f"service is not served over TLS ({settings.url})",
                                  "serve it over https, or drop this check for a plain-http service")
    host, port = parts.hostname, parts.port or 443
    resource = f"{host}:{port}"
    cafile = settings.verify_tls if isinstance(settings.verify_tls, str) else None
    ca_option = f" -CAfile {shlex.quote(cafile)}" if cafile else ""
    manual = (f"openssl s_client -connect {host}:{port} -servername {host}{ca_option}"
              " </dev/null 2>/dev/null | openssl x509 -noout -enddate")
    renew = f"renew the certificate of {host} (and check why automatic renewal did not)"
    context = unverified_context() if settings.verify_tls is False else ssl.create_default_context(cafile=cafile)
    now = datetime.now(UTC)
    try:
        try:
            not_after = peer_not_after(host, port, context, settings.timeout_s)
        except ssl.SSLCertVerificationError as exc:
            if exc.verify_code != 10:  # X509_V_ERR_CERT_HAS_EXPIRED: wrong infrastructure, not "cannot check"
                trust = f"the CA bundle {cafile}" if cafile else "the system CAs"
                return CheckResult.errored(
                    resource, f"TLS verification failed: {exc.verify_message} (verified against {trust})",
                    "fix the chain the server sends, or point verify_tls for this service at its CA bundle",
                    manual_command=manual)
            expired = peer_not_after(host, port, unverified_context(), settings.timeout_s)
            if expired > now:  # the server's own certificate is in date: an intermediate or root expired
                return CheckResult.failed(
                    resource, expected,
                    f"the chain contains an expired certificate (the server's own expires {expired:%Y-%m-%d})",
                    f"replace the expired intermediate/root in the chain {host} sends (see `openssl s_client "
                    "-showcerts`), or in the CA bundle it is verified against",
                    manual_command=manual.replace(" -servername", " -showcerts -servername", 1))
            return CheckResult.failed(resource, expected,
                                      f"expired {expired:%Y-%m-%d} ({_days(now - expired)} ago)", renew,
                                      manual_command=manual)
    except ssl.SSLError as exc:
        return CheckResult.errored(resource, f"TLS handshake failed: {_ssl_reason(exc)}",
                                   "check that the port serves TLS and the protocols/ciphers it accepts",
                                   manual_command=manual)
    except TimeoutError:
        return CheckResult.errored(resource, f"no TLS handshake within {settings.timeout_s:g} s (timeout)",
                                   "check that the service is up and reachable from here", manual_command=manual)
    except ConnectionRefusedError:
        return CheckResult.errored(resource, "connection refused",
                                   "check that the service is running and the URL/port is right",
                                   manual_command=manual)
    except OSError as exc:
        return CheckResult.errored(resource, f"connection failed: {exc}",
                                   "check the host name and network access to it", manual_command=manual)
    left = not_after - now
    observed = f"expires {not_after:%Y-%m-%d} ({_days(left)}{' ago' if left < timedelta(0) else ''})"
    if left >= timedelta(days=days):
        return CheckResult.passed(resource, expected, observed, manual_command=manual)
    return CheckResult.failed(resource, expected, observed, renew, manual_command=manual)
