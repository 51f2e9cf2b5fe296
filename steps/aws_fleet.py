"""Fleets: one rule over every S3 bucket or DynamoDB table whose name matches a glob, in one result.

Each fleet step lists the resources once per run, applies the same logic as the single-resource step
(``steps.aws_s3`` / ``steps.aws_dynamodb``) to every match on the run's AWS thread pool
(``ctx.aws.fan_out``: ``aws.max_workers`` threads, one pool for every step of the run), and reports one
result naming every offender. The rule for resources that could not be checked (AccessDenied on one
bucket, a throttled call that stayed throttled after botocore's retries):

* they are never offenders;
* offenders found -> FAIL, whose observed text also names the unchecked resources and why;
* no offender but some unchecked -> ERROR naming them (the rest held);
* no resource matches the pattern -> FAIL ("no bucket matches ...").

Tag rules read the tags of the matching resources through the Resource Groups Tagging API
(``tag:GetResources`` with their ARNs, 100 a call, the calls in parallel) and only confirm the suspected
offenders one by one, so a compliant fleet costs a handful of calls. The resource list always comes from
ListBuckets/ListTables, because GetResources leaves out resources that were never tagged (and S3 buckets
of other regions); an offender is only ever reported from the authoritative per-resource read. A PASS,
though, may rest on the tagging API, which can lag behind a recent tag change: the observed text says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from runbooks.sdk import AwsResource, CheckContext, CheckResult, FaultKind, Finding, Outcome, aws_resource, check

from ._shared import tag_result
from .aws_dynamodb import table_pitr_enabled, table_tags
from .aws_s3 import (
    ALGORITHMS,
    account_block,
    blocks_all,
    bucket_blocks_public_access,
    bucket_encrypted_with,
    bucket_tags,
    bucket_versioning_enabled,
)

TITLE = "Fleets (every matching resource)"  # its heading in the step catalogue
CATALOG_ORDER = 60

# How many requests a fleet step keeps in flight is the run's (aws.max_workers, --workers; defaults in
# runbooks/targets/aws.py: 16 against AWS or an endpoint, 4 on the in-process stub).
ARNS_PER_CALL = 100  # GetResources' maximum ResourceARNList


def validate_glob(value: str) -> None:
    """A shell-style pattern as ``fnmatch`` reads it, refusing what it would silently take literally."""
    if not value.strip():
        raise ValueError('empty pattern; use "*" to mean every name')
    if any(ch.isspace() for ch in value):
        raise ValueError("bucket and table names never contain whitespace")
    i = 0
    while i < len(value):
        if value[i] == "[":
            j = i + 1
            if j < len(value) and value[j] == "!":
                j += 1
            if j < len(value) and value[j] == "]":  # a ']' first in a class is literal
                j += 1
            close = value.find("]", j)
            if close < 0:
                raise ValueError(f"unbalanced '[' at position {i + 1} (fnmatch would match it literally)")
            i = close + 1
            continue
        if value[i] == "]":
            raise ValueError(f"']' at position {i + 1} closes no '['")
        i += 1


GLOB: dict[str, Callable[[str], None]] = {"pattern": validate_glob}


BUCKET = aws_resource("s3-bucket")
TABLE = aws_resource("dynamodb-table")


@dataclass(frozen=True)
class Kind:
    noun: str  # "bucket"
    resource: str  # "S3 buckets matching 'acme-*'"
    fix_name: str  # what a per-resource hint names the resource by


def fleet_kind(ctx: CheckContext, resource: AwsResource, pattern: str) -> Kind:
    return Kind(resource.noun, resource.fleet_label(pattern, ctx.aws.settings.region), resource.placeholder)


def resource_names(ctx: CheckContext, resource: AwsResource) -> list[str]:
    """Every name the resource type's list operation returns (all pages).

    In a scenario run once per region (``@all-regions``), a regional type is listed in every region of the
    environment at once, in parallel on the run's pool (memoised per region), so the scenarios of the
    other regions find their listing read; what another region answers is its scenario's to report."""
    aws, own = ctx.aws, ctx.region
    regions = aws.settings.all_regions
    if not resource.regional or own is None or own not in regions or len(regions) == 1:
        return resource.names_in(aws.paginate(resource.service, resource.list_operation))
    listings = aws.fan_out(lambda region: aws.paginate(resource.service, resource.list_operation, region), regions)
    for listing in listings:  # all of them read before this step ends (what another region answers is its own)
        listing.exception()
    return resource.names_in(listings[regions.index(own)].result())


