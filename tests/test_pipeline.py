"""Pipelines and the nightly drift check: thresholds, waivers, history, drift, notifications, secrets.

Every run here goes through the real CLI against a real HTTP service on 127.0.0.1 whose answers the test
sets, so outcomes are controlled and nothing is mocked.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import textwrap
from pathlib import Path

import pytest

from runbooks.cli import main
from runbooks.config import ConfigError
from runbooks.drift import compare
from runbooks.result import Outcome, StepRecord
from runbooks.waivers import load_waivers
from tests.support.status_service import StatusService

TODAY = dt.date.today()


def project(tmp_path: Path, service: StatusService, scenarios: dict[str, tuple[str, str]], timeout_s: float = 0.5,
            extra_env: str = "") -> Path:
    """A project with one runbook; scenarios maps name -> (severity, path checked)."""
    (tmp_path / "features").mkdir(exist_ok=True)
    body = "\n".join(
        f"  @severity:{severity}\n  Scenario: {name}\n"
        f'    Then the service "api" answers GET "{path}" with status 200 within 2000 ms\n'
        for name, (severity, path) in scenarios.items()
    )
    (tmp_path / "features" / "checks.feature").write_text(
        f"@owner:test @severity:high\nFeature: Checks\n\n{body}", encoding="utf-8"
    )
    config = tmp_path / "runbooks.toml"
    config.write_text(
        textwrap.dedent(f"""
        [environments.ci]
        aws = {{ target = "moto", region = "eu-west-1" }}
        {extra_env}
        [environments.ci.services]
        api = {{ url = "{service.url}", timeout_s = {timeout_s} }}
        """),
        encoding="utf-8",
    )
    return config


def verify(config: Path, tmp_path: Path, *extra: str) -> int:
    return main(["verify", "--config", str(config), "--report-dir", str(tmp_path / "reports"), *extra])


def results(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "reports" / "results.json").read_text())


# --- severity threshold ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fail_on", "expected"),
    [("info", 1), ("low", 1), ("medium", 1), ("high", 0), ("critical", 0)],
)
def test_failures_below_the_threshold_are_reported_but_do_not_fail(tmp_path, status_service, fail_on, expected):
    status_service.set("/ok")
    status_service.set("/bad", status=500)
    config = project(tmp_path, status_service, {"healthy": ("critical", "/ok"), "degraded": ("medium", "/bad")})
    assert verify(config, tmp_path, "--fail-on", fail_on, "--no-history") == expected
    doc = results(tmp_path)
    failed = [r for r in doc["results"] if r["outcome"] == "fail"]
    assert [r["severity"] for r in failed] == ["medium"]  # reported whatever the threshold
    assert doc["run"]["exit_code"] == expected and doc["run"]["fail_on"] == fail_on


def test_scenario_severity_wins_over_the_feature_and_errors_respect_the_threshold(tmp_path, status_service):
    status_service.set("/slow", delay_s=1.5)  # beyond timeout_s: an ERROR, not a FAIL
    config = project(tmp_path, status_service, {"slow low": ("low", "/slow")})
    assert verify(config, tmp_path, "--no-history") == 3
    assert results(tmp_path)["results"][0]["severity"] == "low"
    assert verify(config, tmp_path, "--no-history", "--fail-on", "medium") == 0


# --- waivers -------------------------------------------------------------------------------------
def write_waivers(tmp_path: Path, expires: str, scenario: str = "degraded", step: str | None = None) -> Path:
    path = tmp_path / "waivers.toml"
    step_line = f"step = '{step}'\n" if step else ""
    path.write_text(
        "# accepted exceptions\n\n[[waiver]]\n"
        'runbook = "features/checks.feature"\n'
        f'scenario = "{scenario}"\n{step_line}'
        'reason = "known outage of the reporting backend (INC-42)"\n'
        'accepted_by = "jane.doe"\n'
        f"expires = {expires}\n",
        encoding="utf-8",
    )
    return path


def test_a_waived_failure_is_reported_as_waived_and_does_not_fail(tmp_path, status_service, capsys):
    status_service.set("/ok")
    status_service.set("/bad", status=500)
    config = project(tmp_path, status_service, {"healthy": ("critical", "/ok"), "degraded": ("medium", "/bad")})
    write_waivers(tmp_path, (TODAY + dt.timedelta(days=30)).isoformat(),
                  step='the service "api" answers GET "/bad" with status 200 within 2000 ms')
    assert verify(config, tmp_path, "--no-history") == 0
    out = capsys.readouterr().out
    assert "WAIVED" in out and "known outage of the reporting backend (INC-42)" in out
    waived = [r for r in results(tmp_path)["results"] if r["outcome"] == "waived"]
    assert len(waived) == 1 and "jane.doe" in waived[0]["hint"]


def test_a_waiver_applies_through_its_expiry_date_and_stops_the_day_after():
    path = Path(__file__).parent / "data" / "waivers_boundary.toml"
    record = StepRecord("features/checks.feature", "degraded", "step", Outcome.FAIL, hint="fix it")
    expires = dt.date(2026, 12, 31)
    on_the_day = load_waivers(path, today=expires).apply(record)
    assert on_the_day.outcome is Outcome.WAIVED
    day_after = load_waivers(path, today=expires + dt.timedelta(days=1))
    expired = day_after.apply(record)
    assert expired.outcome is Outcome.FAIL
    assert "waiver expired on 2026-12-31" in expired.hint and expired.hint.startswith("fix it")
    assert any("expired on 2026-12-31 and no longer applies" in w for w in day_after.warnings())


def test_an_expired_waiver_fails_the_run_and_says_so(tmp_path, status_service, capsys):
    status_service.set("/bad", status=500)
    config = project(tmp_path, status_service, {"degraded": ("medium", "/bad")})
    write_waivers(tmp_path, (TODAY - dt.timedelta(days=1)).isoformat())
    assert verify(config, tmp_path, "--no-history") == 1
    captured = capsys.readouterr()
    assert "waiver expired on" in captured.out
    assert "waivers.toml:3: warning: waiver expired" in captured.err


def test_an_error_is_never_waived(tmp_path, status_service):
    status_service.set("/slow", delay_s=1.5)
    config = project(tmp_path, status_service, {"degraded": ("medium", "/slow")})
    write_waivers(tmp_path, (TODAY + dt.timedelta(days=1)).isoformat())
    assert verify(config, tmp_path, "--no-history") == 3


def test_a_waiver_that_matches_nothing_is_a_warning(tmp_path, status_service, capsys):
    status_service.set("/ok")
    config = project(tmp_path, status_service, {"healthy": ("critical", "/ok")})
    write_waivers(tmp_path, (TODAY + dt.timedelta(days=1)).isoformat(), scenario="no such scenario")
    assert verify(config, tmp_path, "--no-history") == 0
    assert "waivers.toml:3: warning: waiver matches no failing check" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('[[waiver]]\nrunbook = "a"\nscenario = "b"\nreason = "c"\naccepted_by = "d"\n',
         "waivers.toml:1: waiver: missing expires"),
        ('# c\n[[waiver]]\nrunbook = "a"\nscenario = "b"\nreason = "c"\naccepted_by = "d"\nexpires = "soon"\n',
         "waivers.toml:2: waiver: expires 'soon' is not a date"),
        ('[[waiver]]\nrunbook = "a"\nscenario = "b"\nreason = ""\naccepted_by = "d"\nexpires = 2027-01-01\n',
         "waivers.toml:1: waiver: reason must be a non-empty string"),
        ('[[waiver]]\nrunbook = "a"\nscenario = "b"\nreason = "c"\naccepted_by = "d"\nexpires = 2027-01-01\n'
         'ticket = "x"\n', "waivers.toml:1: waiver: unknown key 'ticket'"),
        ('[[waiver]\nrunbook = "a"\n', "waivers.toml:1: invalid TOML"),
    ],
)
def test_malformed_waivers_exit_2_naming_file_and_line(tmp_path, status_service, capsys, body, message):
    status_service.set("/ok")
    config = project(tmp_path, status_service, {"healthy": ("critical", "/ok")})
    (tmp_path / "waivers.toml").write_text(body, encoding="utf-8")
    with pytest.raises(ConfigError):
        load_waivers(tmp_path / "waivers.toml")
    assert verify(config, tmp_path, "--no-history") == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "reports").exists()  # nothing ran


# --- history and drift ---------------------------------------------------------------------------
def test_drift_across_three_recorded_runs(tmp_path, status_service, capsys):
    history = tmp_path / "h.sqlite"
    status_service.set("/a")
    status_service.set("/b")
    status_service.set("/c", status=500)
    status_service.set("/d")
    scenarios = {"a": ("high", "/a"), "b": ("high", "/b"), "c": ("high", "/c"), "d": ("high", "/d")}
    config = project(tmp_path, status_service, scenarios)
    assert verify(config, tmp_path, "--history", str(history)) == 1  # run 1: c fails

    status_service.set("/a", status=503)  # new failure
    status_service.set("/c")  # fixed
    status_service.set("/d", delay_s=1.5)  # new error
    assert verify(config, tmp_path, "--history", str(history), "--drift") == 1  # run 2
    out = capsys.readouterr().out
    assert "new failures: 1" in out and "fixed: 1" in out and "new errors (could not verify): 1" in out

    scenarios.pop("b")  # removed
    scenarios["e"] = ("high", "/a")  # added (and failing: a new failure too)
    config = project(tmp_path, status_service, scenarios)
    assert verify(config, tmp_path, "--history", str(history), "--drift") == 1  # run 3
    out = capsys.readouterr().out
    assert "checks added: 1" in out and "checks removed: 1" in out and "still failing: 1" in out

    assert main(["history", "--config", str(config), "--history", str(history)]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert len(listing) == 4 and all("finished" in line for line in listing[1:])
    run_ids = [line.split()[0] for line in listing[1:]]
    # run 3 against run 1, by id: a fails now (new), c passes now (fixed), b removed, e added
    assert main(["drift", "--config", str(config), "--history", str(history), "--against", run_ids[2][:6]]) == 0
    out = capsys.readouterr().out
    assert f"against run {run_ids[2]}" in out
    assert "fixed: 1" in out and "checks removed: 1" in out and "checks added: 1" in out
    # and against a results.json
    assert main(["drift", "--config", str(config), "--history", str(history), "--against",
                 str(tmp_path / "reports" / "results.json")]) == 0
    assert "no change" in capsys.readouterr().out


def test_drift_classifies_an_expired_waiver():
    def rec(outcome, hint=""):
        return StepRecord("r", "s", "step", outcome, hint=hint)

    drift = compare([rec(Outcome.WAIVED)], [rec(Outcome.FAIL, "x [waiver expired on 2026-01-01 ...]")])
    assert drift.waivers_expired and not drift.new_failures and drift.changed


# --- notifications --------------------------------------------------------------------------------
def test_notification_is_retried_and_posts_slack_json_with_the_report_link(tmp_path, status_service):
    history = tmp_path / "h.sqlite"
    status_service.set("/a")
    config = project(tmp_path, status_service, {"a": ("high", "/a")})
    assert verify(config, tmp_path, "--history", str(history)) == 0
    status_service.set("/a", status=500)
    status_service.set("/hook", status=503)  # the receiver fails first...
    calls = status_service.requests

    def recover_after_two(path: str = "/hook") -> None:
        posts = [r for r in calls if r["method"] == "POST"]
        if len(posts) >= 2:
            status_service.set(path, status=200, body="ok")

    import threading
    stop = threading.Event()

    def watcher() -> None:
        while not stop.is_set():
            recover_after_two()
            stop.wait(0.01)

    thread = threading.Thread(target=watcher, daemon=True)
    thread.start()
    try:
        code = verify(config, tmp_path, "--history", str(history), "--notify", f"{status_service.url}/hook",
                      "--report-url", "https://runbooks.example/reports/ci/")
    finally:
        stop.set()
        thread.join()
    assert code == 1
    posts = [r for r in calls if r["method"] == "POST"]
    assert len(posts) >= 3  # two 503s retried by urllib3, then delivered
    body = json.loads(posts[-1]["body"])
    assert "new failures" in body["text"] and "exit 1" in body["text"]
    assert "https://runbooks.example/reports/ci/" in json.dumps(body["blocks"])


def test_no_notification_when_nothing_changed_unless_always(tmp_path, status_service):
    history = tmp_path / "h.sqlite"
    status_service.set("/a")
    status_service.set("/hook", body="ok")
    config = project(tmp_path, status_service, {"a": ("high", "/a")})
    hook = f"{status_service.url}/hook"
    assert verify(config, tmp_path, "--history", str(history)) == 0
    assert verify(config, tmp_path, "--history", str(history), "--notify", hook) == 0
    assert not [r for r in status_service.requests if r["method"] == "POST"]
    assert verify(config, tmp_path, "--history", str(history), "--notify", hook, "--notify-always") == 0
    assert len([r for r in status_service.requests if r["method"] == "POST"]) == 1


def test_a_failed_delivery_is_reported_and_changes_nothing(tmp_path, status_service, capsys):
    history = tmp_path / "h.sqlite"
    status_service.set("/a")
    config = project(tmp_path, status_service, {"a": ("high", "/a")})
    assert verify(config, tmp_path, "--history", str(history)) == 0
    status_service.set("/a", status=500)
    status_service.set("/hook", status=500)
    assert verify(config, tmp_path, "--history", str(history), "--notify", f"{status_service.url}/hook") == 1
    err = capsys.readouterr().err
    assert "notification not delivered: webhook answered HTTP 500" in err
    assert results(tmp_path)["run"]["exit_code"] == 1
    con = sqlite3.connect(history)
    assert con.execute("select count(*) from runs where status = 'finished'").fetchone()[0] == 2


def test_an_unreachable_receiver_is_reported_without_its_url(tmp_path, status_service, capsys):
    import socket

    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    history = tmp_path / "h.sqlite"
    status_service.set("/a", status=500)
    config = project(tmp_path, status_service, {"a": ("high", "/a")})
    secret_hook = f"http://127.0.0.1:{port}/services/T000/B000/s3cr3t-hook-token"
    assert verify(config, tmp_path, "--history", str(history), "--notify", secret_hook, "--notify-always") == 1
    captured = capsys.readouterr()
    assert "notification not delivered: ConnectionError" in captured.err
    assert "s3cr3t-hook-token" not in captured.out + captured.err


# --- the account guard ------------------------------------------------------------------------------
def test_the_wrong_account_stops_the_run_early_with_exit_2(tmp_path, status_service, capsys):
    status_service.set("/ok")
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "a.feature").write_text(textwrap.dedent("""\
        Feature: Guarded
          Background:
            Given the AWS account is "210987654321"

          Scenario: First
            Then the service "api" answers GET "/ok" with status 200 within 2000 ms

          Scenario: Second
            Then the service "api" answers GET "/ok" with status 200 within 2000 ms
        """), encoding="utf-8")
    config = tmp_path / "runbooks.toml"
    config.write_text(textwrap.dedent(f"""\
        [environments.ci]
        aws = {{ target = "moto", region = "eu-west-1" }}
        [environments.ci.services]
        api = "{status_service.url}"
        """), encoding="utf-8")
    assert verify(config, tmp_path, "--no-history") == 2
    err = capsys.readouterr().err
    assert 'stopped early: guard failed: the AWS account is "210987654321": account 123456789012' in err
    doc = results(tmp_path)
    # the rest of the first scenario is recorded as skipped; the second scenario never starts
    assert [(r["scenario"], r["outcome"]) for r in doc["results"]] == [("First", "fail"), ("First", "skipped")]
    assert "interrupted" not in err and doc["run"]["status"] == "aborted"
    assert not [r for r in status_service.requests if r["path"] == "/ok"]
    assert doc["run"]["exit_code"] == 2


def test_a_check_keeps_its_identity_when_a_variable_changes_value():
    def rec(step: str, outcome: Outcome = Outcome.PASS) -> StepRecord:
        return StepRecord("r", "s", step, outcome, written='on host "api", port {api_port} is listening')

    drift = compare([rec('on host "api", port 40001 is listening')], [rec('on host "api", port 40002 is listening')])
    assert not drift.changed and not drift.added and not drift.removed


def test_a_check_that_is_skipped_now_is_no_longer_verified_not_removed():
    before = [StepRecord("r", "s", "step", Outcome.FAIL)]
    after = [StepRecord("r", "s", "step", Outcome.SKIPPED, observed="not run: ...")]
    drift = compare(before, after)
    assert drift.no_longer_verified and not drift.removed and drift.changed


def test_drift_against_an_unknown_run_id_or_a_bad_results_file_is_refused(tmp_path, status_service, capsys):
    history = tmp_path / "h.sqlite"
    status_service.set("/a")
    config = project(tmp_path, status_service, {"a": ("high", "/a")})
    assert verify(config, tmp_path, "--history", str(history)) == 0
    assert verify(config, tmp_path, "--history", str(history)) == 0
    capsys.readouterr()
    assert main(["drift", "--config", str(config), "--history", str(history), "--against", "zz"]) == 2
    assert "0 runs of 'ci' have an id starting with 'zz'" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text("{}")
    assert main(["drift", "--config", str(config), "--history", str(history), "--against",
                 str(tmp_path / "bad.json")]) == 2
    assert "not a runbooks results.json" in capsys.readouterr().err
