"""The read-only guard: a mutating AWS call made through a run is refused before it is sent.

Proved against a real moto server process: the server's own state and its access log show that the
refused request never arrived, while reads through the same guarded client do.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from botocore.exceptions import ClientError
from pytest_bdd import parsers

from runbooks.context import CheckContext, ScenarioState
from runbooks.registry import StepDefinition
from runbooks.result import CheckResult, Outcome
from runbooks.session import Session
from runbooks.targets.aws import ReadOnlyViolation, is_read_operation
from tests.support.moto_server import MotoServer

pytest_plugins = ["tests.support.moto_server"]  # fixtures: moto_server, endpoint_credentials

# bounded: a deadlock in the client set-up must fail, not hang (needs pytest-timeout, from the test extras)
pytestmark = [pytest.mark.usefixtures("endpoint_credentials"), pytest.mark.timeout(60)]


@pytest.fixture
def endpoint_run(moto_server: MotoServer, run_factory: Callable[..., Session]) -> Session:
    return run_factory(
        f'aws = {{ target = "endpoint", url = "{moto_server.url}", region = "us-east-1", max_attempts = 1}}\n'
    )


def bucket_names(server: MotoServer) -> set[str]:
    return {b["Name"] for b in server.client("s3").list_buckets()["Buckets"]}


def test_create_bucket_is_refused_and_never_reaches_the_server(
    moto_server: MotoServer,
    endpoint_run: Session,
) -> None:
    with pytest.raises(ReadOnlyViolation) as refused:
        endpoint_run.aws.client("s3").create_bucket(Bucket="guard-refused-bucket")
    assert (refused.value.service, refused.value.operation) == ("s3", "CreateBucket")
    assert "read-only" in str(refused.value)

    # Server side, through a plain unguarded client and moto's own state dump.
    assert "guard-refused-bucket" not in bucket_names(moto_server)
    stored = {b["name"] for b in moto_server.state().get("s3", {}).get("FakeBucket", [])}
    assert "guard-refused-bucket" not in stored
    # The access log saw the plain client's read but no request for the refused bucket at all.
    seen = moto_server.requests_seen()
    assert any(line.startswith("GET / ") for line in seen), seen
    assert not [line for line in seen if "guard-refused-bucket" in line]


def test_reads_pass_the_guard_and_mutations_of_existing_resources_do_not(
    moto_server: MotoServer,
    endpoint_run: Session,
) -> None:
    plain = moto_server.client("s3")
    plain.create_bucket(Bucket="guard-existing-bucket")
    guarded = endpoint_run.aws.client("s3")

    assert "guard-existing-bucket" in {b["Name"] for b in guarded.list_buckets()["Buckets"]}
    assert guarded.head_bucket(Bucket="guard-existing-bucket")["ResponseMetadata"]["HTTPStatusCode"] == 200
    for call in (
        lambda: guarded.put_bucket_versioning(
            Bucket="guard-existing-bucket", VersioningConfiguration={"Status": "Enabled"}
        ),
        lambda: guarded.put_object(Bucket="guard-existing-bucket", Key="k", Body=b"x"),
        lambda: guarded.delete_bucket(Bucket="guard-existing-bucket"),
    ):
        with pytest.raises(ReadOnlyViolation):
            call()

    assert "Status" not in plain.get_bucket_versioning(Bucket="guard-existing-bucket")
    assert plain.list_objects_v2(Bucket="guard-existing-bucket")["KeyCount"] == 0
    assert "guard-existing-bucket" in bucket_names(moto_server)
    assert not [
        line
        for line in moto_server.requests_seen()
        if line.startswith(("PUT /guard-existing-bucket?", "DELETE /guard-existing"))
    ]


def test_dynamodb_mutation_is_refused(moto_server: MotoServer, endpoint_run: Session) -> None:
    plain = moto_server.client("dynamodb")
    plain.create_table(
        TableName="guard-table",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    guarded = endpoint_run.aws.client("dynamodb")
    with pytest.raises(ReadOnlyViolation, match="dynamodb:DeleteTable"):
        guarded.delete_table(TableName="guard-table")
    with pytest.raises(ReadOnlyViolation, match="dynamodb:PutItem"):
        guarded.put_item(TableName="guard-table", Item={"id": {"S": "1"}})
    assert guarded.describe_table(TableName="guard-table")["Table"]["TableStatus"] == "ACTIVE"
    assert plain.scan(TableName="guard-table")["Count"] == 0


def test_assumed_role_session_is_guarded_too(
    moto_server: MotoServer,
    run_factory: Callable[..., Session],
) -> None:
    run = run_factory(
        f'aws = {{ target = "endpoint", url = "{moto_server.url}", region = "us-east-1", max_attempts = 1, '
        'role_arn = "arn:aws:iam::123456789012:role/runbooks-readonly" }\n'
    )
    client = run.aws.client("s3")
    assert (
        client.list_buckets()["ResponseMetadata"]["HTTPStatusCode"] == 200
    )  # AssumeRole itself went through
    with pytest.raises(ReadOnlyViolation):
        client.create_bucket(Bucket="guard-role-bucket")
    assert "guard-role-bucket" not in bucket_names(moto_server)


def test_a_check_that_mutates_becomes_an_error_naming_the_operation(
    moto_server: MotoServer,
    endpoint_run: Session,
) -> None:
    moto_server.client("s3").create_bucket(Bucket="guard-check-bucket")

    def rogue(ctx: CheckContext, bucket: str) -> CheckResult:
        ctx.aws.client("s3").put_bucket_tagging(
            Bucket=bucket, Tagging={"TagSet": [{"Key": "owner", "Value": "rogue"}]}
        )
        return CheckResult.passed(bucket, "tagged", "tagged")

    phrase = 'the S3 bucket "{bucket}" gets tagged by a rogue check'
    # Built by hand, not registered: the shared registry must not gain a test-only phrase.
    definition = StepDefinition(
        phrase, rogue, "test", ("s3:PutBucketTagging",), "", "", parsers.parse(phrase), {}, {}
    )
    result = endpoint_run.evaluate(definition, {"bucket": "guard-check-bucket"}, ScenarioState())

    assert result.outcome is Outcome.ERROR
    assert result.resource == "bucket guard-check-bucket"
    assert "refused s3:PutBucketTagging" in result.observed
    assert "read-only" in result.observed
    assert "only read" in result.hint
    with pytest.raises(ClientError, match="NoSuchTagSet"):
        moto_server.client("s3").get_bucket_tagging(Bucket="guard-check-bucket")


def test_the_in_process_moto_target_is_guarded_as_well(moto_run: Session) -> None:
    with pytest.raises(ReadOnlyViolation, match="s3:CreateBucket"):
        moto_run.aws.client("s3").create_bucket(
            Bucket="guard-moto-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
    assert moto_run.aws.client("s3").list_buckets()["Buckets"] == []


@pytest.mark.parametrize(
    ("operation", "read"),
    [
        ("GetBucketVersioning", True),
        ("HeadBucket", True),
        ("ListTagsOfResource", True),
        ("DescribeContinuousBackups", True),
        ("BatchGetItem", True),
        ("Query", True),
        ("Scan", True),
        ("GetCallerIdentity", True),
        ("AssumeRole", False),  # only the engine's own AssumeRole client (aws_readonly.exempt) may
        ("GetSessionToken", False),  # credentials: code holding them would act outside the guard
        ("GetFederationToken", False),
        ("GetAuthorizationToken", False),
        ("GetAccessKeyInfo", True),
        ("PutBucketVersioning", False),
        ("CreateBucket", False),
        ("DeleteTable", False),
        ("UpdateContinuousBackups", False),
        ("TagResource", False),
        ("BatchWriteItem", False),
        ("RestoreTableFromBackup", False),
    ],
)
def test_read_operation_allow_list(operation: str, read: bool) -> None:
    assert is_read_operation(operation) is read
