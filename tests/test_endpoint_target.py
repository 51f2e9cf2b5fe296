"""The ``endpoint`` target against a real moto server: the code path of ``live``, over real HTTP.

Resources are provisioned with a plain boto3 client against the server; the checks read them through
the run's guarded client. Then what happens when the endpoint refuses or never answers.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from runbooks.result import Outcome
from runbooks.session import Session
from runbooks.steps.aws_dynamodb import table_active, table_gsi_active, table_has_tag, table_pitr_enabled
from runbooks.steps.aws_s3 import (
    BLOCK_FLAGS,
    bucket_blocks_public_access,
    bucket_encrypted_with,
    bucket_exists,
    bucket_has_tag,
    bucket_versioning_enabled,
)
from tests.conftest import evaluate
from tests.support.moto_server import MotoServer, closed_port_url, silent_server

pytest_plugins = ["tests.support.moto_server"]  # fixtures: moto_server, endpoint_credentials

# bounded: a deadlock in the client set-up must fail, not hang (needs pytest-timeout, from the test extras)
pytestmark = [pytest.mark.usefixtures("endpoint_credentials"), pytest.mark.timeout(60)]
ALL_ON = dict.fromkeys(BLOCK_FLAGS, True)
ACCOUNT = "123456789012"


def endpoint_env(url: str, **settings: object) -> str:
    extra = "".join(f", {key} = {value}" for key, value in settings.items())
    return f'aws = {{ target = "endpoint", url = "{url}", region = "us-east-1"{extra} }}\n'


@pytest.fixture
def server(moto_server: MotoServer) -> MotoServer:
    moto_server.reset()  # account-wide settings (the account-level block) must not leak between tests
    return moto_server


@pytest.fixture
def run(server: MotoServer, run_factory: Callable[..., Session]) -> Session:
    return run_factory(endpoint_env(server.url, max_attempts=1))


def provision(server: MotoServer) -> None:
    s3 = server.client("s3")
    s3.create_bucket(Bucket="ep-good")
    s3.put_bucket_versioning(Bucket="ep-good", VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(
        Bucket="ep-good",
        ServerSideEncryptionConfiguration={
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {
                        "SSEAlgorithm": "aws:kms",
                        "KMSMasterKeyID": "alias/ep",
                    }
                }
            ]
        },
    )
    s3.put_public_access_block(Bucket="ep-good", PublicAccessBlockConfiguration=ALL_ON)
    s3.put_bucket_tagging(Bucket="ep-good", Tagging={"TagSet": [{"Key": "owner", "Value": "platform-team"}]})

    s3.create_bucket(Bucket="ep-drifted")
    for status in ("Enabled", "Suspended"):
        s3.put_bucket_versioning(Bucket="ep-drifted", VersioningConfiguration={"Status": status})
    s3.put_bucket_tagging(
        Bucket="ep-drifted", Tagging={"TagSet": [{"Key": "environment", "Value": "staging"}]}
    )

    ddb = server.client("dynamodb")
    ddb.create_table(
        TableName="ep-table",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": "id", "AttributeType": "S"},
            {"AttributeName": "email", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "email-index",
                "KeySchema": [{"AttributeName": "email", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
        Tags=[{"Key": "owner", "Value": "platform-team"}],
    )
    ddb.update_continuous_backups(
        TableName="ep-table", PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
    )
    ddb.create_table(
        TableName="ep-drifted-table",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


def test_a_healthy_stack_passes(server: MotoServer, run: Session) -> None:
    provision(server)
    results = {
        "exists": evaluate(run, bucket_exists, bucket="ep-good"),
        "public": evaluate(run, bucket_blocks_public_access, bucket="ep-good"),
        "versioning": evaluate(run, bucket_versioning_enabled, bucket="ep-good"),
        "encryption": evaluate(run, bucket_encrypted_with, bucket="ep-good", algorithm="aws:kms"),
        "tag": evaluate(run, bucket_has_tag, bucket="ep-good", key="owner", value="platform-team"),
        "active": evaluate(run, table_active, table="ep-table"),
        "pitr": evaluate(run, table_pitr_enabled, table="ep-table"),
        "gsi": evaluate(run, table_gsi_active, table="ep-table", index="email-index"),
        "table tag": evaluate(run, table_has_tag, table="ep-table", key="owner", value="platform-team"),
    }
    assert {name: r.outcome for name, r in results.items()} == dict.fromkeys(results, Outcome.PASS)
    assert results["exists"].observed == "exists in us-east-1"
    assert results["encryption"].observed == "aws:kms with key alias/ep"
    assert results["pitr"].resource == "dynamodb table ep-table (us-east-1)"
    assert run.aws.calls >= 8  # real requests, answered by the server


def test_a_drifted_stack_fails_with_what_was_observed(server: MotoServer, run: Session) -> None:
    provision(server)
    checks = {
        "missing": (evaluate(run, bucket_exists, bucket="ep-absent"), "the bucket does not exist"),
        "versioning": (evaluate(run, bucket_versioning_enabled, bucket="ep-drifted"), "versioning Suspended"),
        "encryption": (
            evaluate(run, bucket_encrypted_with, bucket="ep-drifted", algorithm="AES256"),
            "no default encryption configured",
        ),
        "tag": (
            evaluate(run, bucket_has_tag, bucket="ep-drifted", key="owner", value="platform-team"),
            "no tag 'owner' (tags: environment)",
        ),
        "public": (
            evaluate(run, bucket_blocks_public_access, bucket="ep-drifted"),
            "BlockPublicAcls, IgnorePublicAcls, BlockPublicPolicy, RestrictPublicBuckets off "
            "(no bucket-level block; no account-level block)",
        ),
        "pitr": (
            evaluate(run, table_pitr_enabled, table="ep-drifted-table"),
            "PointInTimeRecoveryStatus DISABLED",
        ),
        "gsi": (
            evaluate(run, table_gsi_active, table="ep-drifted-table", index="email-index"),
            "no GSI 'email-index' (indexes: none)",
        ),
        "no table": (evaluate(run, table_active, table="ep-absent-table"), "the table does not exist"),
    }
    observed = {name: (r.outcome, r.observed) for name, (r, _) in checks.items()}
    assert observed == {name: (Outcome.FAIL, text) for name, (_, text) in checks.items()}


def test_account_level_block_is_read_from_the_endpoint(server: MotoServer, run: Session) -> None:
    server.client("s3").create_bucket(Bucket="ep-account-covered")
    server.client("s3control").put_public_access_block(
        AccountId=ACCOUNT, PublicAccessBlockConfiguration=ALL_ON
    )
    result = evaluate(run, bucket_blocks_public_access, bucket="ep-account-covered")
    assert (result.outcome, result.observed) == (
        Outcome.PASS,
        "in effect (no bucket-level block; all four on)",
    )


def test_connection_refused_is_an_error(run_factory: Callable[..., Session]) -> None:
    url = closed_port_url()
    run = run_factory(endpoint_env(url, max_attempts=1, connect_timeout=1))
    result = evaluate(run, bucket_versioning_enabled, bucket="any-bucket")
    assert result.outcome is Outcome.ERROR
    assert result.observed.startswith("could not connect to the AWS endpoint")
    assert f"{url}/any-bucket" in result.observed
    assert "network access" in result.hint


def test_an_endpoint_that_never_answers_times_out(run_factory: Callable[..., Session]) -> None:
    with silent_server() as url:
        run = run_factory(endpoint_env(url, max_attempts=1, connect_timeout=0.3, read_timeout=0.3))
        started = time.monotonic()
        result = evaluate(run, table_pitr_enabled, table="any-table")
        took = time.monotonic() - started
    assert result.outcome is Outcome.ERROR
    assert result.observed.startswith("timed out talking to AWS")
    assert "network access" in result.hint
    assert took < 5  # the configured read timeout applied
