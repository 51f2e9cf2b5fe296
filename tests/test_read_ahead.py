"""Read-ahead (runbooks/read_ahead.py): while a step runs, the AWS reads of the steps and scenarios after it are
made in the background, memoised, so that their turn finds them answered. It never changes what a run reports,
never makes a read twice, does only memoised AWS reads ahead, stops where the scenario's turn would stop, and
reads nothing before the current scenario's guard has passed."""

from __future__ import annotations

import json
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from runbooks.cli import main
from runbooks.config import load_config
from runbooks.errors import ConfigError
from tests.support.moto_server import MotoServer
from tests.test_accounts import exact_records, seed_fleet
from tests.test_discovery import isolated_imports  # noqa: F401 - autouse: the probe steps are forgotten after

pytest_plugins = ["tests.support.moto_server"]  # fixtures: moto_server, endpoint_credentials

# Steps of a test project: each read is a memo entry that writes one line to the probe log when it is made,
# saying whether it was made ahead of its step's turn.
PROBE_STEPS = '''
import os
import time
from pathlib import Path

from runbooks.context import AHEAD
from runbooks.sdk import CheckResult, check

LOG = Path(os.environ["RUNBOOKS_PROBE_LOG"])
READ_AHEAD = {read_ahead}  # these checks read only through ctx: they may be evaluated ahead of their turn


def _read(ctx, name):
    def made():
        with LOG.open("a", encoding="utf-8") as out:
            out.write(f"{name} {'ahead' if AHEAD.get() else 'in turn'}\\n")
    ctx.aws.memo(("probe", name), made)


def _lines():
    return LOG.read_text(encoding="utf-8").splitlines() if LOG.exists() else []


@check('the probe "{name}" is read')
def probe_read(ctx, name):
    _read(ctx, name)
    return CheckResult.passed(name, "read", "read")


@check('the probe "{name}" is read after asking the HTTP target')
def probe_after_http(ctx, name):
    ctx.http  # not an AWS read: a read-ahead stops here
    _read(ctx, name)
    return CheckResult.passed(name, "read", "read")


def _slow_read(ctx, name, ms):
    def made():
        time.sleep(ms / 1000)  # a slow endpoint, or the pool's queue; then an AWS request, under the deadline
        ctx.aws.call("sts", "get_caller_identity")
        with LOG.open("a", encoding="utf-8") as out:
            out.write(f"{name} {'ahead' if AHEAD.get() else 'in turn'}\\n")
    ctx.aws.memo(("probe", name), made)


@check('the probe "{name}" is read in {ms:d} ms', permissions=("sts:GetCallerIdentity",))
def probe_slow(ctx, name, ms):
    _slow_read(ctx, name, ms)
    return CheckResult.passed(name, "read", "read")


@check('the probe "{first}" is read in {first_ms:d} ms, then "{second}" in {second_ms:d} ms',
       permissions=("sts:GetCallerIdentity",))
def probe_two_slow(ctx, first, first_ms, second, second_ms):
    _slow_read(ctx, first, first_ms)
    _slow_read(ctx, second, second_ms)
    return CheckResult.passed(second, "read", "read")


@check('we wait {ds:d} ds')
def probe_wait(ctx, ds):
    time.sleep(ds / 10)
    return CheckResult.passed("time", "waited", "waited")


@check('the probe "{name}" fails')
def probe_fails(ctx, name):
    _read(ctx, name)
    return CheckResult.failed(name, "pass", "failed on purpose", "none")


@check('the probe "{name}" has been read ahead')
def probe_waits(ctx, name):
    deadline = time.monotonic() + 20  # bounded: the read-ahead starts as this scenario does
    while time.monotonic() < deadline:
        if f"{name} ahead" in _lines():
            return CheckResult.passed(name, "read ahead", "read ahead")
        time.sleep(0.02)
    return CheckResult.failed(name, "read ahead", f"not read ahead: {_lines()}", "none")


@check('the probe guard "{verdict}" holds', guard=True)
def probe_guard(ctx, verdict):
    if _lines():  # nothing may be read ahead before the guard has passed
        return CheckResult.failed("guard", "nothing read yet", f"read before the guard: {_lines()}", "none")
    time.sleep(0.3)  # time for a read-ahead that should not happen to happen
    if _lines() or verdict != "pass":
        return CheckResult.failed("guard", "pass", f"{verdict}; read: {_lines()}", "none")
    return CheckResult.passed("guard", "pass", "pass")
'''


