"""Tests of the project's own steps, against an in-process moto account: `pytest steps/`."""

import boto3

from runbooks.sdk import Outcome
from runbooks.testing import evaluate, started_session
from steps.storage import object_not_empty

MOTO = 'aws = { target = "moto", region = "eu-west-1" }'


def make_bucket(name: str, *keys: str) -> None:
    s3 = boto3.client("s3", region_name="eu-west-1")
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    for key in keys:
        s3.put_object(Bucket=name, Key=key, Body=b"bundle")


def test_an_uploaded_object_passes() -> None:
    with started_session(MOTO) as session:
        make_bucket("artifacts", "releases/v1/bundle.tar.gz")
        result = evaluate(session, object_not_empty, bucket="artifacts", key="releases/v1/bundle.tar.gz")
    assert result.outcome is Outcome.PASS, result
    assert result.observed == "6 bytes"


def test_a_missing_object_fails_with_a_fix() -> None:
    with started_session(MOTO) as session:
        make_bucket("artifacts")
        result = evaluate(session, object_not_empty, bucket="artifacts", key="releases/v2/bundle.tar.gz")
    assert result.outcome is Outcome.FAIL, result
    assert "aws s3 cp" in result.hint


def test_an_empty_object_fails() -> None:
    with started_session(MOTO) as session:
        s3 = boto3.client("s3", region_name="eu-west-1")
        make_bucket("artifacts")
        s3.put_object(Bucket="artifacts", Key="releases/v1/bundle.tar.gz", Body=b"")
        result = evaluate(session, object_not_empty, bucket="artifacts", key="releases/v1/bundle.tar.gz")
    assert result.outcome is Outcome.FAIL, result
    assert result.observed == "0 bytes"


def test_a_missing_bucket_fails_too() -> None:
    with started_session(MOTO) as session:
        result = evaluate(session, object_not_empty, bucket="no-such-bucket", key="any")
    assert result.outcome is Outcome.FAIL, result
    assert result.observed == "no such bucket"
