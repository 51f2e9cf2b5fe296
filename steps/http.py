"""HTTP services named per environment: requests and their responses, Prometheus metrics, TLS certificates.

``When I GET`` stores the response in the scenario; the ``the response ...`` steps read it. Metric
steps read the service's ``/metrics`` page once per run. All requests use the run's session with the
service's ``timeout_s`` and ``verify_tls`` settings.
"""

from __future__ import annotations

import json
import math
import re
import shlex
import socket
import ssl
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests

from runbooks.config import ServiceSettings
from runbooks.registry import check
from runbooks.result import CheckResult
from runbooks.run import CheckContext, Finding
from steps._shared import EXCERPT_CHARS, excerpt

BODY_EXCERPT = EXCERPT_CHARS
RESPONSE_KEY = "http.response"  # ctx.scenario.values: the last StoredResponse, or None after a failed GET
RESPONSE_ERROR_KEY = "http.response_error"  # ...and why that GET got no answer
NO_RESPONSE = "no response: add `When I GET ...` before this step"


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
    settings = ctx.service(service)
    url = service_url(ctx, service, path)
    curl = curl_base(settings)
    manual = f"{curl}{' ' + options if options else ''} {url}"
    started = time.perf_counter()
    try:
        response = ctx.http.get(url, timeout=_timeouts(settings), verify=settings.verify_tls, allow_redirects=False,
                                headers=settings.headers)
    except requests.RequestException as exc:
        raise Finding(request_error(exc, url, settings, manual)) from None
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
        return f"{self.curl}{' ' + options if options else ''} {self.url}{' | ' + pipe if pipe else ''}"


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


class _Number(str):
    """A JSON number (or NaN/Infinity) kept exactly as written in the body."""


def validate_pointer(pointer: str) -> None:
    """RFC 6901: empty (the whole document) or '/'-separated tokens where '~' only escapes '~0' and '~1'."""
    if pointer and not pointer.startswith("/"):
        raise ValueError("a JSON Pointer is empty or starts with '/', e.g. /checks/dynamodb")
    if re.search(r"~(?![01])", pointer):
        raise ValueError("'~' must be written '~0' and '/' inside a name '~1'")


def _json_kind(value: Any) -> str:
    if isinstance(value, _Number):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "object" if isinstance(value, dict) else "array"


def json_text(value: Any, nested: bool = False) -> str:
    """The compared string form of a JSON value: strings as they are, numbers as written, true/false/null,
    objects and arrays as compact JSON."""
    if isinstance(value, _Number):
        return str.__str__(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False) if nested else value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k, ensure_ascii=False)}:{json_text(v, True)}"
                              for k, v in value.items()) + "}"
    return "[" + ",".join(json_text(v, True) for v in value) + "]"


def jq_path(pointer: str) -> str:
    """The jq filter for a JSON Pointer, for the manual command: /checks/0 -> .["checks"][0]."""
    if not pointer:
        return "."
    parts = [raw.replace("~1", "/").replace("~0", "~") for raw in pointer[1:].split("/")]
    return "." + "".join(f"[{p}]" if re.fullmatch(r"0|[1-9][0-9]*", p) else f"[{json.dumps(p)}]" for p in parts)


def resolve_pointer(document: Any, pointer: str) -> Any:
    """The value at an RFC 6901 JSON Pointer; ``LookupError`` saying where the path stops when it is absent."""
    validate_pointer(pointer)
    if not pointer:
        return document
    current, walked = document, ""
    for raw in pointer[1:].split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")  # this order: '~01' is '~1', not '/'
        here = walked or "the document root"
        if isinstance(current, dict):
            if token not in current:
                members = ", ".join(sorted(current)[:10]) or "none"
                raise LookupError(f"{here} has no member {token!r} (members: {members})")
            current = current[token]
        elif isinstance(current, list):
            if not re.fullmatch(r"0|[1-9][0-9]*", token) or int(token) >= len(current):
                raise LookupError(f"{here} is an array of {len(current)} element(s), no index {token!r}")
            current = current[int(token)]
        else:
            raise LookupError(f"{here} is a {_json_kind(current)}, it has no {token!r}")
        walked += "/" + raw
    return current


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
        document = json.loads(stored.text, parse_int=_Number, parse_float=_Number, parse_constant=_Number)
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
    observed = f'{pointer or "the document"} is "{text}" ({_json_kind(found)})'
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


