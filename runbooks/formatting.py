"""How a step record reads to a person. Console, JUnit and pytest failure messages all use this."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from .registry import MANUAL_PREFIX
from .result import SEVERITIES, Outcome, StepRecord

MARKS = {
    Outcome.PASS: "PASS",
    Outcome.FAIL: "FAIL",
    Outcome.ERROR: "ERROR",
    Outcome.MANUAL: "MANUAL",
    Outcome.SKIPPED: "SKIP",
    Outcome.WAIVED: "WAIVED",
}
COLOURS = {
    Outcome.PASS: "\x1b[32m",
    Outcome.FAIL: "\x1b[31;1m",
    Outcome.ERROR: "\x1b[33;1m",
    Outcome.MANUAL: "\x1b[36m",
    Outcome.SKIPPED: "\x1b[2m",
    Outcome.WAIVED: "\x1b[35m",
}
RESET = "\x1b[0m"
MARK_WIDTH = max(len(m) for m in MARKS.values())


def step_line(record: StepRecord, colour: bool = False) -> str:
    mark = MARKS[record.outcome].ljust(MARK_WIDTH)
    if colour:
        mark = f"{COLOURS[record.outcome]}{mark}{RESET}"
    timing = f"  ({record.duration_ms:.0f} ms)" if record.outcome in (Outcome.PASS, Outcome.FAIL) else ""
    return f"{mark}  {record.keyword} {record.step}{timing}"


def step_details(record: StepRecord) -> list[str]:
    """What a person needs under a step that did not pass: where, expected, observed, what to do."""
    if record.outcome is Outcome.FAIL:
        rows = [
            ("resource", record.resource),
            ("expected", record.expected),
            ("observed", record.observed),
            ("fix", record.hint),
            ("by hand", record.manual_command),
        ]
    elif record.outcome is Outcome.ERROR:
        rows = [
            ("resource", record.resource),
            ("could not check", record.observed),
            ("what to do", record.hint),
            ("by hand", record.manual_command),
        ]
    elif record.outcome is Outcome.WAIVED:
        rows = [("resource", record.resource), ("observed", record.observed), ("waiver", record.hint)]
    else:
        return []
    width = max(len(label) for label, _ in rows)
    lines = []
    for label, value in rows:
        if value:  # continuation lines of a multi-line hint stay under the value
            first, *rest = value.splitlines()
            lines.append(f"{label.rjust(width)}: {first}")
            lines.extend(" " * (width + 2) + more for more in rest)
    return lines


def failure_message(records: Iterable[StepRecord]) -> str:
    """The text of a failed scenario (pytest's failure message and JUnit's <failure>)."""
    blocks = []
    for record in records:
        if record.outcome in (Outcome.FAIL, Outcome.ERROR):
            blocks.append(f"{MARKS[record.outcome]} line {record.line}: {record.keyword} {record.step}")
            blocks.extend("    " + line for line in step_details(record))
    return "\n".join(blocks)


def counts(records: Iterable[StepRecord]) -> Counter[str]:
    return Counter(record.outcome.value for record in records)


def summary_line(records: list[StepRecord]) -> str:
    c = counts(records)
    done, total = coverage(records)
    skipped = sum(1 for r in records if r.outcome is Outcome.SKIPPED and is_automated(r))
    parts = [f"{done} automated steps: {c['pass']} passed, {c['fail']} failed, {c['error']} errors"]
    if skipped:
        parts.append(f"{skipped} skipped")
    if c["waived"]:
        parts.append(f"{c['waived']} waived")
    if total - done:  # a `manual:` step skipped with its scenario is still a manual step
        parts.append(f"{total - done} manual")
    return ", ".join(parts)


def is_automated(record: StepRecord) -> bool:
    """A step a check performs: not a ``manual:`` step, also when it was skipped (and so never marked MANUAL)."""
    return record.outcome is not Outcome.MANUAL and not (record.written or record.step).startswith(MANUAL_PREFIX)


def coverage(records: list[StepRecord]) -> tuple[int, int]:
    """Automation coverage: (automated steps, all steps)."""
    return sum(1 for r in records if is_automated(r)), len(records)


def coverage_line(records: list[StepRecord]) -> str:
    """'Automation coverage: 394 of 514 steps automated (77%); 120 manual steps are performed by a person'."""
    done, total = coverage(records)
    line = f"Automation coverage: {done} of {total} steps automated ({round(100 * done / total) if total else 0}%)"
    manual = total - done
    if manual:
        line += f"; {manual} manual step{'s are' if manual != 1 else ' is'} performed by a person"
    return line


# The recap: what is broken, each distinct failure once ------------------------------------------------------
_MEASURE = re.compile(r"(?<![\w.-])\d+(?:\.\d+)?")  # 503, 3, 9.1 in 'HTTP 503 in 3 ms', '9.1% (77 / 846'


def failure_key(record: StepRecord) -> tuple[str, str, str]:
    """What makes two failing steps one failure: the step as written, the resource and what was observed, its
    numbers aside ('HTTP 503 in 3 ms' and 'HTTP 503 in 4 ms' are one failure; the same stale lock found by
    five runbooks is one thing to fix). Numbers inside names (acme-5xx, ci-runner-7) count."""
    return (record.written or record.step, record.resource, _MEASURE.sub("#", record.observed))


def severity_rank(severity: str) -> float:
    """critical 0 ... info 4; unrated between critical and high (``--fail-on`` counts it as critical)."""
    return SEVERITIES.index(severity) if severity in SEVERITIES else 0.5


@dataclass
class Failure:
    """One distinct failure (FAIL or ERROR) and every step record that found it, in the order they ran."""

    first: StepRecord
    seen: list[StepRecord] = field(default_factory=list)

    @property
    def severity(self) -> str:
        return min((r.severity for r in self.seen), key=severity_rank, default=self.first.severity)

    def places(self) -> list[str]:
        return list(dict.fromkeys(place(r) for r in self.seen))


def place(record: StepRecord) -> str:
    """Where a step ran, short: ``post_deploy_validation › Storage is versioned``."""
    return f"{PurePosixPath(record.runbook).stem} › {record.scenario}"


def distinct_failures(records: Iterable[StepRecord]) -> list[Failure]:
    """Each distinct failure once: most severe first, then FAIL before ERROR, the most frequent, the earliest."""
    found: dict[tuple[str, str, str], Failure] = {}
    for record in records:
        if record.outcome in (Outcome.FAIL, Outcome.ERROR):
            found.setdefault(failure_key(record), Failure(record)).seen.append(record)
    ordered = list(found.values())  # first seen first; the sort is stable
    ordered.sort(key=lambda f: (severity_rank(f.severity), f.first.outcome is not Outcome.FAIL, -len(f.seen)))
    return ordered


def recap_lines(failures: list[Failure], colour: bool = False) -> list[str]:
    """The end of a run's output: a heading, then one line per distinct failure: what, the resource and what
    was observed, what to do, and where it occurred (the full evidence is under its first occurrence)."""
    if not failures:
        return []
    steps = sum(len(f.seen) for f in failures)
    lines = [f"What is broken: {len(failures)} distinct failure{'s' if len(failures) != 1 else ''} "
             f"in {steps} step{'s' if steps != 1 else ''}, most severe first:"]
    width = len(str(len(failures)))
    for n, failure in enumerate(failures, 1):
        record = failure.first
        mark = MARKS[record.outcome]
        if colour:
            mark = f"{COLOURS[record.outcome]}{mark}{RESET}"
        places = failure.places()
        shown = ", ".join(places[:2]) + (f" and {len(places) - 2} more" if len(places) > 2 else "")
        times = f"{len(failure.seen)}x " if len(failure.seen) > 1 else ""
        lines.append(f"  {n:>{width}}. {failure.severity.upper()} {mark}  {record.step} — {evidence_line(failure)}"
                     f"  [{times}in {shown}]")
    return lines


def evidence_line(failure: Failure) -> str:
    """'s3://logs: versioning Suspended; fix: aws s3api put-bucket-versioning ...' (the hint's first line)."""
    record = failure.first
    failed = record.outcome is Outcome.FAIL
    line = (f"{record.resource}: " if record.resource else "") + ("" if failed else "could not check: ")
    line += record.observed
    if len({r.observed for r in failure.seen}) > 1:
        line += f" (first of {len(failure.seen)}; the numbers vary)"
    todo = (record.hint.splitlines() or [""])[0]
    if todo:
        line += f"; {'fix' if failed else 'what to do'}: {todo}"
    return line
