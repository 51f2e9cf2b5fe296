"""The newer single-resource AWS steps against moto: S3 replication and contents, the DynamoDB restore
window, AWS Backup, CloudWatch alarms and the account.

AWS Backup selections and recovery points are not implemented by moto 5.2: against it those steps
ERROR (tests/test_aws_target.py); their PASS/FAIL logic is tested here with botocore's Stubber on the
run's own backup client, for exactly the calls moto cannot answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from runbooks.result import Outcome
from runbooks.session import Session
from runbooks.steps.aws_account import account_is, validate_account_id
from runbooks.steps.aws_backup import backup_plan_exists, backup_plan_protects_table, vault_has_recent_recovery_point
from runbooks.steps.aws_cloudwatch import alarm_not_firing
from runbooks.steps.aws_dynamodb import table_pitr_enabled, table_restorable_window
from runbooks.steps.aws_s3 import bucket_holds_objects, bucket_replicates_to
from tests.conftest import evaluate
from tests.support.moto_iam import EnforcingMoto, iam_moto, policy_json  # noqa: F401

REGION = "eu-west-1"
ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/backup"
NO_WEEKLY = "no backup plan named 'weekly' (plans: nightly)"


def bucket(s3: Any, name: str, versioned: bool = False) -> None:
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    if versioned:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})


def table(ddb: Any, name: str, tags: dict[str, str] | None = None) -> str:
    response = ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        **({"Tags": [{"Key": k, "Value": v} for k, v in tags.items()]} if tags else {}),
    )
    return str(response["TableDescription"]["TableArn"])


def rule(rule_id: str, destination: str, status: str = "Enabled", prefix: str = "") -> dict[str, Any]:
    return {
        "ID": rule_id, "Priority": 1, "Status": status, "Filter": {"Prefix": prefix},
        "DeleteMarkerReplication": {"Status": "Disabled"},
        "Destination": {"Bucket": f"arn:aws:s3:::{destination}"},
    }


@pytest.fixture
def s3() -> Any:
    return boto3.client("s3", region_name=REGION)


@pytest.fixture
def ddb() -> Any:
    return boto3.client("dynamodb", region_name=REGION)


# --- S3 replication ---------------------------------------------------------------------------


def test_replication_pass_and_every_fail(moto_run: Session, s3: Any) -> None:
    for name in ("src", "src-off", "src-elsewhere", "plain", "dst", "other"):
        bucket(s3, name, versioned=True)
    role = f"arn:aws:iam::{ACCOUNT}:role/replication"
    s3.put_bucket_replication(Bucket="src", ReplicationConfiguration={
        "Role": role, "Rules": [rule("to-dst", "dst")]})
    s3.put_bucket_replication(Bucket="src-off", ReplicationConfiguration={
        "Role": role, "Rules": [rule("paused", "dst", status="Disabled")]})
    s3.put_bucket_replication(Bucket="src-elsewhere", ReplicationConfiguration={
        "Role": role, "Rules": [rule("x", "other")]})

    ok = evaluate(moto_run, bucket_replicates_to, bucket="src", destination="dst")
    assert ok.outcome is Outcome.PASS
    assert ok.expected == "an Enabled replication rule to arn:aws:s3:::dst"
    assert ok.observed == "rule 'to-dst' Enabled to dst"
    assert ok.manual_command == "aws s3api get-bucket-replication --bucket src"

    off = evaluate(moto_run, bucket_replicates_to, bucket="src-off", destination="dst")
    assert (off.outcome, off.observed) == (Outcome.FAIL, "rule 'paused' to dst is Disabled")
    elsewhere = evaluate(moto_run, bucket_replicates_to, bucket="src-elsewhere", destination="dst")
    assert (elsewhere.outcome, elsewhere.observed) == (Outcome.FAIL, "replicates only to arn:aws:s3:::other")
    none = evaluate(moto_run, bucket_replicates_to, bucket="plain", destination="dst")
    assert (none.outcome, none.observed) == (Outcome.FAIL, "no replication configured")
    assert "arn:aws:s3:::dst" in none.hint
    missing = evaluate(moto_run, bucket_replicates_to, bucket="nope-missing", destination="dst")
    assert (missing.outcome, missing.observed) == (Outcome.FAIL, "the bucket does not exist")


def test_replication_names_the_scope_of_a_filtered_rule(moto_run: Session) -> None:
    # moto drops a rule's Filter.Prefix (it answers Prefix ''), so the answer AWS gives is stubbed
    answer = {"ReplicationConfiguration": {"Role": f"arn:aws:iam::{ACCOUNT}:role/r",
                                           "Rules": [rule("logs-only", "dst", prefix="logs/")]}}
    with Stubber(moto_run.aws.client("s3")) as stub:
        stub.add_response("get_bucket_replication", answer, {"Bucket": "src"})
        result = evaluate(moto_run, bucket_replicates_to, bucket="src", destination="dst")
    assert (result.outcome, result.observed) == (
        Outcome.PASS, "rule 'logs-only' Enabled to dst (only objects under 'logs/')")


# --- S3 objects under a prefix -------------------------------------------------------------------


def test_objects_under_prefix_pass_and_fail(moto_run: Session, s3: Any) -> None:
    bucket(s3, "exports")
    for key in ("daily/1", "daily/2", "daily/3", "weekly/1"):
        s3.put_object(Bucket="exports", Key=key, Body=b"x")
    ok = evaluate(moto_run, bucket_holds_objects, bucket="exports", count=3, prefix="daily/")
    assert (ok.outcome, ok.observed) == (Outcome.PASS, "3 objects under 'daily/'")
    few = evaluate(moto_run, bucket_holds_objects, bucket="exports", count=2, prefix="weekly/")
    assert (few.outcome, few.expected, few.observed) == (
        Outcome.FAIL, "at least 2 objects under 'weekly/'", "1 object under 'weekly/'")
    none = evaluate(moto_run, bucket_holds_objects, bucket="exports", count=1, prefix="monthly/")
    assert (none.outcome, none.observed) == (Outcome.FAIL, "0 objects under 'monthly/'")
    missing = evaluate(moto_run, bucket_holds_objects, bucket="nope-missing", count=1, prefix="a/")
    assert (missing.outcome, missing.observed) == (Outcome.FAIL, "the bucket does not exist")


def test_objects_under_prefix_do_not_count_folder_markers(moto_run: Session, s3: Any) -> None:
    bucket(s3, "exports")
    for key in ("daily/", "daily/2026/", "daily/2026/a.csv", "daily/2026/b.csv"):
        s3.put_object(Bucket="exports", Key=key, Body=b"" if key.endswith("/") else b"x")
    few = evaluate(moto_run, bucket_holds_objects, bucket="exports", count=3, prefix="daily/")
    assert (few.outcome, few.observed) == (
        Outcome.FAIL, "2 objects under 'daily/' (2 keys ending in '/' not counted)")
    ok = evaluate(moto_run, bucket_holds_objects, bucket="exports", count=2, prefix="daily/")
    assert (ok.outcome, ok.observed) == (Outcome.PASS, "2 objects under 'daily/' (2 keys ending in '/' not counted)")


def test_objects_listing_stops_once_the_count_is_reached(moto_run: Session) -> None:
    client = moto_run.aws.client("s3")
    page = {"IsTruncated": True, "KeyCount": 1000, "NextContinuationToken": "t2",
            "Contents": [{"Key": f"big/{i}"} for i in range(1000)]}
    with Stubber(client) as stub:  # a second page would be an unexpected call and fail the check
        stub.add_response("list_objects_v2", page, {"Bucket": "huge", "Prefix": "big/"})
        result = evaluate(moto_run, bucket_holds_objects, bucket="huge", count=10, prefix="big/")
        stub.assert_no_pending_responses()
    assert (result.outcome, result.observed) == (Outcome.PASS, "at least 1000 objects under 'big/'")


# --- DynamoDB restore window ---------------------------------------------------------------------


def test_restore_window(moto_run: Session, ddb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    table(ddb, "no-pitr")
    table(ddb, "fresh-pitr")
    table(ddb, "old-pitr")
    ddb.update_continuous_backups(TableName="fresh-pitr",
                                  PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
    # moto stamps "now" when PITR is enabled; pretend it was enabled 30 hours ago
    monkeypatch.setattr("moto.dynamodb.models.unix_time", lambda: time.time() - 30 * 3600)
    ddb.update_continuous_backups(TableName="old-pitr",
                                  PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})

    old = evaluate(moto_run, table_restorable_window, table="old-pitr", hours=24)
    assert old.outcome is Outcome.PASS
    assert old.expected == "PITR ENABLED, restorable back to 24 h ago"
    assert "(30.0 h window, RecoveryPeriodInDays 35)" in old.observed
    fresh = evaluate(moto_run, table_restorable_window, table="fresh-pitr", hours=24)
    assert fresh.outcome is Outcome.FAIL
    assert "(0.0 h window" in fresh.observed
    assert "enabled (or re-enabled) recently" in fresh.hint
    off = evaluate(moto_run, table_restorable_window, table="no-pitr", hours=1)
    assert (off.outcome, off.observed) == (Outcome.FAIL, "PointInTimeRecoveryStatus DISABLED")
    assert "PointInTimeRecoveryEnabled=true" in off.hint
    missing = evaluate(moto_run, table_restorable_window, table="nope", hours=1)
    assert (missing.outcome, missing.observed) == (Outcome.FAIL, "the table does not exist")
    # the same DescribeContinuousBackups answer serves the plain PITR step (memoised per run)
    calls = moto_run.aws.calls
    assert evaluate(moto_run, table_pitr_enabled, table="old-pitr").outcome is Outcome.PASS
    assert moto_run.aws.calls == calls


# --- AWS Backup ------------------------------------------------------------------------------------


@pytest.fixture
def plan_id(moto_run: Session) -> str:
    backup = boto3.client("backup", region_name=REGION)
    backup.create_backup_vault(BackupVaultName="vault")
    created = backup.create_backup_plan(BackupPlan={
        "BackupPlanName": "nightly", "Rules": [{"RuleName": "r", "TargetBackupVaultName": "vault"}]})
    moto_run.aws.paginate("backup", "list_backup_plans")  # read from moto before stubbing the client
    return str(created["BackupPlanId"])


def test_backup_plan_exists(moto_run: Session, plan_id: str) -> None:
    ok = evaluate(moto_run, backup_plan_exists, plan="nightly")
    assert (ok.outcome, ok.observed) == (Outcome.PASS, f"plan id {plan_id}, never ran")
    missing = evaluate(moto_run, backup_plan_exists, plan="weekly")
    assert (missing.outcome, missing.observed) == (Outcome.FAIL, NO_WEEKLY)


@pytest.fixture
def selections(moto_run: Session, plan_id: str) -> Iterator[Callable[..., None]]:
    """Stub ListBackupSelections + GetBackupSelection (moto lacks both) on the run's backup client."""
    stubber = Stubber(moto_run.aws.client("backup"))

    def stub(*selections: dict[str, Any]) -> None:
        listed = [{"SelectionId": f"s{i}", "SelectionName": s["SelectionName"], "BackupPlanId": plan_id,
                   "IamRoleArn": ROLE} for i, s in enumerate(selections)]
        stubber.add_response("list_backup_selections", {"BackupSelectionsList": listed},
                             {"BackupPlanId": plan_id})
        for i, selection in enumerate(selections):
            stubber.add_response(
                "get_backup_selection",
                {"BackupSelection": {"IamRoleArn": ROLE, **selection}, "SelectionId": f"s{i}",
                 "BackupPlanId": plan_id},
                {"BackupPlanId": plan_id, "SelectionId": f"s{i}"},
            )
        stubber.activate()

    yield stub
    stubber.assert_no_pending_responses()
    stubber.deactivate()


