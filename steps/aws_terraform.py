"""Terraform state locks held in the DynamoDB lock table of the S3 backend.

Terraform's S3 backend writes one item per held lock: ``LockID`` is the state path (``bucket/key``)
and ``Info`` a JSON document with ``ID``, ``Operation``, ``Who``, ``Version``, ``Created`` (RFC 3339,
nanoseconds) and ``Path``. The same table holds ``<path>-md5`` digest items (``Digest``, no ``Info``);
those are not locks. A lock outlives a crashed or cancelled run, and then blocks every later apply.

Only DynamoDB locking is covered: the S3-native locking of Terraform 1.10+ (``use_lockfile = true``,
a ``<key>.tflock`` object next to the state) is not read by these steps.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from runbooks.sdk import CheckContext, CheckResult, Finding, check, error_code

from .aws_dynamodb import MISSING, table_resource

TITLE = "Terraform state"  # its heading in the step catalogue
CATALOG_ORDER = 70

# Go's time.RFC3339Nano: up to nine fraction digits, "Z" or a numeric offset.
_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


@dataclass(frozen=True)
class Lock:
    lock_id: str
    info_id: str
    who: str
    operation: str
    created: datetime

    def describe(self, now: datetime) -> str:
        return (f"{self.lock_id} held by {self.who or 'unknown'} since {self.created.isoformat(timespec='seconds')}"
                f" ({age(now - self.created)}, {self.operation or 'unknown operation'}, lock ID {self.info_id or '?'})")


def age(delta: timedelta) -> str:
    minutes = max(int(delta.total_seconds() // 60), 0)
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


def parse_created(text: str) -> datetime:
    """Terraform's ``Created`` (Go RFC 3339 with nanoseconds) as an aware datetime; ValueError otherwise."""
    match = _RFC3339.match(text.strip())
    if match is None:
        raise ValueError(f"Created {text!r} is not an RFC 3339 time")
    base, fraction, zone = match.groups()
    micro = (fraction or "0")[:6].ljust(6, "0")  # Python keeps microseconds; nanoseconds do not matter here
    return datetime.fromisoformat(f"{base}.{micro}{'+00:00' if zone == 'Z' else zone}").astimezone(UTC)


def parse_lock(lock_id: str, info: str) -> Lock:
    """One lock item's ``Info`` document; ValueError naming what is wrong with it."""
    try:
        document = json.loads(info)
    except json.JSONDecodeError as exc:
        raise ValueError(f"Info is not JSON ({exc.msg})") from None
    if not isinstance(document, dict) or "Created" not in document:
        raise ValueError("Info has no Created time")
    return Lock(lock_id, str(document.get("ID", "")), str(document.get("Who", "")),
                str(document.get("Operation", "")), parse_created(str(document["Created"])))


def unlock_hint(stale: list[Lock]) -> str:
    """First make sure the run is dead, then one force-unlock per lock: it takes exactly one ID and acts on
    the state of the working directory it runs in."""
    lines = [
        "first make sure each run is really dead: ask the person named and check the CI job or machine it "
        "ran on (and since when); only then, for each lock, in a working directory whose backend is that "
        "state (bucket/key), run:"
    ]
    lines += [
        f"  {lock.lock_id} (held by {lock.who or 'unknown'} since {lock.created.isoformat(timespec='minutes')}): "
        f"terraform force-unlock {lock.info_id or '<ID from its Info>'}"
        for lock in stale
    ]
    return "\n".join(lines)


def _text(item: dict[str, Any], name: str) -> str | None:
    value = item.get(name)
    return value.get("S") if isinstance(value, dict) else None


@check(
    'the Terraform lock table "{table}" holds no lock older than {minutes:d} minutes',
    permissions=("dynamodb:Scan",),
    manual="aws dynamodb scan --table-name {table} --consistent-read",
)
def no_stale_terraform_lock(ctx: CheckContext, table: str, minutes: int) -> CheckResult:
    """No Terraform state lock in the S3 backend's DynamoDB lock table is older than this (a consistent
    Scan; the table is small). Younger locks pass and are named: a plan or apply is running. FAIL lists
    every stale lock with who took it, when and its lock ID, and its hint gives one
    ``terraform force-unlock <ID>`` per lock (the command takes one ID and must run in a working
    directory whose backend is that state); a missing table is a FAIL; a lock whose ``Info`` cannot be
    read, so whose age is unknown, is an ERROR unless a stale lock was found anyway. S3-native locking
    (``use_lockfile``, ``<key>.tflock`` objects in the state bucket) is not covered by this step."""
    resource = table_resource(ctx, table)
    expected = f"no lock older than {minutes} min"
    try:
        pages = ctx.aws.paginate("dynamodb", "scan", TableName=table, ConsistentRead=True)
    except ClientError as exc:
        if error_code(exc) in MISSING:
            raise Finding(CheckResult.failed(
                resource, expected, "the lock table does not exist",
                "create the lock table (the Terraform bootstrap stack) or correct the table name in the backend "
                "configuration of this environment")) from None
        raise
    now = datetime.now(UTC)
    locks: list[Lock] = []
    unreadable: list[str] = []
    for item in (i for page in pages for i in page.get("Items", [])):
        lock_id, info = _text(item, "LockID") or "?", _text(item, "Info")
        if info is None:  # digest items (<path>-md5) carry Digest, not Info
            continue
        try:
            locks.append(parse_lock(lock_id, info))
        except ValueError as exc:
            unreadable.append(f"{lock_id}: {exc}")
    limit = timedelta(minutes=minutes)
    stale = sorted((lock for lock in locks if now - lock.created > limit), key=lambda lock: lock.created)
    if stale:
        observed = f"{len(stale)} stale lock(s): " + "; ".join(lock.describe(now) for lock in stale)
        if unreadable:
            observed += f"; also unreadable: {'; '.join(unreadable)}"
        return CheckResult.failed(resource, expected, observed, unlock_hint(stale),
                                  evidence={"stale": [lock.lock_id for lock in stale]})
    if unreadable:
        return CheckResult.errored(
            resource, "cannot tell the age of lock(s): " + "; ".join(unreadable),
            "inspect the items by hand (manual command); a lock Terraform did not write needs its owner found",
            expected=expected)
    if not locks:
        return CheckResult.passed(resource, expected, "no lock held")
    held = "; ".join(lock.describe(now) for lock in sorted(locks, key=lambda lock: lock.created))
    return CheckResult.passed(resource, expected, f"{len(locks)} recent lock(s), a run is in progress: {held}")