def probe_project(tmp_path: Path, feature: str, aws: str = 'target = "moto"\nregion = "eu-west-1"',
                  declared: bool = True) -> Path:
    """A project with the probe steps (their module declaring READ_AHEAD = True, unless not ``declared``: then
    not at all) and ``feature``."""
    (tmp_path / "steps").mkdir()
    steps = PROBE_STEPS.replace("READ_AHEAD = {read_ahead}", "READ_AHEAD = True" if declared else "")
    (tmp_path / "steps" / "probes.py").write_text(steps, encoding="utf-8")
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "probe.feature").write_text(textwrap.dedent(feature), encoding="utf-8")
    config = tmp_path / "runbooks.toml"
    config.write_text(f'default_environment = "probe"\n[environments.probe.aws]\n{aws}\n', encoding="utf-8")
    return config


def run(config: Path, reports: Path) -> tuple[int, dict[str, str]]:
    code = main(["verify", "--config", str(config), "--no-history", "--report-dir", str(reports)])
    # the run's end waited for every read-ahead: nothing reads once it has returned
    assert not [t.name for t in threading.enumerate() if t.name.startswith("runbooks-read-ahead")]
    results = json.loads((reports / "results.json").read_text())["results"]
    return code, {r["step"]: r["outcome"] for r in results}


@pytest.fixture
def probe_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    log = tmp_path / "probe.log"
    monkeypatch.setenv("RUNBOOKS_PROBE_LOG", str(log))
    return log


def test_the_next_scenarios_are_read_while_one_runs_and_stop_where_their_turn_would(
        tmp_path: Path, probe_log: Path) -> None:
    config = probe_project(tmp_path, """\
        Feature: Probes
          Scenario: First
            Then the probe "b" has been read ahead

          Scenario: Second
            Then the probe "b" is read
            And the probe "c" is read after asking the HTTP target
            And the probe "d" is read

          Scenario: Third
            Given the probe "e" fails
            Then the probe "f" is read
        """)
    code, outcomes = run(config, tmp_path / "reports")
    assert code == 1
    assert outcomes == {
        'the probe "b" has been read ahead': "pass",  # Second was read while First ran
        'the probe "b" is read': "pass",
        'the probe "c" is read after asking the HTTP target': "pass",
        'the probe "d" is read': "pass",
        'the probe "e" fails': "fail",
        'the probe "f" is read': "skipped",  # its turn never came
    }
    lines = probe_log.read_text().splitlines()
    assert sorted(lines) == sorted([
        "b ahead",  # once, ahead; its turn found it in the memo
        "c in turn",  # the read-ahead of Second stopped at the HTTP target: c and d waited for their turn
        "d in turn",
        *[line for line in lines if line.startswith("e ")],  # e: ahead or in turn, once
    ]), lines
    assert len([line for line in lines if line.startswith("e ")]) == 1
    assert not any(line.startswith("f ") for line in lines)  # after a failed Given: neither ahead nor in turn


def test_nothing_is_read_ahead_before_the_guard_has_passed(tmp_path: Path, probe_log: Path) -> None:
    feature = """\
        Feature: Guarded
          Scenario: The right place
            Given the probe guard "{verdict}" holds
            Then the probe "b" has been read ahead
            And the probe "a" is read

          Scenario: Later
            Then the probe "b" is read
        """
    config = probe_project(tmp_path, feature.format(verdict="pass"))
    code, outcomes = run(config, tmp_path / "reports")
    assert code == 0, outcomes
    assert sorted(probe_log.read_text().splitlines()) == ["a ahead", "b ahead"]

    probe_log.unlink()
    (tmp_path / "features" / "probe.feature").write_text(textwrap.dedent(feature.format(verdict="fail")))
    code, outcomes = run(config, tmp_path / "reports-failed")
    assert code == 2  # the guard stopped the run
    assert not probe_log.exists()  # and nothing after it was read, ahead or not


