"""DynamoDB tables: status, point-in-time recovery (and its window), global secondary indexes, tags."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from runbooks.sdk import (
    CheckContext,
    CheckResult,
    CouldNotCheck,
    Fault,
    FaultKind,
    Finding,
    aws_resource,
    check,
    error_code,
)

from ._shared import tag_result

TITLE = "DynamoDB"  # its heading in the step catalogue
CATALOG_ORDER = 30

TABLE = aws_resource("dynamodb-table")
MISSING = TABLE.not_found_codes


def table_resource(ctx: CheckContext, table: str) -> str:
    return TABLE.label(table, ctx.aws.settings.region)


def ddb_get(ctx: CheckContext, operation: str, table: str, expected: str, **params: Any) -> dict[str, Any]:
    """Read one table fact; a missing table is a FAIL that says so."""
    try:
        return ctx.aws.read("dynamodb", operation, **params)  # type: ignore[no-any-return]
    except ClientError as exc:
        if error_code(exc) in MISSING:
            raise Finding(
                CheckResult.failed(
                    table_resource(ctx, table),
                    expected,
                    f"the {TABLE.noun} does not exist",
                    "create the table (apply the data stack) or correct the table name for this environment",
                )
            ) from None
        raise


def enable_pitr_command(table: str) -> str:
    return (f"aws dynamodb update-continuous-backups --table-name {table} "
            "--point-in-time-recovery-specification PointInTimeRecoveryEnabled=true")


def describe(ctx: CheckContext, table: str, expected: str) -> dict[str, Any]:
    description = ddb_get(ctx, "describe_table", table, expected, TableName=table).get("Table")
    if not isinstance(description, dict):  # a JSON answer without the table: never read as a fact
        raise CouldNotCheck(Fault.of(FaultKind.MALFORMED_RESPONSE,
                                     f"malformed answer to DescribeTable (dynamodb): no Table for {table}"))
    return description


@check(
    'the DynamoDB table "{table}" is active',
    permissions=("dynamodb:DescribeTable",),
    manual="aws dynamodb describe-table --table-name {table} --query Table.TableStatus",
)
def table_active(ctx: CheckContext, table: str) -> CheckResult:
    """The table exists and its status is ACTIVE."""
    expected = "TableStatus ACTIVE"
    status = describe(ctx, table, expected).get("TableStatus", "UNKNOWN")
    if status == "ACTIVE":
        return CheckResult.passed(table_resource(ctx, table), expected, "TableStatus ACTIVE")
    return CheckResult.failed(
        table_resource(ctx, table),
        expected,
        f"TableStatus {status}",
        "wait for CREATING/UPDATING to finish; a table stuck in another state needs AWS support or a restore",
    )


@check(
    'the DynamoDB table "{table}" has point-in-time recovery enabled',
    permissions=("dynamodb:DescribeContinuousBackups",),
    manual="aws dynamodb describe-continuous-backups --table-name {table}",
)
def table_pitr_enabled(ctx: CheckContext, table: str) -> CheckResult:
    """Point-in-time recovery (continuous backups) is ENABLED."""
    expected = "PointInTimeRecoveryStatus ENABLED"
    response = ddb_get(ctx, "describe_continuous_backups", table, expected, TableName=table)
    description = response.get("ContinuousBackupsDescription", {})
    pitr = description.get("PointInTimeRecoveryDescription", {})
    status = pitr.get("PointInTimeRecoveryStatus", "DISABLED")
    if status == "ENABLED":
        return CheckResult.passed(table_resource(ctx, table), expected, "PointInTimeRecoveryStatus ENABLED")
    return CheckResult.failed(
        table_resource(ctx, table),
        expected,
        f"PointInTimeRecoveryStatus {status}",
        enable_pitr_command(table),
    )


@check(
    'the DynamoDB table "{table}" has an active global secondary index "{index}"',
    permissions=("dynamodb:DescribeTable",),
    manual="aws dynamodb describe-table --table-name {table} "
    "--query 'Table.GlobalSecondaryIndexes[].[IndexName,IndexStatus]'",
)
def table_gsi_active(ctx: CheckContext, table: str, index: str) -> CheckResult:
    """The table has the named global secondary index and its IndexStatus is ACTIVE."""
    expected = f"GSI {index} ACTIVE"
    indexes = {i["IndexName"]: i for i in describe(ctx, table, expected).get("GlobalSecondaryIndexes", [])}
    if index not in indexes:
        return CheckResult.failed(
            table_resource(ctx, table),
            expected,
            f"no GSI {index!r} (indexes: {', '.join(sorted(indexes)) or 'none'})",
            "add the index in the table's infrastructure code and apply; check the apply log for GSI errors",
        )
    status = indexes[index].get("IndexStatus", "UNKNOWN")
    if status == "ACTIVE":
        return CheckResult.passed(table_resource(ctx, table), expected, f"GSI {index} ACTIVE")
    return CheckResult.failed(
        table_resource(ctx, table),
        expected,
        f"GSI {index} {status}",
        "an index in CREATING is still backfilling: wait and re-check; otherwise inspect the apply log",
    )


@check(
    'the DynamoDB table "{table}" has tag "{key}" set to "{value}"',
    permissions=("dynamodb:DescribeTable", "dynamodb:ListTagsOfResource"),
    manual="aws dynamodb list-tags-of-resource --resource-arn $(aws dynamodb describe-table "
    "--table-name {table} --query Table.TableArn --output text)",
)
def table_has_tag(ctx: CheckContext, table: str, key: str, value: str) -> CheckResult:
    """The table carries the tag with exactly this value."""
    expected = f"tag {key}={value}"
    arn, tags = table_tags(ctx, table, expected)
    hint = (
        "add the tag in the table's infrastructure code, or "
        f"aws dynamodb tag-resource --resource-arn {arn} --tags Key={key},Value={value}"
    )
    return tag_result(table_resource(ctx, table), tags, key, value, hint)


def table_tags(ctx: CheckContext, table: str, expected: str) -> tuple[str, dict[str, str]]:
    """The table's ARN and all its tags (every page); FAIL when the table is missing."""
    arn = str(describe(ctx, table, expected)["TableArn"])
    tags: dict[str, str] = {}
    token: str | None = None
    while True:
        params: dict[str, Any] = {"ResourceArn": arn, **({"NextToken": token} if token else {})}
        page = ddb_get(ctx, "list_tags_of_resource", table, expected, **params)
        tags.update({t["Key"]: t["Value"] for t in page.get("Tags", [])})
        token = page.get("NextToken")
        if not token:
            return arn, tags


