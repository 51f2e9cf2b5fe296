"""CloudWatch alarms (present, and not firing) and metric statistics over a recent window."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from runbooks.sdk import CheckContext, CheckResult, check

TITLE = "CloudWatch"  # its heading in the step catalogue
CATALOG_ORDER = 50


def _resource(ctx: CheckContext, alarm: str) -> str:
    return f"cloudwatch alarm {alarm} ({ctx.aws.settings.region})"


@check(
    'the CloudWatch alarm "{alarm}" exists and is not in ALARM state',
    permissions=("cloudwatch:DescribeAlarms",),
    manual="aws cloudwatch describe-alarms --alarm-names {alarm} --alarm-types MetricAlarm CompositeAlarm",
)
def alarm_not_firing(ctx: CheckContext, alarm: str) -> CheckResult:
    """The metric or composite alarm exists and its state is not ALARM. OK passes, and so does
    INSUFFICIENT_DATA - the alarm is not firing - but the observed text then says it has no data to
    judge, so a broken metric stays visible in the report. Disabled alarm actions are named too."""
    expected = "alarm exists, state not ALARM"
    response = ctx.aws.read(
        "cloudwatch", "describe_alarms", AlarmNames=[alarm], AlarmTypes=["MetricAlarm", "CompositeAlarm"]
    )
    found = [*response.get("MetricAlarms", []), *response.get("CompositeAlarms", [])]
    if not found:
        return CheckResult.failed(
            _resource(ctx, alarm),
            expected,
            "no such alarm",
            "create the alarm (apply the monitoring stack) or correct its name for this environment",
        )
    state = str(found[0].get("StateValue", "UNKNOWN"))
    observed = f"state {state}{_since(found[0])}"
    if found[0].get("ActionsEnabled") is False:
        observed += "; alarm actions disabled"
    if state == "ALARM":
        reason = found[0].get("StateReason", "")
        return CheckResult.failed(
            _resource(ctx, alarm),
            expected,
            observed + (f": {reason}" if reason else ""),
            "the alarm is firing: follow its runbook; do not proceed until it is back to OK",
        )
    if state == "INSUFFICIENT_DATA":
        observed += " (not firing, but it has no data to judge: check that its metric is being published)"
    return CheckResult.passed(_resource(ctx, alarm), expected, observed)


def _since(alarm: dict[str, Any]) -> str:
    updated = alarm.get("StateUpdatedTimestamp")
    return f" since {updated.isoformat(timespec='seconds')}" if isinstance(updated, datetime) else ""


STATISTICS = {"sum": "Sum", "average": "Average", "maximum": "Maximum", "minimum": "Minimum"}
MAX_DATAPOINTS = 1440  # GetMetricStatistics answers at most this many datapoints per call


def parse_dimensions(text: str) -> list[dict[str, str]]:
    """``TableName=orders,Operation=PutItem`` -> CloudWatch Dimensions; ValueError naming what is wrong."""
    dimensions = []
    for part in text.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep or not name.strip() or not value.strip():
            raise ValueError(f"{part.strip()!r} is not Name=Value (write dimensions as Name=Value,Name=Value)")
        dimensions.append({"Name": name.strip(), "Value": value.strip()})
    if len(dimensions) > 30:
        raise ValueError("a metric has at most 30 dimensions")
    return dimensions


def _dimensions(value: str) -> None:
    parse_dimensions(value)


def _window(value: str) -> None:
    if not 1 <= int(value) <= 63 * 24 * 60:
        raise ValueError("is not a window between 1 minute and 63 days")


def period_for(minutes: int) -> int:
    """The smallest period (a multiple of 60 s) that covers the window in at most 1,440 datapoints."""
    return 60 * max(1, math.ceil(minutes / MAX_DATAPOINTS))


def aggregate(statistic: str, datapoints: list[dict[str, Any]]) -> float:
    """One value for the whole window from per-period datapoints (each with Sum, SampleCount, Maximum,
    Minimum): the average is weighted by the samples of each period."""
    if statistic == "sum":
        return float(sum(p.get("Sum", 0.0) for p in datapoints))
    if statistic == "maximum":
        return float(max(p.get("Maximum", 0.0) for p in datapoints))
    if statistic == "minimum":
        return float(min(p.get("Minimum", 0.0) for p in datapoints))
    samples = sum(p.get("SampleCount", 0.0) for p in datapoints)
    return float(sum(p.get("Sum", 0.0) for p in datapoints) / samples) if samples else 0.0


def _number(value: float) -> str:
    return f"{value:g}"


@check(
    'the {statistic} of the CloudWatch metric "{metric}" in "{namespace}" for "{dimensions}" '
    "over the last {minutes:d} minutes is at most {limit:g}",
    permissions=("cloudwatch:GetMetricStatistics",),
    manual="aws cloudwatch get-metric-statistics --namespace {namespace} --metric-name {metric} "
    "--dimensions <{dimensions} as Name=N,Value=V ...> --statistics Sum SampleCount Maximum Minimum "
    "--period 60 --start-time $(date -u -d '-{minutes} minutes' +%FT%TZ) --end-time $(date -u +%FT%TZ)",
    choices={"statistic": tuple(STATISTICS)},
    validators={"dimensions": _dimensions, "minutes": _window},
)
def metric_at_most(ctx: CheckContext, statistic: str, metric: str, namespace: str, dimensions: str, minutes: int,
                   limit: float) -> CheckResult:
    """The sum, average, maximum or minimum of a CloudWatch metric over the last ``minutes`` minutes
    (GetMetricStatistics, one-minute periods, every datapoint of the window combined) is at most
    ``limit``. A window without datapoints passes and says so: AWS publishes some metrics only when they
    are not zero (DynamoDB's ThrottledRequests), so "no datapoints" means none happened - or that the
    metric name or dimensions are wrong, which the observed text asks to rule out. Metrics arrive one to
    a few minutes late: keep the window longer than that."""
    parsed = parse_dimensions(dimensions)
    label = ",".join(f"{d['Name']}={d['Value']}" for d in parsed)
    resource = f"cloudwatch metric {namespace} {metric} {{{label}}} ({ctx.aws.settings.region})"
    expected = f"{statistic} over the last {minutes} min at most {_number(limit)}"
    end = datetime.now(UTC)
    response = ctx.aws.call(
        "cloudwatch", "get_metric_statistics", Namespace=namespace, MetricName=metric, Dimensions=parsed,
        StartTime=end - timedelta(minutes=minutes), EndTime=end, Period=period_for(minutes),
        Statistics=["Sum", "SampleCount", "Maximum", "Minimum"])
    datapoints = list(response.get("Datapoints", []))
    if not datapoints:
        return CheckResult.passed(
            resource, expected,
            f"no datapoints in the last {minutes} min (nothing was published: for a metric sent only when "
            "non-zero that means none; if you expected data, check the name and dimensions with "
            f"aws cloudwatch list-metrics --namespace {namespace} --metric-name {metric})",
            evidence={"value": None, "datapoints": 0})
    value = aggregate(statistic, datapoints)
    unit = next((str(p["Unit"]) for p in datapoints if p.get("Unit") not in (None, "None")), "")
    observed = (f"{statistic} {_number(value)}{' ' + unit if unit else ''} over the last {minutes} min "
                f"({len(datapoints)} datapoint(s))")
    evidence = {"value": value, "datapoints": len(datapoints)}
    if value <= limit:
        return CheckResult.passed(resource, expected, observed, evidence=evidence)
    return CheckResult.failed(
        resource, expected, observed,
        "look at the metric's graph around the window to see when it started, then follow the runbook of what "
        "it measures", evidence=evidence)
