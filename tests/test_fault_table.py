"""The fault table: what a bad network or a bad endpoint does to a check, through a real client.

A fault proxy (tests/support/fault_proxy.py) sits between an ``endpoint`` target and a moto server and
answers chosen requests with one fault. Every fault is an ERROR whose reason names it and whose hint
fits it, within a bounded time; a well-formed "not configured" answer passed through stays a FAIL.
Limit, by design: a HEAD answer has no body, so an empty or garbage 200 to HeadBucket looks exactly
like S3's success (only an HTML content type gives a portal away).
"""

from __future__ import annotations

import contextlib
import io
import json
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from runbooks.cli import main
from runbooks.result import CheckResult, Outcome
from runbooks.session import Session
from runbooks.steps.aws_dynamodb import table_active
from runbooks.steps.aws_s3 import bucket_encrypted_with, bucket_exists, bucket_versioning_enabled
from runbooks.targets.aws_faults import body_problem
from tests.conftest import evaluate, write_config
from tests.support.fault_proxy import DNS_FAILURE_URL, FaultProxy, Inject, fault_proxy
from tests.support.moto_server import MotoServer

pytest_plugins = ["tests.support.moto_server"]  # fixtures: moto_server, endpoint_credentials
pytestmark = [pytest.mark.usefixtures("endpoint_credentials"), pytest.mark.timeout(120)]

BOUND_S = 10.0  # every faulty check finishes within this, whatever the fault
READ_TIMEOUT_S = 0.5  # the hang outlasts it
BUCKET, PLAIN, TABLE = "ft-versioned", "ft-plain", "ft-table"


def endpoint_env(url: str, max_attempts: int = 1) -> str:
    return (f'aws = {{ target = "endpoint", url = "{url}", region = "us-east-1", max_attempts = {max_attempts}, '
            f"connect_timeout = 1, read_timeout = {READ_TIMEOUT_S} }}\n")