def fleet(
    ctx: CheckContext,
    resource: AwsResource,
    pattern: str,
    judge: Callable[[str], CheckResult],
    what: str,
    note: Callable[[], str] = lambda: "",
    pass_note: Callable[[], str] = lambda: "",
    prepare: Callable[[list[str]], None] = lambda matched: None,
) -> CheckResult:
    """Apply ``judge`` (a single-resource check) to every ``resource`` whose name matches ``pattern``;
    one result. ``note`` is added to the observed text of any outcome, ``pass_note`` to a PASS only;
    ``prepare`` gets the matching names before any is judged (the tag rules read their tags with it)."""
    kind = fleet_kind(ctx, resource, pattern)
    names: Callable[[], list[str]] = lambda: resource_names(ctx, resource)  # noqa: E731
    expected = f"every {kind.noun} matching {pattern!r} with {what}"
    try:
        everything = names()
    except Exception as exc:  # noqa: BLE001 - listing failed: nothing could be checked
        fault = ctx.classify(exc)
        return CheckResult.errored(kind.resource, f"could not list the {kind.noun}s: {fault.reason}",
                                   fault.hint, expected=expected)
    matched = sorted(n for n in everything if fnmatchcase(n, pattern))
    if not matched:
        return CheckResult.failed(
            kind.resource,
            expected,
            f"no {kind.noun} matches {pattern!r} ({len(everything)} {kind.noun}s in total)",
            "check the pattern, and that the run points at the right account and region",
        )
    prepare(matched)
    # on the run's pool, each judge in a copy of this thread's context: the step and its deadline hold there
    verdicts = [future.result() for future in ctx.aws.fan_out(lambda name: _judge_one(ctx, judge, name), matched)]
    results = dict(zip(matched, verdicts, strict=True))
    offenders = {n: r for n, r in results.items() if r.outcome is Outcome.FAIL}
    unchecked = {n: r for n, r in results.items() if r.outcome not in (Outcome.FAIL, Outcome.PASS)}
    evidence = {
        "matched": len(matched),
        "offenders": {n: r.observed for n, r in offenders.items()},
        "unchecked": {n: r.observed for n, r in unchecked.items()},
    }
    extra = note()
    total = len(matched)
    noun = kind.noun + ("s" if total != 1 else "")
    if offenders:
        observed = f"{len(offenders)} of {total} {noun} without {what}: {', '.join(offenders)}"
        if unchecked:
            observed += f"; {len(unchecked)} could not be checked: {_grouped(unchecked)}"
        first_name, first = next(iter(offenders.items()))
        hint = f"for each {kind.noun} listed: " + first.hint.replace(first_name, kind.fix_name)
        return CheckResult.failed(kind.resource, expected, observed + extra, hint, evidence=evidence)
    if unchecked:
        hint = next(iter(unchecked.values())).hint
        observed = (
            f"{len(unchecked)} of {total} {noun} could not be checked: {_grouped(unchecked)}; "
            f"the other {total - len(unchecked)} with {what}"
        )
        return CheckResult.errored(kind.resource, observed + extra, hint, expected=expected,
                                   evidence=evidence)
    observed = (
        f"all {total} matching {noun} with {what}"
        if total > 1
        else f"the one matching {noun} with {what}"
    )
    return CheckResult.passed(kind.resource, expected, observed + extra + pass_note(), evidence=evidence)