def test_plan_protects_table_by_wildcard(moto_run: Session, ddb: Any, selections: Callable[..., None]) -> None:
    table(ddb, "orders")
    selections({"SelectionName": "logs", "Resources": ["arn:aws:s3:::*"]},
               {"SelectionName": "tables", "Resources": ["arn:aws:dynamodb:*:*:table/*"]})
    result = evaluate(moto_run, backup_plan_protects_table, plan="nightly", table="orders")
    assert result.outcome is Outcome.PASS
    assert result.observed == "selection 'tables' selects it (by 'arn:aws:dynamodb:*:*:table/*')"


def test_plan_protects_table_by_tag(moto_run: Session, ddb: Any, selections: Callable[..., None]) -> None:
    table(ddb, "orders", {"backup": "daily"})
    selections({"SelectionName": "tagged", "ListOfTags": [
        {"ConditionType": "STRINGEQUALS", "ConditionKey": "backup", "ConditionValue": "daily"}]})
    result = evaluate(moto_run, backup_plan_protects_table, plan="nightly", table="orders")
    assert (result.outcome, result.observed) == (
        Outcome.PASS, "selection 'tagged' selects it (by tag backup=daily)")


def test_plan_does_not_protect_table(moto_run: Session, ddb: Any, selections: Callable[..., None]) -> None:
    arn = table(ddb, "orders", {"backup": "never"})
    selections(
        {"SelectionName": "others", "Resources": ["arn:aws:dynamodb:*:*:table/users"]},
        {"SelectionName": "all-but", "Resources": ["*"], "NotResources": [arn]},
        {"SelectionName": "refined", "Resources": ["*"], "Conditions": {
            "StringEquals": [{"ConditionKey": "aws:ResourceTag/backup", "ConditionValue": "daily"}]}},
    )
    result = evaluate(moto_run, backup_plan_protects_table, plan="nightly", table="orders")
    assert result.outcome is Outcome.FAIL
    assert result.resource == "backup plan nightly -> dynamodb table orders"
    assert result.observed == (
        f"no selection selects {arn} ('others': Resources arn:aws:dynamodb:*:*:table/users; ListOfTags none; "
        f"'all-but': excluded by NotResources '{arn}'; "
        "'refined': condition StringEquals backup=daily does not hold)"
    )
    assert arn in result.hint


