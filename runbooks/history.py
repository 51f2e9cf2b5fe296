"""The durable record of every run (SQLite, standard library).

Each step record is committed as it arrives, so a crash or Ctrl-C keeps every result gathered so far;
SQLite's journal (WAL) guarantees an interrupted write never corrupts earlier runs.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .result import StepRecord

DEFAULT_PATH = Path(".runbooks") / "history.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    environment TEXT NOT NULL,
    target TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL,           -- running | finished | interrupted
    exit_code INTEGER,
    metadata TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS results (
    run_id TEXT NOT NULL REFERENCES runs(id),
    seq INTEGER NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE INDEX IF NOT EXISTS runs_by_env ON runs(environment, started_at);
"""


@dataclass(frozen=True)
class RunSummary:
    id: str
    environment: str
    target: str
    started_at: str
    finished_at: str | None
    status: str
    exit_code: int | None
    counts: dict[str, int]


class History:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # One connection shared by the run's threads; writes are serialised by the lock.
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._seq = 0

    def close(self) -> None:
        self._db.close()

    # writing ---------------------------------------------------------------------------------
    def start_run(self, metadata: dict[str, Any]) -> str:
        run_id = uuid.uuid4().hex[:12]
        with self._lock:
            self._db.execute(
                "INSERT INTO runs (id, environment, target, started_at, status, metadata) VALUES (?,?,?,?,?,?)",
                (run_id, metadata["environment"], metadata.get("target"), metadata["started_at"], "running",
                 json.dumps(metadata)),
            )
        return run_id

    def add(self, run_id: str, record: StepRecord) -> None:
        with self._lock:
            self._seq += 1
            self._db.execute(
                "INSERT INTO results (run_id, seq, record) VALUES (?,?,?)",
                (run_id, self._seq, json.dumps(record.to_json())),
            )

    def finish_run(self, run_id: str, metadata: dict[str, Any], exit_code: int | None, status: str) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE runs SET finished_at = ?, status = ?, exit_code = ?, metadata = ? WHERE id = ?",
                (metadata.get("finished_at"), status, exit_code, json.dumps(metadata), run_id),
            )

    # reading ---------------------------------------------------------------------------------
    def runs(self, environment: str | None = None, limit: int = 20) -> list[RunSummary]:
        query = "SELECT id, environment, target, started_at, finished_at, status, exit_code FROM runs"
        params: tuple[Any, ...] = ()
        if environment:
            query += " WHERE environment = ?"
            params = (environment,)
        query += " ORDER BY started_at DESC, rowid DESC LIMIT ?"
        rows = self._db.execute(query, (*params, limit)).fetchall()
        return [self._summary(row) for row in rows]

    def _summary(self, row: tuple[Any, ...]) -> RunSummary:
        run_id, environment, target, started_at, finished_at, status, exit_code = row
        return RunSummary(run_id, environment, target, started_at, finished_at, status, exit_code,
                          self._counts(run_id))

    def _counts(self, run_id: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        for (record,) in self._db.execute("SELECT record FROM results WHERE run_id = ?", (run_id,)):
            outcome = json.loads(record)["outcome"]
            counts[outcome] = counts.get(outcome, 0) + 1
        return counts

    def records(self, run_id: str) -> list[StepRecord]:
        rows = self._db.execute("SELECT record FROM results WHERE run_id = ? ORDER BY seq", (run_id,))
        return [StepRecord.from_json(json.loads(r)) for (r,) in rows]

    def find(self, run_id: str, environment: str) -> RunSummary:
        """The one run of ``environment`` whose id starts with ``run_id``; ValueError otherwise."""
        rows = self._db.execute(
            "SELECT id, environment, target, started_at, finished_at, status, exit_code FROM runs "
            "WHERE substr(id, 1, ?) = ? AND environment = ?",
            (len(run_id), run_id, environment),
        ).fetchall()
        if len(rows) != 1:
            raise ValueError(f"{len(rows)} runs of {environment!r} have an id starting with {run_id!r}")
        return self._summary(rows[0])
