"""The SQLite history as a sink: the run is opened at start, each record committed as it arrives."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..history import History
from . import Sink

if TYPE_CHECKING:
    from ..result import StepRecord
    from ..session import Session


class HistorySink(Sink):
    def __init__(self, path: Path) -> None:
        self.path = path
        self.history: History | None = None

    def on_start(self, session: Session) -> None:
        self.history = History(self.path)
        session.run_id = self.history.start_run(session.metadata())

    def on_record(self, session: Session, record: StepRecord) -> None:
        if self.history is not None and session.run_id is not None:
            self.history.add(session.run_id, record)

    def on_finish(self, session: Session) -> None:
        if self.history is not None and session.run_id is not None:
            self.history.finish_run(session.run_id, session.metadata(), session.exit_code(), session.status)
            self.history.close()
            self.history = None