def _judge_one(ctx: CheckContext, judge: Callable[[str], CheckResult], name: str) -> CheckResult:
    """One resource's verdict; "could not check" stays an ERROR, exactly as for a single step."""
    try:
        return judge(name)
    except Finding as exc:
        return exc.result
    except Exception as exc:  # noqa: BLE001
        fault = ctx.classify(exc)
        return CheckResult.errored(name, fault.reason, fault.hint)


def _grouped(unchecked: dict[str, CheckResult]) -> str:
    """``a, b (access denied ...); c (throttled ...)``: one reason per group of names."""
    groups: dict[str, list[str]] = {}
    for name, result in unchecked.items():
        groups.setdefault(result.observed, []).append(name)
    return "; ".join(f"{', '.join(names)} ({reason})" for reason, names in groups.items())


# --- tags through the Resource Groups Tagging API ----------------------------------------------------

@dataclass(frozen=True)
class TagIndex:
    """Tags of every tagged resource of one type in the region, by name; ``None`` when unavailable."""

    tags: dict[str, dict[str, str]] | None
    reason: str = ""

    def note(self, noun: str) -> str:
        if self.tags is not None:
            return ""
        return f" (tags read {noun} by {noun}: the tagging API was unavailable: {self.reason})"


def _tag_sources(noun: str, sources: list[str]) -> str:
    """Where a PASS's tags came from (an offender is always confirmed by its own read); ``sources`` holds
    "index" (the tagging API) or "read" (the resource's own tags) per resource judged."""
    indexed, read = sources.count("index"), sources.count("read")
    if not indexed:
        return ""
    lag = "the tagging API, which can lag behind recent tag changes"
    if not read:
        return f" (tags read via {lag})"
    return f" (tags of {indexed} read via {lag}; {read} read from the {noun} itself)"


def resource_arn(resource: AwsResource, name: str, partition: str, region: str, account: str) -> str:
    """The ARN of the ``resource`` named ``name`` (the inverse of ``AwsResource.arn_to_name``); S3's name
    neither a region nor an account."""
    path = f"{resource.arn_resource_type}{resource.arn_separator}{name}" if resource.arn_resource_type else name
    region, account = region if resource.regional else "", "" if resource.service == "s3" else account
    return f"arn:{partition}:{resource.service}:{region}:{account}:{path}"


def tag_index(ctx: CheckContext, resource: AwsResource, names: list[str]) -> TagIndex:
    """The tags of ``names`` from the tagging API: their ARNs in calls of 100 (its maximum), the calls in
    parallel on the run's pool, each memoised. A name it leaves out (never tagged, another region's bucket)
    is a suspect its judge confirms."""
    try:
        region = ctx.aws.settings.region
        account = "" if resource.service == "s3" else ctx.aws.account_id()
        partition = ctx.aws.partition(region)
        arns = {resource_arn(resource, name, partition, region, account): name for name in names}
        ordered = sorted(arns)
        chunks = [ordered[i:i + ARNS_PER_CALL] for i in range(0, len(ordered), ARNS_PER_CALL)]
        calls = ctx.aws.fan_out(
            lambda chunk: ctx.aws.paginate("resourcegroupstaggingapi", "get_resources", ResourceARNList=chunk),
            chunks,
        )
        pages = [page for call in calls for page in call.result()]
    except Exception as exc:  # noqa: BLE001 - fall back to per-resource reads, and say so
        fault = ctx.classify(exc)
        if fault.kind is FaultKind.DEFECT:
            raise
        return TagIndex(None, fault.reason)
    index: dict[str, dict[str, str]] = {}
    for page in pages:
        for mapping in page.get("ResourceTagMappingList", []):
            name = arns.get(mapping.get("ResourceARN", ""))
            if name:
                index[name] = {t["Key"]: t["Value"] for t in mapping.get("Tags", [])}
    return TagIndex(index)


