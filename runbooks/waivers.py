"""Accepted exceptions: a waived FAIL is reported as WAIVED with its justification and does not fail the run.

``waivers.toml``::

    [[waiver]]
    runbook = "features/deployment/post_deploy_validation.feature"
    scenario = "Tables can be recovered to a point in time"
    step = 'the DynamoDB table "acme-tenants-sandbox" has point-in-time recovery enabled'   # optional
    resource = "dynamodb table acme-tenants-sandbox (eu-west-1)"                            # optional
    environment = "staging"                                                                 # optional
    reason = "PITR is being migrated to AWS Backup continuous backups (CHG-1234)"
    accepted_by = "jane.doe@acme.example"
    expires = 2026-12-31   # the last day it applies

Only FAILs are waived: an ERROR means nothing was verified, so there is nothing to accept.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .config import ConfigError
from .errors import read_text
from .result import Outcome, StepRecord

REQUIRED = ("runbook", "scenario", "reason", "accepted_by", "expires")
OPTIONAL = ("step", "resource", "environment")
EXPIRED_MARK = "waiver expired"


@dataclass
class Waiver:
    runbook: str
    scenario: str
    reason: str
    accepted_by: str
    expires: dt.date
    line: int
    step: str | None = None
    resource: str | None = None
    environment: str | None = None
    used: bool = False

    def matches(self, record: StepRecord) -> bool:
        return (
            record.runbook == self.runbook
            and record.scenario == self.scenario
            and (self.step is None or record.step == self.step)
            and (self.resource is None or record.resource == self.resource)
            and (self.environment is None or record.environment == self.environment)
        )

    def describe(self) -> str:
        what = self.step or f"scenario {self.scenario!r}"
        return f"{self.runbook}: {what}"


class Waivers:
    def __init__(self, waivers: list[Waiver], path: Path | None = None, today: dt.date | None = None) -> None:
        self.items = waivers
        self.path = path
        self.today = today or dt.date.today()

    def apply(self, record: StepRecord) -> StepRecord:
        if record.outcome is not Outcome.FAIL:
            return record
        # A waiver still in force wins over an expired one for the same check (a renewal).
        for waiver in sorted(self.items, key=lambda w: w.expires < self.today):
            if not waiver.matches(record):
                continue
            waiver.used = True
            if waiver.expires < self.today:
                note = (f"{EXPIRED_MARK} on {waiver.expires.isoformat()} (was accepted by {waiver.accepted_by}: "
                        f"{waiver.reason}; {self.path}:{waiver.line})")
                return replace(record, hint=f"{record.hint} [{note}]" if record.hint else f"[{note}]")
            return replace(
                record,
                outcome=Outcome.WAIVED,
                hint=f"waived until {waiver.expires.isoformat()} by {waiver.accepted_by}: {waiver.reason}",
            )
        return record

    def warnings(self) -> list[str]:
        out = []
        for waiver in self.items:
            if waiver.expires >= self.today and not waiver.used:
                out.append(f"{self.path}:{waiver.line}: warning: waiver matches no failing check ({waiver.describe()})")
            elif waiver.expires < self.today:
                out.append(f"{self.path}:{waiver.line}: warning: waiver expired on {waiver.expires.isoformat()} "
                           f"and no longer applies ({waiver.describe()})")
        return out


def load_waivers(path: Path, today: dt.date | None = None) -> Waivers:
    text = read_text(path, "waivers file")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        raise ConfigError(f"invalid TOML: {exc}", path, int(match.group(1)) if match else None) from None
    headers = [n for n, line in enumerate(text.splitlines(), start=1) if line.strip().startswith("[[waiver]]")]
    unknown = set(data) - {"waiver"}
    if unknown:
        key = sorted(unknown)[0]
        raise ConfigError(f"unknown top-level key {key!r}; waivers are [[waiver]] tables", path, _key_line(text, key))
    entries = data.get("waiver", [])
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise ConfigError("waivers must be [[waiver]] tables", path, _key_line(text, "waiver"))
    return Waivers([_parse(entry, path, headers[i] if i < len(headers) else None)
                    for i, entry in enumerate(entries)], path, today)


def _key_line(text: str, key: str) -> int:
    """The line where a top-level key is set (1 when it cannot be told)."""
    pattern = re.compile(rf"^\s*(\[\s*)?[\"']?{re.escape(key)}[\"']?\s*[=.\]]")
    return next((n for n, line in enumerate(text.splitlines(), start=1) if pattern.match(line)), 1)


def _parse(entry: dict[str, Any], path: Path, line: int | None) -> Waiver:
    def fail(message: str) -> ConfigError:
        return ConfigError(f"waiver: {message}", path, line)

    missing = [k for k in REQUIRED if k not in entry]
    if missing:
        raise fail(f"missing {', '.join(missing)} (every waiver needs {', '.join(REQUIRED)})")
    extra = set(entry) - set(REQUIRED) - set(OPTIONAL)
    if extra:
        raise fail(f"unknown key {sorted(extra)[0]!r}")
    expires = entry["expires"]
    if isinstance(expires, str):
        try:
            expires = dt.date.fromisoformat(expires)
        except ValueError:
            raise fail(f"expires {expires!r} is not a date (YYYY-MM-DD)") from None
    if isinstance(expires, dt.datetime):
        expires = expires.date()
    if not isinstance(expires, dt.date):
        raise fail("expires must be a date (YYYY-MM-DD)")
    for key in (*REQUIRED[:-1], *OPTIONAL):
        if key in entry and (not isinstance(entry[key], str) or not entry[key].strip()):
            raise fail(f"{key} must be a non-empty string")
    return Waiver(
        runbook=entry["runbook"],
        scenario=entry["scenario"],
        reason=entry["reason"],
        accepted_by=entry["accepted_by"],
        expires=expires,
        line=line or 1,
        step=entry.get("step"),
        resource=entry.get("resource"),
        environment=entry.get("environment"),
    )