@check(
    'the DynamoDB table "{table}" can be restored to any point in the last {hours:d} hours',
    permissions=("dynamodb:DescribeContinuousBackups",),
    manual="aws dynamodb describe-continuous-backups --table-name {table} "
    "--query ContinuousBackupsDescription.PointInTimeRecoveryDescription",
)
def table_restorable_window(ctx: CheckContext, table: str, hours: int) -> CheckResult:
    """Point-in-time recovery is ENABLED and its earliest restorable time is at least ``hours`` ago,
    so any moment of the last ``hours`` hours can be restored. A table whose PITR was enabled recently
    (or whose recovery period is shorter) fails, and the observed text gives the window it has."""
    expected = f"PITR ENABLED, restorable back to {hours} h ago"
    response = ddb_get(ctx, "describe_continuous_backups", table, expected, TableName=table)
    pitr = response.get("ContinuousBackupsDescription", {}).get("PointInTimeRecoveryDescription", {})
    status = pitr.get("PointInTimeRecoveryStatus", "DISABLED")
    enable = enable_pitr_command(table)
    if status != "ENABLED":
        observed = f"PointInTimeRecoveryStatus {status}"
        return CheckResult.failed(table_resource(ctx, table), expected, observed, enable)
    earliest = pitr.get("EarliestRestorableDateTime")
    if not isinstance(earliest, datetime):
        return CheckResult.failed(
            table_resource(ctx, table), expected, "PITR ENABLED but no earliest restorable time reported yet",
            "PITR was enabled moments ago; re-check later",
        )
    now = datetime.now(UTC)
    window_h = (now - earliest).total_seconds() / 3600
    period = pitr.get("RecoveryPeriodInDays")
    observed = (
        f"restorable back to {earliest.astimezone(UTC).isoformat(timespec='minutes')} "
        f"({_hours(window_h)} window{f', RecoveryPeriodInDays {period}' if period else ''})"
    )
    if earliest <= now - timedelta(hours=hours):
        return CheckResult.passed(table_resource(ctx, table), expected, observed)
    if period and int(period) * 24 < hours:
        hint = f"the recovery period ({period} d) is shorter than {hours} h: {enable},RecoveryPeriodInDays=35"
    else:
        hint = "PITR was enabled (or re-enabled) recently: the window grows with time; find out why"
    return CheckResult.failed(table_resource(ctx, table), expected, observed, hint)


def _hours(value: float) -> str:
    return f"{value:.1f} h" if value < 48 else f"{value / 24:.1f} days"
