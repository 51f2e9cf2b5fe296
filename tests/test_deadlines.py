"""Bounds on time and memory: step and run deadlines, attempts counted as sent, HTTP total timeouts and
body caps — each against a real misbehaving server on 127.0.0.1 (tests/support/slow_servers.py).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from runbooks.cli import main
from runbooks.config import ConfigError, load_config
from runbooks.context import ScenarioState
from runbooks.deadlines import DEADLINE, Deadline, DeadlineReached, for_step
from runbooks.result import Outcome
from runbooks.session import Session
from runbooks.steps.aws_s3 import bucket_versioning_enabled
from runbooks.steps.http import http_get, metric_below
from tests.conftest import evaluate, write_config
from tests.support.moto_server import silent_server
from tests.support.slow_servers import counting_server, huge_body_server, trickle_server
from tests.support.status_service import StatusService

pytest_plugins = ["tests.support.moto_server"]  # endpoint_credentials
pytestmark = pytest.mark.timeout(60)

MiB = 1024 * 1024
S3_INTERNAL_ERROR = b"<Error><Code>InternalError</Code><Message>try again</Message></Error>"
S3_SLOW_DOWN = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"


def endpoint(url: str, extra: str = "", **aws: object) -> str:
    settings = "".join(f", {key} = {value}" for key, value in aws.items())
    return f'{extra}aws = {{ target = "endpoint", url = "{url}", region = "us-east-1"{settings} }}\n'


def web(url: str, extra: str = "", **service: object) -> str:
    settings = "".join(f", {key} = {value}" for key, value in service.items())
    return f'{extra}services = {{ web = {{ url = "{url}"{settings} }} }}\n'


def get(run: Session) -> tuple[float, Outcome, str]:
    started = time.monotonic()
    result = evaluate(run, http_get, ScenarioState(), path="/", service="web")
    return time.monotonic() - started, result.outcome, result.observed


def peak_rss_mib() -> float:
    """The process's resident-set high-water mark (VmHWM)."""
    text = Path("/proc/self/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", text).group(1)) / 1024  # type: ignore[union-attr]


# --- HTTP: a total timeout, not a per-read one ------------------------------------------------------------


def test_a_trickling_body_is_cut_at_the_service_timeout(run_factory: Callable[..., Session]) -> None:
    with trickle_server(body_bytes=120, interval_s=0.5) as server:  # 60 s in all; each read gets a byte
        took, outcome, observed = get(run_factory(web(server.url, timeout_s=1)))
    assert (outcome, observed) == (Outcome.ERROR, "no answer within 1 s (timeout)")
    assert took < 2


def test_a_trickling_body_is_cut_at_the_step_deadline(run_factory: Callable[..., Session]) -> None:
    with trickle_server(body_bytes=120, interval_s=0.5) as server:
        took, outcome, observed = get(run_factory(web(server.url, "step_timeout_s = 1\n", timeout_s=30)))
    assert (outcome, observed) == (Outcome.ERROR, "deadline of 1 s reached after 1 attempt")
    assert took < 2


def test_a_hung_service_is_cut_at_the_step_deadline(run_factory: Callable[..., Session]) -> None:
    with silent_server() as url:
        took, outcome, observed = get(run_factory(web(url, "step_timeout_s = 1\n", timeout_s=30)))
    assert (outcome, observed) == (Outcome.ERROR, "deadline of 1 s reached after 1 attempt")
    assert took < 2


# --- HTTP: a body over the cap is never read whole ------------------------------------------------------------


@pytest.mark.parametrize("chunked", [True, False], ids=["streamed", "content-length"])
def test_a_200_mb_body_is_refused_without_holding_it(run_factory: Callable[..., Session], chunked: bool) -> None:
    with huge_body_server(200 * MiB, chunked=chunked) as server:
        run = run_factory(web(server.url, timeout_s=30))
        rss_before = peak_rss_mib()
        tracemalloc.start()
        try:
            took, outcome, observed = get(run)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert (outcome, observed) == (Outcome.ERROR, f"response body larger than {10 * MiB} bytes")
    assert peak < 40 * MiB  # Python allocations: about the cap, not the body
    assert peak_rss_mib() - rss_before < 100
    assert took < 10


