"""A Prometheus server (``[environments.NAME.prometheus]``): PromQL compared with thresholds, alerts and
alerting rules, rule health, scrape targets, and where it sends its alerts.

Prometheus sees the whole fleet over time (every instance, ``rate`` over a window), which one instance's
``/metrics`` page (steps/metrics.py) cannot. Every step reads the server's HTTP API with GET; a server
that cannot be read is an ERROR. An empty query result is never a pass: it is an ERROR that names the
metric Prometheus does not know, unless the step asks for no series.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from runbooks.sdk import CheckContext, CheckResult, Finding, ServiceSettings, check, did_you_mean

from ._prometheus import (
    Matcher,
    Selector,
    parse_alert_selector,
    promql_metric_names,
    validate_alert_selector,
    validate_promql,
)
from ._shared import more_doc, read_or_error, target_settings
from .http import curl_base

TITLE = "Prometheus server"
CATALOG_ORDER = 82

SHOWN = 5  # series or alerts quoted in a result's text (all of them go into its evidence, up to EVIDENCE)
EVIDENCE = 50
ALWAYS_KNOWN = ("ALERTS", "ALERTS_FOR_STATE")  # exist only while some alert is pending or firing


# --- reading the server --------------------------------------------------------------------------------


def _settings(ctx: CheckContext) -> ServiceSettings:
    return target_settings(lambda: ctx.prometheus.settings, "prometheus")


_read = read_or_error


def _curl(settings: ServiceSettings, path: str, jq: str = "", query: str | None = None) -> str:
    url = settings.url + path
    data = f" -G --data-urlencode {shlex.quote('query=' + query)}" if query is not None else ""
    return f"{curl_base(settings)}{data} {shlex.quote(url)}" + (f" | jq {shlex.quote(jq)}" if jq else "")


def labels_text(labels: dict[str, Any], skip: tuple[str, ...] = ()) -> str:
    """``name{a="x",b="y"}`` (``__name__`` as the name, and ``skip`` left out)."""
    name = str(labels.get("__name__", ""))
    shown = [str(Matcher(k, "=", str(v))) for k, v in sorted(labels.items()) if k != "__name__" and k not in skip]
    return f"{name}{{{','.join(shown)}}}" if shown or not name else name


def _value(text: Any) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def _age(iso: str) -> str:
    """``since 2026-01-02 10:00:00 UTC (7 min)`` from an RFC 3339 time the API gives."""
    try:
        when = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return ""
    minutes = max((datetime.now(UTC) - when).total_seconds(), 0) / 60
    span = f"{minutes:.0f} min" if minutes >= 1 else f"{minutes * 60:.0f} s"
    return f"since {when.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC ({span})"


# --- PromQL --------------------------------------------------------------------------------------------


def _series(result_type: str, result: Any, resource: str, expected: str, manual: str
            ) -> list[tuple[dict[str, Any], float]]:
    """(labels, value) of each series of an instant query's result; a scalar is one series without labels."""
    if result_type == "vector":
        return [(dict(item.get("metric") or {}), _value((item.get("value") or [0, None])[1])) for item in result]
    if result_type == "scalar":
        return [({}, _value((result or [0, None])[1]))]
    if result_type == "matrix":
        raise Finding(CheckResult.errored(
            resource, "the query returns a range vector (a selector with [duration] and no function around it)",
            "wrap it in a function that makes one value per series, e.g. rate(...[5m]) or max_over_time(...[5m])",
            expected=expected, manual_command=manual))
    raise Finding(CheckResult.errored(resource, f"the query returns a {result_type or 'result of no type'}, not "
                                      "numbers", "make the query return a number per series", expected=expected,
                                      manual_command=manual))


def _unknown_names(ctx: CheckContext, query: str, resource: str, manual: str) -> list[str]:
    """The metric names of the query Prometheus has no series of, each with its close matches."""
    names = [n for n in promql_metric_names(query) if n not in ALWAYS_KNOWN]
    if not names:
        return []
    known = set(_read(resource, manual, ctx.prometheus.metric_names))
    return [f"{name}{did_you_mean(name, known) if did_you_mean(name, known).startswith('; did') else ''}"
            for name in names if name not in known]


