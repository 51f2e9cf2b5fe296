"""Drift and notification as a sink: what changed since the previous run, printed and/or posted."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from . import Sink

if TYPE_CHECKING:
    from ..session import Session


class DriftSink(Sink):
    def __init__(self, history: Path, *, show: bool, notify: str | None, notify_always: bool,
                 report_url: str | None) -> None:
        self.history = history
        self.show = show
        self.notify = notify
        self.notify_always = notify_always
        self.report_url = report_url

    def on_finish(self, session: Session) -> None:
        if session.run_id is None or not session.records:
            return
        from ..history_commands import report_drift

        report_drift(self.history, session.env.name, session.run_id, None, session.redactor, self.notify,
                     self.notify_always, self.report_url, session.exit_code(), show=self.show)
