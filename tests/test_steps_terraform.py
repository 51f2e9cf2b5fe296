"""The Terraform lock-table check against in-process moto: PASS, FAIL and ERROR, with the evidence it prints."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from runbooks.result import Outcome
from runbooks.session import Session
from runbooks.steps.aws_terraform import no_stale_terraform_lock, parse_created
from tests.conftest import evaluate

REGION = "eu-west-1"
TABLE = "tf-locks"
STATE = "acme-tfstate/platform/terraform.tfstate"


def ddb() -> Any:
    return boto3.client("dynamodb", region_name=REGION)


def make_table(name: str = TABLE) -> None:
    ddb().create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


def go_time(moment: datetime) -> str:
    """As Terraform writes it: RFC 3339 with nanoseconds and Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"


def put_lock(minutes_ago: float, who: str = "jenkins@ci-7", lock_id: str = STATE, info_id: str = "5e1f-aa") -> None:
    info = {"ID": info_id, "Operation": "OperationTypeApply", "Info": "", "Who": who, "Version": "1.9.5",
            "Created": go_time(datetime.now(UTC) - timedelta(minutes=minutes_ago)), "Path": lock_id}
    ddb().put_item(TableName=TABLE, Item={"LockID": {"S": lock_id}, "Info": {"S": json.dumps(info)}})


def put_digest() -> None:
    ddb().put_item(TableName=TABLE, Item={"LockID": {"S": STATE + "-md5"}, "Digest": {"S": "0cc175b9c0f1b6a8"}})


def check(run: Session, minutes: int = 60) -> Any:
    return evaluate(run, no_stale_terraform_lock, table=TABLE, minutes=minutes)


def test_empty_table_and_digest_items_pass(moto_run: Session) -> None:
    make_table()
    put_digest()
    result = check(moto_run)
    assert result.outcome is Outcome.PASS
    assert (result.resource, result.expected, result.observed) == (
        f"dynamodb table {TABLE} ({REGION})", "no lock older than 60 min", "no lock held")
    assert result.manual_command.startswith(f"aws dynamodb scan --table-name {TABLE}")


def test_a_recent_lock_passes_and_is_named(moto_run: Session) -> None:
    make_table()
    put_lock(minutes_ago=5, who="alice@laptop")
    result = check(moto_run)
    assert result.outcome is Outcome.PASS
    assert result.observed.startswith("1 recent lock(s), a run is in progress: ")
    assert f"{STATE} held by alice@laptop" in result.observed
    assert "(5 min, OperationTypeApply, lock ID 5e1f-aa)" in result.observed


def test_a_stale_lock_fails_with_who_when_and_the_unlock_command(moto_run: Session) -> None:
    make_table()
    put_digest()
    put_lock(minutes_ago=5, who="alice@laptop", lock_id="acme-tfstate/data/terraform.tfstate", info_id="fresh-1")
    put_lock(minutes_ago=190, who="jenkins@ci-7", info_id="9f86-d081")
    result = check(moto_run, minutes=60)
    assert result.outcome is Outcome.FAIL
    assert result.observed.startswith(f"1 stale lock(s): {STATE} held by jenkins@ci-7 since ")
    assert "(3 h 10 min, OperationTypeApply, lock ID 9f86-d081)" in result.observed
    assert "alice" not in result.observed  # the recent lock is not stale
    assert result.hint.endswith("terraform force-unlock 9f86-d081")
    assert result.evidence == {"stale": [STATE]}


def test_several_stale_locks_get_one_unlock_command_each(moto_run: Session) -> None:
    # force-unlock takes exactly one lock ID, and acts on the state of the directory it runs in
    make_table()
    other = "acme-tfstate/data/terraform.tfstate"
    put_lock(minutes_ago=300, who="jenkins@ci-7", info_id="9f86-d081")
    put_lock(minutes_ago=120, who="bob@laptop", lock_id=other, info_id="ab12-cd34")
    result = check(moto_run, minutes=60)
    assert result.outcome is Outcome.FAIL
    first, *locks = result.hint.split("\n")
    assert first.startswith("first make sure each run is really dead: ask the person named")
    assert "in a working directory whose backend is that state (bucket/key)" in first
    assert len(locks) == 2
    assert locks[0].startswith(f"  {STATE} (held by jenkins@ci-7 since ")
    assert locks[0].endswith("): terraform force-unlock 9f86-d081")
    assert locks[1].startswith(f"  {other} (held by bob@laptop since ")
    assert locks[1].endswith("): terraform force-unlock ab12-cd34")
    assert result.evidence == {"stale": [STATE, other]}


def test_the_threshold_decides(moto_run: Session) -> None:
    # the same (memoised) scan, judged against two thresholds
    make_table()
    put_lock(minutes_ago=90)
    assert check(moto_run, minutes=120).outcome is Outcome.PASS
    assert check(moto_run, minutes=60).outcome is Outcome.FAIL


def test_missing_table_is_a_fail_not_an_error(moto_run: Session) -> None:
    result = check(moto_run)
    assert result.outcome is Outcome.FAIL
    assert result.observed == "the lock table does not exist"
    assert "create the lock table" in result.hint


def test_a_lock_without_a_readable_time_is_an_error(moto_run: Session) -> None:
    make_table()
    ddb().put_item(TableName=TABLE, Item={"LockID": {"S": STATE}, "Info": {"S": "not json"}})
    result = check(moto_run)
    assert result.outcome is Outcome.ERROR
    assert result.observed.startswith(f"cannot tell the age of lock(s): {STATE}: Info is not JSON")


def test_an_unreadable_lock_does_not_hide_a_stale_one(moto_run: Session) -> None:
    make_table()
    put_lock(minutes_ago=300, lock_id="acme-tfstate/a/terraform.tfstate")
    ddb().put_item(TableName=TABLE, Item={"LockID": {"S": "acme-tfstate/b/terraform.tfstate"},
                                          "Info": {"S": json.dumps({"Who": "bob"})}})
    result = check(moto_run)
    assert result.outcome is Outcome.FAIL
    assert "also unreadable: acme-tfstate/b/terraform.tfstate: Info has no Created time" in result.observed


def test_access_denied_is_an_error_not_a_fail(moto_run: Session) -> None:
    client = moto_run.aws.client("dynamodb")
    with Stubber(client) as stub:
        stub.add_client_error("scan", service_error_code="AccessDeniedException",
                              service_message="not authorized to perform: dynamodb:Scan", http_status_code=400)
        result = check(moto_run)
    assert result.outcome is Outcome.ERROR
    assert result.observed.startswith("access denied for Scan (AccessDeniedException)")
    assert "runbooks iam-policy" in result.hint


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-21T08:15:30.123456789Z", datetime(2026, 11, 21, 8, 15, 30, 123456, tzinfo=UTC)),
        ("2026-11-21T08:15:30Z", datetime(2026, 11, 21, 8, 15, 30, tzinfo=UTC)),
        ("2026-11-21T10:15:30.5+02:00", datetime(2026, 11, 21, 8, 15, 30, 500000, tzinfo=UTC)),
    ],
)
def test_parse_created_reads_go_rfc3339(text: str, expected: datetime) -> None:
    assert parse_created(text) == expected


def test_parse_created_refuses_other_formats() -> None:
    with pytest.raises(ValueError, match="not an RFC 3339 time"):
        parse_created("21/11/2026 08:15")
