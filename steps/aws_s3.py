"""S3 buckets: existence, public-access block, versioning, default encryption, tags, replication, contents.

Right for moto and for real AWS alike: real buckets created since 2023 get SSE-S3 and a bucket-level
public-access block by default, and an account-level block also protects buckets without their own.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from runbooks.sdk import CheckContext, CheckResult, Finding, aws_resource, check, error_code

from ._shared import tag_result

TITLE = "S3"  # its heading in the step catalogue
CATALOG_ORDER = 20

BLOCK_FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
ALGORITHMS = ("AES256", "aws:kms", "aws:kms:dsse")
BUCKET = aws_resource("s3-bucket")
MISSING = BUCKET.not_found_codes


def _uri(bucket: str) -> str:
    return BUCKET.label(bucket)


def _missing(bucket: str, expected: str) -> Finding:
    return Finding(
        CheckResult.failed(
            _uri(bucket),
            expected,
            f"the {BUCKET.noun} does not exist",
            "create the bucket (apply the storage stack) or correct the bucket name for this environment",
        )
    )


def s3_get(
    ctx: CheckContext, operation: str, bucket: str, absent: set[str], expected: str
) -> dict[str, Any] | None:
    """Read one bucket fact; ``None`` when the bucket has no such configuration, FAIL when it is missing."""
    try:
        return ctx.aws.read("s3", operation, Bucket=bucket)  # type: ignore[no-any-return]
    except ClientError as exc:
        code = error_code(exc)
        if code in MISSING:
            raise _missing(bucket, expected) from None
        if code in absent:
            return None
        raise


@check(
    'the S3 bucket "{bucket}" exists',
    permissions=("s3:ListBucket",),
    manual="aws s3api head-bucket --bucket {bucket}",
)
def bucket_exists(ctx: CheckContext, bucket: str) -> CheckResult:
    """The bucket exists and the checking identity can reach it (HeadBucket)."""
    response = s3_get(ctx, "head_bucket", bucket, set(), "the bucket exists")
    assert response is not None
    region = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("x-amz-bucket-region", "")
    return CheckResult.passed(_uri(bucket), "the bucket exists", f"exists{' in ' + region if region else ''}")


@check(
    'the S3 bucket "{bucket}" blocks all public access',
    permissions=("s3:GetBucketPublicAccessBlock", "s3:GetAccountPublicAccessBlock", "sts:GetCallerIdentity"),
    manual="aws s3api get-public-access-block --bucket {bucket}",
)
def bucket_blocks_public_access(ctx: CheckContext, bucket: str) -> CheckResult:
    """All four public-access-block settings are in effect for the bucket, from its own
    configuration or the account's (S3 applies the more restrictive of the two)."""
    expected = "all four public-access-block settings on (" + ", ".join(BLOCK_FLAGS) + ")"
    absent = {"NoSuchPublicAccessBlockConfiguration"}
    response = s3_get(ctx, "get_public_access_block", bucket, absent, expected)
    own = (response or {}).get("PublicAccessBlockConfiguration", {})
    if blocks_all(own):
        return CheckResult.passed(_uri(bucket), expected, "all four on at bucket level")
    account = account_block(ctx)
    off = [flag for flag in BLOCK_FLAGS if not (own.get(flag) or account.get(flag))]
    bucket_desc = _describe_flags(own) if response else "no bucket-level block"
    account_desc = _describe_flags(account) if account else "no account-level block"
    if not off:
        return CheckResult.passed(_uri(bucket), expected, f"in effect ({bucket_desc}; {account_desc})")
    return CheckResult.failed(
        _uri(bucket),
        expected,
        f"{', '.join(off)} off ({bucket_desc}; {account_desc})",
        f"aws s3api put-public-access-block --bucket {bucket} --public-access-block-configuration "
        + ",".join(f"{flag}=true" for flag in BLOCK_FLAGS)
        + " (and set it in the bucket's infrastructure code)",
    )


