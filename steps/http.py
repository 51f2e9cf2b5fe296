"""HTTP services named per environment: status and latency of an endpoint."""

from __future__ import annotations

import time

import requests

from runbooks.registry import check
from runbooks.result import CheckResult
from runbooks.run import CheckContext

BODY_EXCERPT = 160


def service_url(ctx: CheckContext, service: str, path: str) -> str:
    return ctx.service(service).url.rstrip("/") + "/" + path.lstrip("/")


def excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= BODY_EXCERPT else text[:BODY_EXCERPT] + "..."


@check(
    'the service "{service}" answers GET "{path}" with status {status:d} within {ms:d} ms',
    manual="curl -sS -o /dev/null -w '%{{http_code}} %{{time_total}}s\\n' <{service} URL>{path}",
)
def service_answers(ctx: CheckContext, service: str, path: str, status: int, ms: int) -> CheckResult:
    """GET the path once (no retries: a retry would hide the latency being measured). FAIL on another
    status or a slower answer; ERROR when no answer arrives (refused, DNS, TLS, timeout)."""
    settings = ctx.service(service)
    url = service_url(ctx, service, path)
    expected = f"HTTP {status} within {ms} ms"
    manual = f"curl -sS -o /dev/null -w '%{{http_code}} %{{time_total}}s\\n' {url}"
    started = time.perf_counter()
    try:
        response = ctx.http.get(url, timeout=(min(5.0, settings.timeout_s), settings.timeout_s),
                                verify=settings.verify_tls, allow_redirects=False)
    except requests.exceptions.Timeout:
        return CheckResult.errored(url, f"no answer within {settings.timeout_s:g} s (timeout)",
                                   "check that the service is up and reachable from here", manual_command=manual)
    except requests.exceptions.ConnectionError as exc:
        reason = "connection refused" if "refused" in str(exc).lower() else f"connection failed: {exc}"
        return CheckResult.errored(url, reason, "check that the service is running and the URL/port is right",
                                   manual_command=manual)
    took = (time.perf_counter() - started) * 1000
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
