"""`runbooks verify` and plain `pytest --runbooks-env` tell the same story, record by record: results.json,
JUnit, Cucumber JSON — and pytest's own outcome for each scenario (FAIL -> failed, ERROR -> error,
nothing automated -> skipped).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from runbooks.cli import main
from runbooks.result import CUCUMBER_STATUS, Outcome, StepRecord, scenario_outcome
from tests.support.status_service import StatusService

REPO = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

# A pytest plugin for the subprocess: the category pytest itself gives each scenario (what -rA prints).
OUTCOME_LOG = '''
import json, os

OUTCOMES = {}
CONFIG = []

def pytest_configure(config):
    CONFIG.append(config)

def pytest_runtest_logreport(report):
    config = CONFIG[0]
    category = config.hook.pytest_report_teststatus(report=report, config=config)[0]
    if report.when == "call" or (report.when == "setup" and report.skipped):
        OUTCOMES[report.location[0] + "::" + report.location[2]] = category

def pytest_unconfigure(config):
    with open(os.environ["OUTCOME_LOG"], "w") as handle:
        json.dump(OUTCOMES, handle)
'''


def run_verify(config: Path, env: str, out: Path) -> int:
    return main(["verify", "--config", str(config), "--env", env, "--report-dir", str(out), "--no-history",
                 "--cucumber-json", str(out / "cucumber.json")])


def run_pytest(root: Path, env: str, out: Path, tmp_path: Path) -> tuple[int, dict[str, str], str]:
    (tmp_path / "outcome_log.py").write_text(OUTCOME_LOG, encoding="utf-8")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    environ |= {"PYTHONPATH": str(tmp_path), "OUTCOME_LOG": str(tmp_path / "outcomes.json")}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "features", "-p", "outcome_log", "-p", "no:cacheprovider", "-q", "-rA",
         "--runbooks-env", env, "--runbooks-report-dir", str(out), "--runbooks-no-history",
         "--cucumberjson", str(out / "cucumber.json"), "-W", "error"],
        cwd=root, env=environ, capture_output=True, text=True, timeout=240, check=False,
    )
    outcomes = json.loads((tmp_path / "outcomes.json").read_text()) if (tmp_path / "outcomes.json").exists() else {}
    return proc.returncode, outcomes, proc.stdout + proc.stderr


def steps_of(results: Path) -> dict[tuple[str, str, int], dict[str, Any]]:
    """results.json's records by (runbook, scenario, line), without what differs from run to run (durations,
    the sandbox API's port, generated ids)."""
    records = json.loads(results.read_text())["results"]
    return {(r["runbook"], r["scenario"], r["line"]): {k: v for k, v in r.items() if k != "duration_ms"}
            for r in records}


def stable(records: dict[tuple[str, str, int], dict[str, Any]]) -> dict[tuple[str, str, int], dict[str, Any]]:
    return {key: {k: _stable(v) for k, v in record.items()} for key, record in records.items()}


