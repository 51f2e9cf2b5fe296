"""Post a drift summary to a webhook (Slack-compatible JSON). Delivery never changes a run's outcome."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from .drift import Drift
from .redact import Redactor
from .result import StepRecord

TIMEOUT = (5, 10)


@dataclass(frozen=True)
class Delivery:
    sent: bool
    reason: str


def payload(drift: Drift, environment: str, exit_code: int, report_url: str | None, redactor: Redactor
            ) -> dict[str, Any]:
    counts = ", ".join(f"{len(items)} {name}" for name, items in drift.sections() if items) or "no change"
    headline = f"runbooks: {environment}: {counts} (exit {exit_code})"
    lines = []
    for name, items in drift.sections():
        if items and name != "still failing":
            lines.append(f"*{name}*")
            lines += [f"• {_line(r)}" for r in items[:10]]
            if len(items) > 10:
                lines.append(f"• … and {len(items) - 10} more")
    if report_url:
        lines.append(f"<{report_url}|Open the rendered report>")
    text = redactor.text("\n".join(lines) or headline)
    return {
        "text": redactor.text(headline),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": redactor.text(headline)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}},
        ],
    }


def _line(r: StepRecord) -> str:
    observed = f": {r.observed}" if r.observed else ""
    return f"{r.step} ({r.runbook}){observed}"


def session(retries: int = 3) -> requests.Session:
    retry = Retry(
        total=retries,
        backoff_factor=0.5,
        status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=frozenset({"POST"}),
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    s = requests.Session()
    s.mount("http://", HTTPAdapter(max_retries=retry))
    s.mount("https://", HTTPAdapter(max_retries=retry))
    return s


def send(url: str, body: dict[str, Any], retries: int = 3) -> Delivery:
    """POST once with urllib3's retries; any failure is returned, never raised."""
    try:
        with session(retries) as s:
            response = s.post(url, json=body, timeout=TIMEOUT)
    except requests.RequestException as exc:
        return Delivery(False, f"{type(exc).__name__} after {retries} retries")
    if response.status_code >= 300:
        return Delivery(False, f"webhook answered HTTP {response.status_code}")
    return Delivery(True, f"delivered (HTTP {response.status_code})")
