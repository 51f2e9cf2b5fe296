"""Fleets: one rule over every S3 bucket or DynamoDB table whose name matches a glob, in one result.

Each fleet step lists the resources once per run, applies the same logic as the single-resource step
(``steps.aws_s3`` / ``steps.aws_dynamodb``) to every match on a bounded thread pool, and reports one
result naming every offender. The rule for resources that could not be checked (AccessDenied on one
bucket, a throttled call that stayed throttled after botocore's retries):

* they are never offenders;
* offenders found -> FAIL, whose observed text also names the unchecked resources and why;
* no offender but some unchecked -> ERROR naming them (the rest held);
* no resource matches the pattern -> FAIL ("no bucket matches ...").

Tag rules read every tag of the region in pages through the Resource Groups Tagging API
(``tag:GetResources``) and only confirm the suspected offenders one by one, so a compliant fleet
costs a handful of calls. The resource list always comes from ListBuckets/ListTables, because
GetResources leaves out resources that were never tagged (and S3 buckets of other regions); an
offender is only ever reported from the authoritative per-resource read. A PASS, though, may rest on
the tagging API, which can lag behind a recent tag change: the observed text says so.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fnmatch import fnmatchcase

from runbooks.aws import describe_error
from runbooks.registry import check
from runbooks.result import CheckResult, Outcome
from runbooks.run import CheckContext, Finding, error_hint
from steps._shared import tag_result
from steps.aws_dynamodb import table_pitr_enabled, table_tags
from steps.aws_s3 import (
    ALGORITHMS,
    account_block,
    blocks_all,
    bucket_blocks_public_access,
    bucket_encrypted_with,
    bucket_tags,
    bucket_versioning_enabled,
)

# Threads per fleet step. Against AWS each call mostly waits on the network (tens of ms), so 8 in
# flight pay off; against a stub on this machine (moto in-process or a local server) calls are CPU-bound
# and threads beyond the cores only contend: measured with benchmarks/fleet.py, 8 threads cost ~15%
# more client and server CPU than 4 for the same calls. The run's clients pool 16 connections.
WORKERS = {"live": 8}
STUB_WORKERS = 4
TAGGING_PAGE = 100  # GetResources' maximum ResourcesPerPage


def workers(ctx: CheckContext) -> int:
    return WORKERS.get(ctx.aws.name, STUB_WORKERS)


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


@dataclass(frozen=True)
class Kind:
    noun: str  # "bucket"
    resource: str  # "S3 buckets matching 'acme-*'"
    fix_name: str  # what a per-resource hint names the resource by


def _bucket_kind(pattern: str) -> Kind:
    return Kind("bucket", f"S3 buckets matching {pattern!r}", "<bucket>")


def _table_kind(ctx: CheckContext, pattern: str) -> Kind:
    return Kind("table", f"DynamoDB tables matching {pattern!r} ({ctx.aws.settings.region})", "<table>")


def bucket_names(ctx: CheckContext) -> list[str]:
    pages = ctx.aws.paginate("s3", "list_buckets")
    return [b["Name"] for page in pages for b in page.get("Buckets", [])]


def table_names(ctx: CheckContext) -> list[str]:
    pages = ctx.aws.paginate("dynamodb", "list_tables")
    return [name for page in pages for name in page.get("TableNames", [])]


def fleet(
    ctx: CheckContext,
    kind: Kind,
    pattern: str,
    names: Callable[[], list[str]],
    judge: Callable[[str], CheckResult],
    what: str,
    note: Callable[[], str] = lambda: "",
    pass_note: Callable[[], str] = lambda: "",
) -> CheckResult:
    """Apply ``judge`` (a single-resource check) to every name matching ``pattern``; one result.
    ``note`` is added to the observed text of any outcome, ``pass_note`` to a PASS only."""
    expected = f"every {kind.noun} matching {pattern!r} with {what}"
    try:
        everything = names()
    except Exception as exc:  # noqa: BLE001 - listing failed: nothing could be checked
        reason = describe_error(exc, ctx.aws.name) or f"{type(exc).__name__}: {exc}"
        return CheckResult.errored(kind.resource, f"could not list the {kind.noun}s: {reason}",
                                   error_hint(reason), expected=expected)
    matched = sorted(n for n in everything if fnmatchcase(n, pattern))
    if not matched:
        return CheckResult.failed(
            kind.resource,
            expected,
            f"no {kind.noun} matches {pattern!r} ({len(everything)} {kind.noun}s in total)",
            "check the pattern, and that the run points at the right account and region",
        )
    pool_size = min(workers(ctx), len(matched))
    with ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="fleet") as pool:
        verdicts = pool.map(lambda name: _judge_one(ctx, judge, name), matched)
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
        reason = next(iter(unchecked.values())).observed
        observed = (
            f"{len(unchecked)} of {total} {noun} could not be checked: {_grouped(unchecked)}; "
            f"the other {total - len(unchecked)} with {what}"
        )
        return CheckResult.errored(kind.resource, observed + extra, error_hint(reason), expected=expected,
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
        reason = describe_error(exc, ctx.aws.name) or f"{type(exc).__name__}: {exc}"
        return CheckResult.errored(name, reason)


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


def tag_index(ctx: CheckContext, resource_type: str) -> TagIndex:
    def build() -> TagIndex:
        try:
            pages = ctx.aws.paginate(
                "resourcegroupstaggingapi",
                "get_resources",
                ResourceTypeFilters=[resource_type],
                ResourcesPerPage=TAGGING_PAGE,
            )
        except Exception as exc:  # noqa: BLE001 - fall back to per-resource reads, and say so
            reason = describe_error(exc, ctx.aws.name)
            if reason is None:
                raise
            return TagIndex(None, reason)
        index: dict[str, dict[str, str]] = {}
        for page in pages:
            for mapping in page.get("ResourceTagMappingList", []):
                name = _name_from_arn(mapping.get("ResourceARN", ""), resource_type, ctx.aws.settings.region)
                if name:
                    index[name] = {t["Key"]: t["Value"] for t in mapping.get("Tags", [])}
        return TagIndex(index)

    return ctx.aws.memo(("tag-index", resource_type), build)  # type: ignore[no-any-return]


def _name_from_arn(arn: str, resource_type: str, region: str) -> str:
    parts = arn.split(":", 5)
    if len(parts) != 6:
        return ""
    if resource_type == "s3":
        return parts[5]
    kind, _, name = parts[5].partition("/")
    return name if kind == "table" and parts[3] == region and "/" not in name else ""


def _tag_judge(
    index: TagIndex, key: str, read_tags: Callable[[str], dict[str, str]], resource: Callable[[str], str],
    sources: list[str],
) -> Callable[[str], CheckResult]:
    def judge(name: str) -> CheckResult:
        known = index.tags.get(name) if index.tags is not None else None
        if known is not None and key in known:
            sources.append("index")  # list.append is atomic: judges run on the fleet's threads
            return CheckResult.passed(resource(name), f"tag {key!r}", f"tag {key}={known[key]} (via the tagging API)")
        tags = read_tags(name)  # a suspect: confirm with the authoritative per-resource read
        sources.append("read")
        return tag_result(resource(name), tags, key, None, f"add the tag {key!r} in its infrastructure code")

    return judge


# --- S3 ----------------------------------------------------------------------------------------------

LIST_BUCKETS = "aws s3api list-buckets --query 'Buckets[].Name'"


@check(
    'every S3 bucket matching "{pattern}" blocks all public access',
    permissions=(
        "s3:ListAllMyBuckets",
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
        judge = lambda name: CheckResult.passed(f"s3://{name}", "all four on", "account-level block")  # noqa: E731
    return fleet(
        ctx, _bucket_kind(pattern), pattern, lambda: bucket_names(ctx), judge, "a full public-access block",
        note=lambda: note,
    )


@check(
    'every S3 bucket matching "{pattern}" has versioning enabled',
    permissions=("s3:ListAllMyBuckets", "s3:GetBucketVersioning"),
    manual=f"{LIST_BUCKETS}; then for each match: aws s3api get-bucket-versioning --bucket NAME",
    validators=GLOB,
)
def fleet_buckets_versioned(ctx: CheckContext, pattern: str) -> CheckResult:
    """Every bucket whose name matches the glob has versioning Enabled. A bucket that cannot be read
    is listed as unchecked, never as an offender (FAIL if there are offenders, else ERROR)."""
    return fleet(
        ctx, _bucket_kind(pattern), pattern, lambda: bucket_names(ctx),
        lambda name: bucket_versioning_enabled(ctx, name), "versioning enabled",
    )


@check(
    'every S3 bucket matching "{pattern}" is encrypted with "{algorithm}"',
    permissions=("s3:ListAllMyBuckets", "s3:GetEncryptionConfiguration"),
    manual=f"{LIST_BUCKETS}; then for each match: aws s3api get-bucket-encryption --bucket NAME",
    choices={"algorithm": ALGORITHMS},
    validators=GLOB,
)
def fleet_buckets_encrypted(ctx: CheckContext, pattern: str, algorithm: str) -> CheckResult:
    """Every bucket whose name matches the glob has default encryption with the given algorithm. A
    bucket that cannot be read is listed as unchecked, never as an offender."""
    return fleet(
        ctx, _bucket_kind(pattern), pattern, lambda: bucket_names(ctx),
        lambda name: bucket_encrypted_with(ctx, name, algorithm), f"default encryption {algorithm}",
    )


@check(
    'every S3 bucket matching "{pattern}" has tag "{key}"',
    permissions=("s3:ListAllMyBuckets", "tag:GetResources", "s3:GetBucketTagging"),
    manual=f"{LIST_BUCKETS}; aws resourcegroupstaggingapi get-resources --resource-type-filters s3; "
    "for a bucket missing there: aws s3api get-bucket-tagging --bucket NAME",
    validators=GLOB,
)
def fleet_buckets_tagged(ctx: CheckContext, pattern: str, key: str) -> CheckResult:
    """Every bucket whose name matches the glob carries the tag (any value). Tags come from the
    tagging API in pages; a bucket that seems to lack the tag is confirmed with GetBucketTagging
    (all of them, if the tagging API is denied). An unreadable bucket is unchecked, never an offender.
    A PASS may rest on the tagging API, which can lag behind a recent tag change by minutes: the
    observed text says how many tags were read through it."""
    index, sources = tag_index(ctx, "s3"), list[str]()
    judge = _tag_judge(index, key, lambda name: bucket_tags(ctx, name, f"tag {key!r}"), lambda n: f"s3://{n}",
                       sources)
    return fleet(
        ctx, _bucket_kind(pattern), pattern, lambda: bucket_names(ctx), judge, f"tag {key!r}",
        note=lambda: index.note("bucket"), pass_note=lambda: _tag_sources("bucket", sources),
    )


# --- DynamoDB ----------------------------------------------------------------------------------------

LIST_TABLES = "aws dynamodb list-tables"


@check(
    'every DynamoDB table matching "{pattern}" has point-in-time recovery enabled',
    permissions=("dynamodb:ListTables", "dynamodb:DescribeContinuousBackups"),
    manual=f"{LIST_TABLES}; then for each match: aws dynamodb describe-continuous-backups --table-name NAME",
    validators=GLOB,
)
def fleet_tables_pitr(ctx: CheckContext, pattern: str) -> CheckResult:
    """Every table (of the environment's region) whose name matches the glob has PITR ENABLED. A
    table that cannot be read is listed as unchecked, never as an offender."""
    return fleet(
        ctx, _table_kind(ctx, pattern), pattern, lambda: table_names(ctx),
        lambda name: table_pitr_enabled(ctx, name), "point-in-time recovery enabled",
    )


@check(
    'every DynamoDB table matching "{pattern}" has tag "{key}"',
    permissions=(
        "dynamodb:ListTables",
        "tag:GetResources",
        "dynamodb:DescribeTable",
        "dynamodb:ListTagsOfResource",
    ),
    manual=f"{LIST_TABLES}; aws resourcegroupstaggingapi get-resources --resource-type-filters "
    "dynamodb:table; for a table missing there: aws dynamodb list-tags-of-resource --resource-arn ARN",
    validators=GLOB,
)
def fleet_tables_tagged(ctx: CheckContext, pattern: str, key: str) -> CheckResult:
    """Every table (of the environment's region) whose name matches the glob carries the tag (any
    value). Tags come from the tagging API in pages; a suspect is confirmed with ListTagsOfResource.
    A table that cannot be read is listed as unchecked, never as an offender. A PASS may rest on the
    tagging API, which can lag behind a recent tag change by minutes: the observed text says how many
    tags were read through it."""
    region = ctx.aws.settings.region
    index, sources = tag_index(ctx, "dynamodb:table"), list[str]()
    judge = _tag_judge(
        index, key, lambda name: table_tags(ctx, name, f"tag {key!r}")[1],
        lambda n: f"dynamodb table {n} ({region})", sources,
    )
    return fleet(
        ctx, _table_kind(ctx, pattern), pattern, lambda: table_names(ctx), judge, f"tag {key!r}",
        note=lambda: index.note("table"), pass_note=lambda: _tag_sources("table", sources),
    )
