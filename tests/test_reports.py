"""results.json and JUnit XML, as written by one real `runbooks verify` run over a small project."""

from __future__ import annotations

import contextlib
import io
import json
import textwrap
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from runbooks import __version__
from runbooks.cli import main
from runbooks.reports import junit_classname, junit_xml, read_results_json
from runbooks.result import Outcome, StepRecord
from runbooks.sandbox.service import ReferenceService
from runbooks.sandbox.stack import ServiceSpec
from tests.conftest import write_config
from tests.support.moto_server import closed_port_url

PUBLIC_FIELDS = (
    "runbook",
    "scenario",
    "step",
    "outcome",
    "resource",
    "expected",
    "observed",
    "hint",
    "manual_command",
    "duration_ms",
    "severity",
    "tags",
)
LIVE = 'the service "api" answers GET "/health/live" with status 200 within 5000 ms'
READY = 'the service "api" answers GET "/health/ready" with status 200 within 5000 ms'
FEATURE = """\
    @owner:platform-team @severity:high
    Feature: Report subject

      Scenario: All good
        Then the service "api" answers GET "{live_path}" with status 200 within 5000 ms
        * manual: tell the team in #deployments

      @severity:critical @integrity
      Scenario: Not ready
        Then the service "api" answers GET "{ready_path}" with status 200 within 5000 ms
        And the service "api" answers GET "{live_path}" with status 200 within 5000 ms

      Scenario: Could not check
        Then the service "down" answers GET "/health" with status 200 within 5000 ms

      Scenario: Precondition failed
        Given the service "api" answers GET "{ready_path}" with status 200 within 5000 ms
        Then the service "api" answers GET "{live_path}" with status 200 within 5000 ms

      Scenario: Only by hand
        Then manual: look at the dashboard
    """
# scenario -> outcomes of its steps, in order
EXPECTED = {
    "All good": ["pass", "manual"],
    "Not ready": ["fail", "pass"],
    "Could not check": ["error"],
    "Precondition failed": ["fail", "skipped"],
    "Only by hand": ["manual"],
}


@dataclass
class Report:
    code: int
    out: str
    data: dict[str, Any]
    junit: ET.Element
    directory: Path


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Report]:
    root = tmp_path_factory.mktemp("project")
    service = ReferenceService(ServiceSpec(ready_status=503)).start()
    try:
        config = write_config(
            root,
            f"""\
            [environments.test]
            aws = {{ target = "moto", region = "eu-west-1" }}
            vars = {{ live_path = "/health/live", ready_path = "/health/ready" }}
            services = {{ api = "{service.url}", down = {{ url = "{closed_port_url()}", timeout_s = 2 }} }}
            """,
        )
        (root / "features").mkdir()
        (root / "features" / "subject.feature").write_text(textwrap.dedent(FEATURE), encoding="utf-8")
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            code = main(
                ["verify", "--config", str(config), "--report-dir", str(root / "reports"), "--no-history"]
            )
    finally:
        service.stop()
    data = json.loads((root / "reports" / "results.json").read_text(encoding="utf-8"))
    junit = ET.parse(root / "reports" / "junit.xml").getroot()
    yield Report(code, out.getvalue(), data, junit, root / "reports")


def test_the_run_fails(report: Report) -> None:
    assert report.code == 1, report.out
    assert report.data["run"]["exit_code"] == 1


def test_run_metadata(report: Report) -> None:
    run = report.data["run"]
    assert run["environment"] == "test"
    assert run["target"] == "moto"
    started = datetime.fromisoformat(run["started_at"])
    finished = datetime.fromisoformat(run["finished_at"])
    assert started.tzinfo is not None and started <= finished
    assert "git_commit" in run and run["git_commit"] is None  # the project is not a git checkout
    assert run["tool_version"] == __version__
    assert run["counts"] == {"pass": 2, "fail": 2, "error": 1, "manual": 2, "skipped": 1}


def test_one_record_per_step_with_the_public_fields(report: Report) -> None:
    records = report.data["results"]
    assert len(records) == sum(len(v) for v in EXPECTED.values())
    for record in records:
        assert set(PUBLIC_FIELDS) <= set(record), record
        assert set(record) == set(StepRecord.__dataclass_fields__)  # nothing ad hoc beside the dataclass
    by_scenario: dict[str, list[str]] = {}
    for record in records:
        by_scenario.setdefault(record["scenario"], []).append(record["outcome"])
    assert by_scenario == EXPECTED
    assert {r["runbook"] for r in records} == {"features/subject.feature"}


def test_placeholders_are_resolved_in_the_step_text(report: Report) -> None:
    steps = {r["step"] for r in report.data["results"]}
    assert LIVE in steps and READY in steps
    assert not [s for s in steps if "{" in s]


def test_a_failed_step_carries_its_evidence(report: Report) -> None:
    failed = next(
        r for r in report.data["results"] if r["scenario"] == "Not ready" and r["outcome"] == "fail"
    )
    assert failed["step"] == READY
    assert failed["resource"].endswith("/health/ready")
    assert failed["expected"] == "HTTP 200 within 5000 ms"
    assert failed["observed"].startswith("HTTP 503 in ")
    assert "not ready" in failed["observed"]  # the body excerpt
    assert failed["hint"]
    assert failed["manual_command"].startswith("curl ") and failed["resource"] in failed["manual_command"]
    assert isinstance(failed["duration_ms"], float) and failed["duration_ms"] >= 0
    assert failed["severity"] == "critical"  # the scenario's tag wins over the feature's
    assert {"integrity", "owner:platform-team", "severity:critical"} <= set(failed["tags"])


