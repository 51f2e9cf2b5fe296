"""DynamoDB tables: status, point-in-time recovery, global secondary indexes, tags."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from runbooks.aws import error_code
from runbooks.registry import check
from runbooks.result import CheckResult
from runbooks.run import CheckContext, Finding
from steps._shared import tag_result

MISSING = {"ResourceNotFoundException", "TableNotFoundException"}


def _resource(ctx: CheckContext, table: str) -> str:
    return f"dynamodb table {table} ({ctx.aws.settings.region})"


def ddb_get(ctx: CheckContext, operation: str, table: str, expected: str, **params: Any) -> dict[str, Any]:
    """Read one table fact; a missing table is a FAIL that says so."""
    try:
        return ctx.aws.read("dynamodb", operation, **params)  # type: ignore[no-any-return]
    except ClientError as exc:
        if error_code(exc) in MISSING:
            raise Finding(
                CheckResult.failed(
                    _resource(ctx, table),
                    expected,
                    "the table does not exist",
                    "create the table (apply the data stack) or correct the table name for this environment",
                )
            ) from None
        raise


def describe(ctx: CheckContext, table: str, expected: str) -> dict[str, Any]:
    return ddb_get(ctx, "describe_table", table, expected, TableName=table)["Table"]  # type: ignore[no-any-return]


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
        return CheckResult.passed(_resource(ctx, table), expected, "TableStatus ACTIVE")
    return CheckResult.failed(
        _resource(ctx, table),
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
    status = description.get("PointInTimeRecoveryDescription", {}).get("PointInTimeRecoveryStatus", "DISABLED")
    if status == "ENABLED":
        return CheckResult.passed(_resource(ctx, table), expected, "PointInTimeRecoveryStatus ENABLED")
    return CheckResult.failed(
        _resource(ctx, table),
        expected,
        f"PointInTimeRecoveryStatus {status}",
        f"aws dynamodb update-continuous-backups --table-name {table} "
        "--point-in-time-recovery-specification PointInTimeRecoveryEnabled=true",
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
            _resource(ctx, table),
            expected,
            f"no GSI {index!r} (indexes: {', '.join(sorted(indexes)) or 'none'})",
            "add the index in the table's infrastructure code and apply; check the apply log for GSI errors",
        )
    status = indexes[index].get("IndexStatus", "UNKNOWN")
    if status == "ACTIVE":
        return CheckResult.passed(_resource(ctx, table), expected, f"GSI {index} ACTIVE")
    return CheckResult.failed(
        _resource(ctx, table),
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
    arn = describe(ctx, table, expected)["TableArn"]
    tags: dict[str, str] = {}
    token: str | None = None
    while True:
        params: dict[str, Any] = {"ResourceArn": arn, **({"NextToken": token} if token else {})}
        page = ddb_get(ctx, "list_tags_of_resource", table, expected, **params)
        tags.update({t["Key"]: t["Value"] for t in page.get("Tags", [])})
        token = page.get("NextToken")
        if not token:
            break
    return tag_result(_resource(ctx, table), tags, key, value, "add the tag in the table's infrastructure code, or "
                      f"aws dynamodb tag-resource --resource-arn {arn} --tags Key={key},Value={value}")