def test_max_body_bytes_is_per_service(run_factory: Callable[..., Session]) -> None:
    with huge_body_server(2000) as server:
        assert get(run_factory(web(server.url, max_body_bytes=1000)))[1:] == (
            Outcome.ERROR, "response body larger than 1000 bytes")
        assert get(run_factory(web(server.url, max_body_bytes=2000)))[1] is Outcome.PASS


def test_metrics_pages_are_capped_too(run_factory: Callable[..., Session]) -> None:
    with huge_body_server(5000) as server:
        run = run_factory(web(server.url, max_body_bytes=1000))
        result = evaluate(run, metric_below, selector="up", service="web", threshold=1)
    assert (result.outcome, result.observed) == (Outcome.ERROR, "response body larger than 1000 bytes")
    assert result.resource == f"{server.url}/metrics"


# --- AWS: attempts, and the deadline before each of them ---------------------------------------------------


@pytest.mark.usefixtures("endpoint_credentials")
@pytest.mark.parametrize("attempts", [1, 3])
def test_max_attempts_is_the_number_of_requests_sent(run_factory: Callable[..., Session], attempts: int) -> None:
    with counting_server(500, S3_INTERNAL_ERROR) as server:
        run = run_factory(endpoint(server.url, max_attempts=attempts))
        result = evaluate(run, bucket_versioning_enabled, bucket="b")
        sent = server.count
    assert result.outcome is Outcome.ERROR
    assert sent == attempts  # the first try included: 3 means 3, not 1 + 3 retries


@pytest.mark.usefixtures("endpoint_credentials")
def test_a_hung_aws_endpoint_is_cut_at_the_step_deadline(run_factory: Callable[..., Session]) -> None:
    with silent_server() as url:  # read_timeout stays at its default of 15 s
        run = run_factory(endpoint(url, "step_timeout_s = 2\n"))
        run.aws.client("s3")  # built before the clock starts: on a loaded machine that alone can take seconds
        started = time.monotonic()
        result = evaluate(run, bucket_versioning_enabled, bucket="b")
        took = time.monotonic() - started
    assert result.outcome is Outcome.ERROR
    assert result.observed == "deadline of 2 s reached after 1 attempt"  # its read timeout was cut to 2 s
    assert "step_timeout_s" in result.hint
    assert took < 3


@pytest.mark.usefixtures("endpoint_credentials")
def test_sustained_throttling_ends_at_the_step_deadline(run_factory: Callable[..., Session]) -> None:
    with counting_server(503, S3_SLOW_DOWN) as server:
        run = run_factory(endpoint(server.url, "step_timeout_s = 3\n", max_attempts=50))
        started = time.monotonic()
        result = evaluate(run, bucket_versioning_enabled, bucket="b")
        took = time.monotonic() - started
        sent = server.count
    assert result.outcome is Outcome.ERROR
    match = re.fullmatch(r"deadline of 3 s reached after (\d+) attempts?", result.observed)
    assert match and int(match.group(1)) == sent, (result.observed, sent)
    # 50 throttled attempts would take minutes; the adaptive rate limiter's last wait may run past the
    # deadline (at most 1 / its lowest rate, 2 s), a backoff never does
    assert took < 5


