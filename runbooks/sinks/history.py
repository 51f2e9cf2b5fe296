"""The SQLite history as a sink: the run is opened at start (runs a killed process left ``running`` are
marked ``abandoned`` first); each scenario's records are committed together when it ends - one sync to disk
per scenario, not per step - and a scenario still running after :data:`FLUSH_AFTER_S` has what it recorded
so far committed, so a killed run keeps every finished scenario and the running one's older steps."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from ..history import History, history_error
from . import Sink

if TYPE_CHECKING:
    from ..result import StepRecord
    from ..session import ScenarioProgress, Session

FLUSH_AFTER_S = 0.5  # the longest a record waits for its scenario to end before it is committed anyway


class HistorySink(Sink):
    def __init__(self, path: Path) -> None:
        self.path = path
        self.history: History | None = None
        self._run_id: str | None = None
        self._pending: list[StepRecord] = []
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def on_start(self, session: Session) -> None:
        history = History(self.path)
        try:
            history.mark_abandoned()
            session.run_id = history.start_run(session.metadata())
        except sqlite3.Error as exc:  # locked by another process, or damaged since it was checked
            history.close()
            raise history_error(self.path, exc) from None
        self.history = history
        self._run_id = session.run_id

    def on_record(self, session: Session, record: StepRecord) -> None:
        if self.history is None or self._run_id is None:
            return
        with self._lock:
            self._pending.append(record)
            if self._timer is None:  # a long step must not keep the scenario's earlier records from the disk
                self._timer = threading.Timer(FLUSH_AFTER_S, self._flush_in_background)
                self._timer.daemon = True
                self._timer.start()

    def on_scenario_end(self, session: Session, scenario: ScenarioProgress) -> None:
        self.flush()

    def flush(self) -> None:
        """Commit the records not yet written, in one transaction; they stay pending if that fails."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._pending and self.history is not None and self._run_id is not None:
                self.history.add_many(self._run_id, self._pending)
            self._pending = []

    def _flush_in_background(self) -> None:
        with contextlib.suppress(sqlite3.Error):  # e.g. locked long by another process: the scenario's end retries
            self.flush()

    def on_finish(self, session: Session) -> None:
        if self.history is not None and session.run_id is not None:
            self.flush()
            self.history.finish_run(session.run_id, session.metadata(), session.exit_code(), session.status)
            self.history.close()
            self.history = None