def test_plan_or_table_missing_fails_before_selections(moto_run: Session, ddb: Any, plan_id: str) -> None:
    table(ddb, "orders")
    no_plan = evaluate(moto_run, backup_plan_protects_table, plan="weekly", table="orders")
    assert (no_plan.outcome, no_plan.observed) == (Outcome.FAIL, NO_WEEKLY)
    no_table = evaluate(moto_run, backup_plan_protects_table, plan="nightly", table="nope")
    assert (no_table.outcome, no_table.observed) == (Outcome.FAIL, "the table does not exist")


def stub_points(moto_run: Session, arn: str, points: list[dict[str, Any]] | None, error: str = "") -> Stubber:
    stubber = Stubber(moto_run.aws.client("backup"))
    params = {"BackupVaultName": "vault", "ByResourceArn": arn}
    if error:
        stubber.add_client_error("list_recovery_points_by_backup_vault", error, "vault not found",
                                 400, expected_params=params)
    else:
        stubber.add_response("list_recovery_points_by_backup_vault", {"RecoveryPoints": points}, params)
    return stubber.activate() or stubber


def point(arn: str, age_h: float, status: str = "COMPLETED") -> dict[str, Any]:
    created = datetime.now(UTC) - timedelta(hours=age_h)
    return {"RecoveryPointArn": f"arn:aws:backup:{REGION}:{ACCOUNT}:recovery-point:{age_h}",
            "ResourceArn": arn, "CreationDate": created, "Status": status, "BackupVaultName": "vault"}