def _no_series(ctx: CheckContext, query: str, resource: str, expected: str, manual: str) -> CheckResult:
    unknown = _unknown_names(ctx, query, resource, manual)
    if unknown:
        observed = "no series: Prometheus has no metric named " + " and none named ".join(unknown)
    else:
        observed = ("no series: no series matches the query's label matchers, or the expression filters every "
                    "series out (a comparison such as > 0.05 inside the query drops the series that pass it)")
    return CheckResult.errored(
        resource, observed, "check the metric and label names against Prometheus (the manual command); compare "
        "with the step's threshold instead of inside the query, or use `the Prometheus query ... returns no "
        "series` where no series is the expected answer", expected=expected, manual_command=manual)


def _query(ctx: CheckContext, query: str, expected: str, judge: Callable[[float], bool], wording: str
           ) -> CheckResult:
    settings = _settings(ctx)
    resource = settings.url
    manual = _curl(settings, "/api/v1/query", ".data.result", query)
    result_type, result = _read(resource, manual, lambda: ctx.prometheus.query(query))
    series = _series(result_type, result, resource, expected, manual)
    if not series:
        return _no_series(ctx, query, resource, expected, manual)
    offenders = [(labels, value) for labels, value in series if not math.isnan(value) and not judge(value)]
    nans = [(labels, value) for labels, value in series if math.isnan(value)]
    evidence = {"result_type": result_type, "series": [{"labels": labels, "value": value if math.isfinite(value)
                                                        else str(value)} for labels, value in series[:EVIDENCE]]}

    def shown(items: list[tuple[dict[str, Any], float]]) -> str:
        text = ", ".join(f"{value:.4g} {labels_text(labels)}".rstrip() for labels, value in items[:SHOWN])
        return text + (f" and {len(items) - SHOWN} more" if len(items) > SHOWN else "")

    nan_note = f"; NaN (0/0: nothing to divide, e.g. no traffic) for {shown(nans)}" if nans else ""
    if offenders:
        observed = (f"{shown(offenders)}" if len(series) == 1 else
                    f"{len(offenders)} of {len(series)} series not {wording}: {shown(offenders)}") + nan_note
        return CheckResult.failed(resource, expected, observed,
                                  "find what drives the value (dashboards, logs, recent deployments); if the "
                                  "threshold is wrong, change the runbook", manual_command=manual, evidence=evidence)
    if nans:
        return CheckResult.errored(resource, f"{len(nans)} of {len(series)} series NaN{nan_note}",
                                   "the query divides 0 by 0 (no traffic in its window?): widen the window, or "
                                   "guard the division in the query", expected=expected, manual_command=manual,
                                   evidence=evidence)
    if len(series) == 1:
        observed = shown(series)
    else:
        worst = max(series, key=lambda s: s[1])
        observed = f"{len(series)} series, all {wording} (highest {shown([worst])})"
    return CheckResult.passed(resource, expected, observed, manual_command=manual, evidence=evidence)


_QUERY_DOC = """
    An instant query (``/api/v1/query`` at the server's now; ``{variables}`` in it are filled from the
    environment). Every series of the result must hold, so ``sum by (job) (...)`` judges each job; a
    scalar is one value. No series at all is an ERROR, never a pass: it names the metric Prometheus does
    not know (a misspelled ``http_request_total``, with the close matches), or says that the label matchers
    match nothing or the expression filtered everything out; ``returns no series`` is the step for "nothing
    matches". NaN (0/0, e.g. an error ratio without traffic) is an ERROR; a range vector (``x[5m]`` with
    no function) is refused."""


@check('the Prometheus query "{query}" is below {threshold:g}',
       manual="curl -sS -G --data-urlencode 'query={query}' <prometheus URL>/api/v1/query | jq .data.result",
       validators={"query": validate_promql}, requires="prometheus")
@more_doc(_QUERY_DOC)
def prometheus_query_below(ctx: CheckContext, query: str, threshold: float) -> CheckResult:
    """Every series the PromQL query returns is strictly below the threshold, e.g.
    ``sum(rate(http_requests_total{status="5xx"}[5m])) / sum(rate(http_requests_total[5m]))`` below 0.05."""
    return _query(ctx, query, f"{query} below {threshold:g}", lambda v: v < threshold, f"below {threshold:g}")