# --- Prometheus metrics -------------------------------------------------------------------------------

METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}
OPERATORS = ("=~", "!~", "!=", "=")  # longest first: '=~' must not be read as '=' then '~'
# What a sample of each family type is (# TYPE lines); only counters and histogram buckets add up.
_SUFFIX_ROLES = {
    "counter": {"_total": "counter", "": "counter", "_created": "timestamp"},
    "histogram": {"_bucket": "bucket", "_count": "counter", "_sum": "counter", "_created": "timestamp"},
    "summary": {"": "quantile", "_count": "counter", "_sum": "counter", "_created": "timestamp"},
}
_UNTYPED_ROLES = {"_total": "counter", "_count": "counter", "_sum": "counter", "_bucket": "bucket"}


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float
    kind: str = "untyped"  # counter, bucket, gauge, quantile, timestamp, untyped, ...: see sample_kind


def sample_kind(name: str, types: dict[str, str]) -> str:
    """What a sample is, from its family's ``# TYPE`` (or, without one, from its name's suffix)."""
    for suffix in ("", "_total", "_bucket", "_count", "_sum", "_created", "_gcount", "_gsum", "_info"):
        family = name[: len(name) - len(suffix)] if suffix and name.endswith(suffix) else name
        if (suffix and not name.endswith(suffix)) or family not in types:
            continue
        roles = _SUFFIX_ROLES.get(types[family])
        if roles is None:  # gauge, gaugehistogram, info, stateset, untyped, unknown
            return types[family]
        return roles.get(suffix, "untyped")
    return next((role for suffix, role in _UNTYPED_ROLES.items() if name.endswith(suffix)), "untyped")


@dataclass(frozen=True)
class Matcher:
    """One label matcher of a selector: ``=``, ``!=``, or ``=~``/``!~`` (a regex that must match the whole
    value). As in PromQL, a label the series does not have has the value ""."""

    label: str
    op: str
    value: str
    regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def matches(self, labels: dict[str, str]) -> bool:
        actual = labels.get(self.label, "")
        if self.regex is not None:
            return (self.regex.fullmatch(actual) is not None) == (self.op == "=~")
        return (actual == self.value) == (self.op == "=")

    def __str__(self) -> str:
        return f'{self.label}{self.op}"{json_text(self.value, True)[1:-1]}"'


@dataclass(frozen=True)
class Selector:
    name: str
    matchers: tuple[Matcher, ...]

    def matches(self, sample: Sample) -> bool:
        return sample.name == self.name and all(m.matches(sample.labels) for m in self.matchers)

    def __str__(self) -> str:
        if not self.matchers:
            return self.name
        return f"{self.name}{{{','.join(str(m) for m in self.matchers)}}}"


