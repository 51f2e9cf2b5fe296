"""Report sinks: everything that hears of a run's records — the console, results.json, JUnit, the
history, drift and notifications. A new reporter is one class with the hooks it needs.

Once collection ends, ``on_collected`` names the runbooks that will run. Then the session calls, in
order: ``on_start`` once the run has an id, ``on_scenario`` as each scenario begins, ``on_record`` for
every step record (after waivers and redaction), ``on_scenario_end``, and ``on_finish`` once at the end,
after the status and exit code are final. Sinks run in the order given, so a sink may read what an
earlier one produced (the report paths for the summary).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..result import StepRecord
    from ..session import ScenarioProgress, Session


class Sink:
    def on_collected(self, session: Session, runbooks: list[str]) -> None:
        """Collection ended: the runbooks that will run, in order (before ``on_start``)."""

    def on_start(self, session: Session) -> None:
        """The run has started (it has a run id when the history is kept)."""

    def on_scenario(self, session: Session, scenario: ScenarioProgress) -> None:
        """A scenario begins."""

    def on_record(self, session: Session, record: StepRecord) -> None:
        """One step's record, final: waivers applied, secrets masked."""

    def on_scenario_end(self, session: Session, scenario: ScenarioProgress) -> None:
        """A scenario ended; all its records were seen."""

    def on_finish(self, session: Session) -> None:
        """The run ended: ``session.status`` and ``session.exit_code()`` are final."""


class FileSink(Sink):
    """A sink that writes one report file at the end of the run."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_finish(self, session: Session) -> None:
        from ..reports import write_atomic

        try:
            write_atomic(self.path, self.render(session.metadata(), session.records))
        except OSError as exc:  # the folder went away or became read-only during the run: keep the others
            session.unwritten.append(f"{self.path} ({exc.strerror or exc})")
            return
        session.report_paths.append(self.path)

    def render(self, metadata: dict[str, Any], records: list[StepRecord]) -> str:
        raise NotImplementedError
