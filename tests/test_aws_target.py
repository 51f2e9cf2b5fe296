"""The AWS target's boundary: what a stub does with an action it lacks, and the per-run call count.

moto 5.2 answers an unimplemented action in four ways, measured here rather than assumed:
in-process it raises ``NotImplementedError`` (ListBackupSelections) or answers 404 "Not yet
implemented" (ListRecoveryPointsByBackupVault, no URL route); its server answers an HTML 500 or an
HTML 404 for the same two. The target turns all four into ``NotImplementedByTarget`` - an ERROR that
says so - at the first attempt, and leaves real "not found" answers alone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from runbooks.faults import FaultKind, classify
from runbooks.result import Outcome
from runbooks.session import Session
from runbooks.steps.aws_backup import backup_plan_protects_table, vault_has_recent_recovery_point
from runbooks.steps.aws_s3 import bucket_exists
from runbooks.targets.aws import NotImplementedByTarget, moto_implements, stub_gap
from tests.conftest import evaluate
from tests.support.moto_server import MotoServer, endpoint_credentials, moto_server  # noqa: F401

REGION = "eu-west-1"
PLAN = {"BackupPlanName": "nightly", "Rules": [{"RuleName": "r", "TargetBackupVaultName": "vault"}]}


def attempts(client: Any) -> Counter[str]:
    """HTTP attempts per operation (``before-send`` fires once per attempt, retries included)."""
    seen: Counter[str] = Counter()

    def count(event_name: str, **_: Any) -> None:
        seen[event_name.rpartition(".")[2]] += 1

    client.meta.events.register("before-send", count)
    return seen


# --- what moto does, raw ---------------------------------------------------------------------------


def test_moto_in_process_raises_not_implemented_error_or_404() -> None:
    with mock_aws():
        backup = boto3.client("backup", region_name=REGION)
        with pytest.raises(NotImplementedError, match="list_backup_selections action has not been"):
            backup.list_backup_selections(BackupPlanId="x")
        with pytest.raises(ClientError) as caught:
            backup.list_recovery_points_by_backup_vault(BackupVaultName="vault")
    assert caught.value.response["Error"] == {"Code": "404", "Message": "Not yet implemented"}


def test_describe_error_names_the_operation_of_a_bare_not_implemented_error() -> None:
    exc = NotImplementedError("The get_backup_selection action has not been implemented")
    assert classify(exc, "moto").reason == "the moto target does not implement GetBackupSelection"
    assert classify(exc, "moto").kind is FaultKind.NOT_IMPLEMENTED
    assert classify(NotImplementedError("something else"), "moto").kind is FaultKind.DEFECT


def test_stub_gap_rules() -> None:
    html = {"content-type": "text/html; charset=utf-8"}
    assert stub_gap(404, {}, b"Not yet implemented", "backup", "ListRecoveryPointsByBackupVault")
    assert stub_gap(404, html, b"<h1>Not Found</h1>", "backup", "ListRecoveryPointsByBackupVault")
    assert stub_gap(500, html, b"<h1>Internal Server Error</h1>", "backup", "ListBackupSelections")
    # a 500 for an action moto does implement is a stub failure, not a gap; an empty 404 is "not found"
    assert not stub_gap(500, html, b"<h1>Internal Server Error</h1>", "backup", "ListBackupPlans")
    assert not stub_gap(404, {}, b"", "s3", "HeadBucket")
    assert not stub_gap(404, {"content-type": "application/xml"}, b"<Error/>", "s3", "GetObject")
    assert moto_implements("backup", "ListBackupPlans") is True
    assert moto_implements("backup", "ListBackupSelections") is False
    assert moto_implements("no-such-service", "Anything") is None


# --- in-process moto target ------------------------------------------------------------------------


def test_in_process_gaps_become_errors_that_say_so(moto_run: Session) -> None:
    boto3.client("backup", region_name=REGION).create_backup_plan(BackupPlan=PLAN)
    ddb = boto3.client("dynamodb", region_name=REGION)
    ddb.create_table(TableName="orders", KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST")
    with pytest.raises(NotImplementedByTarget, match="the moto target does not implement ListBackupSel"):
        moto_run.aws.paginate("backup", "list_backup_selections", BackupPlanId="x")
    with pytest.raises(NotImplementedByTarget, match="does not implement ListRecoveryPointsByBackupVault"):
        moto_run.aws.read("backup", "list_recovery_points_by_backup_vault", BackupVaultName="vault")

    selection = evaluate(moto_run, backup_plan_protects_table, plan="nightly", table="orders")
    assert selection.outcome is Outcome.ERROR
    assert selection.observed == "the moto target does not implement ListBackupSelections"
    assert selection.resource == "backup plan nightly -> dynamodb table orders"
    assert "stub cannot answer" in selection.hint
    points = evaluate(moto_run, vault_has_recent_recovery_point, vault="vault", resource="orders", hours=24)
    assert points.outcome is Outcome.ERROR
    assert points.observed == "the moto target does not implement ListRecoveryPointsByBackupVault"


# --- moto server through an endpoint target ---------------------------------------------------------


@pytest.fixture
def endpoint_run(moto_server: MotoServer, run_factory: Callable[..., Session],  # noqa: F811
                 endpoint_credentials: None) -> Iterator[Session]:  # noqa: F811
    moto_server.reset()
    yield run_factory(f'aws = {{ target = "endpoint", url = "{moto_server.url}", region = "{REGION}" }}\n')


def test_server_gaps_are_reported_at_the_first_attempt(moto_server: MotoServer, endpoint_run: Session) -> None:  # noqa: F811
    plan_id = moto_server.client("backup", REGION).create_backup_plan(BackupPlan=PLAN)["BackupPlanId"]
    sent = attempts(endpoint_run.aws.client("backup"))
    # HTML 500: moto's server hit NotImplementedError; without the gap rule botocore would retry it 5 times
    with pytest.raises(NotImplementedByTarget, match="the endpoint target does not implement ListBackupSel"):
        endpoint_run.aws.paginate("backup", "list_backup_selections", BackupPlanId=plan_id)
    # HTML 404: the server has no route for it at all
    with pytest.raises(NotImplementedByTarget, match="does not implement ListRecoveryPointsByBackupVault"):
        endpoint_run.aws.read("backup", "list_recovery_points_by_backup_vault", BackupVaultName="vault")
    assert sent == Counter({"ListBackupSelections": 1, "ListRecoveryPointsByBackupVault": 1})


def test_a_real_not_found_from_the_server_is_not_a_gap(endpoint_run: Session) -> None:
    result = evaluate(endpoint_run, bucket_exists, bucket="no-such-bucket-here")
    assert result.outcome is Outcome.FAIL
    assert result.observed == "the bucket does not exist"


# --- the call count -----------------------------------------------------------------------------


def test_calls_count_every_request_and_no_memo_hit(moto_run: Session) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    for i in range(3):
        s3.create_bucket(Bucket=f"count-{i}", CreateBucketConfiguration={"LocationConstraint": REGION})
    before = moto_run.aws.calls
    for _ in range(3):
        moto_run.aws.read("s3", "get_bucket_versioning", Bucket="count-0")
        moto_run.aws.paginate("s3", "list_objects_v2", Bucket="count-1")
    moto_run.aws.call("s3", "get_bucket_versioning", Bucket="count-2")  # un-memoised by design
    moto_run.aws.call("s3", "get_bucket_versioning", Bucket="count-2")
    assert moto_run.aws.calls - before == 4
    assert moto_run.metadata()["aws_api_calls"] == moto_run.aws.calls