def account_block(ctx: CheckContext) -> dict[str, Any]:
    """The account-level public-access block (empty when there is none), read once per run."""
    account_id = ctx.aws.account_id()
    try:
        response = ctx.aws.read("s3control", "get_public_access_block", AccountId=account_id)
    except ClientError as exc:
        if error_code(exc) == "NoSuchPublicAccessBlockConfiguration":
            return {}
        raise
    return dict(response.get("PublicAccessBlockConfiguration", {}))


def blocks_all(flags: dict[str, Any]) -> bool:
    """Whether a PublicAccessBlockConfiguration (bucket's or account's) has all four settings on."""
    return all(flags.get(flag) for flag in BLOCK_FLAGS)


def _describe_flags(flags: dict[str, Any]) -> str:
    if blocks_all(flags):
        return "all four on"
    on = [flag for flag in BLOCK_FLAGS if flags.get(flag)]
    return "on: " + (", ".join(on) if on else "none")


@check(
    'the S3 bucket "{bucket}" has versioning enabled',
    permissions=("s3:GetBucketVersioning",),
    manual="aws s3api get-bucket-versioning --bucket {bucket}",
)
def bucket_versioning_enabled(ctx: CheckContext, bucket: str) -> CheckResult:
    """Versioning status is Enabled (not Suspended, not never-enabled)."""
    expected = "versioning Enabled"
    response = s3_get(ctx, "get_bucket_versioning", bucket, set(), expected) or {}
    status = response.get("Status") or "never enabled"
    if status == "Enabled":
        return CheckResult.passed(_uri(bucket), expected, "versioning Enabled")
    return CheckResult.failed(
        _uri(bucket),
        expected,
        f"versioning {status}",
        f"aws s3api put-bucket-versioning --bucket {bucket} --versioning-configuration Status=Enabled",
    )


@check(
    'the S3 bucket "{bucket}" is encrypted with "{algorithm}"',
    permissions=("s3:GetEncryptionConfiguration",),
    manual="aws s3api get-bucket-encryption --bucket {bucket}",
    choices={"algorithm": ALGORITHMS},
)
def bucket_encrypted_with(ctx: CheckContext, bucket: str, algorithm: str) -> CheckResult:
    """Default server-side encryption uses the given algorithm: AES256 (SSE-S3), aws:kms (SSE-KMS)
    or aws:kms:dsse (DSSE-KMS)."""
    expected = f"default encryption {algorithm}"
    response = s3_get(
        ctx,
        "get_bucket_encryption",
        bucket,
        {"ServerSideEncryptionConfigurationNotFoundError"},
        expected,
    )
    rules = (response or {}).get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
    defaults = [r.get("ApplyServerSideEncryptionByDefault", {}) for r in rules]
    algorithms = [d.get("SSEAlgorithm") for d in defaults if d.get("SSEAlgorithm")]
    if algorithm in algorithms:
        key = next((d.get("KMSMasterKeyID") for d in defaults if d.get("SSEAlgorithm") == algorithm), None)
        return CheckResult.passed(_uri(bucket), expected, f"{algorithm}{' with key ' + key if key else ''}")
    observed = (
        "default encryption " + ", ".join(algorithms) if algorithms else "no default encryption configured"
    )
    kms = ',"KMSMasterKeyID":"<key-arn>"' if algorithm.startswith("aws:kms") else ""
    return CheckResult.failed(
        _uri(bucket),
        expected,
        observed,
        f"aws s3api put-bucket-encryption --bucket {bucket} --server-side-encryption-configuration "
        f'\'{{"Rules":[{{"ApplyServerSideEncryptionByDefault":{{"SSEAlgorithm":"{algorithm}"{kms}}}}}]}}\'',
    )


@check(
    'the S3 bucket "{bucket}" has tag "{key}" set to "{value}"',
    permissions=("s3:GetBucketTagging",),
    manual="aws s3api get-bucket-tagging --bucket {bucket}",
)
def bucket_has_tag(ctx: CheckContext, bucket: str, key: str, value: str) -> CheckResult:
    """The bucket carries the tag with exactly this value."""
    expected = f"tag {key}={value}"
    tags = bucket_tags(ctx, bucket, expected)
    return tag_result(_uri(bucket), tags, key, value, "add it in the bucket's infrastructure code "
                      "(note: aws s3api put-bucket-tagging replaces the whole tag set)")


