"""IAM: access keys that are too old or unused, the root account (MFA, access keys), a user's MFA device.

What an incident commander asks first about credentials: which long-lived keys exist and whether anyone
uses them, and whether the root account is locked down. IAM is global: the region of the run does not
matter, and every user of the account is read (ListUsers, all pages).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from runbooks.sdk import CheckContext, CheckResult, Finding, aws_resource, check, error_code

TITLE = "IAM and the root account"  # its heading in the step catalogue
CATALOG_ORDER = 12

USER = aws_resource("iam-user")
ROOT = "aws root account"
MAX_LISTED = 10  # offenders named in the observed text; the evidence holds all of them


def _days(value: str) -> None:
    if not 1 <= int(value) <= 3650:
        raise ValueError("is not a number of days between 1 and 3650")


DAYS: dict[str, Callable[[str], None]] = {"days": _days}


@dataclass(frozen=True)
class Key:
    user: str
    key_id: str
    created: datetime

    @property
    def label(self) -> str:
        return f"{self.key_id} of {self.user}"


def active_keys(ctx: CheckContext) -> tuple[list[Key], int]:
    """Every Active access key of every IAM user, and how many Inactive keys were left out."""

    def read() -> tuple[list[Key], int]:
        users = USER.names_in(ctx.aws.paginate("iam", "list_users"))
        keys: list[Key] = []
        inactive = 0
        for user in users:
            try:
                pages = ctx.aws.paginate("iam", "list_access_keys", UserName=user)
            except ClientError as exc:
                if error_code(exc) in USER.not_found_codes:  # deleted since it was listed
                    continue
                raise
            for meta in (m for page in pages for m in page.get("AccessKeyMetadata", [])):
                if meta.get("Status") != "Active":
                    inactive += 1
                    continue
                keys.append(Key(user, str(meta["AccessKeyId"]), _aware(meta["CreateDate"])))
        return keys, inactive

    return ctx.aws.memo(("iam-active-keys",), read)  # type: ignore[no-any-return]


def _aware(value: Any) -> datetime:
    if not isinstance(value, datetime):
        value = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def _age(delta: timedelta) -> str:
    days = int(delta.total_seconds() // 86400)
    return f"{days} day{'s' if days != 1 else ''}"


def _keys_result(expected: str, keys: list[Key], inactive: int, offenders: dict[str, str], hint: str,
                 what: str) -> CheckResult:
    resource = USER.collection + " (all)"
    note = f"; {inactive} inactive key(s) not counted" if inactive else ""
    evidence = {"matched": len(keys), "offenders": offenders, "unchecked": {}}
    if offenders:
        shown = "; ".join(f"{name}: {why}" for name, why in list(offenders.items())[:MAX_LISTED])
        more = f"; and {len(offenders) - MAX_LISTED} more" if len(offenders) > MAX_LISTED else ""
        observed = f"{len(offenders)} of {len(keys)} active key(s) {what}: {shown}{more}{note}"
        return CheckResult.failed(resource, expected, observed, hint, evidence=evidence)
    observed = f"none of {len(keys)} active key(s) {what}{note}" if keys else f"no active access key{note}"
    return CheckResult.passed(resource, expected, observed, evidence=evidence)


@check(
    "no IAM user has an active access key older than {days:d} days",
    permissions=("iam:ListUsers", "iam:ListAccessKeys"),
    manual="aws iam generate-credential-report; aws iam get-credential-report --query Content --output text "
    "| base64 -d | cut -d, -f1,9,10",
    validators=DAYS,
)
def no_old_access_keys(ctx: CheckContext, days: int) -> CheckResult:
    """No Active access key of any IAM user was created more than ``days`` days ago (keys are rotated).
    Inactive keys are not counted (the observed text says how many there are). FAIL lists each old key
    with its user and age; the evidence holds all of them."""
    expected = f"every active access key younger than {days} days"
    keys, inactive = active_keys(ctx)
    now = datetime.now(UTC)
    limit = timedelta(days=days)
    offenders = {k.label: f"created {_age(now - k.created)} ago" for k in sorted(keys, key=lambda k: k.created)
                 if now - k.created > limit}
    hint = ("rotate each key: create a new key, move its user (the pipeline's secret, the service's "
            "configuration) to it, then aws iam update-access-key --user-name USER --access-key-id KEY "
            "--status Inactive; delete the old key once nothing failed for a week. During an incident, "
            "deactivate first and ask questions afterwards.")
    return _keys_result(expected, keys, inactive, offenders, hint, f"older than {days} days")


@check(
    "no IAM user has an active access key unused for {days:d} days",
    permissions=("iam:ListUsers", "iam:ListAccessKeys", "iam:GetAccessKeyLastUsed"),
    manual="aws iam list-access-keys --user-name USER; aws iam get-access-key-last-used --access-key-id KEY",
    validators=DAYS,
)
def no_unused_access_keys(ctx: CheckContext, days: int) -> CheckResult:
    """Every Active access key was used within the last ``days`` days (GetAccessKeyLastUsed). A key never
    used counts from its creation: a new key has ``days`` days to be put to use. An unused key is a
    credential nobody would miss if it leaked: FAIL lists each with when it was last used and by which
    service."""
    expected = f"every active access key used in the last {days} days"
    keys, inactive = active_keys(ctx)
    now = datetime.now(UTC)
    limit = timedelta(days=days)
    offenders: dict[str, str] = {}
    for key in sorted(keys, key=lambda k: k.created):
        used = ctx.aws.read("iam", "get_access_key_last_used", AccessKeyId=key.key_id).get("AccessKeyLastUsed", {})
        last = used.get("LastUsedDate")
        if last is None:
            if now - key.created > limit:
                offenders[key.label] = f"never used, created {_age(now - key.created)} ago"
            continue
        last = _aware(last)
        if now - last > limit:
            where = ", ".join(v for v in (used.get("ServiceName"), used.get("Region")) if v and v != "N/A")
            offenders[key.label] = f"last used {_age(now - last)} ago{f' ({where})' if where else ''}"
    hint = ("find out who owns each key (its user, the CloudTrail events of the key); if nobody needs it: "
            "aws iam update-access-key --user-name USER --access-key-id KEY --status Inactive, and delete it "
            "after a week without complaints")
    return _keys_result(expected, keys, inactive, offenders, hint, f"unused for {days} days")


def account_summary(ctx: CheckContext) -> dict[str, int]:
    return dict(ctx.aws.read("iam", "get_account_summary").get("SummaryMap", {}))


def _summary_check(ctx: CheckContext, field: str, want: int, expected: str, good: str, bad: str, hint: str
                   ) -> CheckResult:
    value = account_summary(ctx).get(field)
    if value is None:
        return CheckResult.errored(ROOT, f"GetAccountSummary has no {field}", "run the manual command and read "
                                   "the root account's settings in the IAM console", expected=expected)
    if int(value) == want:
        return CheckResult.passed(ROOT, expected, f"{good} ({field} {value})")
    return CheckResult.failed(ROOT, expected, f"{bad} ({field} {value})", hint)


@check(
    "the AWS root account has MFA enabled",
    permissions=("iam:GetAccountSummary",),
    manual="aws iam get-account-summary --query SummaryMap.AccountMFAEnabled",
)
def root_mfa_enabled(ctx: CheckContext) -> CheckResult:
    """The account's root user has an MFA device (GetAccountSummary: AccountMFAEnabled is 1)."""
    return _summary_check(
        ctx, "AccountMFAEnabled", 1, "root user MFA enabled", "MFA enabled", "no MFA on the root user",
        "sign in as root (break-glass procedure, two people) and assign an MFA device in the IAM console "
        "(Security credentials); then check CloudTrail for ConsoleLogin events of the root user")