def _parse_labels(text: str, pos: int, selector: bool) -> tuple[list[Matcher], int]:
    """Parse ``{a="x",b=~"y"}`` starting at the '{' at ``pos``; returns the matchers and the position after
    '}'. A page's labels (``selector`` False) only take '='."""
    matchers: list[Matcher] = []
    pos += 1
    while True:
        while pos < len(text) and text[pos] in " \t":
            pos += 1
        if pos < len(text) and text[pos] == "}":
            return matchers, pos + 1
        name = LABEL_NAME.match(text, pos)
        if name is None:
            raise ValueError(f"expected a label name or '}}' at column {pos + 1}")
        pos = name.end()
        while pos < len(text) and text[pos] in " \t":
            pos += 1
        op = next((o for o in OPERATORS if text.startswith(o, pos)), "")
        if not selector and op != "=":
            op = ""
        pos += len(op)
        while pos < len(text) and text[pos] in " \t":
            pos += 1
        if not op or not text.startswith('"', pos):
            ops = "=, !=, =~ or !~" if selector else "="
            raise ValueError(f'expected {ops} and a "value" after label {name.group()!r}')
        pos += 1
        value: list[str] = []
        while True:
            if pos >= len(text):
                raise ValueError(f"unterminated value of label {name.group()!r}")
            char = text[pos]
            if char == '"':
                pos += 1
                break
            if char == "\\" and pos + 1 < len(text):
                value.append(_ESCAPES.get(text[pos + 1], "\\" + text[pos + 1]))
                pos += 2
                continue
            value.append(char)
            pos += 1
        matchers.append(_matcher(name.group(), op, "".join(value), matchers, selector))
        while pos < len(text) and text[pos] in " \t":
            pos += 1
        if pos >= len(text):
            raise ValueError("missing '}' after the labels")
        if text[pos] == ",":
            pos += 1
        elif text[pos] != "}":
            raise ValueError(f"expected ',' or '}}' after label {name.group()!r}")


def _matcher(label: str, op: str, value: str, earlier: list[Matcher], selector: bool) -> Matcher:
    # A page gives each label once; a selector may match one label several ways, but two '=' on it
    # can only contradict or repeat each other.
    if any(m.label == label and (not selector or m.op == op == "=") for m in earlier):
        raise ValueError(f"label {label!r} given twice")
    if op not in ("=~", "!~"):
        return Matcher(label, op, value)
    try:
        return Matcher(label, op, value, re.compile(value, re.DOTALL))  # as Prometheus: '.' matches a newline
    except re.error as exc:
        raise ValueError(f"label {label!r}: {value!r} is not a valid regular expression ({exc})") from None


def parse_selector(text: str) -> Selector:
    """``name`` or ``name{a="x",b!="y",c=~"5..",d!~"GET|HEAD"}``: a metric (sample) name and label matchers."""
    stripped = text.strip()
    name = METRIC_NAME.match(stripped)
    if name is None:
        raise ValueError("a selector starts with a metric name, e.g. http_requests_total{status=\"500\"}")
    matchers: list[Matcher] = []
    pos = name.end()
    while pos < len(stripped) and stripped[pos] in " \t":
        pos += 1
    if pos < len(stripped):
        if stripped[pos] != "{":
            raise ValueError(f"unexpected {stripped[pos:]!r} after the metric name (labels go in {{...}})")
        matchers, pos = _parse_labels(stripped, pos, selector=True)
        if pos != len(stripped):
            raise ValueError(f"unexpected {stripped[pos:]!r} after the labels")
    return Selector(name.group(), tuple(matchers))


def validate_selector(text: str) -> None:
    """A metric name with optional label matchers (=, !=, =~, !~; a regex must compile)."""
    parse_selector(text)


def parse_exposition(text: str) -> list[Sample]:
    """Samples of a Prometheus text exposition page (version 0.0.4; OpenMetrics' ``# EOF`` and exemplars
    tolerated), each with its kind from the ``# TYPE`` lines. ``ValueError`` naming the line for anything
    else, rather than guessing."""
    samples: list[Sample] = []
    types: dict[str, str] = {}
    for line_no, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if line.startswith("#"):
            words = line.split()
            if len(words) >= 4 and words[1] == "TYPE":
                types[words[2]] = words[3].lower()
            continue
        if not line:
            continue
        try:
            name = METRIC_NAME.match(line)
            if name is None:
                raise ValueError("no metric name")
            labels: dict[str, str] = {}
            pos = name.end()
            if pos < len(line) and line[pos] == "{":
                matchers, pos = _parse_labels(line, pos, selector=False)
                labels = {m.label: m.value for m in matchers}
            if pos >= len(line) or line[pos] not in " \t":
                raise ValueError("expected a space and a value after the name and labels")
            rest = line[pos:].split("#", 1)[0].split()  # value [timestamp] [# exemplar]
            if not rest or len(rest) > 2 or "_" in rest[0]:
                raise ValueError("expected a value and an optional timestamp")
            samples.append(Sample(name.group(), labels, float(rest[0]), sample_kind(name.group(), types)))
        except ValueError as exc:
            raise ValueError(f"line {line_no}: {exc}: {excerpt(line)!r}") from None
    return samples


