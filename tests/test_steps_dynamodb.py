"""DynamoDB checks against in-process moto: PASS and FAIL for each, ERROR when the facts cannot be read."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from runbooks.result import CheckResult, Outcome
from runbooks.session import Session
from runbooks.steps.aws_dynamodb import table_active, table_gsi_active, table_has_tag, table_pitr_enabled
from tests.conftest import evaluate

REGION = "eu-west-1"


def ddb() -> Any:
    return boto3.client("dynamodb", region_name=REGION)


def make_table(name: str, *, indexes: tuple[str, ...] = (), tags: dict[str, str] | None = None) -> str:
    attributes = {"id", *(f"{index}_key" for index in indexes)}
    kwargs: dict[str, Any] = {
        "TableName": name,
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": a, "AttributeType": "S"} for a in sorted(attributes)],
        "BillingMode": "PAY_PER_REQUEST",
    }
    if indexes:
        kwargs["GlobalSecondaryIndexes"] = [
            {
                "IndexName": index,
                "KeySchema": [{"AttributeName": f"{index}_key", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
            for index in indexes
        ]
    if tags:
        kwargs["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
    ddb().create_table(**kwargs)
    return name


def resource(table: str) -> str:
    return f"dynamodb table {table} (eu-west-1)"


@pytest.mark.parametrize(
    ("func", "args"),
    [
        (table_active, {}),
        (table_pitr_enabled, {}),
        (table_gsi_active, {"index": "email-index"}),
        (table_has_tag, {"key": "owner", "value": "platform-team"}),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_missing_table_is_a_fail_saying_so(
    moto_run: Session, func: Callable[..., CheckResult], args: dict[str, Any]
) -> None:
    result = evaluate(moto_run, func, table="no-such-table", **args)
    assert result.outcome is Outcome.FAIL
    assert result.resource == resource("no-such-table")
    assert result.observed == "the table does not exist"
    assert "create the table" in result.hint
    assert result.expected


def test_table_active_pass(moto_run: Session) -> None:
    table = make_table("active-table")
    result = evaluate(moto_run, table_active, table=table)
    assert (result.outcome, result.expected, result.observed) == (
        Outcome.PASS,
        "TableStatus ACTIVE",
        "TableStatus ACTIVE",
    )
    assert result.manual_command.startswith("aws dynamodb describe-table --table-name active-table")


def test_table_not_active_fails(moto_run: Session) -> None:
    # moto creates tables ACTIVE at once; a table still CREATING is answered by a stub.
    with Stubber(moto_run.aws.client("dynamodb")) as stub:
        stub.add_response(
            "describe_table",
            {"Table": {"TableName": "busy-table", "TableStatus": "CREATING"}},
            {"TableName": "busy-table"},
        )
        result = evaluate(moto_run, table_active, table="busy-table")
    assert (result.outcome, result.observed) == (Outcome.FAIL, "TableStatus CREATING")


def test_pitr_off_fails(moto_run: Session) -> None:
    table = make_table("pitr-off")
    result = evaluate(moto_run, table_pitr_enabled, table=table)
    assert result.outcome is Outcome.FAIL
    assert (result.expected, result.observed) == (
        "PointInTimeRecoveryStatus ENABLED",
        "PointInTimeRecoveryStatus DISABLED",
    )
    assert "update-continuous-backups --table-name pitr-off" in result.hint
    assert result.manual_command == "aws dynamodb describe-continuous-backups --table-name pitr-off"


def test_pitr_on_passes(moto_run: Session) -> None:
    table = make_table("pitr-on")
    ddb().update_continuous_backups(
        TableName=table, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
    )
    result = evaluate(moto_run, table_pitr_enabled, table=table)
    assert (result.outcome, result.observed) == (Outcome.PASS, "PointInTimeRecoveryStatus ENABLED")


def test_gsi_present_passes_and_missing_fails(moto_run: Session) -> None:
    make_table("gsi-table", indexes=("email-index", "name-index"))
    make_table("plain-table")

    present = evaluate(moto_run, table_gsi_active, table="gsi-table", index="email-index")
    assert (present.outcome, present.expected, present.observed) == (
        Outcome.PASS,
        "GSI email-index ACTIVE",
        "GSI email-index ACTIVE",
    )
    missing = evaluate(moto_run, table_gsi_active, table="gsi-table", index="actor-index")
    assert (missing.outcome, missing.observed) == (
        Outcome.FAIL,
        "no GSI 'actor-index' (indexes: email-index, name-index)",
    )
    none = evaluate(moto_run, table_gsi_active, table="plain-table", index="actor-index")
    assert (none.outcome, none.observed) == (Outcome.FAIL, "no GSI 'actor-index' (indexes: none)")


def test_gsi_still_creating_fails(moto_run: Session) -> None:
    with Stubber(moto_run.aws.client("dynamodb")) as stub:
        stub.add_response(
            "describe_table",
            {
                "Table": {
                    "TableName": "backfill-table",
                    "TableStatus": "ACTIVE",
                    "GlobalSecondaryIndexes": [{"IndexName": "email-index", "IndexStatus": "CREATING"}],
                }
            },
        )
        result = evaluate(moto_run, table_gsi_active, table="backfill-table", index="email-index")
    assert (result.outcome, result.observed) == (Outcome.FAIL, "GSI email-index CREATING")
    assert "backfilling" in result.hint


@pytest.mark.parametrize(
    ("tags", "outcome", "observed"),
    [
        (None, Outcome.FAIL, "no tag 'owner' (tags: none)"),
        ({"environment": "sandbox"}, Outcome.FAIL, "no tag 'owner' (tags: environment)"),
        ({"owner": "security-team"}, Outcome.FAIL, "tag owner=security-team"),
        ({"owner": "platform-team"}, Outcome.PASS, "tag owner=platform-team"),
    ],
)
def test_table_tag(moto_run: Session, tags: dict[str, str] | None, outcome: Outcome, observed: str) -> None:
    table = make_table("tagged-table", tags=tags)
    result = evaluate(moto_run, table_has_tag, table=table, key="owner", value="platform-team")
    assert (result.outcome, result.expected, result.observed) == (
        outcome,
        "tag owner=platform-team",
        observed,
    )
    if outcome is Outcome.FAIL:
        assert "tag-resource --resource-arn arn:aws:dynamodb:eu-west-1:" in result.hint


def test_table_tag_on_a_later_page_is_found(moto_run: Session) -> None:
    # moto, like DynamoDB, pages ListTagsOfResource; the tag sought is on the second page.
    tags = {f"k{i:02d}": "v" for i in range(14)} | {"owner": "platform-team"}
    table = make_table("many-tags", tags=tags)
    arn = ddb().describe_table(TableName=table)["Table"]["TableArn"]
    assert "NextToken" in ddb().list_tags_of_resource(ResourceArn=arn)  # really paged
    result = evaluate(moto_run, table_has_tag, table=table, key="owner", value="platform-team")
    assert (result.outcome, result.observed) == (Outcome.PASS, "tag owner=platform-team")


def test_access_denied_is_an_error_not_a_fail(moto_run: Session) -> None:
    table = make_table("denied-table")
    with Stubber(moto_run.aws.client("dynamodb")) as stub:
        stub.add_client_error(
            "describe_continuous_backups",
            service_error_code="AccessDeniedException",
            service_message="User is not authorized to perform: dynamodb:DescribeContinuousBackups",
            http_status_code=400,
        )
        result = evaluate(moto_run, table_pitr_enabled, table=table)
    assert result.outcome is Outcome.ERROR
    assert result.resource == "table denied-table"
    assert result.observed.startswith("access denied for DescribeContinuousBackups (AccessDeniedException)")
    assert "dynamodb:DescribeContinuousBackups" in result.observed
    assert "grant the read permission" in result.hint
