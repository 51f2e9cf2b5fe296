"""S3 object checks against in-process moto: an object exists, an object carries a tag."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.stub import Stubber

from runbooks.result import Outcome
from runbooks.session import Session
from runbooks.steps.aws_s3 import object_exists, object_has_tag
from tests.conftest import evaluate

REGION = "eu-west-1"
KEY = "releases/v1.5.0/api.zip"


def s3() -> Any:
    return boto3.client("s3", region_name=REGION)


def bucket_with(key: str | None = None, tagging: str = "") -> str:
    s3().create_bucket(Bucket="artifacts", CreateBucketConfiguration={"LocationConstraint": REGION})
    if key:
        s3().put_object(Bucket="artifacts", Key=key, Body=b"zip", Tagging=tagging)
    return "artifacts"


def test_object_exists(moto_run: Session) -> None:
    bucket = bucket_with(KEY)
    result = evaluate(moto_run, object_exists, bucket=bucket, key=KEY)
    assert result.outcome is Outcome.PASS
    assert result.resource == f"s3://artifacts/{KEY}"
    assert result.observed.startswith("exists (3 bytes, last written ")
    assert result.manual_command == f"aws s3api head-object --bucket artifacts --key {KEY}"


def test_missing_object_and_missing_bucket_are_told_apart(moto_run: Session) -> None:
    bucket_with()
    result = evaluate(moto_run, object_exists, bucket="artifacts", key=KEY)
    assert (result.outcome, result.observed) == (Outcome.FAIL, "no such object (the bucket exists)")
    assert "aws s3 ls s3://artifacts/releases/v1.5.0/" in result.hint
    result = evaluate(moto_run, object_exists, bucket="no-such-bucket", key=KEY)
    assert (result.outcome, result.observed) == (Outcome.FAIL, "the bucket does not exist")


def test_object_tag_pass_wrong_and_absent(moto_run: Session) -> None:
    bucket = bucket_with(KEY, tagging="release=v1.5.0&qa=passed")
    result = evaluate(moto_run, object_has_tag, bucket=bucket, key=KEY, tag="qa", value="passed")
    assert (result.outcome, result.observed) == (Outcome.PASS, "tag qa=passed")
    result = evaluate(moto_run, object_has_tag, bucket=bucket, key=KEY, tag="release", value="v1.4.0")
    assert (result.outcome, result.observed) == (Outcome.FAIL, "tag release=v1.5.0")
    result = evaluate(moto_run, object_has_tag, bucket=bucket, key=KEY, tag="approved", value="yes")
    assert (result.outcome, result.observed) == (Outcome.FAIL, "no tag 'approved' (tags: qa, release)")
    assert "put-object-tagging" in result.hint


def test_tag_of_a_missing_object_or_bucket_is_a_fail_saying_which(moto_run: Session) -> None:
    bucket_with()
    result = evaluate(moto_run, object_has_tag, bucket="artifacts", key=KEY, tag="qa", value="passed")
    assert (result.outcome, result.observed) == (Outcome.FAIL, "no such object (the bucket exists)")
    result = evaluate(moto_run, object_has_tag, bucket="no-such-bucket", key=KEY, tag="qa", value="passed")
    assert (result.outcome, result.observed) == (Outcome.FAIL, "the bucket does not exist")


def test_denied_tagging_is_an_error(moto_run: Session) -> None:
    with Stubber(moto_run.aws.client("s3")) as stub:
        stub.add_client_error("get_object_tagging", service_error_code="AccessDenied",
                              service_message="Access Denied", http_status_code=403)
        result = evaluate(moto_run, object_has_tag, bucket="artifacts", key=KEY, tag="qa", value="passed")
    assert result.outcome is Outcome.ERROR
    assert "s3:GetObjectTagging" in result.observed