@dataclass(frozen=True)
class MetricsPage:
    """One service's ``/metrics`` as read once per run: the samples, or the ERROR that reading it gave."""

    url: str
    curl: str
    samples: tuple[Sample, ...] = ()
    error: CheckResult | None = None


def _fetch_metrics(ctx: CheckContext, service: str) -> MetricsPage:
    try:
        answer = _get(ctx, service, "/metrics")
    except Finding as exc:
        return MetricsPage(exc.result.resource, curl_base(ctx.service(service)), error=exc.result)
    url, curl, manual, response = answer.url, answer.curl, answer.manual, answer.response
    if response.status_code != 200:
        return MetricsPage(url, curl, error=CheckResult.errored(
            url, f"/metrics answered HTTP {response.status_code}: {excerpt(response.text)}",
            f"check that {service} exposes Prometheus metrics at /metrics", manual_command=manual))
    try:
        return MetricsPage(url, curl, tuple(parse_exposition(response.text)))
    except ValueError as exc:
        return MetricsPage(url, curl, error=CheckResult.errored(
            url, f"cannot read the Prometheus text format at {exc}",
            "check that /metrics serves the Prometheus text format", manual_command=manual))


def metrics_page(ctx: CheckContext, service: str) -> MetricsPage:
    """The service's metrics, fetched once per run (an unreachable page is remembered too, so that every
    metric step does not wait for the same timeout). ``When I GET "/metrics"`` still fetches afresh."""
    page: MetricsPage = ctx.run.resource(("http.metrics", service), lambda: _fetch_metrics(ctx, service))
    if page.error is not None:
        raise Finding(page.error)
    return page


def number(value: float) -> str:
    if math.isfinite(value) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return format(value, ".6g")


def series(count: int) -> str:
    return "1 series" if count == 1 else f"sum of {count} series"


def _select(page: MetricsPage, text: str) -> tuple[Selector, list[Sample]]:
    selector = parse_selector(text)
    return selector, [s for s in page.samples if selector.matches(s)]


def _no_series(page: MetricsPage, selector: Selector, expected: str, manual: str, role: str = "") -> Finding:
    names = sorted({s.name for s in page.samples if s.name == selector.name})
    present = (f"{selector.name} exists, but no series has those labels" if names
               else f"no metric named {selector.name}")
    return Finding(CheckResult.failed(
        page.url, expected, f"no series matches {role}{selector} ({present})",
        "check the metric name and labels against the page (the manual command); a labelled series "
        "appears only once it has been observed", manual_command=manual))


_KIND_WORDS = {"bucket": "histogram bucket", "quantile": "summary quantile"}
SHOWN_SERIES = 10