@check('the Prometheus query "{query}" is above {threshold:g}',
       manual="curl -sS -G --data-urlencode 'query={query}' <prometheus URL>/api/v1/query | jq .data.result",
       validators={"query": validate_promql}, requires="prometheus")
@more_doc(_QUERY_DOC)
def prometheus_query_above(ctx: CheckContext, query: str, threshold: float) -> CheckResult:
    """Every series the PromQL query returns is strictly above the threshold (e.g. ready replicas, free
    disk share)."""
    return _query(ctx, query, f"{query} above {threshold:g}", lambda v: v > threshold, f"above {threshold:g}")


@check('the Prometheus query "{query}" is between {low:g} and {high:g}',
       manual="curl -sS -G --data-urlencode 'query={query}' <prometheus URL>/api/v1/query | jq .data.result",
       validators={"query": validate_promql}, requires="prometheus")
@more_doc(_QUERY_DOC)
def prometheus_query_between(ctx: CheckContext, query: str, low: float, high: float) -> CheckResult:
    """Every series the PromQL query returns is between the two bounds, both included."""
    if low > high:
        return CheckResult.errored("prometheus", f"the bounds are reversed: {low:g} is above {high:g}",
                                   "write the lower bound first")
    return _query(ctx, query, f"{query} between {low:g} and {high:g}", lambda v: low <= v <= high,
                  f"between {low:g} and {high:g}")


@check('the Prometheus query "{query}" returns no series',
       manual="curl -sS -G --data-urlencode 'query={query}' <prometheus URL>/api/v1/query | jq .data.result",
       validators={"query": validate_promql}, requires="prometheus")
def prometheus_query_empty(ctx: CheckContext, query: str) -> CheckResult:
    """The PromQL query returns no series: e.g. ``up{job="api"} == 0`` (no instance down) or
    ``ALERTS{alertstate="firing",severity="critical"}``. FAIL lists the series it returned. The metric names
    the query reads must exist on the server (except ``ALERTS``/``ALERTS_FOR_STATE``): a misspelled name
    would return nothing forever, so it is an ERROR with the close matches."""
    settings = _settings(ctx)
    resource = settings.url
    expected = f"{query} returns no series"
    manual = _curl(settings, "/api/v1/query", ".data.result", query)
    result_type, result = _read(resource, manual, lambda: ctx.prometheus.query(query))
    series = _series(result_type, result, resource, expected, manual)
    unknown = _unknown_names(ctx, query, resource, manual)
    if unknown:
        return CheckResult.errored(resource, "Prometheus has no metric named " + " and none named ".join(unknown)
                                   + ": the query could never return a series", "check the metric names against "
                                   "Prometheus (the manual command)", expected=expected, manual_command=manual)
    if not series:
        return CheckResult.passed(resource, expected, "no series", manual_command=manual)
    listed = ", ".join(f"{labels_text(labels)} {value:.4g}" for labels, value in series[:SHOWN])
    more = f" and {len(series) - SHOWN} more" if len(series) > SHOWN else ""
    return CheckResult.failed(resource, expected, f"{len(series)} series: {listed}{more}",
                              "each series listed is a case the runbook says must not exist: look into them",
                              manual_command=manual,
                              evidence={"series": [{"labels": labels, "value": str(value)}
                                                   for labels, value in series[:EVIDENCE]]})


# --- alerts and rules ----------------------------------------------------------------------------------


def _alert_rules(ctx: CheckContext, resource: str, manual: str) -> list[dict[str, Any]]:
    """Every alerting rule, with the name of its group under ``group``."""
    groups = _read(resource, manual, lambda: ctx.prometheus.rule_groups("alert"))
    return [{**rule, "group": group.get("name", "")} for group in groups for rule in group.get("rules") or []
            if rule.get("type", "alerting") == "alerting"]


