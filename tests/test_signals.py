"""How a run ends when the world ends it: SIGTERM, SIGKILL, a history that is not usable, a run that cannot
start, a stdout closed by its reader. Real `runbooks` processes against a real HTTP service."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from runbooks import history as history_module
from runbooks.cli import main
from runbooks.history import History, owner
from tests.test_interrupt import SCENARIOS, _start, _wait_for_results, killed_half_way
from tests.test_pipeline import project, verify

CLI = [sys.executable, "-m", "runbooks.cli"]


def _statuses(history: Path) -> list[str]:
    with sqlite3.connect(history) as con:
        return [status for (status,) in con.execute("select status from runs order by started_at, rowid")]


def _one_line(err: str) -> str:
    assert len(err.splitlines()) == 1, err
    return err.strip()


# SIGTERM ------------------------------------------------------------------------------------------------
def test_sigterm_half_way_writes_reports_and_history_and_exits_143(tmp_path, status_service):
    (tmp_path / "features").mkdir()
    config = project(tmp_path, status_service, {}, timeout_s=30)
    status_service.set("/bad", status=500)
    status_service.set("/slow", delay_s=20)  # the signal arrives while this request is under way
    status_service.set("/ok")
    (tmp_path / "features" / "checks.feature").write_text(textwrap.dedent("""\
        Feature: Checks
          Scenario: cut off
            Then the service "api" answers GET "/bad" with status 200 within 30000 ms
            Then the service "api" answers GET "/slow" with status 200 within 30000 ms
            Then the service "api" answers GET "/ok" with status 200 within 30000 ms
        """), encoding="utf-8")
    history = tmp_path / "history.sqlite"

    proc = _start(config, tmp_path, history)
    _wait_for_results(history, proc, at_least=1)
    deadline = time.monotonic() + 30
    while not any(r["path"] == "/slow" for r in status_service.requests):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)

    assert proc.returncode == 143, (out, err)
    assert "interrupted" in err and "Traceback" not in err
    report = json.loads((tmp_path / "reports" / "results.json").read_text())
    assert report["run"]["status"] == "interrupted" and report["run"]["exit_code"] == 143
    # the soft Then that failed did not stop the scenario: what follows was cut off by the signal
    assert [(r["outcome"], r["observed"]) for r in report["results"]][1:] == [
        ("skipped", "not run: the run was interrupted"), ("skipped", "not run: the run was interrupted")]
    assert report["results"][0]["outcome"] == "fail"
    assert (tmp_path / "reports" / "junit.xml").is_file()
    assert _statuses(history) == ["interrupted"]
    with sqlite3.connect(history) as con:
        assert con.execute("select exit_code from runs").fetchone()[0] == 143
        assert con.execute("pragma integrity_check").fetchone()[0] == "ok"


def test_sigterm_handler_is_restored_after_an_in_process_run(tmp_path, status_service):
    status_service.set("/ok")
    config = project(tmp_path, status_service, {"ok": ("high", "/ok")})
    before = signal.getsignal(signal.SIGTERM)
    assert verify(config, tmp_path, "--no-history") == 0
    assert signal.getsignal(signal.SIGTERM) is before


# SIGKILL: abandoned runs ----------------------------------------------------------------------------------
def test_a_killed_run_is_marked_abandoned_by_the_next_run(tmp_path, status_service, capsys):
    config, history = killed_half_way(tmp_path, status_service)
    assert _statuses(history) == ["running"]

    for _, path in SCENARIOS.values():
        status_service.set(path, delay_s=0.0)
    assert verify(config, tmp_path, "--history", str(history)) == 0
    assert _statuses(history) == ["abandoned", "finished"]
    capsys.readouterr()
    assert main(["history", "--config", str(config), "--history", str(history)]) == 0
    assert " abandoned " in capsys.readouterr().out


def test_a_live_run_is_never_marked_abandoned(tmp_path, status_service):
    for _, path in SCENARIOS.values():
        status_service.set(path, delay_s=0.25)
    history = tmp_path / "history.sqlite"
    config = project(tmp_path, status_service, SCENARIOS)
    live = _start(config, tmp_path, history)
    try:
        _wait_for_results(history, live, at_least=1)
        History(history).mark_abandoned()  # what the next run does when it starts
        assert _statuses(history) == ["running"]
    finally:
        live.kill()
        live.communicate(timeout=30)


def test_the_abandoned_rule_needs_proof_that_the_owner_is_gone(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    here = owner()
    owners = {
        "dead pid": {**here, "pid": int(dead.stdout)},
        "restarted machine": {**here, "pid": 1, "boot": "another-boot"},
        "live pid": {**here, "pid": os.getppid()},
        "this process": here,
        "another host": {**here, "host": here["host"] + "-elsewhere", "pid": int(dead.stdout)},
        "no owner": None,
    }
    history = History(tmp_path / "h.sqlite")
    for name, who in owners.items():
        run_id = history.start_run({"environment": name, "started_at": "2024-01-01T00:00:00+00:00"})
        history._db.execute("update runs set metadata = ? where id = ?", (json.dumps({"owner": who}), run_id))
    history.mark_abandoned()
    status = {r.environment: r.status for r in history.runs(limit=50)}
    history.close()
    expected_gone = {"dead pid"} | ({"restarted machine"} if here["boot"] else set())
    assert {name for name, s in status.items() if s == "abandoned"} == expected_gone
    assert {name for name, s in status.items() if s == "running"} == set(owners) - expected_gone


# a history that is not usable -----------------------------------------------------------------------------
def _malformed(path: Path) -> None:
    History(path).close()
    data = bytearray(path.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # the schema page, past the header
    path.write_bytes(bytes(data))


def _foreign(path: Path) -> None:
    with sqlite3.connect(path) as con:
        con.execute("create table users (id integer primary key, name text)")


def _foreign_runs(path: Path) -> None:
    with sqlite3.connect(path) as con:
        con.execute("create table runs (id text, owner text)")


@pytest.mark.parametrize("make", [
    lambda p: p.write_bytes(b"these are not the bytes of a database\n" * 50),
    _malformed, _foreign, _foreign_runs,
], ids=["garbage", "malformed", "foreign", "foreign-runs-table"])
def test_a_history_that_is_not_ours_is_refused_up_front_and_left_untouched(tmp_path, status_service, capsys,
                                                                           make):
    status_service.set("/ok")
    config = project(tmp_path, status_service, {"ok": ("high", "/ok")})
    history = tmp_path / "history.sqlite"
    make(history)
    before = history.read_bytes()
    for command in (["verify", "--report-dir", str(tmp_path / "reports")], ["history"], ["drift"]):
        assert main([*command, "--config", str(config), "--history", str(history)]) == 2
        line = _one_line(capsys.readouterr().err)
        assert line.startswith(f"runbooks: error: history database {history} ")
        assert line.endswith(f"mv {history} {history}.broken")
    assert history.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("history")) == ["history.sqlite"]
    assert not status_service.requests and not (tmp_path / "reports" / "results.json").exists()


def test_a_locked_history_is_one_line_and_exit_3(tmp_path, status_service, capsys, monkeypatch):
    monkeypatch.setattr(history_module, "LOCK_WAIT_S", 0.2)
    status_service.set("/ok")
    config = project(tmp_path, status_service, {"ok": ("high", "/ok")})
    history = tmp_path / "history.sqlite"
    assert verify(config, tmp_path, "--history", str(history)) == 0
    capsys.readouterr()
    holder = sqlite3.connect(history, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process writing, for longer than the run waits
    try:
        assert verify(config, tmp_path, "--history", str(history)) == 3
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    line = _one_line(capsys.readouterr().err)
    assert line == (f"runbooks: error: could not start the run for 'ci': history database {history} is locked "
                    "by another process (waited 0.2 s); try again once it is released")
    assert _statuses(history) == ["finished"]


# a run that could not start ------------------------------------------------------------------------------
def test_a_sandbox_that_cannot_start_is_one_line_and_exit_3(tmp_path, status_service, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        (tmp_path / "stack.toml").write_text(f'region = "eu-west-1"\n[service]\nport = {port}\n', encoding="utf-8")
        config = project(tmp_path, status_service, {"ok": ("high", "/ok")},
                         extra_env='sandbox = { stack = "stack.toml", service = "sandboxed" }')
        assert verify(config, tmp_path, "--history", str(tmp_path / "h.sqlite")) == 3
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("runbooks: error: could not start the run for 'ci': the reference API cannot listen on")
    assert "interrupted" not in line
    assert _statuses(tmp_path / "h.sqlite") == ["failed"]


# a stdout closed by its reader ---------------------------------------------------------------------------
def _closed_stdout(*args: str, cwd: Path | None = None) -> tuple[int, str]:
    """The command with its stdout's reader gone before it writes (`runbooks ... | head` after head exited)."""
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run([*CLI, *args], stdout=write, stderr=subprocess.PIPE, text=True, cwd=cwd, timeout=120)
    finally:
        os.close(write)
    return proc.returncode, proc.stderr