def _ambiguous(selector: Selector, matched: list[Sample]) -> tuple[str, str] | None:
    """Why a sum of the matched series would mean nothing, and how to narrow the selector (None: it is a sum
    of counters, or of histogram buckets of one ``le``, or a single series)."""
    kinds = {s.kind for s in matched}
    if len(matched) < 2 or kinds == {"counter"}:
        return None
    if kinds == {"bucket"} and len({s.labels.get("le") for s in matched}) == 1:
        return None
    keys = sorted({k for s in matched for k in s.labels if len({m.labels.get(k) for m in matched}) > 1})
    sets = ["{" + ",".join(str(Matcher(k, "=", s.labels[k])) for k in keys if k in s.labels) + "}" for s in matched]
    shown = ", ".join(sets[:SHOWN_SERIES]) + (f" and {len(sets) - SHOWN_SERIES} more" if len(sets) > SHOWN_SERIES
                                               else "")
    kind = " / ".join(sorted(_KIND_WORDS.get(k, k) for k in kinds))
    observed = (f"the selector {selector} is ambiguous: it matches {len(matched)} {kind} series ({shown}), "
                "and a sum of them means nothing")
    first = matched[0].labels
    narrowed = Selector(selector.name, tuple(m for m in selector.matchers if m.label not in keys)
                        + tuple(Matcher(k, "=", first[k]) for k in keys if k in first))
    return observed, f"narrow it with labels to one series, e.g. {narrowed}"


@check(
    'the metric "{selector}" of "{service}" is below {threshold:g}',
    manual="curl -sS <{service} URL>/metrics | grep '<name of {selector}>'",
    validators={"selector": validate_selector},
)
def metric_below(ctx: CheckContext, selector: str, service: str, threshold: float) -> CheckResult:
    """The value of a metric on the service's Prometheus ``/metrics`` page is strictly below the threshold.
    The selector is a sample name with optional label matchers, ``name{a="x",b!="y",c=~"5..",d!~"GET|HEAD"}``:
    ``=``/``!=`` compare the value, ``=~``/``!~`` match it against a regular expression that must match
    the whole value (Python ``re``), and a label a series lacks counts as "" (as in PromQL); series with
    further labels match too. Several matching series are summed only when that means something:
    counters (``# TYPE`` counter, or a name ending ``_total``/``_count``/``_sum``) and histogram
    ``_bucket`` series of one ``le``. For gauges, summary quantiles and untyped series a selector
    matching more than one series is an ERROR that lists the label sets to narrow it by. FAIL when no
    series matches; ERROR when ``/metrics`` cannot be read."""
    page = metrics_page(ctx, service)
    parsed, matched = _select(page, selector)
    expected = f"{parsed} below {threshold:g}"
    manual = f"{page.curl} {page.url} | grep '^{parsed.name}'"
    if not matched:
        raise _no_series(page, parsed, expected, manual)
    ambiguous = _ambiguous(parsed, matched)
    if ambiguous is not None:
        return CheckResult.errored(page.url, ambiguous[0], ambiguous[1], expected=expected, manual_command=manual)
    total = sum((s.value for s in matched), 0.0)
    observed = f"{number(total)} ({series(len(matched))})"
    if total < threshold:
        return CheckResult.passed(page.url, expected, observed, manual_command=manual)
    return CheckResult.failed(page.url, expected, observed,
                              f"{service} reports {parsed} at {number(total)}: find what drives it (dashboards, "
                              "logs, recent deployments); if the threshold is wrong, change the runbook",
                              manual_command=manual)


