"""What changed between two runs of the same environment: the nightly check's summary."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from .result import Outcome, StepRecord
from .waivers import EXPIRED_MARK

CheckKey = tuple[str, str, str, str, str, int]  # runbook, scenario, step as written, account, region, occurrence


def keyed(records: list[StepRecord]) -> dict[CheckKey, StepRecord]:
    """Automated checks by identity. The identity is the step as written, so a variable whose value
    changes between runs (the sandbox's port) is the same check, in its account and region (when the record
    names them), so the same check in two accounts is two checks; a step repeated in a scenario is told
    apart by its occurrence."""
    seen: Counter[tuple[str, str, str, str, str]] = Counter()
    out: dict[CheckKey, StepRecord] = {}
    for r in records:
        if r.outcome is Outcome.MANUAL:
            continue
        base = (r.runbook, r.scenario, r.written or r.step, r.account, r.region)
        out[(*base, seen[base])] = r
        seen[base] += 1
    return out


def _earlier(key: CheckKey, before: dict[CheckKey, StepRecord]) -> CheckKey | None:
    """The key of the same check in the previous run: the same key, else (a run recorded before records
    named their account and region) the key without them."""
    if key in before:
        return key
    runbook, scenario, step, _, _, occurrence = key
    legacy = (runbook, scenario, step, "", "", occurrence)
    return legacy if legacy in before else None


@dataclass
class Drift:
    new_failures: list[StepRecord] = field(default_factory=list)
    fixed: list[StepRecord] = field(default_factory=list)
    still_failing: list[StepRecord] = field(default_factory=list)
    new_errors: list[StepRecord] = field(default_factory=list)
    added: list[StepRecord] = field(default_factory=list)
    removed: list[StepRecord] = field(default_factory=list)
    waivers_expired: list[StepRecord] = field(default_factory=list)
    no_longer_verified: list[StepRecord] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """Anything a person should hear about (still-failing alone is not news)."""
        return any((self.new_failures, self.fixed, self.new_errors, self.added, self.removed, self.waivers_expired,
                    self.no_longer_verified))

    def sections(self) -> list[tuple[str, list[StepRecord]]]:
        return [
            ("new failures", self.new_failures),
            ("new errors (could not verify)", self.new_errors),
            ("waivers expired", self.waivers_expired),
            ("no longer verified (skipped now)", self.no_longer_verified),
            ("fixed", self.fixed),
            ("still failing", self.still_failing),
            ("checks added", self.added),
            ("checks removed", self.removed),
        ]


def compare(previous: list[StepRecord], current: list[StepRecord]) -> Drift:
    before, after = keyed(previous), keyed(current)
    drift = Drift()
    matched: set[CheckKey] = set()
    for key, now in after.items():
        earlier = _earlier(key, before)
        was = before.get(earlier) if earlier is not None else None
        if earlier is not None:
            matched.add(earlier)
        if was is None:
            drift.added.append(now)
        if now.outcome is Outcome.SKIPPED:
            if was is not None and was.outcome is not Outcome.SKIPPED:
                drift.no_longer_verified.append(now)
            continue
        if now.outcome is Outcome.FAIL:
            if EXPIRED_MARK in now.hint and (was is None or was.outcome is Outcome.WAIVED):
                drift.waivers_expired.append(now)
            elif was is not None and was.outcome is Outcome.FAIL:
                drift.still_failing.append(now)
            else:
                drift.new_failures.append(now)
        elif now.outcome is Outcome.ERROR:
            if was is None or was.outcome is not Outcome.ERROR:
                drift.new_errors.append(now)
        elif now.outcome is Outcome.PASS and was is not None and was.outcome in (Outcome.FAIL, Outcome.ERROR):
            drift.fixed.append(now)
    drift.removed = [was for key, was in before.items() if key not in matched]
    return drift


def summary_text(drift: Drift, title: str) -> str:
    lines = [title]
    if not drift.changed:
        lines.append("  no change: every check has the same outcome as before")
    for name, items in drift.sections():
        if not items:
            continue
        lines.append(f"  {name}: {len(items)}")
        for r in items[:20]:
            detail = f" - observed {r.observed}" if r.observed and r.outcome in (Outcome.FAIL, Outcome.ERROR) else ""
            lines.append(f"    {r.runbook} / {r.scenario} / {r.step}{detail}")
        if len(items) > 20:
            lines.append(f"    ... and {len(items) - 20} more")
    return "\n".join(lines)