def test_severity_falls_back_to_the_feature(report: Report) -> None:
    records = [r for r in report.data["results"] if r["scenario"] == "All good"]
    assert {r["severity"] for r in records} == {"high"}
    assert all("integrity" not in r["tags"] for r in records)


def test_manual_and_skipped_steps(report: Report) -> None:
    manual = [r for r in report.data["results"] if r["outcome"] == "manual"]
    assert [r["step"] for r in manual] == [
        "manual: tell the team in #deployments",
        "manual: look at the dashboard",
    ]
    skipped = next(r for r in report.data["results"] if r["outcome"] == "skipped")
    assert (skipped["scenario"], skipped["step"]) == ("Precondition failed", LIVE)
    error = next(r for r in report.data["results"] if r["outcome"] == "error")
    assert error["observed"] == "connection refused"


def test_automation_coverage_per_runbook(report: Report) -> None:
    (runbook,) = report.data["runbooks"]
    records = report.data["results"]
    automated = sum(r["outcome"] != "manual" for r in records)
    assert runbook["runbook"] == "features/subject.feature"
    assert (runbook["steps"], runbook["automated_steps"]) == (len(records), automated)
    assert runbook["automation_coverage"] == round(automated / len(records), 3)
    assert runbook["counts"] == dict(Counter(r["outcome"] for r in records))


def test_results_json_reads_back(report: Report) -> None:
    metadata, records = read_results_json(report.directory / "results.json")
    assert metadata["environment"] == "test"
    assert [r.to_json() for r in records] == report.data["results"]


def test_junit_xml(report: Report) -> None:
    root = report.junit
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    cases = {case.get("name"): case for case in suite.findall("testcase")}
    assert set(cases) == set(EXPECTED)

    def kinds(name: str) -> list[str]:
        return [child.tag for child in cases[name] if child.tag in ("failure", "error", "skipped")]

    assert kinds("All good") == []
    assert kinds("Not ready") == ["failure"]
    assert kinds("Precondition failed") == ["failure"]
    assert kinds("Could not check") == ["error"]
    assert kinds("Only by hand") == ["skipped"]

    failure = cases["Not ready"].find("failure")
    assert failure is not None
    assert "expected HTTP 200 within 5000 ms, observed HTTP 503" in (failure.get("message") or "")
    assert "observed: HTTP 503" in (failure.text or "")
    error = cases["Could not check"].find("error")
    assert error is not None and "connection refused" in (error.text or "")

    for element in (suite, root):
        assert element.get("tests") == "5"
        assert element.get("failures") == "2"
        assert element.get("errors") == "1"
        assert element.get("skipped") == "1"
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties["environment"] == "test"
    assert properties["tool_version"] == __version__


def test_junit_names_and_places_each_testcase(report: Report) -> None:
    (suite,) = report.junit.findall("testsuite")
    lines = textwrap.dedent(FEATURE).splitlines()
    for case in suite.findall("testcase"):
        assert case.get("classname") == "features.subject"
        assert case.get("file") == "features/subject.feature"
        scenario_line = lines.index(f"  Scenario: {case.get('name')}") + 1
        assert case.get("line") == str(scenario_line + 1)  # the scenario's first step


def test_junit_times_add_up_and_the_suite_says_when(report: Report) -> None:
    root = report.junit
    (suite,) = root.findall("testsuite")
    cases = suite.findall("testcase")
    assert float(root.get("time") or "nan") == pytest.approx(float(suite.get("time") or "nan"), abs=0.001)
    assert float(suite.get("time") or "nan") == pytest.approx(sum(float(c.get("time") or "nan") for c in cases),
                                                              abs=0.001 * len(cases))
    assert suite.get("timestamp") == report.data["run"]["started_at"]


@pytest.mark.parametrize(
    ("runbook", "classname"),
    [
        ("features/deployment/post_deploy_validation.feature", "features.deployment.post_deploy_validation"),
        ("features/v1.2/smoke.test.feature", "features.v1_2.smoke_test"),
        ("/abs/runbook.feature", "abs.runbook"),
    ],
)
def test_junit_classname_is_dotted_by_path_component(runbook: str, classname: str) -> None:
    assert junit_classname(runbook) == classname


def test_junit_from_records_sums_time_over_suites() -> None:
    def step(runbook: str, scenario: str, outcome: Outcome, ms: float, line: int) -> StepRecord:
        return StepRecord(runbook, scenario, "a step", outcome, duration_ms=ms, line=line)

    records = [
        step("features/a.feature", "one", Outcome.PASS, 1500.0, 7),
        step("features/a.feature", "one", Outcome.WAIVED, 250.0, 8),
        step("features/ops/b.c.feature", "two", Outcome.SKIPPED, 0.0, 12),
        step("features/ops/b.c.feature", "three", Outcome.ERROR, 1000.0, 20),
    ]
    root = ET.fromstring(junit_xml({"environment": "x", "started_at": "2024-05-01T10:00:00+00:00"}, records))
    assert root.get("time") == "2.750"
    assert [s.get("time") for s in root.findall("testsuite")] == ["1.750", "1.000"]
    assert {s.get("timestamp") for s in root.findall("testsuite")} == {"2024-05-01T10:00:00+00:00"}
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert [cases[n].get("classname") for n in ("one", "two", "three")] == [
        "features.a", "features.ops.b_c", "features.ops.b_c"
    ]
    assert [cases[n].get("line") for n in ("one", "two", "three")] == ["7", "12", "20"]
    assert [child.tag for child in cases["one"]] == ["system-out"]  # a waived FAIL passes
    assert cases["two"].find("skipped") is not None
    assert cases["three"].find("error") is not None
    assert (root.get("tests"), root.get("errors"), root.get("skipped"), root.get("failures")) == ("3", "1", "1", "0")