@pytest.mark.usefixtures("endpoint_credentials")
def test_many_threads_on_one_throttled_client_all_stop_at_the_deadline(run_factory: Callable[..., Session]) -> None:
    """16 workers share one client and so one adaptive rate limiter, which SlowDown drives to its lowest
    rate (0.5 a second): botocore's own limiter would keep the last of them waiting 16 / 0.5 = 32 s for a
    token; the run's ends every wait at the step's deadline."""
    with counting_server(503, S3_SLOW_DOWN) as server:
        run = run_factory(endpoint(server.url, max_attempts=50, max_workers=16))
        deadline = Deadline.after(3)
        token = DEADLINE.set(deadline)
        started = time.monotonic()
        try:
            calls = run.aws.fan_out(lambda i: run.aws.call("s3", "get_bucket_versioning", Bucket=f"b{i}"), range(32))
            errors = [call.exception(timeout=30) for call in calls]
        finally:
            DEADLINE.reset(token)
        took = time.monotonic() - started
    assert all(isinstance(error, DeadlineReached) for error in errors), errors
    assert took < 4.5
    assert deadline.attempts == server.count  # every attempt sent was counted, none after the deadline


@pytest.mark.usefixtures("endpoint_credentials")
def test_a_deadline_is_not_remembered_for_the_next_step(run_factory: Callable[..., Session]) -> None:
    with counting_server(500, S3_INTERNAL_ERROR, delay_s=0.6) as server:
        run = run_factory(endpoint(server.url, "step_timeout_s = 0.5\n", max_attempts=1))
        run.aws.client("s3")  # made outside the steps: making it takes a good part of half a second
        first = evaluate(run, bucket_versioning_enabled, bucket="b")
        second = evaluate(run, bucket_versioning_enabled, bucket="b")  # the same read: memoised otherwise
        sent = server.count
    assert first.observed == second.observed == "deadline of 0.5 s reached after 1 attempt"
    assert sent == 2


def test_the_run_deadline_shortens_a_step_and_names_itself() -> None:
    run = Deadline.after(1, "run deadline")
    assert for_step(60, run) is not run and for_step(60, run).label == "run deadline"  # type: ignore[union-attr]
    assert for_step(0.5, run).label == "deadline"  # type: ignore[union-attr]
    assert for_step(None, None) is None
    expired = Deadline(2, time.monotonic() - 1)
    expired.attempts = 3
    with pytest.raises(DeadlineReached, match=r"^deadline of 2 s reached after 3 attempts$"):
        expired.attempt()


# --- configuration and options ---------------------------------------------------------------------------


def test_time_limits_come_from_the_top_level_and_the_environment(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, """
        step_timeout_s = 60
        run_timeout_s = 1800
        [environments.staging]
        [environments.prod]
        run_timeout_s = 600.5
        [environments.sandbox]
        step_timeout_s = 0
        """))
    limits = {name: (env.step_timeout_s, env.run_timeout_s) for name, env in config.environments.items()}
    assert limits == {"staging": (60, 1800), "prod": (60, 600.5), "sandbox": (None, 1800)}  # 0: no limit
    default = load_config(write_config(tmp_path, "[environments.x]\n")).environment("x")
    assert (default.step_timeout_s, default.run_timeout_s) == (300, None)


@pytest.mark.parametrize(("body", "line", "message"), [
    ('step_timeout_s = "60"\n[environments.x]\n', 1,
     "step_timeout_s must be a number of seconds, 0 or more (0: no limit), got '60'"),
    ("[environments.x]\ndescription = 'x'\nrun_timeout_s = -5\n", 3,
     "environment 'x': run_timeout_s must be a number of seconds, 0 or more (0: no limit), got -5"),
    ("[environments.x]\nstep_timeout_s = true\n", 2,
     "environment 'x': step_timeout_s must be a number of seconds, 0 or more (0: no limit), got True"),
    ("[environments.x]\nservices = { web = { url = 'http://h', max_body_bytes = 0 } }\n", 2,
     "environment 'x': service 'web': max_body_bytes must be a whole number of bytes above 0, got 0"),
])
def test_bad_limits_are_named_by_file_and_line(tmp_path: Path, body: str, line: int, message: str) -> None:
    path = write_config(tmp_path, body)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"{path}:{line}: {message}"


