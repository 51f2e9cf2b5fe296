"""`runbooks verify` end to end: the shipped sandboxes, tags, usage errors, exit codes, step order."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from runbooks.cli import main
from runbooks.sandbox.service import ReferenceService
from runbooks.sandbox.stack import ServiceSpec
from tests.conftest import REPO, write_config
from tests.support.moto_server import closed_port_url

# The walking skeleton's runbook; named explicitly so that runbooks still being written elsewhere in
# features/ do not change what these tests prove.
POST_DEPLOY = "features/deployment/post_deploy_validation.feature"
# The drift `sandbox-drifted` injects (infra/sandbox_stack.toml): step -> (expected, start of observed).
DRIFTS = {
    'the S3 bucket "acme-templates-sandbox" has versioning enabled': (
        "versioning Enabled",
        "versioning Suspended",
    ),
    'the S3 bucket "acme-logs-sandbox" blocks all public access': (
        "all four public-access-block settings on (BlockPublicAcls, IgnorePublicAcls, BlockPublicPolicy, "
        "RestrictPublicBuckets)",
        "BlockPublicAcls, IgnorePublicAcls, BlockPublicPolicy, RestrictPublicBuckets off "
        "(no bucket-level block",
    ),
    'the DynamoDB table "acme-tenants-sandbox" has point-in-time recovery enabled': (
        "PointInTimeRecoveryStatus ENABLED",
        "PointInTimeRecoveryStatus DISABLED",
    ),
    'the DynamoDB table "acme-audit-sandbox" has tag "owner" set to "security-team"': (
        "tag owner=security-team",
        "no tag 'owner'",
    ),
    'the service "api" answers GET "/health/ready" with status 200 within 1000 ms': (
        "HTTP 200 within 1000 ms",
        "HTTP 503 in ",
    ),
}
INTEGRITY_DRIFTS = {
    step for step in DRIFTS if "blocks" in step or "versioning" in step or "point-in-time" in step
}


@dataclass
class Outcome:
    code: int
    out: str
    err: str
    reports: Path

    def results(self) -> dict[str, Any]:
        return json.loads((self.reports / "results.json").read_text())  # type: ignore[no-any-return]


def verify(*args: str, reports: Path, config: Path | None = None) -> Outcome:
    """`runbooks verify` in-process, its output captured (usable from module-scoped fixtures)."""
    out, err = io.StringIO(), io.StringIO()
    argv = [
        "verify",
        "--config",
        str(config or REPO / "runbooks.toml"),
        "--report-dir",
        str(reports),
        "--no-history",
        *args,
    ]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return Outcome(code, out.getvalue(), err.getvalue(), reports)


def failures_in(out: str) -> dict[str, dict[str, str]]:
    """FAIL blocks of the printed procedure: step text -> {"expected": ..., "observed": ...}.

    A step line is indented by 4 (``FAIL    And <step>  (3 ms)``), its details by 10 (``expected: ...``).
    """
    found: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in out.splitlines():
        stripped = line.strip()
        if line.startswith("    FAIL "):
            step = stripped[len("FAIL") :].strip().split(" ", 1)[1]  # drop the keyword
            step = step.rsplit("  (", 1)[0]  # drop the timing
            current = found.setdefault(step, {})
        elif current is not None and line.startswith(" " * 10) and ": " in stripped:
            label, value = stripped.split(": ", 1)
            current[label] = value
        else:
            current = None
    return found


@pytest.fixture(scope="module")
def healthy(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    return verify(str(REPO / POST_DEPLOY), "--env", "sandbox", reports=tmp_path_factory.mktemp("healthy"))


@pytest.fixture(scope="module")
def drifted(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    return verify(
        str(REPO / POST_DEPLOY), "--env", "sandbox-drifted", reports=tmp_path_factory.mktemp("drifted")
    )


# the shipped sandboxes ---------------------------------------------------------------------------------
def test_healthy_sandbox_passes(healthy: Outcome) -> None:
    assert healthy.code == 0, healthy.out + healthy.err
    assert "runbooks verify: environment sandbox (moto, eu-west-1)" in healthy.out
    assert " 0 failed, 0 errors" in healthy.out
    assert healthy.out.rstrip().splitlines()[-2].endswith("-> exit 0")
    assert "FAIL" not in healthy.out and "ERROR" not in healthy.out
    assert healthy.results()["run"]["exit_code"] == 0


def test_drifted_sandbox_fails_naming_each_drift(drifted: Outcome) -> None:
    assert drifted.code == 1, drifted.out + drifted.err
    failures = failures_in(drifted.out)
    for step, (expected, observed) in DRIFTS.items():
        assert step in failures, f"drift not reported: {step}\n{drifted.out}"
        assert failures[step]["expected"] == expected
        assert failures[step]["observed"].startswith(observed)
        assert failures[step]["fix"]  # and what to do about it
        assert failures[step]["by hand"]
    assert " -> exit 1" in drifted.out


def test_drifted_sandbox_still_passes_everything_else(drifted: Outcome) -> None:
    records = [r for r in drifted.results()["results"] if r["runbook"] == POST_DEPLOY]
    failing = {r["step"] for r in records if r["outcome"] == "fail"}
    assert failing == set(DRIFTS)
    others = {r["outcome"] for r in records if r["step"] not in DRIFTS}
    assert others == {"pass", "manual"}
    assert sum(r["outcome"] == "pass" for r in records) >= 25


def test_plain_pytest_runs_the_same_checks(tmp_path: Path) -> None:
    # `pytest <feature> --runbooks-env NAME` (root conftest.py loads the plugin): same checks, pytest's exit
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "RUNBOOKS_"))}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            POST_DEPLOY,
            "--runbooks-env",
            "sandbox-drifted",
            "--runbooks-report-dir",
            str(tmp_path),
            "--runbooks-no-history",
            "-p",
            "no:cacheprovider",
            "-q",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output
    for step, (expected, observed) in DRIFTS.items():
        assert step in output
        assert f"expected: {expected}" in output
        assert f"observed: {observed}" in output
    assert "4 failed" in output  # scenarios: both bucket drifts are in one
    assert json.loads((tmp_path / "results.json").read_text())["run"]["environment"] == "sandbox-drifted"


# tags --------------------------------------------------------------------------------------------------
def test_tags_select_scenarios(tmp_path: Path) -> None:
    result = verify(
        str(REPO / POST_DEPLOY), "--env", "sandbox-drifted", "--tags", "@integrity", reports=tmp_path
    )
    assert result.code == 1
    records = result.results()["results"]
    assert records and all("integrity" in r["tags"] for r in records)
    assert {r["step"] for r in records if r["outcome"] == "fail"} == INTEGRITY_DRIFTS
    assert "Scenario: The API is live and ready to take traffic" not in result.out


def test_invalid_tag_expression_is_a_usage_error(tmp_path: Path) -> None:
    result = verify(str(REPO / POST_DEPLOY), "--tags", "@integrity and (", reports=tmp_path)
    assert result.code == 2
    assert result.err.startswith("runbooks: error: --tags: invalid tag expression '@integrity and ('")
    assert len(result.err.splitlines()) == 1
    assert not (tmp_path / "results.json").exists()


def test_tags_matching_nothing_is_a_usage_error(tmp_path: Path) -> None:
    result = verify(str(REPO / POST_DEPLOY), "--tags", "@no-such-tag", reports=tmp_path)
    assert result.code == 2
    assert result.err == "runbooks: error: no scenario matches --tags '@no-such-tag'\n"
    assert not (tmp_path / "results.json").exists()


def test_unknown_environment_is_a_usage_error(tmp_path: Path) -> None:
    result = verify("--env", "sandbx", reports=tmp_path)
    assert result.code == 2
    assert result.err == (
        f"runbooks: error: {REPO / 'runbooks.toml'}: unknown environment 'sandbx'; "
        "did you mean 'sandbox' or 'sandbox-drifted'?\n"
    )
    assert not (tmp_path / "results.json").exists()


# exit codes and step order on small projects --------------------------------------------------------------
@pytest.fixture(scope="module")
def api() -> Iterator[str]:
    service = ReferenceService(ServiceSpec(ready_status=503)).start()  # /health/live 200, /health/ready 503
    yield service.url
    service.stop()


def project(tmp_path: Path, api: str, feature: str) -> Path:
    config = write_config(
        tmp_path,
        f"""\
        [environments.test]
        aws = {{ target = "moto", region = "eu-west-1" }}
        services = {{ api = "{api}", down = {{ url = "{closed_port_url()}", timeout_s = 2 }} }}
        """,
    )
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "subject.feature").write_text(textwrap.dedent(feature), encoding="utf-8")
    return config


def run_project(tmp_path: Path, api: str, feature: str, capsys: pytest.CaptureFixture[str]) -> Outcome:
    config = project(tmp_path, api, feature)
    code = main(
        ["verify", "--config", str(config), "--report-dir", str(tmp_path / "reports"), "--no-history"]
    )
    out, err = capsys.readouterr()
    return Outcome(code, out, err, tmp_path / "reports")


LIVE = 'the service "api" answers GET "/health/live" with status 200 within 5000 ms'
READY = 'the service "api" answers GET "/health/ready" with status 200 within 5000 ms'
DOWN = 'the service "down" answers GET "/health" with status 200 within 5000 ms'


def test_only_errors_exit_3(tmp_path: Path, api: str, capsys: pytest.CaptureFixture[str]) -> None:
    result = run_project(
        tmp_path,
        api,
        f"""\
        Feature: Could not check
          Scenario: One service is down, the other fine
            Then {DOWN}
            And {LIVE}
        """,
        capsys,
    )
    assert result.code == 3, result.out + result.err
    assert "2 automated steps: 1 passed, 0 failed, 1 errors -> exit 3" in result.out
    assert "could not check: connection refused" in result.out
    outcomes = [r["outcome"] for r in result.results()["results"]]
    assert outcomes == ["error", "pass"]
    assert result.results()["run"]["exit_code"] == 3


def test_a_fail_outweighs_errors(tmp_path: Path, api: str, capsys: pytest.CaptureFixture[str]) -> None:
    result = run_project(
        tmp_path,
        api,
        f"""\
        Feature: Both
          Scenario: Down and not ready
            Then {DOWN}
            And {READY}
        """,
        capsys,
    )
    assert result.code == 1
    assert [r["outcome"] for r in result.results()["results"]] == ["error", "fail"]


def test_failed_given_skips_the_rest_and_failed_then_does_not(
    tmp_path: Path, api: str, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run_project(
        tmp_path,
        api,
        f"""\
        Feature: Step order
          Scenario: A failed precondition stops the scenario
            Given {READY}
            When {LIVE}
            Then {LIVE}
            * manual: tell the team

          Scenario: A precondition that could not be checked stops it too
            Given {DOWN}
            Then {LIVE}

          Scenario: Failed checks do not stop the checks after them
            Given {LIVE}
            Then {READY}
            And the service "api" answers GET "/missing" with status 200 within 5000 ms
            And {LIVE}
        """,
        capsys,
    )
    assert result.code == 1
    by_scenario: dict[str, list[tuple[str, str]]] = {}
    for r in result.results()["results"]:
        by_scenario.setdefault(r["scenario"], []).append((r["step"], r["outcome"]))
    assert by_scenario == {
        "A failed precondition stops the scenario": [
            (READY, "fail"),
            (LIVE, "skipped"),
            (LIVE, "skipped"),
            ("manual: tell the team", "skipped"),
        ],
        "A precondition that could not be checked stops it too": [(DOWN, "error"), (LIVE, "skipped")],
        "Failed checks do not stop the checks after them": [
            (LIVE, "pass"),
            (READY, "fail"),
            ('the service "api" answers GET "/missing" with status 200 within 5000 ms', "fail"),
            (LIVE, "pass"),
        ],
    }
    assert f"SKIP    When {LIVE}" in result.out
    assert "observed: HTTP 404" in result.out
