"""An example of a team's own step: one phrase, one function, its IAM permissions and the command a
person would run by hand. `runbooks steps` lists it beside the built-in steps."""

from runbooks.sdk import CheckContext, CheckResult, check, error_code

TITLE = "Storage (this project)"


@check(
    'the S3 object "{key}" exists in the bucket "{bucket}"',
    permissions=("s3:GetObject",),  # HeadObject is authorised by s3:GetObject
    manual="aws s3api head-object --bucket {bucket} --key {key}",
)
def object_exists(ctx: CheckContext, bucket: str, key: str) -> CheckResult:
    """The object is in the bucket (S3 HeadObject)."""
    resource = f"s3://{bucket}/{key}"
    try:
        head = ctx.aws.read("s3", "head_object", Bucket=bucket, Key=key)
    except Exception as exc:
        code = error_code(exc)
        if code == "NoSuchBucket":
            return CheckResult.failed(resource, "the object exists", "no such bucket",
                                      hint=f"check the bucket name: aws s3 ls | grep {bucket}")
        if code in ("404", "NoSuchKey"):  # HEAD has no error body: a missing key is a bare 404
            return CheckResult.failed(resource, "the object exists", "no such object",
                                      hint=f"upload it again: aws s3 cp FILE s3://{bucket}/{key}")
        raise  # anything else (AccessDenied, timeout, ...) could not be checked: the run reports an ERROR
    return CheckResult.passed(resource, "the object exists", f"{head['ContentLength']} bytes")
