"""CloudTrail checks against in-process moto: logging (and stopped), multi-region, log file validation."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from runbooks.result import Outcome
from runbooks.session import Session
from runbooks.steps.aws_cloudtrail import trail_log_validation, trail_logging, trail_multi_region
from tests.conftest import evaluate

REGION = "eu-west-1"


def make_trail(name: str, *, logging: bool = True, stopped: bool = False, multi_region: bool = True,
               validation: bool = True, region: str = REGION) -> str:
    s3 = boto3.client("s3", region_name=region)
    bucket = f"{name}-logs"
    location = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    s3.create_bucket(Bucket=bucket, **location)
    cloudtrail: Any = boto3.client("cloudtrail", region_name=region)
    cloudtrail.create_trail(Name=name, S3BucketName=bucket, IsMultiRegionTrail=multi_region,
                            EnableLogFileValidation=validation)
    if logging or stopped:
        cloudtrail.start_logging(Name=name)
    if stopped:
        cloudtrail.stop_logging(Name=name)
    return name


def test_a_logging_trail_passes(moto_run: Session) -> None:
    make_trail("audit")
    result = evaluate(moto_run, trail_logging, trail="audit")
    assert result.outcome is Outcome.PASS
    assert result.resource == "cloudtrail trail audit (eu-west-1)"
    assert result.observed.startswith("logging to s3://audit-logs, last delivery ")
    assert result.manual_command == "aws cloudtrail get-trail-status --name audit"


def test_a_stopped_trail_fails_saying_since_when_and_how_to_find_who(moto_run: Session) -> None:
    make_trail("audit", stopped=True)
    result = evaluate(moto_run, trail_logging, trail="audit")
    assert result.outcome is Outcome.FAIL
    assert result.observed.startswith("logging stopped since ")
    assert result.hint.startswith("aws cloudtrail start-logging --name arn:aws:cloudtrail:eu-west-1:")
    assert "StopLogging" in result.hint


def test_a_trail_never_started_fails(moto_run: Session) -> None:
    make_trail("audit", logging=False)
    result = evaluate(moto_run, trail_logging, trail="audit")
    assert (result.outcome, result.observed) == (Outcome.FAIL, "logging stopped")


def test_a_delivery_error_fails_even_while_logging(moto_run: Session) -> None:
    description = {"trailList": [{"Name": "audit", "TrailARN": "arn:aws:cloudtrail:eu-west-1:123456789012:trail/audit",
                                  "HomeRegion": REGION, "S3BucketName": "audit-logs"}]}
    with Stubber(moto_run.aws.client("cloudtrail")) as stub:
        stub.add_response("describe_trails", description)
        stub.add_response("get_trail_status", {"IsLogging": True, "LatestDeliveryError": "AccessDenied"})
        result = evaluate(moto_run, trail_logging, trail="audit")
    assert (result.outcome, result.observed) == (
        Outcome.FAIL, "logging, but the latest delivery to s3://audit-logs failed: AccessDenied")
    assert "bucket policy of audit-logs" in result.hint


@pytest.mark.parametrize("check", [trail_logging, trail_multi_region, trail_log_validation],
                         ids=lambda f: f.__name__)
def test_a_missing_trail_is_a_fail_saying_so(moto_run: Session, check: Any) -> None:
    result = evaluate(moto_run, check, trail="nope")
    assert result.outcome is Outcome.FAIL
    assert result.observed == "no trail named nope is visible in this region"


def test_a_multi_region_trail_of_another_home_region_is_read_there(moto_run: Session) -> None:
    make_trail("org", region="us-east-1")
    assert evaluate(moto_run, trail_multi_region, trail="org").observed == "multi-region (home region us-east-1)"
    assert evaluate(moto_run, trail_logging, trail="org").outcome is Outcome.PASS  # status read by ARN


def test_multi_region_and_validation_fail_when_off(moto_run: Session) -> None:
    make_trail("local", multi_region=False, validation=False)
    result = evaluate(moto_run, trail_multi_region, trail="local")
    assert (result.outcome, result.observed) == (Outcome.FAIL, "records only eu-west-1")
    assert "--is-multi-region-trail" in result.hint
    result = evaluate(moto_run, trail_log_validation, trail="local")
    assert (result.outcome, result.observed) == (Outcome.FAIL, "log file validation disabled")
    assert "--enable-log-file-validation" in result.hint


def test_validation_on_passes(moto_run: Session) -> None:
    make_trail("audit")
    result = evaluate(moto_run, trail_log_validation, trail="audit")
    assert (result.outcome, result.observed) == (Outcome.PASS, "log file validation enabled")


def test_access_denied_is_an_error(moto_run: Session) -> None:
    with Stubber(moto_run.aws.client("cloudtrail")) as stub:
        stub.add_client_error("describe_trails", service_error_code="AccessDeniedException",
                              service_message="not authorized", http_status_code=400)
        result = evaluate(moto_run, trail_multi_region, trail="audit")
    assert result.outcome is Outcome.ERROR
    assert "cloudtrail:DescribeTrails" in result.observed
