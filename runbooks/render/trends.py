"""What the history says about each runbook, for the site: its last runs (a trend) and when it was last fully
verified, and the guided procedure runs (``runbooks run``) with their timelines.

The history is opened read-only (``mode=ro``): rendering never changes, migrates or locks it for writing. Only
a few fields of each record are read (SQLite's JSON functions), so a long history renders quickly.

*Fully verified* means: a finished ``verify`` run in which every scenario of the runbook ran, and every
automated step of it passed (a skipped, failed, errored or waived step is not verified).
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..history import RunSummary
from ..registry import MANUAL_PREFIX
from ..result import StepRecord

TREND_RUNS = 10  # runs shown in a runbook's trend
SCAN_RUNS = 200  # the latest verify runs read for trends and the last full verification
PROCEDURE_RUNS = 50  # the latest procedure runs listed
_NEEDED = {"runs": {"id", "environment", "started_at", "finished_at", "status", "metadata"},
           "results": {"run_id", "seq", "record"}}


class HistoryUnreadable(Exception):
    """The file cannot be read as a runbooks history (missing, not SQLite, another program's tables)."""


@dataclass(frozen=True)
class TrendPoint:
    """One run of a runbook and its outcome there: the worst of fail, error, waived, pass; none when nothing
    automated ran (only skipped or manual steps)."""

    run_id: str
    when: str  # 2026-03-01 10:00 UTC
    environment: str
    outcome: str  # fail | error | waived | pass | none


@dataclass(frozen=True)
class ProcedureRun:
    """A guided run of a runbook by a person (``runbooks run``), kind ``procedure`` in the history."""

    run: RunSummary
    when: str
    runbook: str  # features/... as recorded, '' when the run did not say
    operator: str
    page: str  # procedures/<id> (the Markdown timeline, without .md); '' when none could be written
    timeline: str  # its Markdown timeline


@dataclass
class _Seen:
    run_id: str
    when: str
    environment: str
    finished: bool
    outcomes: list[str] = field(default_factory=list)  # of its automated steps
    scenarios: set[str] = field(default_factory=set)


@dataclass
class HistoryView:
    path: Path
    environment: str | None  # only this environment's runs (the results' environment), or all
    runs: int  # verify runs read
    procedures: list[ProcedureRun]
    _by_runbook: dict[str, list[_Seen]]  # newest first

    def trend(self, runbook: str, limit: int = TREND_RUNS) -> list[TrendPoint]:
        """Its last ``limit`` runs, oldest first (as a sparkline reads)."""
        points = [TrendPoint(s.run_id, s.when, s.environment, _worst(s.outcomes))
                  for s in self._by_runbook.get(runbook, [])[:limit]]
        return points[::-1]

    def last_verified(self, runbook: str, scenarios: set[str]) -> TrendPoint | None:
        """The latest run in which every scenario ran and every automated step passed."""
        for seen in self._by_runbook.get(runbook, []):
            if seen.finished and seen.outcomes and set(seen.outcomes) == {"pass"} and scenarios <= seen.scenarios:
                return TrendPoint(seen.run_id, seen.when, seen.environment, "pass")
        return None

    def procedures_of(self, runbook: str) -> list[ProcedureRun]:
        return [p for p in self.procedures if p.runbook == runbook]


def read_history(path: Path, environment: str | None = None) -> HistoryView:
    """The history at ``path``, read-only; :class:`HistoryUnreadable` when it is not one."""
    if not path.is_file():
        raise HistoryUnreadable(f"{path}: no such file")
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise HistoryUnreadable(f"{path}: cannot be opened ({exc})") from None
    try:
        return _read(db, path, environment)
    except sqlite3.Error as exc:
        raise HistoryUnreadable(f"{path}: cannot be read as a runbooks history ({exc})") from None
    finally:
        db.close()


def _read(db: sqlite3.Connection, path: Path, environment: str | None) -> HistoryView:
    columns = {table: {row[1] for row in db.execute(f"PRAGMA table_info({table})")} for table in _NEEDED}
    for table, needed in _NEEDED.items():
        if not needed <= columns[table]:
            columns_needed = ", ".join(sorted(needed))
            raise HistoryUnreadable(f"{path}: not a runbooks history (no table {table} with {columns_needed})")
    has_kind = "kind" in columns["runs"]
    where = ["status != 'running'"] + (["kind = 'verify'"] if has_kind else [])
    params: list[Any] = []
    if environment:
        where.append("environment = ?")
        params.append(environment)
    runs = db.execute(f"SELECT id, environment, started_at, finished_at, status FROM runs WHERE {' AND '.join(where)} "
                      "ORDER BY started_at DESC, rowid DESC LIMIT ?", (*params, SCAN_RUNS)).fetchall()
    order = {run_id: i for i, (run_id, *_) in enumerate(runs)}
    seen: dict[tuple[str, str], _Seen] = {}
    info = {run_id: (env, _when(finished or started), status) for run_id, env, started, finished, status in runs}
    if runs:
        marks = ",".join("?" * len(runs))
        rows = db.execute(
            "SELECT run_id, json_extract(record, '$.runbook'), json_extract(record, '$.scenario'), "
            "json_extract(record, '$.outcome'), coalesce(json_extract(record, '$.written'), ''), "
            f"json_extract(record, '$.step') FROM results WHERE run_id IN ({marks}) ORDER BY run_id, seq",
            [r[0] for r in runs])
        for run_id, runbook, scenario, outcome, written, step in rows:
            env, when, status = info[run_id]
            entry = seen.setdefault((runbook, run_id), _Seen(run_id, when, env, status == "finished"))
            entry.scenarios |= {str(scenario), str(scenario).rsplit(" [", 1)[0]}  # "Name [eu-west-1]": @all-regions
            if outcome != "manual" and not str(written or step).startswith(MANUAL_PREFIX):
                entry.outcomes.append(str(outcome))
    by_runbook: dict[str, list[_Seen]] = defaultdict(list)
    for (runbook, _), entry in sorted(seen.items(), key=lambda item: order[item[0][1]]):
        by_runbook[runbook].append(entry)
    procedures = _procedures(db) if has_kind else []
    return HistoryView(path, environment, len(runs), procedures, dict(by_runbook))


def _procedures(db: sqlite3.Connection) -> list[ProcedureRun]:
    """The latest guided runs, each with its Markdown timeline (:mod:`runbooks.timeline`)."""
    try:
        from .. import timeline
    except ImportError:  # the timeline writer is not part of this version: list nothing
        return []
    found = []
    rows = db.execute("SELECT id, environment, coalesce(target, ''), started_at, finished_at, status, exit_code, "
                      "metadata FROM runs WHERE kind = 'procedure' ORDER BY started_at DESC, rowid DESC LIMIT ?",
                      (PROCEDURE_RUNS,)).fetchall()
    for run_id, env, target, started, finished, status, code, metadata in rows:
        run = RunSummary(run_id, env, target, started, finished, status, code, counts={}, kind="procedure")
        meta = _json(metadata)
        records = [StepRecord.from_json(json.loads(r)) for (r,) in db.execute(
            "SELECT record FROM results WHERE run_id = ? ORDER BY seq", (run_id,))]
        found.append(ProcedureRun(run, _when(started), str(meta.get("runbook") or ""), str(meta.get("operator") or ""),
                                  f"procedures/{run_id}", timeline.markdown(run, meta, records)))
    return found


def _json(text: Any) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _worst(outcomes: list[str]) -> str:
    for outcome in ("fail", "error", "waived"):
        if outcome in outcomes:
            return outcome
    return "pass" if "pass" in outcomes else "none"


def _when(stamp: Any) -> str:
    try:
        return datetime.fromisoformat(str(stamp)).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return str(stamp or "")