@dataclass
class TagRule:
    """One fleet step's tag rule: the tagging API's index of the matching resources (read in ``prepare``),
    then each resource's verdict; ``sources`` says where each PASS's tags came from."""

    ctx: CheckContext
    resource: AwsResource
    key: str
    read_tags: Callable[[str], dict[str, str]]
    label: Callable[[str], str]
    index: TagIndex = field(default_factory=lambda: TagIndex({}))
    sources: list[str] = field(default_factory=list)

    def prepare(self, matched: list[str]) -> None:
        self.index = tag_index(self.ctx, self.resource, matched)

    def judge(self, name: str) -> CheckResult:
        known = self.index.tags.get(name) if self.index.tags is not None else None
        if known is not None and self.key in known:
            self.sources.append("index")  # list.append is atomic: judges run on the pool's threads
            return CheckResult.passed(self.label(name), f"tag {self.key!r}",
                                      f"tag {self.key}={known[self.key]} (via the tagging API)")
        tags = self.read_tags(name)  # a suspect: confirm with the authoritative per-resource read
        self.sources.append("read")
        fix = f"add the tag {self.key!r} in its infrastructure code"
        return tag_result(self.label(name), tags, self.key, None, fix)

    def check(self, pattern: str) -> CheckResult:
        noun = self.resource.noun
        return fleet(
            self.ctx, self.resource, pattern, self.judge, f"tag {self.key!r}", prepare=self.prepare,
            note=lambda: self.index.note(noun), pass_note=lambda: _tag_sources(noun, self.sources),
        )


# --- S3 ----------------------------------------------------------------------------------------------

LIST_BUCKETS = BUCKET.list_command


@check(
    'every S3 bucket matching "{pattern}" blocks all public access',
    permissions=(
        BUCKET.list_permission,
        "s3:GetBucketPublicAccessBlock",
        "s3:GetAccountPublicAccessBlock",
        "sts:GetCallerIdentity",
    ),
    manual=f"{LIST_BUCKETS}; then for each match: aws s3api get-public-access-block --bucket NAME",
    validators=GLOB,
)
def fleet_buckets_block_public_access(ctx: CheckContext, pattern: str) -> CheckResult:
    """Every bucket whose name matches the glob has all four public-access-block settings in effect,
    from its own configuration or the account's (as the single-bucket step judges it). When the
    account-level block has all four on, no bucket needs reading at all. A bucket that cannot be read
    is listed as unchecked, never as an offender (FAIL if there are offenders, else ERROR)."""
    judge: Callable[[str], CheckResult] = lambda name: bucket_blocks_public_access(ctx, name)  # noqa: E731
    note = ""
    try:
        account = account_block(ctx)
    except Exception:  # noqa: BLE001 - then each bucket is judged alone and says why it cannot be checked
        account = {}
    if blocks_all(account):
        note = " (the account-level block has all four on)"
        judge = lambda name: CheckResult.passed(BUCKET.label(name), "all four on", "account-level block")  # noqa: E731
    return fleet(
        ctx, BUCKET, pattern, judge, "a full public-access block",
        note=lambda: note,
    )


@check(
    'every S3 bucket matching "{pattern}" has versioning enabled',
    permissions=(BUCKET.list_permission, "s3:GetBucketVersioning"),
    manual=f"{LIST_BUCKETS}; then for each match: aws s3api get-bucket-versioning --bucket NAME",
    validators=GLOB,
)
def fleet_buckets_versioned(ctx: CheckContext, pattern: str) -> CheckResult:
    """Every bucket whose name matches the glob has versioning Enabled. A bucket that cannot be read
    is listed as unchecked, never as an offender (FAIL if there are offenders, else ERROR)."""
    return fleet(
        ctx, BUCKET, pattern, lambda name: bucket_versioning_enabled(ctx, name), "versioning enabled",
    )


