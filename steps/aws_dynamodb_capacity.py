"""DynamoDB capacity: the billing (capacity) mode, and auto scaling of provisioned capacity through
Application Auto Scaling (its scalable targets and target tracking policies).

Only the table's own capacity is read; a global secondary index has scalable targets of its own
(``table/NAME/index/INDEX``) that these steps do not cover.
"""

from __future__ import annotations

from typing import Any

from runbooks.sdk import CheckContext, CheckResult, check

from .aws_dynamodb import describe, table_resource

TITLE = "DynamoDB capacity"  # its heading in the step catalogue
CATALOG_ORDER = 32

MODES = ("PAY_PER_REQUEST", "PROVISIONED")
CAPACITIES = ("read", "write")
NAMESPACE = "dynamodb"


def dimension(capacity: str) -> str:
    """``read`` -> ``dynamodb:table:ReadCapacityUnits``."""
    return f"dynamodb:table:{capacity.title()}CapacityUnits"


def _resource_id(table: str) -> str:
    return f"table/{table}"


@check(
    'the DynamoDB table "{table}" has billing mode "{mode}"',
    permissions=("dynamodb:DescribeTable",),
    manual="aws dynamodb describe-table --table-name {table} "
    "--query '[Table.BillingModeSummary,Table.ProvisionedThroughput]'",
    choices={"mode": MODES},
)
def table_billing_mode(ctx: CheckContext, table: str, mode: str) -> CheckResult:
    """The table's capacity mode: PAY_PER_REQUEST (on-demand) or PROVISIONED (read and write capacity
    units, usually auto-scaled). A table without a BillingModeSummary is PROVISIONED (it predates
    on-demand). The observed text gives the provisioned units."""
    expected = f"BillingMode {mode}"
    description = describe(ctx, table, expected)
    actual = str(description.get("BillingModeSummary", {}).get("BillingMode") or "PROVISIONED")
    throughput = description.get("ProvisionedThroughput", {})
    units = ""
    if actual == "PROVISIONED":
        units = (f" ({throughput.get('ReadCapacityUnits', '?')} read, "
                 f"{throughput.get('WriteCapacityUnits', '?')} write units)")
    observed = f"BillingMode {actual}{units}"
    if actual == mode:
        return CheckResult.passed(table_resource(ctx, table), expected, observed)
    return CheckResult.failed(
        table_resource(ctx, table), expected, observed,
        f"set billing_mode = \"{mode}\" in the table's infrastructure code and apply (DynamoDB allows one "
        "switch to on-demand per 24 hours); check the auto-scaling settings that go with the mode")


def scalable_target(ctx: CheckContext, table: str, capacity: str) -> dict[str, Any] | None:
    response = ctx.aws.read(
        "application-autoscaling", "describe_scalable_targets", ServiceNamespace=NAMESPACE,
        ResourceIds=[_resource_id(table)], ScalableDimension=dimension(capacity))
    found = [t for t in response.get("ScalableTargets", []) if t.get("ScalableDimension") == dimension(capacity)]
    return dict(found[0]) if found else None


@check(
    'the DynamoDB table "{table}" auto-scales its {capacity} capacity between {low:d} and {high:d} units',
    permissions=("application-autoscaling:DescribeScalableTargets",),
    manual="aws application-autoscaling describe-scalable-targets --service-namespace dynamodb "
    "--resource-ids table/{table}",
    choices={"capacity": CAPACITIES},
)
def table_autoscaling_range(ctx: CheckContext, table: str, capacity: str, low: int, high: int) -> CheckResult:
    """Application Auto Scaling has a scalable target for the table's read or write capacity units with
    exactly this minimum and maximum (the capacity plan), and neither scaling out nor scaling in is
    suspended. FAIL names the range it has, or says that there is no target: the capacity stays where it
    was provisioned, however much traffic comes."""
    expected = f"{capacity} capacity auto-scaled between {low} and {high} units"
    target = scalable_target(ctx, table, capacity)
    register = (f"aws application-autoscaling register-scalable-target --service-namespace dynamodb "
                f"--resource-id table/{table} --scalable-dimension {dimension(capacity)} "
                f"--min-capacity {low} --max-capacity {high}")
    if target is None:
        return CheckResult.failed(
            table_resource(ctx, table), expected, f"no scalable target: {capacity} capacity does not auto-scale",
            f"restore the auto-scaling of the table in its infrastructure code and apply, or: {register} "
            "(an on-demand table has no scalable targets: check its billing mode first)")
    actual = (int(target.get("MinCapacity", -1)), int(target.get("MaxCapacity", -1)))
    suspended = [name for name, on in (target.get("SuspendedState") or {}).items() if on]
    observed = f"scales between {actual[0]} and {actual[1]} units"
    if suspended:
        return CheckResult.failed(
            table_resource(ctx, table), expected, f"{observed}, but suspended: {', '.join(sorted(suspended))}",
            f"resume it: {register} --suspended-state DynamicScalingInSuspended=false,"
            "DynamicScalingOutSuspended=false,ScheduledScalingSuspended=false")
    if actual == (low, high):
        return CheckResult.passed(table_resource(ctx, table), expected, observed)
    return CheckResult.failed(
        table_resource(ctx, table), expected, observed,
        f"set the range of the capacity plan in the table's infrastructure code and apply, or: {register}")


@check(
    'the DynamoDB table "{table}" has a target tracking policy for its {capacity} capacity',
    permissions=("application-autoscaling:DescribeScalingPolicies",),
    manual="aws application-autoscaling describe-scaling-policies --service-namespace dynamodb "
    "--resource-id table/{table}",
    choices={"capacity": CAPACITIES},
)
def table_target_tracking(ctx: CheckContext, table: str, capacity: str) -> CheckResult:
    """A TargetTrackingScaling policy drives the table's read or write capacity (a scalable target
    without one never moves). The observed text gives the utilisation it tracks."""
    expected = f"a target tracking policy on {capacity} capacity"
    response = ctx.aws.read(
        "application-autoscaling", "describe_scaling_policies", ServiceNamespace=NAMESPACE,
        ResourceId=_resource_id(table), ScalableDimension=dimension(capacity))
    policies = [p for p in response.get("ScalingPolicies", []) if p.get("ScalableDimension") == dimension(capacity)]
    tracking = [p for p in policies if p.get("PolicyType") == "TargetTrackingScaling"]
    if tracking:
        policy = tracking[0]
        config = policy.get("TargetTrackingScalingPolicyConfiguration", {})
        metric = config.get("PredefinedMetricSpecification", {}).get("PredefinedMetricType", "a custom metric")
        observed = f"policy {policy.get('PolicyName')!r} tracks {metric} at {config.get('TargetValue')}%"
        return CheckResult.passed(table_resource(ctx, table), expected, observed)
    others = ", ".join(f"{p.get('PolicyName')!r} ({p.get('PolicyType')})" for p in policies)
    return CheckResult.failed(
        table_resource(ctx, table), expected,
        f"no target tracking policy{' (only ' + others + ')' if others else ''}",
        f"add the policy in the table's infrastructure code (target value 70, predefined metric "
        f"DynamoDB{capacity.title()}CapacityUtilization) and apply")
