"""The one result type every check returns and every report reads."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field, replace
from typing import Any


class Outcome(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"  # the infrastructure is wrong or missing
    ERROR = "error"  # could not check: credentials, AccessDenied, timeout, refused, ...
    MANUAL = "manual"  # a human-only step, never run
    SKIPPED = "skipped"  # not run because an earlier precondition did not hold
    WAIVED = "waived"  # a FAIL covered by an accepted exception


class Severity(enum.StrEnum):
    """A runbook's or scenario's ``@severity:`` tag, most severe first."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @classmethod
    def of_tags(cls, tags: set[str] | list[str]) -> str | None:
        return next((t.split(":", 1)[1] for t in sorted(tags) if t.startswith("severity:")), None)


SEVERITIES = tuple(s.value for s in Severity)


def at_or_above(severity: str, threshold: str) -> bool:
    """Whether a record of ``severity`` counts under ``--fail-on threshold``; unrated counts as critical."""
    rank = SEVERITIES.index(severity) if severity in SEVERITIES else 0
    return rank <= SEVERITIES.index(threshold)


class RunStatus(enum.StrEnum):
    RUNNING = "running"
    FINISHED = "finished"
    INTERRUPTED = "interrupted"  # Ctrl-C / SIGINT / SIGTERM: what was gathered is kept
    ABORTED = "aborted"  # a guard step stopped the run on purpose
    FAILED = "failed"  # the run could not start
    ABANDONED = "abandoned"  # left `running` by a killed process (SIGKILL, power loss); marked by a later run


@dataclass(frozen=True)
class CheckResult:
    """What one check found about one resource.

    ``expected``/``observed`` are short human phrases; ``hint`` says how to fix a FAIL (or what to
    do about an ERROR); ``manual_command`` is what an operator would type to see the same fact.
    """

    outcome: Outcome
    resource: str
    expected: str = ""
    observed: str = ""
    hint: str = ""
    manual_command: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def passed(cls, resource: str, expected: str, observed: str, **kw: Any) -> CheckResult:
        return cls(Outcome.PASS, resource, expected, observed, **kw)

    @classmethod
    def failed(cls, resource: str, expected: str, observed: str, hint: str, **kw: Any) -> CheckResult:
        return cls(Outcome.FAIL, resource, expected, observed, hint, **kw)

    @classmethod
    def judged(cls, holds: bool, resource: str, expected: str, observed: str, hint: str, **kw: Any) -> CheckResult:
        """PASS when ``holds``, else FAIL with ``hint``: how most checks end once they have measured."""
        return cls(Outcome.PASS if holds else Outcome.FAIL, resource, expected, observed, "" if holds else hint, **kw)

    @classmethod
    def errored(cls, resource: str, observed: str, hint: str = "", **kw: Any) -> CheckResult:
        return cls(Outcome.ERROR, resource, kw.pop("expected", ""), observed, hint, **kw)

    def with_manual(self, command: str) -> CheckResult:
        return self if self.manual_command else replace(self, manual_command=command)


@dataclass
class StepRecord:
    """One executed (or deliberately not executed) step of one scenario.

    The field names are a public interface: ``results.json`` writes them as they are.
    """

    runbook: str
    scenario: str
    step: str
    outcome: Outcome
    resource: str = ""
    expected: str = ""
    observed: str = ""
    hint: str = ""
    manual_command: str = ""
    duration_ms: float = 0.0
    severity: str = "info"
    tags: list[str] = field(default_factory=list)
    keyword: str = ""
    line: int = 0
    environment: str = ""
    written: str = ""  # the step text as written, before {variables}: the check's identity across runs
    evidence: dict[str, Any] = field(default_factory=dict)  # structured facts, e.g. a fleet step's offenders
    # Where the step's AWS reads went: the account id (an @all-accounts scenario's account, else the run's own
    # when already read) and region (the scenario's, else the environment's); "" when unknown or no AWS.
    account: str = ""
    region: str = ""

    @property
    def automated(self) -> bool:
        return self.outcome is not Outcome.MANUAL

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["outcome"] = self.outcome.value
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StepRecord:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["outcome"] = Outcome(known["outcome"])
        return cls(**known)


def exit_code(records: list[StepRecord], fail_on: str = "info") -> int:
    """0 pass, 1 a FAIL at or above the threshold, 3 no such FAIL but such an ERROR (could not verify)."""
    outcomes = {r.outcome for r in records if at_or_above(r.severity, fail_on)}
    if Outcome.FAIL in outcomes:
        return 1
    if Outcome.ERROR in outcomes:
        return 3
    return 0


class ScenarioOutcome(enum.StrEnum):
    """A scenario's outcome as test frameworks know it; JUnit, pytest and Cucumber all read this one rule."""

    PASSED = "passed"
    FAILED = "failed"  # at least one FAIL
    ERROR = "error"  # no FAIL, at least one ERROR: could not verify
    SKIPPED = "skipped"  # no automated step ran (only skipped or manual steps)


def scenario_outcome(records: list[StepRecord]) -> ScenarioOutcome:
    outcomes = {r.outcome for r in records}
    if Outcome.FAIL in outcomes:
        return ScenarioOutcome.FAILED
    if Outcome.ERROR in outcomes:
        return ScenarioOutcome.ERROR
    if not outcomes or outcomes <= {Outcome.SKIPPED, Outcome.MANUAL}:
        return ScenarioOutcome.SKIPPED
    return ScenarioOutcome.PASSED


# Cucumber has no "could not check": an ERROR is a failed step whose message starts with "ERROR".
# A manual step is "pending" (a person does it); a waived FAIL is "skipped" (the check was not held).
CUCUMBER_STATUS = {
    Outcome.PASS: "passed",
    Outcome.FAIL: "failed",
    Outcome.ERROR: "failed",
    Outcome.MANUAL: "pending",
    Outcome.SKIPPED: "skipped",
    Outcome.WAIVED: "skipped",
}