def bucket_tags(ctx: CheckContext, bucket: str, expected: str) -> dict[str, str]:
    """The bucket's tags (empty when it has none); FAIL when the bucket is missing."""
    response = s3_get(ctx, "get_bucket_tagging", bucket, {"NoSuchTagSet"}, expected)
    return {t["Key"]: t["Value"] for t in (response or {}).get("TagSet", [])}


def bucket_arn(bucket: str) -> str:
    return f"arn:aws:s3:::{bucket}"


@check(
    'the S3 bucket "{bucket}" replicates to "{destination}"',
    permissions=("s3:GetReplicationConfiguration",),
    manual="aws s3api get-bucket-replication --bucket {bucket}",
)
def bucket_replicates_to(ctx: CheckContext, bucket: str, destination: str) -> CheckResult:
    """The bucket has an Enabled replication rule whose destination is the named bucket (given by name;
    compared with the rule's Destination.Bucket ARN, in any partition). A rule limited by a filter
    still passes; the observed text names its scope."""
    expected = f"an Enabled replication rule to {bucket_arn(destination)}"
    absent = {"ReplicationConfigurationNotFoundError"}
    response = s3_get(ctx, "get_bucket_replication", bucket, absent, expected)
    rules = (response or {}).get("ReplicationConfiguration", {}).get("Rules", [])
    fix = (
        "add a replication rule (Status Enabled, Destination.Bucket "
        f"{bucket_arn(destination)}) in the bucket's infrastructure code; both buckets need versioning"
    )
    if not rules:
        return CheckResult.failed(_uri(bucket), expected, "no replication configured", fix)
    to_destination = [
        r for r in rules if _arn_bucket(r.get("Destination", {}).get("Bucket", "")) == destination
    ]
    enabled = [r for r in to_destination if r.get("Status") == "Enabled"]
    if enabled:
        rule = enabled[0]
        scope = _rule_scope(rule)
        return CheckResult.passed(
            _uri(bucket), expected, f"rule {rule.get('ID', '(no id)')!r} Enabled to {destination}{scope}"
        )
    if to_destination:
        ids = ", ".join(repr(r.get("ID", "(no id)")) for r in to_destination)
        return CheckResult.failed(_uri(bucket), expected, f"rule {ids} to {destination} is Disabled",
                                  "enable the rule (Status Enabled) in the bucket's infrastructure code")
    others = sorted({r.get("Destination", {}).get("Bucket", "?") for r in rules})
    return CheckResult.failed(_uri(bucket), expected, "replicates only to " + ", ".join(others), fix)


def _arn_bucket(arn: str) -> str:
    """``arn:aws:s3:::name`` (any partition) -> ``name``."""
    return arn.rpartition(":::")[2] if ":::" in arn else arn


def _rule_scope(rule: dict[str, Any]) -> str:
    rule_filter = rule.get("Filter", {})
    prefix = rule_filter.get("Prefix", rule.get("Prefix", "")) or rule_filter.get("And", {}).get("Prefix", "")
    if prefix:
        return f" (only objects under {prefix!r})"
    if "Tag" in rule_filter or "Tags" in rule_filter.get("And", {}):
        return " (only objects with the rule's tags)"
    return ""