@pytest.mark.parametrize(
    ("ages", "outcome", "observed"),
    [
        ([(30, "COMPLETED"), (2, "COMPLETED")], Outcome.PASS, "(COMPLETED, 2.0 h ago)"),
        # AVAILABLE is what AWS reports for some usable recovery points: as good as COMPLETED
        ([(30, "COMPLETED"), (2, "AVAILABLE")], Outcome.PASS, "(AVAILABLE, 2.0 h ago)"),
        ([(30, "AVAILABLE")], Outcome.FAIL, "(AVAILABLE, 30.0 h ago)"),
        ([(30, "COMPLETED"), (1, "PARTIAL")], Outcome.FAIL, "(COMPLETED, 30.0 h ago)"),
        ([(1, "PARTIAL"), (3, "EXPIRED")], Outcome.FAIL,
         "no COMPLETED or AVAILABLE recovery point (2 in other states: EXPIRED, PARTIAL)"),
        ([], Outcome.FAIL, "no COMPLETED or AVAILABLE recovery point"),
    ],
)
def test_recovery_points(moto_run: Session, ddb: Any, ages: list[tuple[float, str]], outcome: Outcome,
                         observed: str) -> None:
    arn = table(ddb, "orders")
    stub_points(moto_run, arn, [point(arn, age, status) for age, status in ages])
    result = evaluate(moto_run, vault_has_recent_recovery_point, vault="vault", resource="orders", hours=24)
    assert result.outcome is outcome
    assert result.observed.endswith(observed)
    assert result.resource == f"backup vault vault -> {arn}"
    assert result.expected == "a COMPLETED or AVAILABLE recovery point newer than 24 h"


