"""How a step record reads to a person. Console, JUnit and pytest failure messages all use this."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from .result import Outcome, StepRecord

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
    automated = sum(1 for r in records if r.automated)
    parts = [f"{automated} automated steps: {c['pass']} passed, {c['fail']} failed, {c['error']} errors"]
    if c["skipped"]:
        parts.append(f"{c['skipped']} skipped")
    if c["waived"]:
        parts.append(f"{c['waived']} waived")
    if c["manual"]:
        parts.append(f"{c['manual']} manual")
    return ", ".join(parts)


def coverage(records: list[StepRecord]) -> tuple[int, int]:
    """Automation coverage: (automated steps, all steps)."""
    return sum(1 for r in records if r.automated), len(records)