@check(
    'the S3 bucket "{bucket}" holds at least {count:d} objects under "{prefix}"',
    permissions=("s3:ListBucket",),
    manual="aws s3 ls s3://{bucket}/{prefix} --recursive --summarize",
)
def bucket_holds_objects(ctx: CheckContext, bucket: str, count: int, prefix: str) -> CheckResult:
    """At least ``count`` objects have keys starting with ``prefix``. Keys ending in "/" are not
    counted: they are the empty "folder" markers the console creates, not data. Listing stops as soon
    as ``count`` is reached, so a large bucket costs one page per 1,000 objects asked for."""
    expected = f"at least {count} objects under {prefix!r}"

    def count_objects() -> tuple[int, int, bool]:
        seen, folders, token = 0, 0, None
        while True:
            params: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
            if token:
                params["ContinuationToken"] = token
            try:
                page = ctx.aws.call("s3", "list_objects_v2", **params)
            except ClientError as exc:
                if error_code(exc) in MISSING:
                    raise _missing(bucket, expected) from None
                raise
            keys = [str(item.get("Key", "")) for item in page.get("Contents", [])]
            folder_keys = sum(1 for key in keys if key.endswith("/"))
            seen, folders = seen + len(keys) - folder_keys, folders + folder_keys
            token = page.get("NextContinuationToken")
            if seen >= count or not page.get("IsTruncated") or not token:
                return seen, folders, bool(page.get("IsTruncated"))

    seen, folders, more = ctx.aws.memo(("s3-object-count", bucket, prefix, count), count_objects)
    skipped = f" ({folders} key{'s' if folders != 1 else ''} ending in '/' not counted)" if folders else ""
    if seen >= count:
        observed = f"{'at least ' if more else ''}{seen} objects under {prefix!r}{skipped}"
        return CheckResult.passed(_uri(bucket), expected, observed)
    return CheckResult.failed(
        _uri(bucket),
        expected,
        f"{seen} object{'s' if seen != 1 else ''} under {prefix!r}{skipped}",
        "check the job that writes there (its last run, its logs) and that the prefix is spelled right",
    )


def _object_uri(bucket: str, key: str) -> str:
    return f"{_uri(bucket)}/{key}"


def _missing_object(bucket: str, key: str, expected: str) -> Finding:
    return Finding(CheckResult.failed(
        _object_uri(bucket, key), expected, "no such object (the bucket exists)",
        f"check what is there: aws s3 ls s3://{bucket}/{key.rpartition('/')[0]}/ ; upload it again from its "
        "source (the pipeline job that publishes it), or correct the key"))


@check(
    'the S3 object "{key}" exists in the bucket "{bucket}"',
    permissions=("s3:GetObject", "s3:ListBucket"),
    manual="aws s3api head-object --bucket {bucket} --key {key}",
)
def object_exists(ctx: CheckContext, bucket: str, key: str) -> CheckResult:
    """The object exists (HeadObject: its current version, not a delete marker). The observed text gives
    its size and when it was last written. FAIL says whether the object or the whole bucket is missing."""
    expected = "the object exists"
    try:
        head = ctx.aws.read("s3", "head_object", Bucket=bucket, Key=key)
    except ClientError as exc:
        if error_code(exc) not in MISSING | {"NoSuchKey"}:
            raise
        # HEAD answers a bare 404 for a missing key and a missing bucket alike: ask about the bucket
        s3_get(ctx, "head_bucket", bucket, set(), expected)
        raise _missing_object(bucket, key, expected) from None
    modified = head.get("LastModified")
    when = f", last written {modified.isoformat(timespec='seconds')}" if hasattr(modified, "isoformat") else ""
    return CheckResult.passed(_object_uri(bucket, key), expected,
                              f"exists ({head.get('ContentLength', '?')} bytes{when})")


@check(
    'the S3 object "{key}" in the bucket "{bucket}" has tag "{tag}" set to "{value}"',
    permissions=("s3:GetObjectTagging",),
    manual="aws s3api get-object-tagging --bucket {bucket} --key {key}",
)
def object_has_tag(ctx: CheckContext, bucket: str, key: str, tag: str, value: str) -> CheckResult:
    """The object (its current version) carries the tag with exactly this value: how a release artefact
    records its release and its QA sign-off."""
    expected = f"tag {tag}={value}"
    try:
        response = ctx.aws.read("s3", "get_object_tagging", Bucket=bucket, Key=key)
    except ClientError as exc:
        code = error_code(exc)
        if code in MISSING - {"404", "NotFound"}:
            raise _missing(bucket, expected) from None
        if code in {"NoSuchKey", "404", "NotFound"}:
            raise _missing_object(bucket, key, expected) from None
        raise
    tags = {t["Key"]: t["Value"] for t in response.get("TagSet", [])}
    return tag_result(_object_uri(bucket, key), tags, tag, value,
                      f"tag it where it is published (the release job), or: aws s3api put-object-tagging "
                      f"--bucket {bucket} --key {key} --tagging 'TagSet=[...]' (it replaces the object's whole "
                      "tag set: list the tags it keeps too)")