@pytest.mark.parametrize("args", [["steps"], ["steps", "--markdown"]])
def test_steps_into_a_closed_pipe_ends_quietly(args):
    assert _closed_stdout(*args) == (0, "")


def test_head_reading_one_line_of_steps(tmp_path):
    proc = subprocess.run(f"{' '.join(CLI)} steps | head -1; exit ${{PIPESTATUS[0]}}", shell=True,
                          executable="/bin/bash", capture_output=True, text=True, timeout=120)
    assert (proc.returncode, proc.stderr, len(proc.stdout.splitlines())) == (0, "", 1)


def test_verify_and_drift_into_a_closed_pipe_run_on_with_their_own_exit_code(tmp_path, status_service):
    status_service.set("/ok")
    status_service.set("/bad", status=500)
    config = project(tmp_path, status_service, {"ok": ("high", "/ok"), "bad": ("high", "/bad")})
    history = tmp_path / "history.sqlite"
    verify_args = ["verify", "--config", str(config), "--history", str(history),
                   "--report-dir", str(tmp_path / "reports")]
    assert _closed_stdout(*verify_args, cwd=tmp_path) == (1, "")
    assert json.loads((tmp_path / "reports" / "results.json").read_text())["run"]["exit_code"] == 1
    assert _closed_stdout(*verify_args, cwd=tmp_path) == (1, "")
    assert _closed_stdout("drift", "--config", str(config), "--history", str(history), cwd=tmp_path) == (0, "")
    assert _statuses(history) == ["finished", "finished"]