def _stable(value: Any) -> Any:
    """Run-dependent values (ports, generated ids and access key ids, measured numbers) replaced, structure kept."""
    if isinstance(value, str):
        return re.sub(r"(?:AKIA|ASIA)[0-9A-Z]{16}|[0-9a-f]{8}-[0-9a-f-]{27}|\d+(?:\.\d+)?", "N", value)
    if isinstance(value, dict):
        return {_stable(k): _stable(v) for k, v in value.items()}  # keys too: an offender's generated key id
    if isinstance(value, list):
        return [_stable(v) for v in value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "N"
    return value


def junit_cases(path: Path) -> dict[tuple[str, str], str]:
    cases = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        status = next((child.tag for child in case if child.tag in ("failure", "error", "skipped")), "passed")
        cases[(case.get("file", ""), case.get("name", ""))] = status
    return cases


def cucumber_steps(path: Path) -> dict[tuple[str, str, int], tuple[str, str]]:
    steps = {}
    for feature in json.loads(path.read_text()):
        for element in feature["elements"]:
            for step in element["steps"]:
                steps[(feature["uri"], element["name"], step["line"])] = (step["name"], step["result"]["status"])
    return steps


JUNIT_STATUS = {"passed": "passed", "failed": "failure", "error": "error", "skipped": "skipped"}


def compare(root: Path, config: Path, env: str, tmp_path: Path) -> tuple[int, dict[str, str]]:
    verify_out, pytest_out = tmp_path / "verify", tmp_path / "pytest"
    verify_code = run_verify(config, env, verify_out)
    pytest_code, outcomes, output = run_pytest(root, env, pytest_out, tmp_path)
    assert pytest_code in (0, 1), output[-4000:]
    assert pytest_code == min(verify_code, 1) or (verify_code == 3 and pytest_code == 1), (verify_code, output)

    # results.json: the same records
    records = steps_of(verify_out / "results.json")
    assert stable(records) == stable(steps_of(pytest_out / "results.json"))
    assert records

    # JUnit: the same cases, each with the outcome its records give
    by_scenario: dict[tuple[str, str], list[StepRecord]] = {}
    for record in records.values():
        by_scenario.setdefault((record["runbook"], record["scenario"]), []).append(StepRecord.from_json(record))
    expected = {key: scenario_outcome(items).value for key, items in by_scenario.items()}
    verify_junit = junit_cases(verify_out / "junit.xml")
    assert verify_junit == junit_cases(pytest_out / "junit.xml")
    assert verify_junit == {key: JUNIT_STATUS[outcome] for key, outcome in expected.items()}

    # Cucumber JSON: resolved names, a status per record (pytest-bdd's --cucumberjson writes the same file)
    cucumber = cucumber_steps(verify_out / "cucumber.json")
    assert cucumber.keys() == cucumber_steps(pytest_out / "cucumber.json").keys()
    assert [s for _, s in cucumber.values()] == [s for _, s in cucumber_steps(pytest_out / "cucumber.json").values()]
    assert cucumber == {
        (r["runbook"], r["scenario"], r["line"]): (r["step"], CUCUMBER_STATUS[Outcome(r["outcome"])])
        for r in records.values()}
    assert not [name for name, _ in cucumber.values() if re.search(r"\{[A-Za-z_]\w*\}", name)]  # resolved

    # pytest's own outcome of each scenario
    assert outcomes == {f"{runbook}::{scenario}": outcome for (runbook, scenario), outcome in expected.items()}
    return verify_code, outcomes


def test_the_drifted_sandbox_reads_the_same_through_verify_and_pytest(tmp_path: Path) -> None:
    code, outcomes = compare(REPO, REPO / "runbooks.toml", "sandbox-drifted", tmp_path)
    assert code == 1
    assert {"passed", "failed", "skipped"} <= set(outcomes.values())


def test_errors_and_manual_procedures_map_to_pytest_error_and_skipped(tmp_path: Path,
                                                                      status_service: StatusService) -> None:
    status_service.set("/ok", 200)
    status_service.set("/broken", 500)
    (tmp_path / "project" / "features").mkdir(parents=True)
    root = tmp_path / "project"
    (root / "features" / "api.feature").write_text(textwrap.dedent("""\
        @severity:high
        Feature: The API answers

          Scenario: Healthy
            Then the service "api" answers GET "/ok" with status 200 within 2000 ms

          Scenario: Broken
            Then the service "api" answers GET "/broken" with status 200 within 2000 ms

          Scenario: Unreachable
            Then the service "down" answers GET "/ok" with status 200 within 2000 ms

          Scenario: By hand only
            Given manual: ask the on-call engineer
        """), encoding="utf-8")
    config = root / "runbooks.toml"
    config.write_text(textwrap.dedent(f"""\
        [environments.ci]
        [environments.ci.services]
        api = {{ url = "{status_service.url}" }}
        down = {{ url = "http://127.0.0.1:9", timeout_s = 1 }}
        """), encoding="utf-8")
    code, outcomes = compare(root, config, "ci", tmp_path)
    assert code == 1
    assert outcomes == {
        "features/api.feature::Healthy": "passed",
        "features/api.feature::Broken": "failed",
        "features/api.feature::Unreachable": "error",
        "features/api.feature::By hand only": "skipped",
    }