@pytest.mark.parametrize("setting", ["read_ahead = 0", "a team's module without READ_AHEAD"])
def test_read_ahead_0_or_an_undeclared_module_reads_each_step_in_its_turn(
        tmp_path: Path, probe_log: Path, setting: str) -> None:
    config = probe_project(tmp_path, """\
        Feature: Probes
          Scenario: First
            Then the probe "a" is read
            And the probe "b" is read

          Scenario: Second
            Then the probe "c" is read
        """, aws='target = "moto"\nregion = "eu-west-1"\n' + (setting if setting.startswith("read_ahead") else ""),
        declared=setting.startswith("read_ahead"))
    code, _ = run(config, tmp_path / "reports")
    assert code == 0
    assert probe_log.read_text().splitlines() == ["a in turn", "b in turn", "c in turn"]


@pytest.mark.timeout(120)
def test_twenty_accounts_report_the_same_with_and_without_read_ahead(
        tmp_path: Path, moto_server: MotoServer, endpoint_credentials: None) -> None:
    """Reads ahead across 20 accounts x 2 regions: the same records, in the same order, from the same number
    of API calls (none made twice)."""
    config = seed_fleet(moto_server, tmp_path)
    runs: list[tuple[int, list[dict[str, Any]], int]] = []
    for read_ahead in (0, 8):
        config.write_text(config.read_text().replace("[environments.fleet.aws]\n",
                                                     f"[environments.fleet.aws]\nread_ahead = {read_ahead}\n"))
        reports = tmp_path / f"reports-{read_ahead}"
        code = main(["verify", "--config", str(config), "--no-history", "--report-dir", str(reports)])
        calls = json.loads((reports / "results.json").read_text())["run"]["aws_api_calls"]
        runs.append((code, exact_records(reports), calls))
        config.write_text(config.read_text().replace(f"read_ahead = {read_ahead}\n", ""))
    (code_off, records_off, calls_off), (code_on, records_on, calls_on) = runs
    assert code_on == code_off == 1
    assert records_on == records_off and len(records_on) > 60
    assert calls_on == calls_off


@pytest.mark.parametrize("value", ["-1", "65", "1.5", '"4"', "true"])
def test_a_bad_read_ahead_names_the_file_and_line(tmp_path: Path, value: str) -> None:
    path = tmp_path / "runbooks.toml"
    path.write_text(f'[environments.prod]\naws = {{ target = "live", region = "eu-west-1", read_ahead = {value} }}\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}:2: environment 'prod': aws.read_ahead must be a whole number from "
                                        "0 (off) to 64 (scenarios read ahead), got ")


def test_nothing_after_a_later_guard_is_read_before_it_passes(tmp_path: Path, probe_log: Path) -> None:
    config = probe_project(tmp_path, """\
        Feature: A guard further on
          Scenario: First
            Then we wait 5 ds

          Scenario: The right place
            Given the probe guard "fail" holds
            Then the probe "x" is read

          Scenario: Later
            Then the probe "y" is read
        """)
    code, outcomes = run(config, tmp_path / "reports")
    assert code == 2, outcomes  # the guard stopped the run
    assert not probe_log.exists()  # x and y never read: not ahead (the guard came first), not in turn


def test_a_step_in_its_turn_waits_for_the_read_ahead_of_its_read_under_its_own_deadline(
        tmp_path: Path, probe_log: Path) -> None:
    """Step 2 shares step 1's slow read and has one of its own: read ahead, step 2 waits for step 1's read,
    then starts its own, which its turn (0.8 s in) waits for. That read-ahead has no step deadline of its own
    (with one, started 1.3 s earlier, it would have given up and failed the step waiting for it)."""
    config = probe_project(tmp_path, """\
        Feature: Shared reads
          Scenario: Two steps share a listing
            Then the probe "listing" is read in 800 ms
            And the probe "listing" is read in 800 ms, then "detail" in 500 ms
        """, aws='target = "moto"\nregion = "eu-west-1"')
    config.write_text("step_timeout_s = 1\n" + config.read_text())
    code, outcomes = run(config, tmp_path / "reports")
    assert code == 0, outcomes
    lines = sorted(probe_log.read_text().splitlines())
    assert [line.split()[0] for line in lines] == ["detail", "listing"] and "detail ahead" in lines, lines
