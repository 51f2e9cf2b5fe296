"""CloudTrail trails: logging, multi-region, log file validation.

The audit trail is the first thing an incident commander needs and the first thing an intruder stops
(StopLogging, DeleteTrail). A trail is named as in the console; it is looked up with DescribeTrails
(shadow copies of multi-region trails included), and its status is read by ARN in its home region.
"""

from __future__ import annotations

from typing import Any

from runbooks.sdk import CheckContext, CheckResult, Finding, aws_resource, check

TITLE = "CloudTrail"  # its heading in the step catalogue
CATALOG_ORDER = 55

TRAIL = aws_resource("cloudtrail-trail")


def _resource(ctx: CheckContext, trail: str) -> str:
    return TRAIL.label(trail, ctx.aws.settings.region)


def describe_trail(ctx: CheckContext, trail: str, expected: str) -> dict[str, Any]:
    """The trail's description (DescribeTrails); FAIL when the region sees no trail of that name or ARN."""
    response = ctx.aws.read("cloudtrail", "describe_trails", trailNameList=[trail], includeShadowTrails=True)
    found = [t for t in response.get("trailList", []) if trail in (t.get("Name"), t.get("TrailARN"))]
    if not found:
        raise Finding(CheckResult.failed(
            _resource(ctx, trail), expected, f"no {TRAIL.noun} named {trail} is visible in this region",
            "create the trail (the audit stack), or correct its name; a single-region trail of another "
            "region is not visible here: make it multi-region"))
    return dict(found[0])


@check(
    'the CloudTrail trail "{trail}" is logging',
    permissions=("cloudtrail:DescribeTrails", "cloudtrail:GetTrailStatus"),
    manual="aws cloudtrail get-trail-status --name {trail}",
)
def trail_logging(ctx: CheckContext, trail: str) -> CheckResult:
    """The trail exists and records events (GetTrailStatus: IsLogging), and its latest delivery to S3 did
    not fail. A trail whose logging was stopped is what an intruder leaves behind: the observed text says
    since when."""
    expected = "IsLogging true, delivering to S3"
    description = describe_trail(ctx, trail, expected)
    arn = str(description.get("TrailARN") or trail)
    status = ctx.aws.read("cloudtrail", "get_trail_status", region=description.get("HomeRegion") or None, Name=arn)
    bucket = description.get("S3BucketName", "?")
    if not status.get("IsLogging"):
        stopped = status.get("StopLoggingTime") or status.get("TimeLoggingStopped")
        when = f" since {_time(stopped)}" if stopped else ""
        return CheckResult.failed(
            _resource(ctx, trail), expected, f"logging stopped{when}",
            f"aws cloudtrail start-logging --name {arn}; then treat the stop as a security event: find who "
            "called StopLogging (aws cloudtrail lookup-events --lookup-attributes "
            "AttributeKey=EventName,AttributeValue=StopLogging) and what happened while it was off")
    error = status.get("LatestDeliveryError")
    if error:
        return CheckResult.failed(
            _resource(ctx, trail), expected, f"logging, but the latest delivery to s3://{bucket} failed: {error}",
            f"check the bucket policy of {bucket} (it must allow cloudtrail.amazonaws.com to PutObject) and "
            "the KMS key policy if the trail encrypts with KMS")
    delivered = status.get("LatestDeliveryTime")
    detail = f", last delivery {_time(delivered)}" if delivered else ""
    return CheckResult.passed(_resource(ctx, trail), expected, f"logging to s3://{bucket}{detail}")


@check(
    'the CloudTrail trail "{trail}" is multi-region',
    permissions=("cloudtrail:DescribeTrails",),
    manual="aws cloudtrail describe-trails --trail-name-list {trail} --query 'trailList[].IsMultiRegionTrail'",
)
def trail_multi_region(ctx: CheckContext, trail: str) -> CheckResult:
    """The trail records the API calls of every region (IsMultiRegionTrail), not only its home region's."""
    expected = "IsMultiRegionTrail true"
    description = describe_trail(ctx, trail, expected)
    home = description.get("HomeRegion", "?")
    if description.get("IsMultiRegionTrail"):
        return CheckResult.passed(_resource(ctx, trail), expected, f"multi-region (home region {home})")
    return CheckResult.failed(
        _resource(ctx, trail), expected, f"records only {home}",
        f"aws cloudtrail update-trail --name {trail} --is-multi-region-trail (and set it in the audit stack): "
        "activity in any other region is invisible until then")


@check(
    'the CloudTrail trail "{trail}" validates its log files',
    permissions=("cloudtrail:DescribeTrails",),
    manual="aws cloudtrail describe-trails --trail-name-list {trail} "
    "--query 'trailList[].LogFileValidationEnabled'",
)
def trail_log_validation(ctx: CheckContext, trail: str) -> CheckResult:
    """Log file integrity validation is on (LogFileValidationEnabled): CloudTrail writes signed digest files,
    so ``aws cloudtrail validate-logs`` can prove that no log file was changed or deleted."""
    expected = "LogFileValidationEnabled true"
    description = describe_trail(ctx, trail, expected)
    if description.get("LogFileValidationEnabled"):
        return CheckResult.passed(_resource(ctx, trail), expected, "log file validation enabled")
    return CheckResult.failed(
        _resource(ctx, trail), expected, "log file validation disabled",
        f"aws cloudtrail update-trail --name {trail} --enable-log-file-validation (and set it in the audit "
        "stack); logs written before have no digest and cannot be proven untouched")


def _time(value: Any) -> str:
    return value.isoformat(timespec="seconds") if hasattr(value, "isoformat") else str(value)