def test_recovery_points_of_a_deleted_table(moto_run: Session) -> None:
    # no table "orders-gone" (deleted): its ARN is built from the account, partition and region
    arn = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/orders-gone"
    stub_points(moto_run, arn, [point(arn, 3)])
    result = evaluate(moto_run, vault_has_recent_recovery_point, vault="vault", resource="orders-gone", hours=24)
    assert result.outcome is Outcome.PASS, result
    assert result.resource == f"backup vault vault -> {arn}"
    assert result.observed.endswith("(COMPLETED, 3.0 h ago); table orders-gone no longer exists")


def test_deleted_table_arn_takes_the_partition_of_the_caller(moto_run: Session) -> None:
    arn = f"arn:aws-cn:dynamodb:{REGION}:{ACCOUNT}:table/orders-gone"
    with Stubber(moto_run.aws.client("sts")) as sts:
        sts.add_response("get_caller_identity", {"UserId": "AIDA", "Account": ACCOUNT,
                                                 "Arn": f"arn:aws-cn:iam::{ACCOUNT}:user/ops"})
        stub_points(moto_run, arn, [])
        result = evaluate(moto_run, vault_has_recent_recovery_point, vault="vault", resource="orders-gone",
                          hours=24)
    assert (result.outcome, result.resource) == (Outcome.FAIL, f"backup vault vault -> {arn}")
    assert result.observed == "no COMPLETED or AVAILABLE recovery point; table orders-gone no longer exists"


def test_recovery_points_by_arn_and_missing_vault(moto_run: Session) -> None:
    arn = "arn:aws:s3:::some-bucket"  # an ARN is used as given, no table lookup
    stub_points(moto_run, arn, None, error="ResourceNotFoundException")
    result = evaluate(moto_run, vault_has_recent_recovery_point, vault="vault", resource=arn, hours=24)
    assert (result.outcome, result.observed) == (Outcome.FAIL, "the vault does not exist")


# --- CloudWatch alarms -----------------------------------------------------------------------------