def _rules_named(ctx: CheckContext, selector: Selector, resource: str, expected: str, manual: str
                 ) -> list[dict[str, Any]]:
    """The alerting rules the selector's alert name belongs to; ERROR when there is none (a misspelled name
    would be "not firing" forever)."""
    rules = _alert_rules(ctx, resource, manual)
    if not selector.name:
        return rules
    named = [r for r in rules if r.get("name") == selector.name]
    if not named:
        names = {str(r.get("name")) for r in rules}
        raise Finding(CheckResult.errored(
            resource, f"Prometheus has no alerting rule named {selector.name} ({len(rules)} alerting rules "
            f"loaded{did_you_mean(selector.name, names)}): whether it fires cannot be told",
            "check the alert's name; if the rule is missing, deploy it (see `the Prometheus alerting rule ... is "
            "loaded and healthy`)", expected=expected, manual_command=manual))
    return named


def alert_labels_text(labels: dict[str, Any]) -> str:
    """``HighErrorRate{job="api",severity="critical"}``: the alert's name, then its other labels."""
    return labels_text({**labels, "__name__": labels.get("alertname", "")}, skip=("alertname",))


def _alert_text(alert: dict[str, Any]) -> str:
    labels = alert.get("labels") or {}
    value = alert.get("value")
    shown = f", value {_value(value):.4g}" if value is not None and not math.isnan(_value(value)) else ""
    return f"{alert_labels_text(labels)} {_age(str(alert.get('activeAt', '')))}{shown}".strip()


def _alerts_of(ctx: CheckContext, selector: Selector, resource: str, manual: str) -> list[dict[str, Any]]:
    alerts = _read(resource, manual, ctx.prometheus.alerts)
    return [a for a in alerts if selector.matches_alert({k: str(v) for k, v in (a.get("labels") or {}).items()})]


def _listed(alerts: list[dict[str, Any]]) -> str:
    text = "; ".join(_alert_text(a) for a in alerts[:SHOWN])
    return text + (f"; and {len(alerts) - SHOWN} more" if len(alerts) > SHOWN else "")


def _runbook_hint(rules: list[dict[str, Any]], default: str) -> str:
    """What the rule's own annotations say to do (summary, runbook_url), else ``default``."""
    for rule in rules:
        annotations = rule.get("annotations") or {}
        parts = [str(annotations[k]) for k in ("summary", "description") if annotations.get(k)]
        if annotations.get("runbook_url"):
            parts.append(f"runbook: {annotations['runbook_url']}")
        if parts:
            return " - ".join(parts)
    return default


