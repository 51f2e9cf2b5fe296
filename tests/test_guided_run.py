"""`runbooks run`: an operator follows a runbook through a real terminal (pexpect) or an answers file, and the
history keeps every answer, in order, as a run of kind `procedure` that exports as a Markdown timeline."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import sys
import textwrap
import time
from pathlib import Path

import pexpect
import pytest

from runbooks.cli import main
from runbooks.guided import command_of
from runbooks.history import History
from runbooks.result import Outcome, StepRecord
from runbooks.timeline import procedure_facts
from tests.conftest import write_config
from tests.support.status_service import StatusService

pytestmark = pytest.mark.e2e

CLI = [sys.executable, "-m", "runbooks.cli"]
FEATURE = """\
    @owner:platform-team @severity:high
    Feature: Roll back the api
      Purpose:
        Put the previous release ({previous_release}) back.

      Prerequisites:
        - The release tag and the deploy pipeline.

      Escalation:
        - Page the platform lead after 15 minutes.

      Background:
        Given the service "api" answers GET "/live" with status 200 within 2000 ms

      Scenario: Roll back
        Given manual: run the deploy pipeline for {previous_release}
        Then the service "api" answers GET "/x" with status 200 within 2000 ms
        * manual: post "rolled back" in the incident channel

      Scenario: Tell people
        Given manual: update the status page
    """
MANUAL_PROMPT = r"\[d\]one, \[s\]kipped, \[f\]ailed\? "
CHECK_PROMPT = r"\[r\]etry, \[c\]ontinue, \[s\]top\? "
# (step as written, outcome, answer) of a completed procedure in which /x failed once and was retried
COMPLETED = [
    ('the service "api" answers GET "/live" with status 200 within 2000 ms', Outcome.PASS, None),
    ("manual: run the deploy pipeline for {previous_release}", Outcome.MANUAL, "done"),
    ('the service "api" answers GET "/x" with status 200 within 2000 ms', Outcome.FAIL, "retry"),
    ('the service "api" answers GET "/x" with status 200 within 2000 ms', Outcome.PASS, None),
    ('manual: post "rolled back" in the incident channel', Outcome.MANUAL, "done"),
    ('the service "api" answers GET "/live" with status 200 within 2000 ms', Outcome.PASS, None),
    ("manual: update the status page", Outcome.SKIPPED, "skipped"),
]
TIME = re.compile(r"^\| \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \|")


@pytest.fixture
def project(tmp_path: Path, status_service: StatusService) -> Path:
    status_service.set("/live")
    status_service.set("/x", status=503)
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "rollback.feature").write_text(textwrap.dedent(FEATURE), encoding="utf-8")
    return write_config(tmp_path, f"""\
        [environments.test]
        services = {{ api = "{status_service.url}" }}
        [environments.test.vars]
        previous_release = "v1.2.3"
        """)


def spawn(config: Path, *extra: str, **env: str) -> pexpect.spawn:
    child_env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"} | env
    return pexpect.spawn(CLI[0], [*CLI[1:], "run", "rollback", "--config", str(config), "--history",
                                  str(config.parent / "history.sqlite"), *extra],
                         env=child_env, cwd=str(config.parent), encoding="utf-8", timeout=20, dimensions=(60, 300))


def the_run(config: Path) -> tuple[object, list[StepRecord]]:
    history = History(config.parent / "history.sqlite")
    try:
        (run,) = history.runs()
        return run, history.records(run.id)
    finally:
        history.close()


def committed(config: Path) -> int:
    with sqlite3.connect(config.parent / "history.sqlite") as db:
        count = db.execute("SELECT count(*) FROM results").fetchone()[0]
    db.close()
    return int(count)


def steps_of(records: list[StepRecord]) -> list[tuple[str, Outcome, str | None]]:
    return [(r.written, r.outcome, procedure_facts(r).get("answer")) for r in records]


def timeline(config: Path, run_id: str, capsys: pytest.CaptureFixture[str]) -> list[str]:
    capsys.readouterr()
    assert main(["history", "--show", run_id[:6], "--markdown", "--config", str(config),
                 "--history", str(config.parent / "history.sqlite")]) == 0
    return [line for line in capsys.readouterr().out.splitlines() if TIME.match(line)]


# through a real terminal ---------------------------------------------------------------------------------------
def test_an_operator_completes_the_procedure_in_a_terminal(project: Path, status_service: StatusService,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    child = spawn(project, LOGNAME="ana")  # no --operator: the login name
    child.expect("Purpose:")
    child.expect(r"Put the previous release \(v1\.2\.3\) back")
    child.expect("Prerequisites:")
    child.expect("Escalation:")
    child.expect("run the deploy pipeline for v1.2.3")
    child.expect(MANUAL_PROMPT)
    child.sendline("yes")
    child.expect("'yes' does not answer this; type d, s, f")  # asked again
    child.expect(MANUAL_PROMPT)
    child.sendline("d")
    child.expect("checkpoint")
    child.expect(r"\x1b\[31;1mFAIL")  # coloured on a terminal
    child.expect("observed: HTTP 503")
    child.expect(CHECK_PROMPT)
    status_service.set("/x", status=200)  # the operator fixes it, then retries
    child.sendline("r")
    child.expect(r'PASS.*Then the service "api" answers GET "/x"')
    child.expect(MANUAL_PROMPT)
    child.sendline("d")
    child.expect("Scenario 2/2: Tell people")
    child.expect(MANUAL_PROMPT)
    child.sendline("s")
    child.expect("reason: ")
    child.sendline("no access to the status page")
    child.expect(r"Procedure completed: manual steps 2 done, 1 skipped, 0 failed; checks 3 passed, 0 failing")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0

    run, records = the_run(project)
    assert (run.kind, run.status, run.exit_code) == ("procedure", "finished", 0)  # type: ignore[attr-defined]
    assert steps_of(records) == COMPLETED
    assert {procedure_facts(r)["by"] for r in records if r.outcome is not Outcome.PASS} == {"ana"}
    assert procedure_facts(records[-1])["note"] == "no access to the status page"
    assert records[1].step == "manual: run the deploy pipeline for v1.2.3"  # variables resolved

    rows = timeline(project, run.id, capsys)  # type: ignore[attr-defined]
    assert len(rows) == len(COMPLETED)
    assert "| done |" in rows[1] and "| ana |" in rows[1]
    assert "| FAIL -> retry |" in rows[2] and "observed HTTP 503" in rows[2]
    assert "| PASS (attempt 2) |" in rows[3]
    assert "| skipped | no access to the status page | ana |" in rows[6]
    times = [row.split("|")[1].strip() for row in rows]
    assert times == sorted(times)


def test_ctrl_c_mid_procedure_keeps_the_answers_and_marks_the_run_interrupted(project: Path) -> None:
    child = spawn(project, "--operator", "jane", NO_COLOR="1")
    child.expect(MANUAL_PROMPT)
    child.sendline("d")
    child.expect(CHECK_PROMPT)
    shown = child.before
    deadline = time.monotonic() + 10  # recorded as it happens: in the history while the operator is asked
    while committed(project) < 2:
        assert time.monotonic() < deadline, "the answers given are not in the history yet"
        time.sleep(0.05)
    child.kill(signal.SIGINT)
    child.expect("interrupted")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130
    assert "\x1b[31" not in shown and "\x1b[32" not in shown  # NO_COLOR: no colours, even on a terminal

    run, records = the_run(project)
    assert (run.kind, run.status, run.exit_code) == ("procedure", "interrupted", 130)  # type: ignore[attr-defined]
    assert steps_of(records) == [*COMPLETED[:2], (COMPLETED[2][0], Outcome.FAIL, None)]
    assert procedure_facts(records[1])["by"] == "jane"
    assert procedure_facts(records[2])["note"] == "no answer: interrupted (Ctrl-C)"  # the evidence is kept


# through --answers FILE, in-process --------------------------------------------------------------------------
class FailsOnce:
    """A route that answers 503 once, then 200: the fix the operator made before answering `r`."""

    delay_s = 0.0
    body = '{"status": "ok"}'
    echo = False

    def __init__(self) -> None:
        self.served = 0

    @property
    def status(self) -> int:
        self.served += 1
        return 503 if self.served == 1 else 200


def run_with(project: Path, answers: str, *extra: str) -> int:
    path = project.parent / "answers.txt"
    path.write_text(textwrap.dedent(answers), encoding="utf-8")
    return main(["run", str(project.parent / "features" / "rollback.feature"), "--config", str(project),
                 "--history", str(project.parent / "history.sqlite"), "--operator", "jane", "--answers", str(path),
                 *extra])


def test_an_answers_file_drives_the_same_procedure(project: Path, status_service: StatusService,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    status_service.routes["/x"] = FailsOnce()  # type: ignore[assignment]
    code = run_with(project, """\
        # the rollback of INC-42
        d
        r
        d: posted at 10:02
        s: no access to the status page
        """)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "\x1b[" not in out  # not a terminal: no colours
    assert f"when it is done: {MANUAL_PROMPT.replace(chr(92), '')}d\n" in out  # each answer echoed after its question

    run, records = the_run(project)
    assert (run.kind, run.status, run.exit_code) == ("procedure", "finished", 0)  # type: ignore[attr-defined]
    assert steps_of(records) == COMPLETED
    assert procedure_facts(records[4])["note"] == "posted at 10:02"
    rows = timeline(project, run.id, capsys)  # type: ignore[attr-defined]
    assert [row.split("|")[4].strip() for row in rows] == [
        "PASS", "done", "FAIL -> retry", "PASS (attempt 2)", "done", "PASS", "skipped"]


def test_answers_that_end_early_interrupt_the_run_and_keep_what_was_answered(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_with(project, "d\n") == 130
    assert "ended before the procedure did" in capsys.readouterr().err
    run, records = the_run(project)
    assert run.status == "interrupted"  # type: ignore[attr-defined]
    assert steps_of(records) == [*COMPLETED[:2], (COMPLETED[2][0], Outcome.FAIL, None)]


def test_a_failed_manual_step_and_a_check_left_failing_are_exit_1(project: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert run_with(project, "f: the pipeline exited 1\nc\nd\nd\n") == 1
    assert "Escalation (from the runbook): - Page the platform lead" in capsys.readouterr().out
    run, records = the_run(project)
    assert (run.status, run.exit_code) == ("finished", 1)  # type: ignore[attr-defined]
    assert [procedure_facts(r).get("answer") for r in records] == [None, "failed", "continue", "done", None, "done"]
    assert records[1].outcome is Outcome.FAIL and records[1].observed == "failed: the pipeline exited 1"


def test_stopping_at_a_failing_check_records_the_rest_as_not_run(project: Path) -> None:
    assert run_with(project, "d\ns\n") == 1
    run, records = the_run(project)
    assert run.status == "aborted"  # type: ignore[attr-defined]
    assert [r.outcome for r in records[3:]] == [Outcome.SKIPPED] * 3
    assert records[-1].observed == "not run: jane stopped the procedure at a failing check"


def test_only_the_chosen_scenario_is_followed(project: Path) -> None:
    assert run_with(project, "s: done by the comms team\n", "--scenario", "Tell people") == 0
    _, records = the_run(project)
    assert [r.written for r in records] == [COMPLETED[5][0], COMPLETED[6][0]]  # its Background first


@pytest.mark.parametrize(("args", "answers", "message"), [
    (("--scenario", "Tell peple"), "d\n", "did you mean 'Tell people'?"),
    ((), "d\nyes\n", "answers.txt:2: unknown answer 'yes'"),
])
def test_bad_usage_is_exit_2_before_anything_runs(project: Path, capsys: pytest.CaptureFixture[str],
                                                  args: tuple[str, ...], answers: str, message: str) -> None:
    assert run_with(project, answers, *args) == 2
    assert message in capsys.readouterr().err
    assert not (project.parent / "history.sqlite").exists()


def test_an_unknown_runbook_offers_the_close_names(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "rolback", "--config", str(project)]) == 2
    assert "did you mean 'rollback'?" in capsys.readouterr().err


# the history ------------------------------------------------------------------------------------------------
def test_an_older_history_gains_the_kind_column_and_its_runs_are_verify_runs(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript("""
            CREATE TABLE runs (id TEXT PRIMARY KEY, environment TEXT NOT NULL, target TEXT, started_at TEXT NOT NULL,
                               finished_at TEXT, status TEXT NOT NULL, exit_code INTEGER, metadata TEXT NOT NULL);
            CREATE TABLE results (run_id TEXT NOT NULL, seq INTEGER NOT NULL, record TEXT NOT NULL,
                                  PRIMARY KEY (run_id, seq));
            INSERT INTO runs VALUES ('abc', 'test', 'moto', '2026-01-01T00:00:00+00:00', NULL, 'finished', 0, '{}');
            """)
    db.close()
    history = History(path)
    try:
        assert [(r.id, r.kind) for r in history.runs()] == [("abc", "verify")]
        assert history.runs(kind="procedure") == []
    finally:
        history.close()


def test_drift_compares_verify_runs_only(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    history = str(project.parent / "history.sqlite")
    common = ["--config", str(project), "--history", history]
    assert main(["verify", *common, "--report-dir", str(project.parent / "reports")]) == 1
    assert run_with(project, "d\nc\nd\nd\n") == 1
    capsys.readouterr()
    assert main(["drift", *common]) == 0
    verify_run = History(Path(history)).runs(kind="verify")[0].id
    assert f"run {verify_run} against nothing (first recorded run)" in capsys.readouterr().out


# the command of a manual step ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("action", "command"), [
    ("terraform apply rollback.tfplan", "terraform apply rollback.tfplan"),
    ("check out the code: git fetch --tags && git checkout v1; terraform init",
     "git fetch --tags && git checkout v1; terraform init"),
    ("terraform plan -out=rollback.tfplan; review it with a second engineer (no destroy)",
     "terraform plan -out=rollback.tfplan"),
    ("on each API host: docker compose up -d api (in-flight requests finish)", "docker compose up -d api"),
    ("take a logical backup (pg_dump -Fc -f app.dump app) and record its id", "pg_dump -Fc -f app.dump app"),
    ("post the start of the change in #platform-deployments", ""),
])
def test_the_command_in_a_manual_step_is_shown_apart(action: str, command: str) -> None:
    assert command_of(action) == command
