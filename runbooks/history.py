"""The durable record of every run (SQLite, standard library).

A scenario's step records are committed together when it ends, and a scenario still running commits what it
has within a second (:class:`~runbooks.sinks.history.HistorySink`), so a crash, SIGKILL or Ctrl-C keeps every
finished scenario and all but the last moment of the running one; SQLite's journal (WAL) guarantees an
interrupted write never corrupts earlier runs.

A run killed outright (SIGKILL, power loss) stays ``running``; the next run that opens the history marks
it ``abandoned`` (:meth:`History.mark_abandoned`) when its owner is provably gone: the run was recorded on
this host (same host name) and either the machine restarted since (Linux boot id) or no process with its
pid exists any more. Anything else is left ``running``: a live run in another process (or container),
a pid since reused by another program, a run recorded on another host or by a version that kept no owner.

A file that is not a runbooks history (not SQLite, damaged, or holding other tables) is refused before
anything is written to it, with the command that moves it aside; it is never changed or deleted.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import sqlite3
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import StartError, UsageError
from .result import RunStatus, StepRecord

DEFAULT_PATH = Path(".runbooks") / "history.sqlite"
LOCK_WAIT_S = 30.0  # how long a write waits for another process's lock before the run gives up

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    environment TEXT NOT NULL,
    target TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL,           -- a RunStatus: running | finished | interrupted | aborted | failed | abandoned
    exit_code INTEGER,
    metadata TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'verify'  -- verify (`runbooks verify`) | procedure (`runbooks run`)
);
CREATE TABLE IF NOT EXISTS results (
    run_id TEXT NOT NULL REFERENCES runs(id),
    seq INTEGER NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE INDEX IF NOT EXISTS runs_by_env ON runs(environment, started_at);
"""
_SUMMARY = "id, environment, target, started_at, finished_at, status, exit_code, kind"  # a RunSummary's columns
_COLUMNS = {  # what a runbooks history holds; any other table means the file belongs to something else
    "runs": {"id", "environment", "target", "started_at", "finished_at", "status", "exit_code", "metadata"},
    "results": {"run_id", "seq", "record"},
}


class BrokenHistory(UsageError):
    """The file is not a usable runbooks history: one line saying why and how to move it aside (exit 2)."""

    def __init__(self, path: Path, problem: str) -> None:
        where = shlex.quote(str(path))
        super().__init__(f"history database {path} {problem}; it was left as it is: move it aside to start "
                         f"a new history: mv {where} {shlex.quote(str(path) + '.broken')}")


