"""CloudWatch alarms: present, and not firing."""

from __future__ import annotations

from datetime import datetime
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
