"""What `runbooks verify` prints: the recap of what is broken at the end (each distinct failure once, most
severe first), later occurrences of a failure in one line, progress, the quiet modes, NO_COLOR and
terminals, a slow step named while it runs, and a reader that goes away (`runbooks verify | head`)."""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
import sys
import textwrap
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from runbooks.cli import main
from runbooks.result import SEVERITIES
from tests.conftest import REPO, write_config
from tests.support.status_service import StatusService

pytestmark = pytest.mark.timeout(300)

POST_DEPLOY = str(REPO / "features" / "deployment" / "post_deploy_validation.feature")
ESCAPE = "\x1b"
# One recap entry: "  3. CRITICAL FAIL  <step> — <resource>: <observed>; fix: <hint>  [5x in <where>, ...]"
ENTRY = re.compile(r"^ +\d+\. ([A-Z]+) (FAIL|ERROR)  (.+?) — (.+)  \[(?:(\d+)x )?in [^\[]+\]$")
STEP_LINE = re.compile(r"^    (PASS|FAIL|ERROR|MANUAL|SKIP|WAIVED) +(Given|When|Then|And|But|\*) ")


class Terminal(io.StringIO):
    """A stdout that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@dataclass
class Output:
    code: int
    out: str
    err: str
    results: dict[str, Any]

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


def verify(reports: Path, *args: str, stdout: io.StringIO | None = None) -> Output:
    out, err = stdout or io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["verify", "--config", str(REPO / "runbooks.toml"), "--env", "sandbox-drifted", "--no-history",
                     "--report-dir", str(reports), *args])
    results = json.loads((reports / "results.json").read_text(encoding="utf-8"))
    return Output(code, out.getvalue(), err.getvalue(), results)


@pytest.fixture(scope="module")
def drifted(tmp_path_factory: pytest.TempPathFactory) -> Output:
    return verify(tmp_path_factory.mktemp("drifted"))


def distinct_failures(results: dict[str, Any]) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
    """The rule, stated independently: the step as written, the resource and the observation with its
    measurements (numbers standing alone: 503, 3 ms, 9.1%) set aside."""
    found: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in results["results"]:
        if r["outcome"] in ("fail", "error"):
            observed = re.sub(r"(?<![\w.-])\d+(?:\.\d+)?", "#", r["observed"])
            found.setdefault((r["written"] or r["step"], r["resource"], observed), []).append(r)
    return found


def rank(severity: str) -> float:
    return SEVERITIES.index(severity) if severity in SEVERITIES else 0.5


def test_the_last_screen_lists_every_distinct_failure_once_most_severe_first(drifted: Output) -> None:
    assert drifted.code == 1, drifted.err
    found = distinct_failures(drifted.results)
    failing = sum(len(v) for v in found.values())
    assert len(found) < failing * 2 / 3  # the drifted sandbox: far fewer things to fix than failing steps
    tail = drifted.lines[-60:]
    entries = [m.groups() for line in tail if (m := ENTRY.match(line))]
    assert f"What is broken: {len(found)} distinct failures in {failing} steps, most severe first:" in tail
    assert len(entries) == len(found)
    assert Counter(step for _, _, step, _, _ in entries) == Counter(v[0]["step"] for v in found.values())
    severities = [severity.lower() for severity, *_ in entries]
    assert severities == sorted(severities, key=rank) and severities[0] == "critical"
    expected = {v[0]["step"]: (min((r["severity"] for r in v), key=rank), len(v)) for v in found.values()}
    for severity, _, step, _, times in entries:
        assert expected[step] == (severity.lower(), int(times or 1)), step
    # with the resource, what was observed and what to do
    (lock,) = [evidence for _, _, step, evidence, _ in entries if step.startswith("the Terraform lock table")]
    assert lock.startswith("dynamodb table acme-terraform-locks-sandbox (eu-west-1): 1 stale lock(s)")
    assert "; fix: first make sure each run is really dead" in lock
    assert tail[-3].startswith("Automation coverage: ") and tail[-2].startswith("Summary: ")
    assert tail[-1].startswith("Reports: ")


def test_a_failure_seen_before_is_one_line_pointing_at_the_first(drifted: Output) -> None:
    found = distinct_failures(drifted.results)
    repeats = [line for line in drifted.lines if line.startswith("          same failure as in ")]
    assert len(repeats) == sum(len(v) - 1 for v in found.values())
    stream = drifted.out.split("\nWhat is broken: ")[0]
    assert stream.count("observed: 1 stale lock(s): acme-tfstate-sandbox/platform/terraform.tfstate") == 1  # not 5
    assert "          same failure as in pre_deployment_checklist › No stale Terraform state lock blocks the apply " \
           "(evidence above)" in repeats


def test_progress_counts_the_runbooks_and_the_template_is_not_run(drifted: Output) -> None:
    runbooks = [r["runbook"] for r in drifted.results["runbooks"]]
    assert "features/TEMPLATE.feature" not in runbooks
    headings = [line for line in drifted.lines if " Runbook: " in line]
    assert [h.split("]")[0] + "]" for h in headings] == [f"[{n}/{len(runbooks)}]" for n in range(1, len(runbooks) + 1)]
    assert f"{len(runbooks)} runbook(s)" in drifted.lines[0]


def test_the_wording_of_the_end(drifted: Output) -> None:
    counts = drifted.results["run"]["counts"]
    manual = sum(1 for r in drifted.results["results"] if r["written"].startswith("manual:"))
    total = len(drifted.results["results"])
    coverage = next(line for line in drifted.lines if line.startswith("Automation coverage: "))
    assert coverage == (f"Automation coverage: {total - manual} of {total} steps automated "
                        f"({round(100 * (total - manual) / total)}%); {manual} manual steps are performed by a person")
    assert manual > counts.get("manual", 0)  # manual steps of skipped scenarios count as manual too
    assert "grep -E '^(http_requests_total" not in drifted.out and "(http_requests_total|http_requests_total)" \
        not in drifted.out
    assert ESCAPE not in drifted.out  # not a terminal: no escape codes


def test_quiet_prints_what_is_broken_and_the_summary(tmp_path: Path, drifted: Output) -> None:
    quiet = verify(tmp_path, "--quiet")
    assert quiet.code == 1
    assert len(quiet.lines) < 150, len(quiet.lines)
    assert not [line for line in quiet.lines if STEP_LINE.match(line) or "Scenario: " in line]
    start = quiet.lines.index(next(line for line in quiet.lines if line.startswith("What is broken: ")))
    assert [line for line in quiet.lines[1:start] if line] == []  # nothing before the recap but the first line
    recap = quiet.out[quiet.out.index("What is broken: "):]
    assert recap.split("\n", 1)[0] == drifted.out[drifted.out.index("What is broken: "):].split("\n", 1)[0]
    assert quiet.lines[-2].startswith("Summary: ")


def test_failures_only_prints_the_failing_steps_under_their_scenarios(tmp_path: Path, drifted: Output) -> None:
    failures = verify(tmp_path, "--failures-only")
    assert failures.code == 1
    steps = [line for line in failures.lines if STEP_LINE.match(line)]
    assert steps and {STEP_LINE.match(line).group(1) for line in steps} == {"FAIL"}  # type: ignore[union-attr]
    assert len(steps) == sum(1 for r in failures.results["results"] if r["outcome"] in ("fail", "error"))
    heading = None
    for line in failures.lines:  # every failing step under its scenario heading
        if line.startswith("  Scenario: "):
            heading = line
        elif STEP_LINE.match(line):
            assert heading is not None
    assert len(failures.lines) < len(drifted.lines) / 2
    assert "What is broken: " in failures.out


def test_no_color_on_a_terminal_writes_no_escape_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    coloured = verify(tmp_path, POST_DEPLOY, stdout=Terminal())
    assert f"{ESCAPE}[31;1mFAIL" in coloured.out  # a terminal gets colour...
    monkeypatch.setenv("NO_COLOR", "1")
    plain = verify(tmp_path, POST_DEPLOY, stdout=Terminal())
    assert plain.code == 1 and ESCAPE not in plain.out  # ...unless NO_COLOR is set
    assert "FAIL    Then the DynamoDB table" in plain.out


def test_a_reader_that_goes_away_ends_the_run_quietly(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "runbooks.cli", "verify", "--config", str(REPO / "runbooks.toml"), "--env",
         "sandbox-drifted", "--no-history", "--report-dir", str(tmp_path), POST_DEPLOY],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    head = [proc.stdout.readline() for _ in range(3)]  # `| head -3`
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 1, err  # its own exit code
    assert head[0].startswith("runbooks verify: environment sandbox-drifted")
    assert err == "", err  # no traceback, no BrokenPipeError


# A slow step, and the coverage of a skipped scenario's manual step ----------------------------------------
SLOW = """\
    Feature: Slow
      Scenario: One slow answer
        Given manual: tell the team
        Then the service "api" answers GET "/slow" with status 200 within 5000 ms

      @requires:docker
      Scenario: Not here
        Given manual: look at the containers
        Then the service "api" answers GET "/slow" with status 200 within 5000 ms
    """


@pytest.fixture
def slow_project(tmp_path: Path, status_service: StatusService) -> Path:
    status_service.set("/slow", 200, delay_s=2.8)
    write_config(tmp_path, f'[environments.test]\nservices = {{ api = "{status_service.url}" }}\n')
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "slow.feature").write_text(textwrap.dedent(SLOW), encoding="utf-8")
    return tmp_path


def run_slow(project: Path, stdout: io.StringIO) -> int:
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(io.StringIO()):
        return main(["verify", "--config", str(project / "runbooks.toml"), "--no-history", "--report-dir",
                     str(project / "reports")])


def test_a_slow_step_is_named_once_in_a_pipe(slow_project: Path) -> None:
    out = io.StringIO()
    assert run_slow(slow_project, out) == 0
    lines = out.getvalue().splitlines()
    running = [i for i, line in enumerate(lines) if "(still running after 2 s)" in line]
    assert len(running) == 1, lines
    assert lines[running[0]] == ('    ...     Then the service "api" answers GET "/slow" with status 200 within 5000 ms'
                                 "  (still running after 2 s)")
    assert lines[running[0] + 1].startswith("    PASS    Then the service")
    assert "[1/1] Runbook: Slow  (features/slow.feature)" in lines
    # the skipped scenario's manual step is still a manual step
    assert "Automation coverage: 2 of 4 steps automated (50%); 2 manual steps are performed by a person" in lines
    assert any(line.startswith("Summary: 2 automated steps: 1 passed, 0 failed, 0 errors, 1 skipped, 2 manual")
               for line in lines)


def test_a_slow_step_is_a_transient_line_on_a_terminal(slow_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setenv("COLUMNS", "200")  # the transient line is cut to the terminal's width
    out = Terminal()
    assert run_slow(slow_project, out) == 0
    text = out.getvalue()
    assert ESCAPE not in text
    shown = re.findall(r"\r(    \.\.\.     Then the service [^\r\n]*\(running, \d s\))", text)
    assert shown, text
    # erased before the step's own line: spaces over it, back to the start of the line
    after = text[text.index(shown[-1]) + len(shown[-1]):]
    assert after.startswith("\r" + " " * len(shown[-1]) + "\r    PASS    Then the service")
    assert "still running" not in text
