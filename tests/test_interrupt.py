"""A run killed half-way keeps every result gathered so far, and the history stays readable."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.test_pipeline import project, verify

SCENARIOS = {f"check {i:02d}": ("high", f"/slow{i}") for i in range(12)}


def _results_in(history: Path) -> int:
    try:
        with sqlite3.connect(f"file:{history}?mode=ro", uri=True) as con:
            return int(con.execute("select count(*) from results r join runs u on r.run_id = u.id "
                                   "where u.status = 'running'").fetchone()[0])
    except sqlite3.Error:
        return 0


def _start(config: Path, tmp_path: Path, history: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "runbooks.cli", "verify", "--config", str(config), "--history", str(history),
         "--report-dir", str(tmp_path / "reports")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _wait_for_results(history: Path, proc: subprocess.Popen[str], at_least: int) -> None:
    deadline = time.monotonic() + 60
    while _results_in(history) < at_least:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the run recorded nothing in time"
        time.sleep(0.05)


def test_sigint_half_way_keeps_results_and_the_store_readable(tmp_path, status_service):
    history = tmp_path / "history.sqlite"
    config = project(tmp_path, status_service, SCENARIOS)
    for _, path in SCENARIOS.values():  # fast first: an earlier, complete run the interruption must not harm
        status_service.set(path, delay_s=0.0)
    assert verify(config, tmp_path, "--history", str(history)) == 0
    for _, path in SCENARIOS.values():
        status_service.set(path, delay_s=0.25)

    proc = _start(config, tmp_path, history)
    _wait_for_results(history, proc, at_least=3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)

    assert proc.returncode == 130, (out, err)
    assert "interrupted" in err
    con = sqlite3.connect(history)
    assert con.execute("pragma integrity_check").fetchone()[0] == "ok"
    runs = con.execute("select id, status from runs order by started_at, rowid").fetchall()
    assert [status for _, status in runs] == ["finished", "interrupted"]
    first, second = (run_id for run_id, _ in runs)
    kept = con.execute("select count(*) from results where run_id = ?", (second,)).fetchone()[0]
    assert 3 <= kept < len(SCENARIOS)
    assert con.execute("select count(*) from results where run_id = ?", (first,)).fetchone()[0] == len(SCENARIOS)
    report = json.loads((tmp_path / "reports" / "results.json").read_text())
    assert report["run"]["status"] == "interrupted" and len(report["results"]) == kept


def killed_half_way(tmp_path, status_service):
    """A run with slow scenarios, killed (SIGKILL) once two results are in its history: (config, history)."""
    for _, path in SCENARIOS.values():
        status_service.set(path, delay_s=0.25)
    history = tmp_path / "history.sqlite"
    config = project(tmp_path, status_service, SCENARIOS)
    proc = _start(config, tmp_path, history)
    _wait_for_results(history, proc, at_least=2)
    proc.kill()
    proc.communicate(timeout=30)
    return config, history


def test_sigkill_half_way_keeps_committed_results(tmp_path, status_service):
    _, history = killed_half_way(tmp_path, status_service)
    con = sqlite3.connect(history)
    assert con.execute("pragma integrity_check").fetchone()[0] == "ok"
    (status,) = con.execute("select status from runs").fetchone()
    assert status == "running"  # never finished: shown as such by `runbooks history`
    assert con.execute("select count(*) from results").fetchone()[0] >= 2