@check(
    "the AWS root account has no access keys",
    permissions=("iam:GetAccountSummary",),
    manual="aws iam get-account-summary --query SummaryMap.AccountAccessKeysPresent",
)
def root_has_no_access_keys(ctx: CheckContext) -> CheckResult:
    """The account's root user has no access keys (GetAccountSummary: AccountAccessKeysPresent is 0).
    Root keys cannot be limited by any policy."""
    return _summary_check(
        ctx, "AccountAccessKeysPresent", 0, "no root access keys", "no root access keys",
        "the root user has access keys",
        "treat it as a security incident: find their use in CloudTrail (userIdentity.type Root), then "
        "deactivate and delete them as root (IAM console, Security credentials); nothing should need them")


def _user_pages(ctx: CheckContext, user: str, expected: str, operation: str) -> list[dict[str, Any]]:
    """All pages of a per-user IAM listing; a missing user is a FAIL that says so."""
    try:
        return ctx.aws.paginate("iam", operation, UserName=user)
    except ClientError as exc:
        if error_code(exc) in USER.not_found_codes:
            raise Finding(CheckResult.failed(
                USER.label(user), expected, f"the {USER.noun} does not exist",
                "create the user (the access stack) or correct the user name for this environment")) from None
        raise


@check(
    'the IAM user "{user}" has an MFA device',
    permissions=("iam:ListMFADevices",),
    manual="aws iam list-mfa-devices --user-name {user}",
)
def user_has_mfa(ctx: CheckContext, user: str) -> CheckResult:
    """The IAM user exists and has at least one MFA device (virtual, hardware or FIDO security key)."""
    expected = "at least one MFA device"
    pages = _user_pages(ctx, user, expected, "list_mfa_devices")
    devices = [d for page in pages for d in page.get("MFADevices", [])]
    if devices:
        shown = ", ".join(_device(d) for d in devices[:3])
        return CheckResult.passed(USER.label(user), expected, f"{len(devices)} MFA device(s): {shown}")
    return CheckResult.failed(
        USER.label(user), expected, "no MFA device",
        f"the user assigns one in the IAM console (Security credentials), or: aws iam "
        f"create-virtual-mfa-device and aws iam enable-mfa-device --user-name {user}; until then the "
        "policies that require aws:MultiFactorAuthPresent deny it")


def _device(device: dict[str, Any]) -> str:
    serial = str(device.get("SerialNumber", "?"))
    enabled = device.get("EnableDate")
    return f"{serial} (enabled {_aware(enabled).date().isoformat()})" if enabled else serial