def _alert_states(ctx: CheckContext, alert: str, verdict: str) -> tuple[
        str, str, str, list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """What both alert-state checks read: (resource, expected, manual command, the rules of that name, the
    firing alerts, the pending alerts); a name no rule has ends the check (ERROR) in ``_rules_named``."""
    settings = _settings(ctx)
    selector = parse_alert_selector(alert)
    expected = f"{selector} {verdict}"
    manual = _curl(settings, "/api/v1/alerts", ".data.alerts[] | select(.labels.alertname == "
                   f"{_jq_string(selector.name)})" if selector.name else ".data.alerts")
    rules = _rules_named(ctx, selector, settings.url, expected, manual)
    alerts = _alerts_of(ctx, selector, settings.url, manual)
    firing = [a for a in alerts if a.get("state") == "firing"]
    pending = [a for a in alerts if a.get("state") == "pending"]
    return settings.url, expected, manual, rules, firing, pending


@check('the alert "{alert}" is not firing',
       manual="curl -sS <prometheus URL>/api/v1/alerts | jq '.data.alerts[] | select(.labels.alertname == \"<name of "
              "{alert}>\")'",
       validators={"alert": validate_alert_selector}, requires="prometheus")
def alert_not_firing(ctx: CheckContext, alert: str) -> CheckResult:
    """No alert of Prometheus (``/api/v1/alerts``) that the selector matches is firing. The alert is its name
    (``HighErrorRate``), a name with label matchers (``HighErrorRate{service="api"}``) or label matchers
    alone (``{service="api"}``). The alerting rule of that name must exist (``/api/v1/rules``): a name no
    rule has is an ERROR with the close matches, never "not firing". A pending alert (its condition holds,
    not yet for the rule's ``for:``) passes and is named in observed; FAIL lists the firing alerts since
    when, and the hint is the rule's summary and runbook_url annotations."""
    resource, expected, manual, rules, firing, pending = _alert_states(ctx, alert, "not firing")
    evidence = {"firing": [a.get("labels") for a in firing[:EVIDENCE]],
                "pending": [a.get("labels") for a in pending[:EVIDENCE]]}
    if firing:
        return CheckResult.failed(resource, expected, f"{len(firing)} firing: {_listed(firing)}",
                                  _runbook_hint(rules, "follow the runbook of the alert; the labels name where it "
                                                "fires"), manual_command=manual, evidence=evidence)
    note = f"{len(pending)} pending (fires once its condition holds for the rule's for:): {_listed(pending)}" \
        if pending else f"inactive ({len(rules)} rule{'' if len(rules) == 1 else 's'})"
    return CheckResult.passed(resource, expected, f"not firing; {note}", manual_command=manual, evidence=evidence)


@check('the alert "{alert}" is firing',
       manual="curl -sS <prometheus URL>/api/v1/alerts | jq '.data.alerts[] | select(.labels.alertname == \"<name of "
              "{alert}>\")'",
       validators={"alert": validate_alert_selector}, requires="prometheus")
def alert_firing(ctx: CheckContext, alert: str) -> CheckResult:
    """At least one alert the selector matches is firing in Prometheus: e.g. during an alerting drill, or to
    confirm the alert an incident was opened on. Pending is not firing (FAIL, with since when). The rule must
    exist, as for ``is not firing``."""
    resource, expected, manual, rules, firing, pending = _alert_states(ctx, alert, "firing")
    if firing:
        return CheckResult.passed(resource, expected, f"{len(firing)} firing: {_listed(firing)}",
                                  manual_command=manual)
    observed = (f"not firing yet: {len(pending)} pending: {_listed(pending)}" if pending
                else f"not firing: inactive ({len(rules)} rule{'' if len(rules) == 1 else 's'})")
    return CheckResult.failed(resource, expected, observed,
                              "the condition of the rule does not hold (or not yet for its for: duration): check "
                              "its expression against the data with the Prometheus query steps",
                              manual_command=manual)


@check('no alert of severity "{severity}" is firing',
       manual="curl -sS <prometheus URL>/api/v1/alerts | jq '.data.alerts[] | select(.state == \"firing\" and "
              ".labels.severity == \"{severity}\")'",
       requires="prometheus")
def no_alert_of_severity_firing(ctx: CheckContext, severity: str) -> CheckResult:
    """No firing alert in Prometheus has the label ``severity`` with this value. The severity must be one that
    an alerting rule gives (its ``labels``): an unknown one (``crtical``) is an ERROR naming those that
    exist, never a pass."""
    settings = _settings(ctx)
    resource = settings.url
    expected = f"no firing alert with severity={severity}"
    manual = _curl(settings, "/api/v1/alerts", f'.data.alerts[] | select(.state == "firing" and .labels.severity '
                                               f"== {_jq_string(severity)})")
    rules = _alert_rules(ctx, resource, manual)
    severities = {str(labels["severity"]) for r in rules if (labels := r.get("labels") or {}).get("severity")}
    if severity not in severities:
        return CheckResult.errored(resource, f"no alerting rule has severity {severity!r} "
                                   f"({len(rules)} alerting rules{did_you_mean(severity, severities)})",
                                   "check the severity against the rules' labels", expected=expected,
                                   manual_command=manual)
    alerts = _read(resource, manual, ctx.prometheus.alerts)
    firing = [a for a in alerts if a.get("state") == "firing" and (a.get("labels") or {}).get("severity") == severity]
    others = sum(1 for a in alerts if a.get("state") == "firing") - len(firing)
    if firing:
        return CheckResult.failed(resource, expected, f"{len(firing)} firing: {_listed(firing)}",
                                  "each alert listed needs its runbook followed: start with the oldest",
                                  manual_command=manual, evidence={"firing": [a.get("labels") for a in firing]})
    count = sum(1 for r in rules if (r.get("labels") or {}).get("severity") == severity)
    return CheckResult.passed(resource, expected, f"none firing ({count} rules of severity {severity}; {others} "
                              "firing alert(s) of other severities)", manual_command=manual)


def _jq_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@check('the Prometheus alerting rule "{alert}" is loaded and healthy',
       manual="curl -sS <prometheus URL>/api/v1/rules | jq '.data.groups[].rules[] | select(.name == \"{alert}\")'",
       requires="prometheus")
def alerting_rule_loaded(ctx: CheckContext, alert: str) -> CheckResult:
    """Prometheus has an alerting rule of this name (``/api/v1/rules``) and its last evaluation succeeded.
    FAIL when no rule has the name (the alert could never fire: a monitoring gap) or its evaluation fails
    (``lastError``); ERROR when it has not been evaluated yet."""
    settings = _settings(ctx)
    resource = settings.url
    expected = f"alerting rule {alert} loaded and healthy"
    manual = _curl(settings, "/api/v1/rules", f".data.groups[].rules[] | select(.name == {_jq_string(alert)})")
    rules = _alert_rules(ctx, resource, manual)
    named = [r for r in rules if r.get("name") == alert]
    if not named:
        names = {str(r.get("name")) for r in rules}
        return CheckResult.failed(resource, expected, f"no alerting rule named {alert} ({len(rules)} loaded"
                                  f"{did_you_mean(alert, names)})",
                                  "deploy the rule file that defines it (rule_files in prometheus.yml; "
                                  "promtool check rules FILE), then reload Prometheus", manual_command=manual)
    broken = [r for r in named if r.get("health") == "err"]
    if broken:
        return CheckResult.failed(resource, expected, "; ".join(f"group {r['group']}: evaluation fails: "
                                                                 f"{r.get('lastError', '')}" for r in broken),
                                  "fix the rule's expression (promtool check rules FILE; run it as a query)",
                                  manual_command=manual)
    if all(r.get("health") == "unknown" for r in named):
        return CheckResult.errored(resource, f"rule {alert} has not been evaluated yet", "check again after one "
                                   "evaluation interval", expected=expected, manual_command=manual)
    rule = named[0]
    details = [f"group {rule['group']}"]
    if rule.get("duration"):
        details.append(f"for {rule['duration']:g} s" if isinstance(rule["duration"], int | float)
                       else f"for {rule['duration']}")
    if (rule.get("labels") or {}).get("severity"):
        details.append(f"severity {rule['labels']['severity']}")
    details.append(f"state {rule.get('state', 'inactive')}")
    return CheckResult.passed(resource, expected, f"loaded and healthy ({', '.join(details)}): {rule.get('query')}",
                              manual_command=manual)


@check('the Prometheus rules are loaded and healthy',
       manual="curl -sS <prometheus URL>/api/v1/rules | jq '.data.groups[].rules[] | select(.health != \"ok\")'",
       requires="prometheus")
def rules_healthy(ctx: CheckContext) -> CheckResult:
    """Prometheus has at least one rule group loaded and the last evaluation of every rule (alerting and
    recording) succeeded. FAIL when no group is loaded (the rule files were not found or not configured) or
    a rule's evaluation fails, naming the rule, its group and ``lastError``; ERROR when rules have not been
    evaluated yet."""
    settings = _settings(ctx)
    resource = settings.url
    expected = "rule groups loaded, every rule healthy"
    manual = _curl(settings, "/api/v1/rules", '.data.groups[].rules[] | select(.health != "ok")')
    groups = _read(resource, manual, lambda: ctx.prometheus.rule_groups())
    rules = [(g.get("name", ""), r) for g in groups for r in g.get("rules") or []]
    if not groups:
        return CheckResult.failed(resource, expected, "no rule group loaded",
                                  "list the rule files under rule_files in prometheus.yml, check them with promtool "
                                  "check config, and reload Prometheus", manual_command=manual)
    broken = [(g, r) for g, r in rules if r.get("health") == "err"]
    alerting = sum(1 for _, r in rules if r.get("type") == "alerting")
    counts = f"{len(groups)} groups, {len(rules)} rules ({alerting} alerting, {len(rules) - alerting} recording)"
    if broken:
        listed = "; ".join(f"{r.get('name')} in {g}: {r.get('lastError', '')}" for g, r in broken[:SHOWN])
        return CheckResult.failed(resource, expected, f"{len(broken)} of {len(rules)} rules fail to evaluate: {listed}",
                                  "fix each rule's expression (run it as a query; promtool check rules FILE)",
                                  manual_command=manual, evidence={"failing": [r.get("name") for _, r in broken]})
    if rules and all(r.get("health") == "unknown" for _, r in rules):
        return CheckResult.errored(resource, f"{counts}, none evaluated yet", "check again after one evaluation "
                                   "interval", expected=expected, manual_command=manual)
    return CheckResult.passed(resource, expected, f"{counts}, all healthy", manual_command=manual)


# --- scrape targets and Alertmanagers ------------------------------------------------------------------


@check('every Prometheus target of job "{job}" is up',
       manual="curl -sS '<prometheus URL>/api/v1/targets?state=active' | jq '.data.activeTargets[] | "
              "select(.labels.job == \"{job}\") | [.scrapeUrl, .health, .lastError]'",
       requires="prometheus")
def targets_up(ctx: CheckContext, job: str) -> CheckResult:
    """Every target Prometheus scrapes for the job answered its last scrape (``/api/v1/targets``; the same
    fact as ``up{job="..."} == 1``). FAIL lists the targets down with the scrape error; FAIL too when the
    job is configured but service discovery found no target. A job Prometheus does not scrape at all is an
    ERROR with the close matches; targets not scraped yet are an ERROR."""
    settings = _settings(ctx)
    resource = settings.url
    expected = f"every target of job {job} up"
    manual = _curl(settings, "/api/v1/targets?state=active", ".data.activeTargets[] | select(.labels.job == "
                   f"{_jq_string(job)}) | [.scrapeUrl, .health, .lastError]")
    everything = _read(resource, manual, ctx.prometheus.active_targets)
    targets = [t for t in everything if (t.get("labels") or {}).get("job") == job]
    if not targets:
        pools = _read(resource, manual, ctx.prometheus.scrape_pools)
        if pools is not None and job in pools:
            return CheckResult.failed(resource, expected, f"job {job} is configured, but service discovery found "
                                      "no target for it", "check the job's service discovery (the hosts, labels "
                                      "or files it selects) and that the service is deployed",
                                      manual_command=manual)
        jobs = set(pools or []) | {str((t.get("labels") or {}).get("job")) for t in everything}
        return CheckResult.errored(resource, f"Prometheus scrapes no job named {job}{did_you_mean(job, jobs)}",
                                   "check the job name against scrape_configs (the manual command lists the "
                                   "targets)", expected=expected, manual_command=manual)
    down = [t for t in targets if t.get("health") == "down"]
    unknown = [t for t in targets if t.get("health") not in ("up", "down")]
    evidence = {"targets": {str(t.get("scrapeUrl")): t.get("health") for t in targets[:EVIDENCE]}}
    if down:
        listed = "; ".join(f"{t.get('scrapeUrl')}: {t.get('lastError') or 'down'}" for t in down[:SHOWN])
        return CheckResult.failed(resource, expected, f"{len(down)} of {len(targets)} down: {listed}",
                                  "check each target listed: the process, its port and the network path from "
                                  "Prometheus", manual_command=manual, evidence=evidence)
    if unknown:
        return CheckResult.errored(resource, f"{len(unknown)} of {len(targets)} targets not scraped yet",
                                   "check again after one scrape interval", expected=expected, manual_command=manual,
                                   evidence=evidence)
    return CheckResult.passed(resource, expected, f"{len(targets)} target{'' if len(targets) == 1 else 's'} up",
                              manual_command=manual, evidence=evidence)


@check('Prometheus sends its alerts to an Alertmanager',
       manual="curl -sS <prometheus URL>/api/v1/alertmanagers | jq .data", requires="prometheus")
def sends_to_alertmanager(ctx: CheckContext) -> CheckResult:
    """Prometheus has at least one active Alertmanager (``/api/v1/alertmanagers``): without one, alerts fire
    and nobody is notified. FAIL lists the discovered but dropped ones."""
    settings = _settings(ctx)
    resource = settings.url
    manual = _curl(settings, "/api/v1/alertmanagers", ".data")
    active, dropped = _read(resource, manual, ctx.prometheus.alertmanagers)
    expected = "at least one active Alertmanager"
    if active:
        return CheckResult.passed(resource, expected, "sends to " + ", ".join(active), manual_command=manual)
    return CheckResult.failed(resource, expected, "no active Alertmanager" + (f" (dropped: {', '.join(dropped)})"
                                                                              if dropped else ""),
                              "configure alerting.alertmanagers in prometheus.yml and check that Prometheus reaches "
                              "them", manual_command=manual)