@check(
    'every S3 bucket matching "{pattern}" is encrypted with "{algorithm}"',
    permissions=(BUCKET.list_permission, "s3:GetEncryptionConfiguration"),
    manual=f"{LIST_BUCKETS}; then for each match: aws s3api get-bucket-encryption --bucket NAME",
    choices={"algorithm": ALGORITHMS},
    validators=GLOB,
)
def fleet_buckets_encrypted(ctx: CheckContext, pattern: str, algorithm: str) -> CheckResult:
    """Every bucket whose name matches the glob has default encryption with the given algorithm. A
    bucket that cannot be read is listed as unchecked, never as an offender."""
    return fleet(
        ctx, BUCKET, pattern, lambda name: bucket_encrypted_with(ctx, name, algorithm),
        f"default encryption {algorithm}",
    )


@check(
    'every S3 bucket matching "{pattern}" has tag "{key}"',
    permissions=(BUCKET.list_permission, "tag:GetResources", "s3:GetBucketTagging"),
    manual=f"{LIST_BUCKETS}; aws resourcegroupstaggingapi get-resources --resource-type-filters "
    f"{BUCKET.tagging_type}; "
    "for a bucket missing there: aws s3api get-bucket-tagging --bucket NAME",
    validators=GLOB,
)
def fleet_buckets_tagged(ctx: CheckContext, pattern: str, key: str) -> CheckResult:
    """Every bucket whose name matches the glob carries the tag (any value). Tags come from the
    tagging API in pages; a bucket that seems to lack the tag is confirmed with GetBucketTagging
    (all of them, if the tagging API is denied). An unreadable bucket is unchecked, never an offender.
    A PASS may rest on the tagging API, which can lag behind a recent tag change by minutes: the
    observed text says how many tags were read through it."""
    return TagRule(ctx, BUCKET, key, lambda name: bucket_tags(ctx, name, f"tag {key!r}"), BUCKET.label).check(pattern)


# --- DynamoDB ----------------------------------------------------------------------------------------

LIST_TABLES = TABLE.list_command


@check(
    'every DynamoDB table matching "{pattern}" has point-in-time recovery enabled',
    permissions=(TABLE.list_permission, "dynamodb:DescribeContinuousBackups"),
    manual=f"{LIST_TABLES}; then for each match: aws dynamodb describe-continuous-backups --table-name NAME",
    validators=GLOB,
)
def fleet_tables_pitr(ctx: CheckContext, pattern: str) -> CheckResult:
    """Every table (of the environment's region) whose name matches the glob has PITR ENABLED. A
    table that cannot be read is listed as unchecked, never as an offender."""
    return fleet(
        ctx, TABLE, pattern, lambda name: table_pitr_enabled(ctx, name), "point-in-time recovery enabled",
    )


@check(
    'every DynamoDB table matching "{pattern}" has tag "{key}"',
    permissions=(
        TABLE.list_permission,
        "tag:GetResources",
        "dynamodb:DescribeTable",
        "dynamodb:ListTagsOfResource",
        "sts:GetCallerIdentity",  # the account id in the tables' ARNs
    ),
    manual=f"{LIST_TABLES}; aws resourcegroupstaggingapi get-resources --resource-type-filters "
    f"{TABLE.tagging_type}; for a table missing there: aws dynamodb list-tags-of-resource --resource-arn ARN",
    validators=GLOB,
)
def fleet_tables_tagged(ctx: CheckContext, pattern: str, key: str) -> CheckResult:
    """Every table (of the environment's region) whose name matches the glob carries the tag (any
    value). Tags come from the tagging API in pages; a suspect is confirmed with ListTagsOfResource.
    A table that cannot be read is listed as unchecked, never as an offender. A PASS may rest on the
    tagging API, which can lag behind a recent tag change by minutes: the observed text says how many
    tags were read through it."""
    region = ctx.aws.settings.region
    return TagRule(ctx, TABLE, key, lambda name: table_tags(ctx, name, f"tag {key!r}")[1],
                   lambda name: TABLE.label(name, region)).check(pattern)