@pytest.fixture(scope="module")
def proxy(moto_server: MotoServer) -> Iterator[FaultProxy]:
    moto_server.reset()
    s3 = moto_server.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    s3.create_bucket(Bucket=PLAIN)
    moto_server.client("dynamodb").create_table(
        TableName=TABLE, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    with fault_proxy(moto_server.url, hang_s=READ_TIMEOUT_S * 10) as running:
        yield running


@pytest.fixture
def through(proxy: FaultProxy, run_factory: Callable[..., Session]) -> Callable[..., Session]:
    """A fresh run (own clients, memo and retry state) through the proxy, its rules cleared."""
    proxy.clear()

    def run(max_attempts: int = 1) -> Session:
        return run_factory(endpoint_env(proxy.url, max_attempts))

    return run


CHECKS: dict[str, tuple[Callable[..., CheckResult], dict[str, Any]]] = {
    "versioning": (bucket_versioning_enabled, {"bucket": BUCKET}),
    "head-bucket": (bucket_exists, {"bucket": BUCKET}),
    "describe-table": (table_active, {"table": TABLE}),
}
NETWORK = "network access"
CREDENTIALS = "refresh or fix the credentials"
PORTAL = "captive portal"
HEAD_400 = ("HeadBucket was refused with HTTP 400 and no error code (a HEAD answer has no body): most often "
            "expired credentials")
HEAD_403 = ("HeadBucket was refused with HTTP 403 and no error code (a HEAD answer has no body): access denied "
            "or credentials rejected; needs s3:ListBucket")
# check, fault -> (reason substring, hint substring)
TABLE_ROWS: dict[tuple[str, Inject], tuple[str, str]] = {
    ("versioning", Inject.THROTTLE): ("throttled on GetBucketVersioning (ThrottlingException)", "re-run later"),
    ("versioning", Inject.SLOW_DOWN): ("throttled on GetBucketVersioning (SlowDown)", "re-run later"),
    ("versioning", Inject.SERVER_ERROR): ("could not answer GetBucketVersioning (InternalError)", "service's health"),
    ("versioning", Inject.HANG): ("timed out talking to AWS: Read timeout", NETWORK),
    ("versioning", Inject.RESET): ("closed the connection before answering (connection reset)", NETWORK),
    ("versioning", Inject.HTML_200): ("malformed answer to GetBucketVersioning (s3): HTTP 200 with an HTML page",
                                      PORTAL),
    ("versioning", Inject.EMPTY_200): ("GetBucketVersioning (s3): HTTP 200 with an empty body, not an AWS XML",
                                       PORTAL),
    ("versioning", Inject.GARBAGE_200): ("GetBucketVersioning (s3): HTTP 200 with a body that is not XML", PORTAL),
    ("versioning", Inject.INVALID_KEY): ("credentials were rejected for GetBucketVersioning (InvalidAccessKeyId)",
                                         CREDENTIALS),
    ("versioning", Inject.EXPIRED_TOKEN): ("credentials were rejected for GetBucketVersioning (ExpiredToken)",
                                           CREDENTIALS),
    ("versioning", Inject.ACCESS_DENIED): ("access denied for GetBucketVersioning (AccessDenied): Access Denied; "
                                           "needs s3:GetBucketVersioning", "grant the read permission"),
    ("head-bucket", Inject.THROTTLE): (HEAD_400, "expired session token"),
    ("head-bucket", Inject.SLOW_DOWN): ("throttled or unavailable on HeadBucket (HTTP 503 with no error code",
                                        "re-run later"),
    ("head-bucket", Inject.SERVER_ERROR): ("could not answer HeadBucket (HTTP 500, no error code)",
                                           "service's health"),
    ("head-bucket", Inject.HANG): ("timed out talking to AWS: Read timeout", NETWORK),
    ("head-bucket", Inject.RESET): ("connection reset", NETWORK),
    ("head-bucket", Inject.HTML_200): ("malformed answer to HeadBucket (s3): HTTP 200 with an HTML page", PORTAL),
    ("head-bucket", Inject.INVALID_KEY): (HEAD_403, "if it fails, refresh or fix them"),
    ("head-bucket", Inject.EXPIRED_TOKEN): (HEAD_400, "expired session token"),
    ("head-bucket", Inject.ACCESS_DENIED): (HEAD_403, "if it works, grant s3:ListBucket"),
    ("describe-table", Inject.THROTTLE): ("throttled on DescribeTable (ThrottlingException)", "re-run later"),
    ("describe-table", Inject.SERVER_ERROR): ("could not answer DescribeTable (InternalServerError)",
                                              "service's health"),
    ("describe-table", Inject.HANG): ("timed out talking to AWS: Read timeout", NETWORK),
    ("describe-table", Inject.RESET): ("connection reset", NETWORK),
    ("describe-table", Inject.HTML_200): ("malformed answer to DescribeTable (dynamodb): HTTP 200 with an HTML page",
                                          PORTAL),
    ("describe-table", Inject.EMPTY_200): ("DescribeTable (dynamodb): HTTP 200 with an empty body, not an AWS JSON",
                                           PORTAL),
    ("describe-table", Inject.GARBAGE_200): ("DescribeTable (dynamodb): HTTP 200 with a body that is not JSON",
                                             PORTAL),
    ("describe-table", Inject.EMPTY_OBJECT_200): ("malformed answer to DescribeTable (dynamodb): no Table for "
                                                  "ft-table", PORTAL),
    ("describe-table", Inject.INVALID_KEY): ("credentials were rejected for DescribeTable "
                                             "(UnrecognizedClientException)", CREDENTIALS),
    ("describe-table", Inject.EXPIRED_TOKEN): ("credentials were rejected for DescribeTable (ExpiredTokenException)",
                                               CREDENTIALS),
    ("describe-table", Inject.ACCESS_DENIED): ("access denied for DescribeTable (AccessDeniedException)",
                                               "grant the read permission"),
}


def timed(run: Session, check: str) -> tuple[CheckResult, float]:
    func, args = CHECKS[check]
    started = time.monotonic()
    result = evaluate(run, func, **args)
    return result, time.monotonic() - started


def test_every_check_passes_through_a_quiet_proxy(through: Callable[..., Session], proxy: FaultProxy) -> None:
    run = through()
    outcomes = {name: timed(run, name)[0].outcome for name in CHECKS}
    assert outcomes == dict.fromkeys(CHECKS, Outcome.PASS)
    assert all(entry.endswith("forwarded") for entry in proxy.seen), proxy.seen


@pytest.mark.parametrize(("check", "fault"), list(TABLE_ROWS), ids=[f"{c}-{f}" for c, f in TABLE_ROWS])
def test_fault_is_an_error_naming_it(through: Callable[..., Session], proxy: FaultProxy, check: str,
                                     fault: Inject) -> None:
    reason, hint = TABLE_ROWS[(check, fault)]
    proxy.inject(fault)
    result, took = timed(through(), check)
    assert result.outcome is Outcome.ERROR, (result.outcome, result.observed)  # never a FAIL
    assert reason in result.observed, result.observed
    assert hint in result.hint, result.hint
    assert "defect" not in result.hint
    assert took < BOUND_S, f"{check} under {fault} took {took:.1f} s"


def test_head_bucket_never_advises_only_a_grant_when_credentials_may_be_invalid(
    through: Callable[..., Session], proxy: FaultProxy
) -> None:
    proxy.inject(Inject.INVALID_KEY, operation="HeadBucket")
    result, _ = timed(through(), "head-bucket")
    assert not result.hint.startswith("grant")
    assert "credentials" in result.observed and "credentials" in result.hint


@pytest.mark.parametrize("check", list(CHECKS))
def test_dns_failure_is_a_connection_error_naming_the_host(run_factory: Callable[..., Session], check: str) -> None:
    result, took = timed(run_factory(endpoint_env(DNS_FAILURE_URL)), check)
    assert result.outcome is Outcome.ERROR
    assert "could not resolve the AWS endpoint's host no-such-host.invalid (DNS lookup failed)" in result.observed
    assert "DNS" in result.hint
    assert took < BOUND_S


def test_retries_happen_and_still_end_in_an_error(through: Callable[..., Session], proxy: FaultProxy) -> None:
    proxy.inject(Inject.SERVER_ERROR, operation="HeadBucket")
    result, took = timed(through(max_attempts=2), "head-bucket")
    assert result.observed == ("the endpoint target could not answer HeadBucket (HTTP 500, no error code) "
                               "after 2 attempts")
    assert proxy.seen == ["HeadBucket -> server-error"] * 2
    assert took < BOUND_S


def test_an_empty_200_to_a_head_request_is_what_success_looks_like(
    through: Callable[..., Session], proxy: FaultProxy
) -> None:
    proxy.inject(Inject.EMPTY_200, operation="HeadBucket")
    assert timed(through(), "head-bucket")[0].outcome is Outcome.PASS  # the documented limit


@pytest.mark.parametrize(
    ("func", "args", "observed"),
    [
        (bucket_versioning_enabled, {"bucket": PLAIN}, "versioning never enabled"),
        (bucket_encrypted_with, {"bucket": PLAIN, "algorithm": "aws:kms"}, "no default encryption configured"),
        (bucket_exists, {"bucket": "ft-absent"}, "the bucket does not exist"),
        (table_active, {"table": "ft-absent"}, "the table does not exist"),
    ],
    ids=["versioning-absent", "encryption-not-found", "no-bucket", "no-table"],
)
def test_a_well_formed_not_configured_answer_stays_a_fail(
    through: Callable[..., Session], proxy: FaultProxy, func: Callable[..., CheckResult], args: dict[str, Any],
    observed: str,
) -> None:
    proxy.inject(Inject.HTML_200, operation="GetBucketPolicy")  # a rule elsewhere changes nothing here
    result = evaluate(through(), func, **args)
    assert (result.outcome, result.observed) == (Outcome.FAIL, observed)


def test_body_problem_reads_documents_not_content_types() -> None:
    assert body_problem(b'<?xml version="1.0"?><VersioningConfiguration/>', "XML") is None
    assert body_problem(b"<?xml version='1.0'?>\n<html><body>hi</body></html>", "XML") == "an HTML page"
    assert body_problem(b"  \n", "JSON") == "an empty body"
    assert body_problem(b"[1]", "JSON") == "a JSON list where an object belongs ('[1]')"
    assert body_problem(b'{"Table": {}}', "JSON") is None


# end to end: one step faults, the other passes ----------------------------------------------------------
def test_verify_exits_3_keeping_the_pass_and_writing_reports(proxy: FaultProxy, tmp_path: Path) -> None:
    proxy.clear()
    proxy.inject(Inject.HTML_200, operation="GetBucketVersioning")
    config = write_config(tmp_path, "[environments.test]\n" + endpoint_env(proxy.url))
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "faults.feature").write_text(textwrap.dedent(f"""\
        Feature: A captive portal answers one read
          Scenario: The bucket
            Then the S3 bucket "{BUCKET}" has versioning enabled
            And the S3 bucket "{BUCKET}" exists
        """), encoding="utf-8")
    reports = tmp_path / "reports"
    out, err = io.StringIO(), io.StringIO()
    started = time.monotonic()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["verify", "--config", str(config), "--env", "test", "--report-dir", str(reports),
                     "--no-history"])
    assert time.monotonic() - started < 60
    assert code == 3, out.getvalue() + err.getvalue()
    document: dict[str, Any] = json.loads((reports / "results.json").read_text())
    results = [(r["outcome"], r["observed"]) for r in document["results"]]
    assert [outcome for outcome, _ in results] == ["error", "pass"]
    assert results[0][1].startswith("malformed answer to GetBucketVersioning (s3): HTTP 200 with an HTML page")
    assert document["run"]["exit_code"] == 3
    assert any(reports.glob("*.xml")), sorted(p.name for p in reports.iterdir())
