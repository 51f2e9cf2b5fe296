"""An example of a team's own step: one phrase, one function, its IAM permissions and the command a
person would run by hand. `runbooks steps` lists it beside the built-in steps."""

from runbooks.sdk import CheckContext, CheckResult, check, error_code

TITLE = "Storage (this project)"


@check(
    'the S3 object "{key}" in the bucket "{bucket}" is not empty',
    permissions=("s3:GetObject",),  # HeadObject is authorised by s3:GetObject
    manual="aws s3api head-object --bucket {bucket} --key {key}",
)
def object_not_empty(ctx: CheckContext, bucket: str, key: str) -> CheckResult:
    """The object is in the bucket and holds at least one byte (S3 HeadObject): an upload that was cut
    short often leaves an empty object behind."""
    resource = f"s3://{bucket}/{key}"
    try:
        head = ctx.aws.read("s3", "head_object", Bucket=bucket, Key=key)
    except Exception as exc:
        code = error_code(exc)
        if code == "NoSuchBucket":
            return CheckResult.failed(resource, "a non-empty object", "no such bucket",
                                      hint=f"check the bucket name: aws s3 ls | grep {bucket}")
        if code in ("404", "NoSuchKey"):  # HEAD has no error body: a missing key is a bare 404
            return CheckResult.failed(resource, "a non-empty object", "no such object",
                                      hint=f"upload it again: aws s3 cp FILE s3://{bucket}/{key}")
        raise  # anything else (AccessDenied, timeout, ...) could not be checked: the run reports an ERROR
    size = int(head["ContentLength"])
    if size == 0:
        return CheckResult.failed(resource, "a non-empty object", "0 bytes",
                                  hint=f"upload it again: aws s3 cp FILE s3://{bucket}/{key}")
    return CheckResult.passed(resource, "a non-empty object", f"{size} bytes")
