"""The console as a sink: each runbook printed as a procedure while it runs, then what is broken and the summary.

Three modes: ``full`` (the procedure, every step), ``failures`` (only FAIL/ERROR steps under their runbook
and scenario headings) and ``quiet`` (nothing while it runs). Each ends with the recap — every distinct
failure once, most severe first — and the summary. A failure seen before (the same step as written,
resource and observation) is printed once in full; later occurrences get one line pointing at the first.

While a step runs longer than :data:`SLOW_AFTER_S`, a terminal shows a transient line naming it (rewritten
in place with a carriage return, erased before the next output); a pipe or file gets one plain line in
``full`` mode. No escape code is written when the stream is not a terminal or ``NO_COLOR`` is set.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from ..formatting import (
    coverage_line,
    distinct_failures,
    failure_key,
    place,
    recap_lines,
    step_details,
    step_line,
    summary_line,
)
from ..result import Outcome, RunStatus, StepRecord
from . import Sink

if TYPE_CHECKING:
    from ..session import ScenarioProgress, Session

MODES = ("full", "failures", "quiet")
SLOW_AFTER_S = 2.0  # a step running this long is named on the console
_TICK_S = 0.25


def wants_colour(stream: Any) -> bool:
    """Colour only on a terminal, and never when ``NO_COLOR`` is set (https://no-color.org) or TERM=dumb."""
    return is_terminal(stream) and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


class ConsoleSink(Sink):
    """Runbook, scenario, each step with its mark and, under a failure, the evidence; at the end the
    recap of what is broken, the coverage, the summary line and where the reports are."""

    def __init__(self, stream: Any = None, *, summary: bool = False, mode: str = "full",
                 slow_after_s: float = SLOW_AFTER_S) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown console mode {mode!r}; use one of: {', '.join(MODES)}")
        self.stream = stream or sys.stdout
        self.terminal = is_terminal(self.stream) and os.environ.get("TERM") != "dumb"
        self.colour = wants_colour(self.stream)
        self.summary = summary
        self.mode = mode
        self.slow_after_s = slow_after_s
        self._runbook: str | None = None
        self._skip_reason: str | None = None  # said once per scenario, not under every skipped step
        self._planned: list[str] = []  # the runbooks that will run, once collected
        self._count = 0  # runbooks begun
        self._first: dict[tuple[str, str, str], StepRecord] = {}  # each distinct failure's first occurrence
        self._pending: list[str] = []  # headings not printed yet (the quiet modes: only above a failing step)
        self._runbook_lines: list[str] = []
        self._session: Session | None = None
        self._progress: ScenarioProgress | None = None
        self._heading = ""  # the transient progress of quiet/failures modes: "[3/16] Runbook title"
        self._running: tuple[Any, float] | None = None  # (the step running, since when)
        self._announced: set[int] = set()
        self._transient = 0  # width of the transient line on screen; 0: none
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    # output ------------------------------------------------------------------------------------
    def write(self, text: str = "") -> None:
        with self._lock:
            self._erase()
            self.stream.write(text + "\n")
            self.stream.flush()

    def _show(self, text: str) -> None:
        """A transient line (terminal only): rewritten in place, erased before anything else is printed."""
        columns = shutil.get_terminal_size((80, 24)).columns
        text = text if len(text) < columns else text[: max(columns - 2, 1)] + "…"
        with self._lock:
            self._erase()
            self.stream.write("\r" + text)
            self.stream.flush()
            self._transient = len(text)

    def _erase(self) -> None:
        if self._transient:
            self.stream.write("\r" + " " * self._transient + "\r")
            self._transient = 0

    # hooks -------------------------------------------------------------------------------------
    def on_collected(self, session: Session, runbooks: list[str]) -> None:
        self._planned = runbooks

    def on_start(self, session: Session) -> None:
        self._session = session
        if self.terminal or self.mode == "full":  # a pipe in the quiet modes hears nothing while it runs
            self._ticker = threading.Thread(target=self._tick_loop, name="runbooks-console", daemon=True)
            self._ticker.start()

    def on_scenario(self, session: Session, progress: ScenarioProgress) -> None:
        self._skip_reason = None
        self._progress = progress
        self._announced.clear()
        if progress.runbook != self._runbook:
            self._runbook = progress.runbook
            self._count += 1
            total = len(self._planned) if progress.runbook in self._planned else 0
            counter = f"[{self._count}/{max(total, self._count)}]" if total else f"[{self._count}]"
            self._heading = f"{counter} {progress.feature.name}"
            self._runbook_lines = ["", f"{counter} Runbook: {progress.feature.name}  ({progress.runbook})"]
            tags = [t for t in sorted(progress.feature.tags) if ":" in t]
            if tags:
                self._runbook_lines.append("  " + " · ".join(tags))
        # In the full mode at once; in the others only above the first step printed (the runbook's once).
        self._pending = self._runbook_lines + ["", f"  Scenario: {progress.name}"]
        if self.mode == "full":
            self._flush_pending()
        elif self.terminal:
            self._show(f"{self._heading} › {progress.name}")

    def _flush_pending(self) -> None:
        for line in self._pending:
            self.write(line)
        self._pending, self._runbook_lines = [], []

    def on_record(self, session: Session, record: StepRecord) -> None:
        self._running = None
        key = failure_key(record) if record.outcome in (Outcome.FAIL, Outcome.ERROR) else None
        first = self._first.setdefault(key, record) if key else None
        if self.mode == "quiet" or (self.mode == "failures" and key is None):
            return
        self._flush_pending()
        self.write("    " + step_line(record, self.colour))
        if first is not None and first is not record:  # the full evidence is under its first occurrence
            self.write(f"          same failure as in {place(first)} (evidence above)")
            return
        if record.outcome is Outcome.SKIPPED and record.observed != self._skip_reason:
            self._skip_reason = record.observed
            self.write(f"          {record.observed}")
        for line in step_details(record):
            self.write("          " + line)

    def on_scenario_end(self, session: Session, progress: ScenarioProgress) -> None:
        self._running = None
        text = progress.resolution()
        if progress.failed() and text and self.mode != "quiet":
            self.write(f"    Resolution (from the runbook): {text}")

    def on_finish(self, session: Session) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=2)
        with self._lock:
            self._erase()
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
        failures = distinct_failures(session.records)
        for line in recap_lines(failures, self.colour):
            self.write(line)
        if failures:
            self.write()
        threshold = f" (failing on {session.fail_on} and above)" if session.fail_on != "info" else ""
        self.write(coverage_line(session.records))
        self.write(f"Summary: {summary_line(session.records)}{threshold} -> exit {session.exit_code()}")
        self.write("Reports: " + ", ".join(str(p) for p in session.report_paths))

    # the step that is running --------------------------------------------------------------------
    def _tick_loop(self) -> None:
        while not self._stop.wait(_TICK_S):
            try:
                self._tick(time.monotonic())
            except (OSError, ValueError):  # the reader went away or the stream closed: nothing more to show
                return

    def _tick(self, now: float) -> None:
        progress, session = self._progress, self._session
        step = progress.current if progress is not None else None
        if progress is None or session is None or step is None or id(step) in progress.done:
            self._running = None
            return
        if self._running is None or self._running[0] is not step:
            self._running = (step, now)
            return
        elapsed = now - self._running[1]
        if elapsed < self.slow_after_s:
            return
        text = f"{step.keyword} {session.resolve(step.name)}"
        if self.terminal:
            prefix = "    ...     " if self.mode == "full" else f"{self._heading} · "
            self._show(f"{prefix}{text}  (running, {elapsed:.0f} s)")
        elif self.mode == "full" and id(step) not in self._announced:
            self._announced.add(id(step))
            self.write(f"    ...     {text}  (still running after {self.slow_after_s:g} s)")
