"""A recorded run as a timeline: every step in order, with when, what became of it, the notes and who.

``runbooks history --show RUN_ID`` prints it; ``--markdown`` gives the same as Markdown for an incident
record. A procedure run (``runbooks run``) carries, in each record's ``evidence["procedure"]``, the time
(``at``, UTC), the ``type`` (``manual`` or ``check``), the operator's ``answer`` and ``note``, ``by`` and
the check's ``attempt``; a verify run has none of these and reads as its steps in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .formatting import MARKS
from .result import Outcome, StepRecord

MANUAL_WORDS = {Outcome.MANUAL: "done", Outcome.SKIPPED: "skipped", Outcome.FAIL: "failed"}


@dataclass(frozen=True)
class Entry:
    at: str  # "2026-05-01 10:02:13" (UTC), "" when the run kept no time per step
    scenario: str
    step: str  # keyword and text as run
    line: int
    result: str  # "done", "skipped", "failed", "PASS", "FAIL -> retry", ...
    note: str
    by: str
    took: str


def procedure_facts(record: StepRecord) -> dict[str, Any]:
    facts = record.evidence.get("procedure")
    return facts if isinstance(facts, dict) else {}


def entries(records: list[StepRecord]) -> list[Entry]:
    return [_entry(r) for r in records]


def _entry(record: StepRecord) -> Entry:
    facts = procedure_facts(record)
    answer = str(facts.get("answer") or "")
    note = str(facts.get("note") or "")
    if facts.get("type") == "manual" and answer in MANUAL_WORDS.values():
        result = answer
    else:
        result = MARKS[record.outcome]
        if answer:
            result += f" -> {answer}"
        if int(facts.get("attempt") or 1) > 1:
            result += f" (attempt {facts['attempt']})"
        finding = _finding(record)
        note = "; ".join(part for part in (finding, note) if part)
    by = str(facts.get("by") or ("" if record.outcome is Outcome.MANUAL else "runbooks"))
    return Entry(_time(facts.get("at")), record.scenario, f"{record.keyword} {record.step}".strip(), record.line,
                 result, note, by, duration(record.duration_ms))


def _finding(record: StepRecord) -> str:
    if record.outcome is Outcome.FAIL:
        return f"expected {record.expected}, observed {record.observed}" if record.expected else record.observed
    if record.outcome is Outcome.ERROR:
        return f"could not check: {record.observed}"
    if record.outcome in (Outcome.SKIPPED, Outcome.WAIVED):
        return record.observed
    return ""


def _time(value: Any) -> str:
    """``2026-05-01T10:02:13+00:00`` -> ``2026-05-01 10:02:13``."""
    return str(value or "").replace("T", " ").removesuffix("+00:00")


def duration(ms: float) -> str:
    if ms < 1000:
        return f"{ms:.0f} ms"
    seconds = round(ms / 1000)
    if seconds < 60:
        return f"{seconds} s"
    return f"{seconds // 60} min {seconds % 60} s"


def header(run: Any, metadata: dict[str, Any]) -> list[tuple[str, str]]:
    """What the run was: (label, value) rows. ``run`` is a history RunSummary."""
    kind = getattr(run, "kind", "verify")
    rows = [
        ("run", f"{run.id} ({kind})"),
        ("runbook", str(metadata.get("runbook") or "")),
        ("scenario", str(metadata.get("scenario") or "")),
        ("environment", run.environment),
        ("operator", str(metadata.get("operator") or "")),
        ("started (UTC)", _time(run.started_at)),
        ("finished (UTC)", _time(run.finished_at)),
        ("status", run.status + ("" if run.exit_code is None else f", exit {run.exit_code}")),
    ]
    return [(label, value) for label, value in rows if value]


def text(run: Any, metadata: dict[str, Any], records: list[StepRecord]) -> str:
    lines = [f"{label}: {value}" for label, value in header(run, metadata)]
    lines.append("")
    for e in entries(records):
        lines.append(f"{e.at or '-':19}  {e.result:18} {e.by:12} {e.scenario}: {e.step} (line {e.line}, {e.took})")
        if e.note:
            lines.append(f"{'':21}{e.note}")
    return "\n".join(lines) + "\n"


def markdown(run: Any, metadata: dict[str, Any], records: list[StepRecord]) -> str:
    title = str(metadata.get("title") or metadata.get("runbook") or run.environment)
    kind = getattr(run, "kind", "verify")
    lines = [f"# {'Procedure' if kind == 'procedure' else 'Run'}: {_cell(title)}", "", "| | |", "| --- | --- |"]
    lines += [f"| {label} | {_cell(value)} |" for label, value in header(run, metadata)]
    lines += ["", "## Timeline", "",
              "| time (UTC) | scenario | step | outcome | notes | who | took |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for e in entries(records):
        lines.append(f"| {e.at} | {_cell(e.scenario)} | {_cell(e.step)} (line {e.line}) | {_cell(e.result)} "
                     f"| {_cell(e.note)} | {_cell(e.by)} | {e.took} |")
    return "\n".join(lines) + "\n"


def _cell(value: str) -> str:
    """A table cell: one line, pipes escaped."""
    return " ".join(value.split()).replace("|", "\\|")
