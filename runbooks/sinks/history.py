"""The SQLite history as a sink: the run is opened at start (runs a killed process left ``running`` are
marked ``abandoned`` first), each record committed as it arrives."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from ..history import History, history_error
from . import Sink

if TYPE_CHECKING:
    from ..result import StepRecord
    from ..session import Session


class HistorySink(Sink):
    def __init__(self, path: Path) -> None:
        self.path = path
        self.history: History | None = None

    def on_start(self, session: Session) -> None:
        history = History(self.path)
        try:
            history.mark_abandoned()
            session.run_id = history.start_run(session.metadata())
        except sqlite3.Error as exc:  # locked by another process, or damaged since it was checked
            history.close()
            raise history_error(self.path, exc) from None
        self.history = history

    def on_record(self, session: Session, record: StepRecord) -> None:
        if self.history is not None and session.run_id is not None:
            self.history.add(session.run_id, record)

    def on_finish(self, session: Session) -> None:
        if self.history is not None and session.run_id is not None:
            self.history.finish_run(session.run_id, session.metadata(), session.exit_code(), session.status)
            self.history.close()
            self.history = None
