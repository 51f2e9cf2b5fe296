"""The console as a sink: each runbook printed as a procedure while it runs, then the summary."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from ..formatting import coverage, step_details, step_line, summary_line
from ..result import Outcome, RunStatus, StepRecord
from . import Sink

if TYPE_CHECKING:
    from ..session import ScenarioProgress, Session


class ConsoleSink(Sink):
    """Runbook, scenario, each step with its mark and, under a failure, the evidence; at the end the
    coverage, the summary line and where the reports are."""

    def __init__(self, stream: Any = None, *, summary: bool = False) -> None:
        self.stream = stream or sys.stdout
        self.colour = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.summary = summary
        self._runbook: str | None = None
        self._skip_reason: str | None = None  # said once per scenario, not under every skipped step

    def write(self, text: str = "") -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def on_scenario(self, session: Session, progress: ScenarioProgress) -> None:
        self._skip_reason = None
        if progress.runbook != self._runbook:
            self._runbook = progress.runbook
            self.write()
            self.write(f"Runbook: {progress.feature.name}  ({progress.runbook})")
            tags = [t for t in sorted(progress.feature.tags) if ":" in t]
            if tags:
                self.write("  " + " · ".join(tags))
        self.write()
        self.write(f"  Scenario: {progress.name}")

    def on_record(self, session: Session, record: StepRecord) -> None:
        self.write("    " + step_line(record, self.colour))
        if record.outcome is Outcome.SKIPPED and record.observed != self._skip_reason:
            self._skip_reason = record.observed
            self.write(f"          {record.observed}")
        for line in step_details(record):
            self.write("          " + line)

    def on_scenario_end(self, session: Session, progress: ScenarioProgress) -> None:
        text = progress.resolution()
        if progress.failed() and text:
            self.write(f"    Resolution (from the runbook): {text}")

    def on_finish(self, session: Session) -> None:
        if not self.summary or not session.records:
            return
        err = sys.stderr
        self.write()
        if session.aborted:
            print(f"runbooks: stopped early: {session.aborted}", file=err)
        if session.status is RunStatus.INTERRUPTED:
            print("runbooks: interrupted; the results gathered so far are in the reports and the history", file=err)
        for warning in session.waivers.warnings() if session.waivers else []:
            print(warning, file=err)
        threshold = f" (failing on {session.fail_on} and above)" if session.fail_on != "info" else ""
        automated, total = coverage(session.records)
        self.write(f"Automation coverage: {automated} of {total} steps automated ({automated / total:.0%}); "
                   "the rest are manual: steps")
        self.write(f"Summary: {summary_line(session.records)}{threshold} -> exit {session.exit_code()}")
        self.write("Reports: " + ", ".join(str(p) for p in session.report_paths))