@check(
    'the ratio of "{numerator}" to "{denominator}" on "{service}" is below {percent:g}%',
    manual="curl -sS <{service} URL>/metrics | grep -E '<names of {numerator} and {denominator}>'",
    validators={"numerator": validate_selector, "denominator": validate_selector},
)
def metric_ratio_below(ctx: CheckContext, numerator: str, denominator: str, service: str, percent: float
                       ) -> CheckResult:
    """sum(numerator) / sum(denominator) * 100 on the service's ``/metrics`` page is strictly below the
    percentage (selectors as for the metric step, but every matching series is summed: meant for
    counters, e.g. 5xx responses to all responses).
    A numerator with no matching series counts as 0 when its metric name is on the page (a labelled
    counter appears only once observed, e.g. no 500s yet); an unknown numerator name, or a denominator
    with no series, is a FAIL. With a denominator of 0 the ratio is undefined: PASS, observed "no
    traffic (denominator 0)", only when the numerator is 0 too; a numerator above 0 then is a FAIL
    (the counters contradict each other)."""
    page = metrics_page(ctx, service)
    num_sel, num_samples = _select(page, numerator)
    den_sel, den_samples = _select(page, denominator)
    expected = f"{num_sel} / {den_sel} below {percent:g}%"
    manual = f"{page.curl} {page.url} | grep -E '^({num_sel.name}|{den_sel.name})'"
    if not den_samples:
        raise _no_series(page, den_sel, expected, manual, "denominator ")
    if not num_samples and not any(s.name == num_sel.name for s in page.samples):
        raise _no_series(page, num_sel, expected, manual, "numerator ")
    num, den = sum((s.value for s in num_samples), 0.0), sum((s.value for s in den_samples), 0.0)
    counts = (f"numerator {series(len(num_samples)) if num_samples else 'no series yet, counted as 0'}; "
              f"denominator {series(len(den_samples))}")
    if den == 0:
        if num == 0:
            return CheckResult.passed(page.url, expected, f"no traffic (denominator 0; {counts})",
                                      manual_command=manual)
        return CheckResult.failed(page.url, expected,
                                  f"numerator {number(num)} but denominator 0: ratio undefined ({counts})",
                                  "the selectors do not count the same thing: check them against the page",
                                  manual_command=manual)
    ratio = num / den * 100
    observed = f"{ratio:.3g}% ({number(num)} / {number(den)}; {counts})"
    if ratio < percent:
        return CheckResult.passed(page.url, expected, observed, manual_command=manual)
    return CheckResult.failed(page.url, expected, observed,
                              f"{service} is over budget: check its logs, dependencies and recent deployments; "
                              "roll back if it started with a release", manual_command=manual)


# --- TLS certificates ---------------------------------------------------------------------------------


def _days(delta: timedelta) -> str:
    days = abs(delta) // timedelta(days=1)
    return "1 day" if days == 1 else f"{days} days"


def _not_after(tls: ssl.SSLSocket) -> datetime:
    cert = tls.getpeercert()
    if cert and "notAfter" in cert:  # verified: the stdlib decodes it
        return datetime.fromtimestamp(ssl.cert_time_to_seconds(str(cert["notAfter"])), UTC)
    der = tls.getpeercert(binary_form=True)
    if der is None:
        raise ssl.SSLError("the server sent no certificate")
    from cryptography import x509  # unverified connections only; a dependency of moto

    return x509.load_der_x509_certificate(der).not_valid_after_utc


def _peer_not_after(host: str, port: int, context: ssl.SSLContext, timeout: float) -> datetime:
    with socket.create_connection((host, port), timeout=timeout) as raw, \
            context.wrap_socket(raw, server_hostname=host) as tls:
        return _not_after(tls)


def _unverified() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


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
    manual = (f"openssl s_client -connect {host}:{port} -servername {host}{' -CAfile ' + cafile if cafile else ''}"
              " </dev/null 2>/dev/null | openssl x509 -noout -enddate")
    renew = f"renew the certificate of {host} (and check why automatic renewal did not)"
    context = _unverified() if settings.verify_tls is False else ssl.create_default_context(cafile=cafile)
    now = datetime.now(UTC)
    try:
        try:
            not_after = _peer_not_after(host, port, context, settings.timeout_s)
        except ssl.SSLCertVerificationError as exc:
            if exc.verify_code != 10:  # X509_V_ERR_CERT_HAS_EXPIRED: wrong infrastructure, not "cannot check"
                trust = f"the CA bundle {cafile}" if cafile else "the system CAs"
                return CheckResult.errored(
                    resource, f"TLS verification failed: {exc.verify_message} (verified against {trust})",
                    "fix the chain the server sends, or point verify_tls for this service at its CA bundle",
                    manual_command=manual)
            expired = _peer_not_after(host, port, _unverified(), settings.timeout_s)
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