class HistoryLocked(StartError):
    """Another process holds the history's write lock for longer than :data:`LOCK_WAIT_S` (exit 3)."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"history database {path} is locked by another process (waited {LOCK_WAIT_S:g} s); "
                         "try again once it is released")


def history_error(path: Path, exc: sqlite3.Error) -> Exception:
    """What a SQLite error opening or starting the history means: locked, not a history, or as it is."""
    if getattr(exc, "sqlite_errorname", "") in ("SQLITE_BUSY", "SQLITE_LOCKED"):
        return HistoryLocked(path)
    if isinstance(exc, sqlite3.OperationalError):  # cannot open or write there: not the file's fault
        return exc
    return BrokenHistory(path, f"cannot be read as a runbooks history ({exc})")


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
    kind: str = "verify"  # verify | procedure (a person following a runbook with `runbooks run`)


class History:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # One connection shared by the run's threads; writes are serialised by the lock.
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=LOCK_WAIT_S)
        self._lock = threading.Lock()
        try:
            self._check_schema()  # before anything is written: a file that is not ours is never changed
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            self._migrate()
        except sqlite3.Error as exc:
            self._db.close()
            raise history_error(path, exc) from None
        except BrokenHistory:
            self._db.close()
            raise
        self._seq = 0

    def _check_schema(self) -> None:
        tables = {name for (name,) in self._db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")}
        foreign = sorted(tables - _COLUMNS.keys())
        if foreign:
            raise BrokenHistory(self.path, f"is not a runbooks history (it holds other tables: {', '.join(foreign)})")
        for table in sorted(tables):
            columns = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            missing = sorted(_COLUMNS[table] - columns)
            if missing:
                raise BrokenHistory(self.path, f"is not a runbooks history (table {table} has no {', '.join(missing)})")

    def _migrate(self) -> None:
        """Columns added since a history was created: ``runs.kind`` (its existing runs are ``verify``)."""
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(runs)")}
        if "kind" not in columns:
            try:
                self._db.execute("ALTER TABLE runs ADD COLUMN kind TEXT NOT NULL DEFAULT 'verify'")
            except sqlite3.OperationalError as exc:  # another process added it first
                if "duplicate column" not in str(exc):
                    raise

    def close(self) -> None:
        self._db.close()

    # writing ---------------------------------------------------------------------------------
    def start_run(self, metadata: dict[str, Any]) -> str:
        """A new ``running`` run; its metadata names the process that owns it until it finishes."""
        run_id = uuid.uuid4().hex[:12]
        with self._lock:
            self._db.execute(
                "INSERT INTO runs (id, environment, target, started_at, status, metadata, kind) VALUES (?,?,?,?,?,?,?)",
                (run_id, metadata["environment"], metadata.get("target"), metadata["started_at"], "running",
                 json.dumps({**metadata, "owner": owner()}), metadata.get("kind", "verify")),
            )
        return run_id

    def mark_abandoned(self) -> list[str]:
        """Mark ``abandoned`` the runs left ``running`` whose process is provably gone (the rule is in the
        module's docstring); the ids marked."""
        here = owner()
        rows = self._db.execute("SELECT id, metadata FROM runs WHERE status = ?", (RunStatus.RUNNING.value,))
        gone = [run_id for run_id, metadata in rows.fetchall() if _gone(json.loads(metadata).get("owner"), here)]
        with self._lock:
            for run_id in gone:
                self._db.execute("UPDATE runs SET status = ? WHERE id = ? AND status = ?",
                                 (RunStatus.ABANDONED.value, run_id, RunStatus.RUNNING.value))
        return gone

    def add(self, run_id: str, record: StepRecord) -> None:
        self.add_many(run_id, [record])

    def add_many(self, run_id: str, records: list[StepRecord]) -> None:
        """The records in one transaction: one commit (one sync to disk) for a scenario's steps, not one each."""
        if not records:
            return
        with self._lock:
            first = self._seq + 1
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT INTO results (run_id, seq, record) VALUES (?,?,?)",
                    [(run_id, first + n, json.dumps(r.to_json())) for n, r in enumerate(records)],
                )
                self._db.execute("COMMIT")
            except BaseException:  # a lock timeout, a signal: nothing half-written
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
            self._seq += len(records)

    def finish_run(self, run_id: str, metadata: dict[str, Any], exit_code: int | None, status: str) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE runs SET finished_at = ?, status = ?, exit_code = ?, metadata = ? WHERE id = ?",
                (metadata.get("finished_at"), status, exit_code, json.dumps(metadata), run_id),
            )

    # reading ---------------------------------------------------------------------------------
    def runs(self, environment: str | None = None, limit: int = 20, kind: str | None = None) -> list[RunSummary]:
        """The latest runs, newest first; ``kind``: only ``verify`` (what drift compares) or ``procedure`` runs."""
        query = f"SELECT {_SUMMARY} FROM runs"
        conditions = [(column, value) for column, value in (("environment", environment), ("kind", kind)) if value]
        if conditions:
            query += " WHERE " + " AND ".join(f"{column} = ?" for column, _ in conditions)
        query += " ORDER BY started_at DESC, rowid DESC LIMIT ?"
        rows = self._db.execute(query, (*(value for _, value in conditions), limit)).fetchall()
        return [self._summary(row) for row in rows]

    def _summary(self, row: tuple[Any, ...]) -> RunSummary:
        run_id, environment, target, started_at, finished_at, status, exit_code, kind = row
        return RunSummary(run_id, environment, target, started_at, finished_at, status, exit_code,
                          self._counts(run_id), kind)

    def _counts(self, run_id: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        for (record,) in self._db.execute("SELECT record FROM results WHERE run_id = ?", (run_id,)):
            outcome = json.loads(record)["outcome"]
            counts[outcome] = counts.get(outcome, 0) + 1
        return counts

    def records(self, run_id: str) -> list[StepRecord]:
        rows = self._db.execute("SELECT record FROM results WHERE run_id = ? ORDER BY seq", (run_id,))
        return [StepRecord.from_json(json.loads(r)) for (r,) in rows]

    def find(self, run_id: str, environment: str | None = None) -> RunSummary:
        """The one run (of ``environment``, when given) whose id starts with ``run_id``; ValueError otherwise."""
        query = f"SELECT {_SUMMARY} FROM runs WHERE substr(id, 1, ?) = ?"
        params: tuple[Any, ...] = (len(run_id), run_id)
        if environment is not None:
            query += " AND environment = ?"
            params += (environment,)
        rows = self._db.execute(query, params).fetchall()
        if len(rows) != 1:
            of = f" of {environment!r}" if environment is not None else ""
            raise ValueError(f"{len(rows)} runs{of} have an id starting with {run_id!r}")
        return self._summary(rows[0])

    def run_metadata(self, run_id: str) -> dict[str, Any]:
        """What was recorded about the run itself (environment, operator and runbook of a procedure, ...)."""
        row = self._db.execute("SELECT metadata FROM runs WHERE id = ?", (run_id,)).fetchone()
        return dict(json.loads(row[0])) if row else {}


def previous_durations(path: Path, environment: str) -> tuple[str, list[StepRecord]] | None:
    """The latest finished verification of ``environment`` (its id and records), read without changing the
    file (``--shard`` balances by it); None when there is none or the file cannot be read."""
    if not path.is_file():
        return None
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return None
    try:
        columns = {row[1] for row in db.execute("PRAGMA table_info(runs)")}
        kind = " AND kind = 'verify'" if "kind" in columns else ""
        row = db.execute(f"SELECT id FROM runs WHERE environment = ? AND status = 'finished'{kind} "
                         "ORDER BY started_at DESC, rowid DESC LIMIT 1", (environment,)).fetchone()
        if row is None:
            return None
        rows = db.execute("SELECT record FROM results WHERE run_id = ? ORDER BY seq", (row[0],)).fetchall()
        return str(row[0]), [StepRecord.from_json(json.loads(r)) for (r,) in rows]
    except (sqlite3.Error, ValueError, KeyError, TypeError):
        return None
    finally:
        db.close()


def owner() -> dict[str, Any]:
    """This process as the owner of a run: host name, pid and (on Linux) the boot it runs in."""
    try:
        boot: str | None = Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        boot = None
    return {"host": socket.gethostname(), "pid": os.getpid(), "boot": boot}


def _gone(recorded: Any, here: dict[str, Any]) -> bool:
    """Whether the process that owns a ``running`` run is provably gone; when in doubt, it is not."""
    if not isinstance(recorded, dict) or recorded.get("host") != here["host"] or os.name == "nt":
        return False  # another host, no owner recorded, or no safe liveness probe (os.kill(pid, 0) on Windows)
    if recorded.get("boot") and here["boot"] and recorded["boot"] != here["boot"]:
        return True  # the machine restarted since: that process cannot be running
    pid = recorded.get("pid")
    if not isinstance(pid, int) or pid == here["pid"]:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # it exists (another user's process) or cannot be told
        return False
    return False
