"""AWS Backup: plans, what they select, and the recovery points a vault holds.

moto (5.2) answers ListBackupPlans but not ListBackupSelections, GetBackupSelection or
ListRecoveryPointsByBackupVault: against it those checks report ERROR ("the moto target does not
implement ..."), never PASS.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any

from botocore.exceptions import ClientError

from runbooks.sdk import CheckContext, CheckResult, FaultKind, Finding, check, error_code

from .aws_dynamodb import MISSING, describe, table_tags

TITLE = "AWS Backup"  # its heading in the step catalogue
CATALOG_ORDER = 40

TAG_KEY_PREFIX = "aws:ResourceTag/"


def _plan_resource(plan: str) -> str:
    return f"backup plan {plan}"


@contextlib.contextmanager
def reported_as(ctx: CheckContext, resource: str, expected: str) -> Iterator[None]:
    """Name the plan/vault and the resource in an ERROR (not just one of the step's arguments)."""
    try:
        yield
    except Finding:
        raise
    except Exception as exc:
        fault = ctx.classify(exc)
        if fault.kind is FaultKind.DEFECT:
            raise
        raise Finding(CheckResult.errored(resource, fault.reason, fault.hint, expected=expected)) from exc


def find_plan(ctx: CheckContext, plan: str, expected: str) -> dict[str, Any]:
    """The plan's ListBackupPlans entry; FAIL naming the plans that do exist when it is missing."""
    pages = ctx.aws.paginate("backup", "list_backup_plans")
    plans = [p for page in pages for p in page.get("BackupPlansList", [])]
    for entry in plans:
        if entry.get("BackupPlanName") == plan:
            return entry  # type: ignore[no-any-return]
    names = ", ".join(sorted(str(p.get("BackupPlanName")) for p in plans)) or "none"
    raise Finding(
        CheckResult.failed(
            _plan_resource(plan),
            expected,
            f"no backup plan named {plan!r} (plans: {names})",
            "create the plan (apply the backup stack) or correct its name for this environment",
        )
    )


@check(
    'the backup plan "{plan}" exists',
    permissions=("backup:ListBackupPlans",),
    manual="aws backup list-backup-plans --query \"BackupPlansList[?BackupPlanName=='{plan}']\"",
)
def backup_plan_exists(ctx: CheckContext, plan: str) -> CheckResult:
    """A backup plan with this name exists in the region (deleted plans do not count)."""
    entry = find_plan(ctx, plan, "the plan exists")
    last = entry.get("LastExecutionDate")
    ran = f", last ran {last.isoformat(timespec='minutes')}" if isinstance(last, datetime) else ", never ran"
    observed = f"plan id {entry.get('BackupPlanId')}{ran}"
    return CheckResult.passed(_plan_resource(plan), "the plan exists", observed)


@check(
    'the backup plan "{plan}" protects the DynamoDB table "{table}"',
    permissions=(
        "backup:ListBackupPlans",
        "backup:ListBackupSelections",
        "backup:GetBackupSelection",
        "dynamodb:DescribeTable",
        "dynamodb:ListTagsOfResource",
    ),
    manual="aws backup list-backup-selections --backup-plan-id PLAN_ID; "
    "aws backup get-backup-selection --backup-plan-id PLAN_ID --selection-id SELECTION_ID",
)
def backup_plan_protects_table(ctx: CheckContext, plan: str, table: str) -> CheckResult:
    """One of the plan's resource selections selects the table: its Resources hold the table's ARN
    or a wildcard matching it (e.g. ``arn:aws:dynamodb:*:*:table/*``), or one of its ListOfTags
    matches the table's tags; every one of its Conditions holds; and no NotResources entry excludes
    it. A selection with neither Resources nor ListOfTags selects every resource (AWS's rule)."""
    expected = f"a selection of plan {plan} selects table {table}"
    resource = f"{_plan_resource(plan)} -> dynamodb table {table}"
    with reported_as(ctx, resource, expected):
        return _protects(ctx, plan, table, resource, expected)


def _protects(ctx: CheckContext, plan: str, table: str, resource: str, expected: str) -> CheckResult:
    entry = find_plan(ctx, plan, expected)
    arn = str(describe(ctx, table, expected)["TableArn"])
    plan_id = entry["BackupPlanId"]
    pages = ctx.aws.paginate("backup", "list_backup_selections", BackupPlanId=plan_id)
    listed = [s for page in pages for s in page.get("BackupSelectionsList", [])]
    fix = f"add {arn} (or a matching wildcard) to a selection of the plan in the backup stack"
    if not listed:
        return CheckResult.failed(resource, expected, "the plan has no resource selections", fix)
    tags = _lazy(lambda: table_tags(ctx, table, expected)[1])
    reasons = []
    for item in listed:
        selection = ctx.aws.read(
            "backup", "get_backup_selection", BackupPlanId=plan_id, SelectionId=item["SelectionId"]
        )["BackupSelection"]
        selected, why = selects(selection, arn, tags)
        name = selection.get("SelectionName", item.get("SelectionName", item["SelectionId"]))
        if selected:
            return CheckResult.passed(resource, expected, f"selection {name!r} selects it ({why})")
        reasons.append(f"{name!r}: {why}")
    return CheckResult.failed(
        resource, expected, f"no selection selects {arn} ({'; '.join(reasons)})", fix
    )


def _lazy(compute: Callable[[], dict[str, str]]) -> Callable[[], dict[str, str]]:
    """Read the table's tags only if a selection selects by tags."""
    cache: list[dict[str, str]] = []

    def get() -> dict[str, str]:
        if not cache:
            cache.append(compute())
        return cache[0]

    return get


def selects(selection: dict[str, Any], arn: str, tags: Callable[[], dict[str, str]]) -> tuple[bool, str]:
    """Whether a BackupSelection selects the resource ``arn``, and why (or why not)."""
    resources = selection.get("Resources") or []
    by_tags = selection.get("ListOfTags") or []
    if resources or by_tags:
        matched = next((r for r in resources if fnmatchcase(arn, r)), None)
        if matched is not None:
            why = "by ARN" if matched == arn else f"by {matched!r}"
        else:
            tag = next((t for t in by_tags if _tag_equals(tags(), t)), None)
            if tag is None:
                listed = ", ".join(resources) or "none"
                return False, f"Resources {listed}; ListOfTags {_show_tags(by_tags)}"
            why = f"by tag {_key(tag['ConditionKey'])}={tag['ConditionValue']}"
    else:
        why = "it selects every resource"
    conditions = selection.get("Conditions") or {}
    for operator, entries in conditions.items():
        for condition in entries or []:
            if not _condition_holds(operator, condition, tags()):
                key, value = _key(condition["ConditionKey"]), condition["ConditionValue"]
                return False, f"condition {operator} {key}={value} does not hold"
    excluded = next((r for r in selection.get("NotResources") or [] if fnmatchcase(arn, r)), None)
    if excluded is not None:
        return False, f"excluded by NotResources {excluded!r}"
    return True, why


def _key(key: str) -> str:
    return key[len(TAG_KEY_PREFIX):] if key.startswith(TAG_KEY_PREFIX) else key


def _tag_equals(tags: dict[str, str], condition: dict[str, Any]) -> bool:
    return tags.get(_key(condition["ConditionKey"])) == condition["ConditionValue"]


def _show_tags(conditions: list[dict[str, Any]]) -> str:
    return ", ".join(f"{_key(c['ConditionKey'])}={c['ConditionValue']}" for c in conditions) or "none"


def _condition_holds(operator: str, condition: dict[str, Any], tags: dict[str, str]) -> bool:
    value = tags.get(_key(condition["ConditionKey"]))
    pattern = str(condition["ConditionValue"])
    if operator == "StringEquals":
        return value == pattern
    if operator == "StringNotEquals":
        return value != pattern
    if operator == "StringLike":
        return value is not None and fnmatchcase(value, pattern)
    if operator == "StringNotLike":
        return value is None or not fnmatchcase(value, pattern)
    raise ValueError(f"unknown backup selection condition operator {operator!r}")


USABLE_STATES = ("COMPLETED", "AVAILABLE")  # AWS reports either for a recovery point that can be restored


def table_arn(ctx: CheckContext, table: str) -> tuple[str, bool]:
    """The table's ARN and whether the table still exists. A deleted table - exactly when its recovery
    points matter - gets the ARN it had: built from the caller's partition and account and the region."""
    try:
        return str(ctx.aws.read("dynamodb", "describe_table", TableName=table)["Table"]["TableArn"]), True
    except ClientError as exc:
        if error_code(exc) not in MISSING:
            raise
    identity = ctx.aws.read("sts", "get_caller_identity")
    parts = str(identity.get("Arn", "")).split(":")  # arn:<partition>:sts::<account>:...
    partition = parts[1] if len(parts) > 1 and parts[1] else "aws"
    return f"arn:{partition}:dynamodb:{ctx.aws.settings.region}:{ctx.aws.account_id()}:table/{table}", False


@check(
    'the backup vault "{vault}" holds a recovery point of "{resource}" newer than {hours:d} hours',
    permissions=("backup:ListRecoveryPointsByBackupVault", "dynamodb:DescribeTable", "sts:GetCallerIdentity"),
    manual="aws backup list-recovery-points-by-backup-vault --backup-vault-name {vault} "
    "--by-resource-arn RESOURCE_ARN",
)
def vault_has_recent_recovery_point(ctx: CheckContext, vault: str, resource: str, hours: int) -> CheckResult:
    """The vault holds a usable recovery point (status COMPLETED or AVAILABLE) of the resource created
    less than ``hours`` ago. ``resource`` is an ARN, or else the name of a DynamoDB table in the
    environment's region; a table that no longer exists (deleted, to be restored) is looked up by the
    ARN it had, built from the account, partition and region, and the observed text says it is gone."""
    expected = f"a COMPLETED or AVAILABLE recovery point newer than {hours} h"
    arn, exists = (resource, True) if resource.startswith("arn:") else table_arn(ctx, resource)
    gone = "" if exists else f"; table {resource} no longer exists"
    where = f"backup vault {vault} -> {arn}"
    try:
        with reported_as(ctx, where, expected):
            pages = ctx.aws.paginate(
                "backup", "list_recovery_points_by_backup_vault", BackupVaultName=vault, ByResourceArn=arn
            )
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":  # the vault
            raise Finding(
                CheckResult.failed(
                    where, expected, "the vault does not exist", "create the vault or correct its name"
                )
            ) from None
        raise
    points = [p for page in pages for p in page.get("RecoveryPoints", []) if p.get("ResourceArn", arn) == arn]
    usable = [
        p for p in points if p.get("Status") in USABLE_STATES and isinstance(p.get("CreationDate"), datetime)
    ]
    fix = "check the plan's last backup jobs (aws backup list-backup-jobs --by-resource-arn ...) for failures"
    if not usable:
        others = sorted({str(p.get("Status")) for p in points})
        detail = f" ({len(points)} in other states: {', '.join(others)})" if points else ""
        return CheckResult.failed(where, expected, f"no COMPLETED or AVAILABLE recovery point{detail}{gone}", fix)
    newest = max(usable, key=lambda p: p["CreationDate"])
    created = newest["CreationDate"]
    age_h = (datetime.now(UTC) - created).total_seconds() / 3600
    when = created.astimezone(UTC).isoformat(timespec="minutes")
    observed = f"newest usable recovery point {when} ({newest['Status']}, {age_h:.1f} h ago){gone}"
    if created >= datetime.now(UTC) - timedelta(hours=hours):
        return CheckResult.passed(where, expected, observed)
    return CheckResult.failed(where, expected, observed, fix)