def test_alarm_states(moto_run: Session) -> None:
    cw = boto3.client("cloudwatch", region_name=REGION)
    for name in ("quiet", "firing", "no-data"):
        cw.put_metric_alarm(AlarmName=name, MetricName="Errors", Namespace="App", Statistic="Sum", Period=60,
                            EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold")
    cw.set_alarm_state(AlarmName="quiet", StateValue="OK", StateReason="fine")
    cw.set_alarm_state(AlarmName="firing", StateValue="ALARM", StateReason="Threshold Crossed: 5 errors")
    cw.set_alarm_state(AlarmName="no-data", StateValue="INSUFFICIENT_DATA", StateReason="no datapoints")

    quiet = evaluate(moto_run, alarm_not_firing, alarm="quiet")
    assert quiet.outcome is Outcome.PASS
    assert quiet.observed.startswith("state OK since ")
    firing = evaluate(moto_run, alarm_not_firing, alarm="firing")
    assert firing.outcome is Outcome.FAIL
    assert firing.observed.endswith(": Threshold Crossed: 5 errors")
    no_data = evaluate(moto_run, alarm_not_firing, alarm="no-data")
    assert no_data.outcome is Outcome.PASS  # not firing; the report still shows it cannot judge
    assert "INSUFFICIENT_DATA" in no_data.observed and "has no data to judge" in no_data.observed
    missing = evaluate(moto_run, alarm_not_firing, alarm="nope")
    assert (missing.outcome, missing.observed) == (Outcome.FAIL, "no such alarm")


# --- the account -------------------------------------------------------------------------------


def test_account(moto_run: Session) -> None:
    ok = evaluate(moto_run, account_is, account_id=ACCOUNT)
    assert ok.outcome is Outcome.PASS
    assert ok.observed.startswith(f"account {ACCOUNT} as arn:aws:")
    wrong = evaluate(moto_run, account_is, account_id="210987654321")
    assert wrong.outcome is Outcome.FAIL
    assert (wrong.expected, wrong.observed.split(" as ")[0]) == ("account 210987654321", f"account {ACCOUNT}")
    assert "wrong credentials" in wrong.hint
    with pytest.raises(ValueError, match="12 digits"):
        validate_account_id("12345")


# --- access denied: a moto server that enforces IAM ------------------------------------------------


def test_access_denied_is_an_error_for_every_step(
    iam_moto: EnforcingMoto, run_factory: Callable[..., Session], monkeypatch: pytest.MonkeyPatch,  # noqa: F811
) -> None:
    s3, admin_ddb = iam_moto.client("s3"), iam_moto.client("dynamodb")
    bucket(s3, "denied-src", versioned=True)
    table(admin_ddb, "denied-table")
    iam_moto.client("cloudwatch").put_metric_alarm(
        AlarmName="denied-alarm", MetricName="m", Namespace="n", Statistic="Sum", Period=60,
        EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold")
    keys = iam_moto.user_with_policy("no-reads", policy_json(["s3:ListAllMyBuckets"]))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", keys.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", keys.secret_access_key)
    run = run_factory(
        f'aws = {{ target = "endpoint", url = "{iam_moto.url}", region = "{REGION}", max_attempts = 1 }}\n')

    checks: list[tuple[Callable[..., Any], dict[str, Any], str]] = [
        (bucket_replicates_to, {"bucket": "denied-src", "destination": "dst"}, "GetBucketReplication"),
        (bucket_holds_objects, {"bucket": "denied-src", "count": 1, "prefix": "a/"}, "ListObjectsV2"),
        (table_restorable_window, {"table": "denied-table", "hours": 1}, "DescribeContinuousBackups"),
        (backup_plan_exists, {"plan": "nightly"}, "ListBackupPlans"),
        (alarm_not_firing, {"alarm": "denied-alarm"}, "DescribeAlarms"),
    ]
    for func, args, operation in checks:
        result = evaluate(run, func, **args)
        assert result.outcome is Outcome.ERROR, (func.__name__, result)
        assert result.observed.startswith(f"access denied for {operation} ("), result.observed
        assert "runbooks iam-policy" in result.hint
