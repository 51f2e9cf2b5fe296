"""S3 checks against in-process moto: PASS and FAIL for each, and ERROR when the facts cannot be read."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from runbooks.result import CheckResult, Outcome
from runbooks.session import Session
from runbooks.steps.aws_s3 import (
    BLOCK_FLAGS,
    bucket_blocks_public_access,
    bucket_encrypted_with,
    bucket_exists,
    bucket_has_tag,
    bucket_versioning_enabled,
)
from tests.conftest import evaluate

REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's default account


def s3() -> Any:
    return boto3.client("s3", region_name=REGION)


def make_bucket(name: str) -> str:
    s3().create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    return name


def block(**flags: bool) -> dict[str, bool]:
    return {flag: flags.get(flag, False) for flag in BLOCK_FLAGS}


ALL_ON = block(**dict.fromkeys(BLOCK_FLAGS, True))


def put_encryption(bucket: str, algorithm: str, key: str | None = None) -> None:
    rule: dict[str, str] = {"SSEAlgorithm": algorithm}
    if key:
        rule["KMSMasterKeyID"] = key
    s3().put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={"Rules": [{"ApplyServerSideEncryptionByDefault": rule}]},
    )


# existence -------------------------------------------------------------------------------------------
def test_bucket_exists_pass(moto_run: Session) -> None:
    make_bucket("exists-bucket")
    result = evaluate(moto_run, bucket_exists, bucket="exists-bucket")
    assert result.outcome is Outcome.PASS
    assert (result.resource, result.expected, result.observed) == (
        "s3://exists-bucket",
        "the bucket exists",
        "exists in eu-west-1",
    )
    assert result.manual_command == "aws s3api head-bucket --bucket exists-bucket"


@pytest.mark.parametrize(
    ("func", "args"),
    [
        (bucket_exists, {}),
        (bucket_blocks_public_access, {}),
        (bucket_versioning_enabled, {}),
        (bucket_encrypted_with, {"algorithm": "AES256"}),
        (bucket_has_tag, {"key": "owner", "value": "platform-team"}),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_missing_bucket_is_a_fail_saying_so(
    moto_run: Session, func: Callable[..., CheckResult], args: dict[str, Any]
) -> None:
    result = evaluate(moto_run, func, bucket="no-such-bucket", **args)
    assert result.outcome is Outcome.FAIL
    assert result.resource == "s3://no-such-bucket"
    assert result.observed == "the bucket does not exist"
    assert "create the bucket" in result.hint
    assert result.expected  # still says what was expected of it
    assert "Traceback" not in result.observed + result.hint


# public access block ---------------------------------------------------------------------------------
def test_public_access_block_all_four_at_bucket_level_pass(moto_run: Session) -> None:
    bucket = make_bucket("pab-all")
    s3().put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=ALL_ON)
    result = evaluate(moto_run, bucket_blocks_public_access, bucket=bucket)
    assert result.outcome is Outcome.PASS
    assert result.observed == "all four on at bucket level"
    assert result.expected.startswith("all four public-access-block settings on")


def test_public_access_block_partial_fails_naming_the_flags_off(moto_run: Session) -> None:
    bucket = make_bucket("pab-partial")
    s3().put_public_access_block(
        Bucket=bucket, PublicAccessBlockConfiguration=block(BlockPublicAcls=True, IgnorePublicAcls=True)
    )
    result = evaluate(moto_run, bucket_blocks_public_access, bucket=bucket)
    assert result.outcome is Outcome.FAIL
    assert result.observed == (
        "BlockPublicPolicy, RestrictPublicBuckets off "
        "(on: BlockPublicAcls, IgnorePublicAcls; no account-level block)"
    )
    assert "put-public-access-block --bucket pab-partial" in result.hint


def test_public_access_block_none_anywhere_fails_with_all_four_off(moto_run: Session) -> None:
    bucket = make_bucket("pab-none")
    result = evaluate(moto_run, bucket_blocks_public_access, bucket=bucket)
    assert result.outcome is Outcome.FAIL
    assert result.observed == (
        "BlockPublicAcls, IgnorePublicAcls, BlockPublicPolicy, RestrictPublicBuckets off "
        "(no bucket-level block; no account-level block)"
    )


def test_account_level_block_covers_a_bucket_without_its_own(moto_run: Session) -> None:
    # The real-AWS default: the account blocks public access, the bucket has no block of its own.
    bucket = make_bucket("pab-account")
    boto3.client("s3control", region_name=REGION).put_public_access_block(
        AccountId=ACCOUNT, PublicAccessBlockConfiguration=ALL_ON
    )
    result = evaluate(moto_run, bucket_blocks_public_access, bucket=bucket)
    assert result.outcome is Outcome.PASS
    assert result.observed == "in effect (no bucket-level block; all four on)"


def test_bucket_and_account_blocks_combine(moto_run: Session) -> None:
    # S3 applies the more restrictive of the two, flag by flag.
    bucket = make_bucket("pab-combined")
    s3().put_public_access_block(
        Bucket=bucket, PublicAccessBlockConfiguration=block(BlockPublicAcls=True, IgnorePublicAcls=True)
    )
    boto3.client("s3control", region_name=REGION).put_public_access_block(
        AccountId=ACCOUNT,
        PublicAccessBlockConfiguration=block(BlockPublicPolicy=True, RestrictPublicBuckets=True),
    )
    result = evaluate(moto_run, bucket_blocks_public_access, bucket=bucket)
    assert result.outcome is Outcome.PASS
    assert result.observed == (
        "in effect (on: BlockPublicAcls, IgnorePublicAcls; on: BlockPublicPolicy, RestrictPublicBuckets)"
    )


def test_account_block_partial_still_fails(moto_run: Session) -> None:
    bucket = make_bucket("pab-account-partial")
    boto3.client("s3control", region_name=REGION).put_public_access_block(
        AccountId=ACCOUNT, PublicAccessBlockConfiguration=block(BlockPublicAcls=True)
    )
    result = evaluate(moto_run, bucket_blocks_public_access, bucket=bucket)
    assert result.outcome is Outcome.FAIL
    assert result.observed.startswith("IgnorePublicAcls, BlockPublicPolicy, RestrictPublicBuckets off")
    assert "on: BlockPublicAcls" in result.observed


# versioning ------------------------------------------------------------------------------------------
def test_versioning_enabled_pass(moto_run: Session) -> None:
    bucket = make_bucket("ver-enabled")
    s3().put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    result = evaluate(moto_run, bucket_versioning_enabled, bucket=bucket)
    assert (result.outcome, result.expected, result.observed) == (
        Outcome.PASS,
        "versioning Enabled",
        "versioning Enabled",
    )


def test_versioning_never_enabled_fails(moto_run: Session) -> None:
    bucket = make_bucket("ver-never")
    result = evaluate(moto_run, bucket_versioning_enabled, bucket=bucket)
    assert (result.outcome, result.observed) == (Outcome.FAIL, "versioning never enabled")
    assert "put-bucket-versioning --bucket ver-never --versioning-configuration Status=Enabled" in result.hint


def test_versioning_suspended_fails(moto_run: Session) -> None:
    bucket = make_bucket("ver-suspended")
    for status in ("Enabled", "Suspended"):
        s3().put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": status})
    result = evaluate(moto_run, bucket_versioning_enabled, bucket=bucket)
    assert (result.outcome, result.observed) == (Outcome.FAIL, "versioning Suspended")


def test_reads_are_memoised_within_a_run(moto_run: Session) -> None:
    bucket = make_bucket("ver-memo")
    assert evaluate(moto_run, bucket_versioning_enabled, bucket=bucket).outcome is Outcome.FAIL
    calls = moto_run.aws.calls
    s3().put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    # one answer per fact per run: the second step sees what the first saw, without another call
    assert evaluate(moto_run, bucket_versioning_enabled, bucket=bucket).outcome is Outcome.FAIL
    assert moto_run.aws.calls == calls


# encryption ------------------------------------------------------------------------------------------
def test_encryption_none_fails(moto_run: Session) -> None:
    bucket = make_bucket("enc-none")
    result = evaluate(moto_run, bucket_encrypted_with, bucket=bucket, algorithm="AES256")
    assert result.outcome is Outcome.FAIL
    assert (result.expected, result.observed) == (
        "default encryption AES256",
        "no default encryption configured",
    )
    assert '"SSEAlgorithm":"AES256"' in result.hint


@pytest.mark.parametrize(
    ("configured", "key", "wanted", "outcome", "observed"),
    [
        ("AES256", None, "AES256", Outcome.PASS, "AES256"),
        ("aws:kms", "alias/acme", "aws:kms", Outcome.PASS, "aws:kms with key alias/acme"),
        ("aws:kms:dsse", "alias/acme", "aws:kms:dsse", Outcome.PASS, "aws:kms:dsse with key alias/acme"),
        ("AES256", None, "aws:kms", Outcome.FAIL, "default encryption AES256"),
        ("aws:kms", "alias/acme", "AES256", Outcome.FAIL, "default encryption aws:kms"),
        ("aws:kms:dsse", "alias/acme", "aws:kms", Outcome.FAIL, "default encryption aws:kms:dsse"),
        ("aws:kms", "alias/acme", "aws:kms:dsse", Outcome.FAIL, "default encryption aws:kms"),
    ],
)
def test_encryption_algorithm(
    moto_run: Session, configured: str, key: str | None, wanted: str, outcome: Outcome, observed: str
) -> None:
    bucket = make_bucket("enc-bucket")
    put_encryption(bucket, configured, key)
    result = evaluate(moto_run, bucket_encrypted_with, bucket=bucket, algorithm=wanted)
    assert (result.outcome, result.expected, result.observed) == (
        outcome,
        f"default encryption {wanted}",
        observed,
    )
    if outcome is Outcome.FAIL:
        assert f'"SSEAlgorithm":"{wanted}"' in result.hint
        assert ("KMSMasterKeyID" in result.hint) is wanted.startswith("aws:kms")


# tags ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("tags", "outcome", "observed"),
    [
        ({}, Outcome.FAIL, "no tag 'owner' (tags: none)"),
        (
            {"environment": "sandbox", "cost-centre": "42"},
            Outcome.FAIL,
            "no tag 'owner' (tags: cost-centre, environment)",
        ),
        ({"owner": "someone-else"}, Outcome.FAIL, "tag owner=someone-else"),
        ({"owner": "platform-team", "environment": "sandbox"}, Outcome.PASS, "tag owner=platform-team"),
    ],
)
def test_bucket_tag(moto_run: Session, tags: dict[str, str], outcome: Outcome, observed: str) -> None:
    bucket = make_bucket("tag-bucket")
    if tags:
        s3().put_bucket_tagging(
            Bucket=bucket, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]}
        )
    result = evaluate(moto_run, bucket_has_tag, bucket=bucket, key="owner", value="platform-team")
    assert (result.outcome, result.expected, result.observed) == (
        outcome,
        "tag owner=platform-team",
        observed,
    )
    assert result.manual_command == "aws s3api get-bucket-tagging --bucket tag-bucket"


# could not check -------------------------------------------------------------------------------------
def test_access_denied_is_an_error_not_a_fail(moto_run: Session) -> None:
    bucket = make_bucket("denied-bucket")
    client = moto_run.aws.client("s3")  # the run's cached client: what ctx.aws.read calls
    with Stubber(client) as stub:
        stub.add_client_error(
            "get_bucket_versioning",
            service_error_code="AccessDenied",
            service_message="Access Denied",
            http_status_code=403,
            expected_params={"Bucket": bucket},
        )
        result = evaluate(moto_run, bucket_versioning_enabled, bucket=bucket)
        stub.assert_no_pending_responses()
    assert result.outcome is Outcome.ERROR
    assert result.resource == "bucket denied-bucket"
    assert result.observed == ("access denied for GetBucketVersioning (AccessDenied): Access Denied"
                               "; needs s3:GetBucketVersioning")
    assert "grant the read permission" in result.hint
    assert result.manual_command == "aws s3api get-bucket-versioning --bucket denied-bucket"


def test_denied_account_level_block_is_an_error_not_a_fail(moto_run: Session) -> None:
    # Without s3:GetAccountPublicAccessBlock the check cannot know; it must not claim a FAIL.
    bucket = make_bucket("denied-account")
    with Stubber(moto_run.aws.client("s3control")) as stub:
        stub.add_client_error(
            "get_public_access_block",
            service_error_code="AccessDenied",
            service_message="Access Denied",
            http_status_code=403,
        )
        result = evaluate(moto_run, bucket_blocks_public_access, bucket=bucket)
    assert result.outcome is Outcome.ERROR
    assert result.observed.startswith("access denied for GetPublicAccessBlock (AccessDenied)")


def test_throttling_is_an_error(moto_run: Session) -> None:
    bucket = make_bucket("slow-bucket")
    with Stubber(moto_run.aws.client("s3")) as stub:
        stub.add_client_error("get_bucket_tagging", service_error_code="SlowDown", http_status_code=503)
        result = evaluate(moto_run, bucket_has_tag, bucket=bucket, key="owner", value="x")
    assert result.outcome is Outcome.ERROR
    assert result.observed == "throttled on GetBucketTagging (SlowDown) after retries"
    assert "re-run later" in result.hint


def test_live_target_without_credentials_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_factory: Callable[..., Session]
) -> None:
    import os

    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    empty = tmp_path / "empty"
    empty.write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    run = run_factory('aws = { target = "live", region = "eu-west-1", max_attempts = 1 }\n')

    result = evaluate(run, bucket_versioning_enabled, bucket="any-bucket")
    assert result.outcome is Outcome.ERROR
    assert result.resource == "bucket any-bucket"
    assert "no AWS credentials" in result.observed
    assert "configure AWS credentials" in result.hint
