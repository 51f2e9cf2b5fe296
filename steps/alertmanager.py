"""An Alertmanager (``[environments.NAME.alertmanager]``): which alerts are active (notifying: not silenced,
not inhibited), and whether a silence covers a maintenance window. Read-only: creating the silence is the
people's part of the runbook (``amtool silence add``); these steps check that it was done.
"""

from __future__ import annotations

import re
import shlex
from datetime import UTC, datetime, timedelta
from typing import Any

from runbooks.sdk import CheckContext, CheckResult, CouldNotCheck, ServiceSettings, check, did_you_mean

from ._prometheus import Selector, parse_alert_selector, parse_label_set, validate_alert_selector, validate_label_set
from ._shared import read_or_error, target_settings
from .http import curl_base
from .prometheus import alert_labels_text

TITLE = "Alertmanager"
CATALOG_ORDER = 83

SHOWN = 5


def _settings(ctx: CheckContext) -> ServiceSettings:
    return target_settings(lambda: ctx.alertmanager.settings, "alertmanager")


_read = read_or_error


def _time(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def _labels(alert: dict[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in (alert.get("labels") or {}).items()}


def _state(alert: dict[str, Any]) -> str:
    """active (notifying), silenced, inhibited or unprocessed (not yet matched against silences)."""
    status = alert.get("status") or {}
    if status.get("silencedBy"):
        return "silenced"
    if status.get("inhibitedBy"):
        return "inhibited"
    return str(status.get("state") or "active")


def _alert_text(alert: dict[str, Any]) -> str:
    started = _time(alert.get("startsAt"))
    since = f" since {started:%Y-%m-%d %H:%M:%S} UTC" if started else ""
    receivers = ", ".join(str(r.get("name")) for r in alert.get("receivers") or [] if isinstance(r, dict))
    return f"{alert_labels_text(_labels(alert))}{since}" + (f" (to {receivers})" if receivers else "")


def _listed(alerts: list[dict[str, Any]]) -> str:
    text = "; ".join(_alert_text(a) for a in alerts[:SHOWN])
    return text + (f"; and {len(alerts) - SHOWN} more" if len(alerts) > SHOWN else "")


def _unknown_alert(ctx: CheckContext, selector: Selector) -> str | None:
    """Why no rule could ever send this alert, when the environment also declares Prometheus and it has no
    alerting rule of that name (None otherwise, or when Prometheus cannot be read)."""
    if not selector.name or ctx.env.prometheus is None:
        return None
    try:
        groups = ctx.prometheus.rule_groups("alert")
    except CouldNotCheck:
        return None
    names = {str(r.get("name")) for g in groups for r in g.get("rules") or []}
    if selector.name in names:
        return None
    return f"Prometheus has no alerting rule named {selector.name}{did_you_mean(selector.name, names)}"


def _alerts(ctx: CheckContext, alert: str) -> tuple[str, str, Selector, list[dict[str, Any]]]:
    settings = _settings(ctx)
    selector = parse_alert_selector(alert)
    url = settings.url + "/api/v2/alerts"
    manual = f"{curl_base(settings)} {shlex.quote(url)} | jq '.[] | [.labels, .status]'"
    alerts = _read(settings.url, manual, ctx.alertmanager.alerts)
    return settings.url, manual, selector, [a for a in alerts if selector.matches_alert(_labels(a))]


def _by_state(alerts: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    states: dict[str, list[dict[str, Any]]] = {}
    for alert in alerts:
        states.setdefault(_state(alert), []).append(alert)
    return states


def _quiet(states: dict[str, list[dict[str, Any]]]) -> str:
    parts = [f"{len(states[s])} {s}" for s in ("silenced", "inhibited") if states.get(s)]
    return f" ({', '.join(parts)})" if parts else ""


@check('no alert matching "{alert}" is active in Alertmanager',
       manual="curl -sS <alertmanager URL>/api/v2/alerts | jq '.[] | [.labels, .status]'",
       validators={"alert": validate_alert_selector}, requires="alertmanager")
def no_active_alert(ctx: CheckContext, alert: str) -> CheckResult:
    """Alertmanager (``/api/v2/alerts``) holds no alert that the selector matches and that is active, i.e.
    notifying: silenced and inhibited alerts are named in observed but do not fail. The alert is its name
    (``HighErrorRate``), a name with label matchers (``HighErrorRate{service="api"}``) or matchers alone
    (``{severity="critical"}``). Alertmanager knows only the alerts it holds now, so a misspelled name would
    pass: when the environment also declares Prometheus, a name no alerting rule has is an ERROR. An alert
    not yet matched against the silences (unprocessed) counts as active."""
    resource, manual, selector, matched = _alerts(ctx, alert)
    expected = f"no active alert matching {selector}"
    unknown = _unknown_alert(ctx, selector)
    if unknown:
        return CheckResult.errored(resource, f"{unknown}: Alertmanager could never receive it",
                                   "check the alert's name", expected=expected, manual_command=manual)
    states = _by_state(matched)
    active = states.get("active", []) + states.get("unprocessed", [])
    evidence = {state: [_labels(a) for a in items] for state, items in states.items()}
    if active:
        return CheckResult.failed(resource, expected, f"{len(active)} active: {_listed(active)}{_quiet(states)}",
                                  "follow the runbook of each alert; silence it only for planned work",
                                  manual_command=manual, evidence=evidence)
    return CheckResult.passed(resource, expected, f"none active{_quiet(states)}", manual_command=manual,
                              evidence=evidence)


@check('an alert matching "{alert}" is active in Alertmanager',
       manual="curl -sS <alertmanager URL>/api/v2/alerts | jq '.[] | [.labels, .status]'",
       validators={"alert": validate_alert_selector}, requires="alertmanager")
def active_alert(ctx: CheckContext, alert: str) -> CheckResult:
    """Alertmanager holds at least one active (notifying) alert that the selector matches: during an alerting
    drill, the alert reached Alertmanager and nothing mutes it. Silenced or inhibited only: FAIL."""
    resource, manual, selector, matched = _alerts(ctx, alert)
    expected = f"an active alert matching {selector}"
    states = _by_state(matched)
    active = states.get("active", []) + states.get("unprocessed", [])
    if active:
        return CheckResult.passed(resource, expected, f"{len(active)} active: {_listed(active)}",
                                  manual_command=manual)
    return CheckResult.failed(resource, expected, f"none active{_quiet(states) or ' (no such alert at all)'}",
                              "check that Prometheus fires it and sends to this Alertmanager, and which silence "
                              "or inhibition mutes it", manual_command=manual)


def _covers(silence: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether every matcher of the silence holds for an alert with these labels (a label it lacks is "")."""
    matchers = silence.get("matchers") or []
    if not matchers:
        return False
    for matcher in matchers:
        value = labels.get(str(matcher.get("name")), "")
        wanted = str(matcher.get("value", ""))
        if matcher.get("isRegex"):
            try:
                hit = re.fullmatch(wanted, value, re.DOTALL) is not None
            except re.error:
                return False
        else:
            hit = value == wanted
        if hit != bool(matcher.get("isEqual", True)):
            return False
    return True


def _silence_text(silence: dict[str, Any], now: datetime) -> str:
    ends = _time(silence.get("endsAt"))
    starts = _time(silence.get("startsAt"))
    left = f", {max((ends - now).total_seconds(), 0) / 60:.0f} min left" if ends else ""
    when = (f"from {starts:%Y-%m-%d %H:%M} UTC " if starts and starts > now else "") + \
        (f"until {ends:%Y-%m-%d %H:%M} UTC" if ends else "")
    return (f"silence {silence.get('id', '?')} by {silence.get('createdBy') or '?'} {when}{left}: "
            f"{silence.get('comment') or 'no comment'}")


@check('an Alertmanager silence covers "{labels}" for the next {minutes:d} minutes',
       manual="curl -sS <alertmanager URL>/api/v2/silences | jq '.[] | select(.status.state == \"active\")'",
       validators={"labels": validate_label_set}, requires="alertmanager")
def silence_covers(ctx: CheckContext, labels: str, minutes: int) -> CheckResult:
    """An active silence of Alertmanager (``/api/v2/silences``) mutes an alert with these labels now and until
    at least ``minutes`` from now: the maintenance window is silenced before the work starts. The labels are
    an alert name with ``label="value"`` pairs (``HighErrorRate{service="api"}``) or the pairs alone
    (``{service="api"}``); a silence covers them when every one of its matchers holds for them (a label they
    do not give is empty), as Alertmanager matches an alert. FAIL names the silence that ends too early or
    has not started, or says that none matches."""
    settings = _settings(ctx)
    wanted = parse_label_set(labels)
    resource = settings.url
    shown = alert_labels_text(wanted)
    expected = f"an active silence covering {shown} for the next {minutes} minutes"
    jq = '.[] | select(.status.state == "active") | [.id, .matchers, .endsAt, .createdBy, .comment]'
    manual = f"{curl_base(settings)} {shlex.quote(settings.url + '/api/v2/silences')} | jq {shlex.quote(jq)}"
    silences = _read(resource, manual, ctx.alertmanager.silences)
    now = datetime.now(UTC)
    until = now + timedelta(minutes=minutes)
    matching = [s for s in silences if (s.get("status") or {}).get("state") in ("active", "pending")
                and _covers(s, wanted)]
    active = [s for s in matching if (s.get("status") or {}).get("state") == "active"]
    enough = [s for s in active if (ends := _time(s.get("endsAt"))) is not None and ends >= until]
    if enough:
        best = max(enough, key=lambda s: str(s.get("endsAt")))
        return CheckResult.passed(resource, expected, _silence_text(best, now), manual_command=manual,
                                  evidence={"silence": best.get("id")})
    if active:
        observed = "ends too early: " + "; ".join(_silence_text(s, now) for s in active[:SHOWN])
        hint = f"extend the silence to cover the whole window: amtool silence update --duration {minutes}m <id>"
    elif matching:
        observed = "not active yet: " + "; ".join(_silence_text(s, now) for s in matching[:SHOWN])
        hint = "the silence starts later than now: start the work when it is active, or recreate it from now"
    else:
        count = sum(1 for s in silences if (s.get("status") or {}).get("state") == "active")
        observed = f"no silence matches ({count} active silence{'' if count == 1 else 's'} cover other alerts)"
        matchers = " ".join(shlex.quote(f"{k}={v}") for k, v in wanted.items())
        hint = (f"create it before the work: amtool silence add {matchers} --duration {minutes}m "
                "--comment '<change ticket>'")
    return CheckResult.failed(resource, expected, observed, hint, manual_command=manual)