@pytest.mark.parametrize("option", ["--timeout", "--step-timeout"])
def test_bad_timeout_options_are_usage_errors(tmp_path: Path, option: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["verify", option, "-1"])
    assert caught.value.code == 2
    assert "seconds must be 0 or more" in capsys.readouterr().err


# --- a run that runs out of time ----------------------------------------------------------------------------


def slow_project(tmp_path: Path, service: StatusService, scenarios: int = 4, extra: str = "") -> Path:
    service.set("/slow", delay_s=1.0)
    body = "".join(f'  Scenario: slow {n}\n    When I GET "/slow" from "api"\n    Then the response status is 200\n\n'
                   for n in range(1, scenarios + 1))
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "slow.feature").write_text(f"Feature: Slow\n\n{body}", encoding="utf-8")
    return write_config(tmp_path, f"""
        {extra}
        [environments.ci.services]
        api = {{ url = "{service.url}", timeout_s = 10 }}
        """)


def outcomes(report_dir: Path) -> list[tuple[str, str, str]]:
    doc = json.loads((report_dir / "results.json").read_text())
    return [(r["scenario"], r["outcome"], r["observed"]) for r in doc["results"]]


def test_the_run_deadline_stops_a_run_with_reports_and_exit_3(tmp_path: Path, status_service: StatusService
                                                               ) -> None:
    config = slow_project(tmp_path, status_service)
    started = time.monotonic()
    code = main(["verify", "--config", str(config), "--report-dir", str(tmp_path / "reports"), "--no-history",
                 "--timeout", "2.5"])
    took = time.monotonic() - started
    assert code == 3
    assert (tmp_path / "reports" / "junit.xml").is_file()
    records = outcomes(tmp_path / "reports")
    assert len(records) == 8  # every step of every scenario has a record
    cut = next(i for i, (_, outcome, _) in enumerate(records) if outcome != "pass")
    assert cut >= 2  # the first scenario had time
    assert all(outcome in ("error", "skipped") for _, outcome, _ in records[cut:])  # never PASS after it
    assert records[-2][1:] == ("error", "run deadline of 2.5 s reached")
    assert records[-1][1:] == ("skipped", "not run: run deadline of 2.5 s reached")
    assert any(re.fullmatch(r"run deadline of 2\.5 s reached after 1 attempt", observed) for *_, observed in records)
    assert took < 4.5  # four slow scenarios would take 4 s and more


def test_the_step_deadline_option_wins_over_the_configuration(tmp_path: Path, status_service: StatusService
                                                              ) -> None:
    config = slow_project(tmp_path, status_service, scenarios=1, extra="step_timeout_s = 60")
    code = main(["verify", "--config", str(config), "--report-dir", str(tmp_path / "reports"), "--no-history",
                 "--step-timeout", "0.5"])
    assert code == 3
    assert outcomes(tmp_path / "reports") == [
        ("slow 1", "error", "deadline of 0.5 s reached after 1 attempt"),
        ("slow 1", "skipped", "not run: an earlier step of this scenario did not pass"),
    ]


def test_plain_pytest_takes_the_same_deadlines(tmp_path: Path, status_service: StatusService) -> None:
    slow_project(tmp_path, status_service, scenarios=3)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "features", "-p", "no:cacheprovider", "-q", "--runbooks-env", "ci",
         "--runbooks-report-dir", str(tmp_path / "reports"), "--runbooks-no-history", "--runbooks-timeout", "1.5"],
        cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # pytest's own code: some tests errored
    records = outcomes(tmp_path / "reports")
    assert records[-2][1:] == ("error", "run deadline of 1.5 s reached")
    assert "pass" not in [outcome for _, outcome, _ in records[2:]]
    assert json.loads((tmp_path / "reports" / "results.json").read_text())["run"]["exit_code"] == 3
