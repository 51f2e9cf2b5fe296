"""The shipped runbook library against the shipped sandboxes: all of features/ passes on `sandbox`, every
drift of `sandbox-drifted` fails in the runbooks that cover it (troubleshooting scenarios printing their
Resolution), the library lints clean, and the reference stack is what the runbooks expect."""

from __future__ import annotations

import contextlib
import io
import json
import re
import socket
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from runbooks.cli import main
from runbooks.config import ConfigError
from runbooks.features import parse_feature
from runbooks.sandbox.service import PortInUse, ReferenceService, metrics_text
from runbooks.sandbox.stack import ServiceSpec, load_stack, terraform_lock_item
from runbooks.steps.aws_terraform import parse_lock
from tests.conftest import REPO

STACK = REPO / "infra" / "sandbox_stack.toml"
FEATURES = sorted(str(p.relative_to(REPO)) for p in (REPO / "features").rglob("*.feature"))  # what lint reads
RUNBOOKS = [p for p in FEATURES if p != "features/TEMPLATE.feature"]  # what verify runs: the template only if named

# What each drift of `sandbox-drifted` must make fail, by runbook: (scenario, step) pairs.
LOCK = 'the Terraform lock table "acme-terraform-locks-sandbox" holds no lock older than 30 minutes'
TENANTS_WINDOW = 'the DynamoDB table "acme-tenants-sandbox" can be restored to any point in the last 24 hours'
TEMPLATES_VERSIONING = 'the S3 bucket "acme-templates-sandbox" has versioning enabled'
ERROR_RATIO = ('the ratio of "http_requests_total{status="5xx"}" to "http_requests_total" on "api" over 2 s is '
               'below 5%')
P95 = 'the 95th percentile of "http_request_duration_seconds{handler=~"/api/.*"}" of "api" over 2 s is below 1 s'
API_ERRORS_ALARM = 'the CloudWatch alarm "acme-api-5xx-sandbox" exists and is not in ALARM state'
API_LATENCY_ALARM = 'the CloudWatch alarm "acme-api-latency-p95-sandbox" exists and is not in ALARM state'
READY = 'the service "api" answers GET "/health/ready" with status 200 within 1000 ms'
AUDIT_WRITE_SCALING = 'the DynamoDB table "acme-audit-sandbox" auto-scales its write capacity between 10 and 200 units'
TENANTS_THROTTLES = ('the sum of the CloudWatch metric "ThrottledRequests" in "AWS/DynamoDB" for '
                     '"TableName=acme-tenants-sandbox" over the last 15 minutes is at most 0')
# The commands a runbook's description tells the operator to type to run one stage of it.
STAGE_COMMAND = re.compile(r"runbooks verify --env (\S+) --tags '([^']+)' (features/\S+\.feature)")
EXPECTED_FAILURES = {
    "features/deployment/pre_deployment_checklist.feature": {
        ("No stale Terraform state lock blocks the apply", LOCK),
        ("Data can be recovered if the deployment goes wrong", TENANTS_WINDOW),
        ("The target is healthy before it is changed",
         'the service "api" answers GET "/health/ready" with status 200 within 1000 ms'),
    },
    "features/deployment/post_deploy_validation_prod.feature": {
        ("Every bucket and table of the environment meets the storage baseline",
         'every S3 bucket matching "acme-*-sandbox" blocks all public access'),
        ("Every bucket and table of the environment meets the storage baseline",
         'every DynamoDB table matching "acme-*-sandbox" has tag "owner"'),
        ("Templates are replicated to the disaster-recovery region", TEMPLATES_VERSIONING),
    },
    "features/troubleshooting/s3.feature": {
        ("Public access not blocked", 'the S3 bucket "acme-logs-sandbox" blocks all public access'),
        ("Versioning not enabled", TEMPLATES_VERSIONING),
        ("Replication not configured", TEMPLATES_VERSIONING),  # replication needs it on the source too
    },
    "features/troubleshooting/dynamodb.feature": {
        ("Point-in-time recovery not enabled",
         'the DynamoDB table "acme-tenants-sandbox" has point-in-time recovery enabled'),
        ("Incorrect tags", 'the DynamoDB table "acme-audit-sandbox" has tag "owner" set to "security-team"'),
    },
    "features/troubleshooting/api.feature": {
        ("Readiness check failing", "the response status is 200"),
        ("Readiness check failing", 'the response JSON at "/checks/s3" is "ok"'),
        ("High error rate (more than 5% of requests fail)", ERROR_RATIO),
        ("Slow responses (p95 latency above 1 s)", P95),
    },
    "features/rollback/emergency_rollback.feature": {
        ("The rollback is possible", LOCK),
        ("Data can be restored to before the incident if the release damaged it", TENANTS_WINDOW),
        ("Post-rollback validation", ERROR_RATIO),
    },
    "features/backup_recovery/backup_and_recovery.feature": {
        ("Tables can be restored to any point of the last 7 days",
         'the DynamoDB table "acme-tenants-sandbox" can be restored to any point in the last 168 hours'),
    },
    "features/operations/daily_operations.feature": {
        ("No alarm fires", API_ERRORS_ALARM),
        ("Error rate and latency are within budget", P95),
    },
    "features/operations/startup.feature": {
        ("5 - The API reports every dependency ready", 'the response JSON at "/checks/s3" is "ok"'),
    },
    "features/operations/shutdown.feature": {
        ("1 - Nothing is changing the infrastructure", LOCK),
    },
    "features/promotion/sit_to_prod.feature": {
        ("Abort criteria - PROD stays within its thresholds", API_ERRORS_ALARM),
        ("Abort criteria - PROD stays within its thresholds", API_LATENCY_ALARM),
    },
    # the drift each new runbook states in its header comment
    "features/onboarding/developer_environment.feature": {
        ("4 - Credentials work and reach the right account", 'the IAM user "alice" has an MFA device'),
        ("5 - Local development verification", READY),
    },
    "features/scaling/scaling_and_capacity.feature": {
        ("1 - Before: the tables are in the capacity mode of the plan", AUDIT_WRITE_SCALING),
        ("1 - Before: the tables are in the capacity mode of the plan",
         'the DynamoDB table "acme-audit-sandbox" has a target tracking policy for its write capacity'),
        ("2 - Before: nothing is throttled", TENANTS_THROTTLES),
        ("6 - After: the new capacity is in place and nothing is throttled", AUDIT_WRITE_SCALING),
        ("6 - After: the new capacity is in place and nothing is throttled", TENANTS_THROTTLES),
    },
    "features/incident_response/security_incident.feature": {
        ("1 - The audit trail is recording", 'the CloudTrail trail "acme-audit-trail-sandbox" is logging'),
        ("2 - The root account is locked down", "the AWS root account has MFA enabled"),
        ("3 - Long-lived credentials are few, young and in use",
         "no IAM user has an active access key older than 90 days"),
        ("3 - Long-lived credentials are few, young and in use",
         "no IAM user has an active access key unused for 90 days"),
        ("4 - No data is public", 'every S3 bucket matching "acme-*-sandbox" blocks all public access'),
    },
    "features/troubleshooting/cicd.feature": {
        ("State lock conflicts", LOCK),
        ("General deployment issues", READY),
    },
    "features/release/release_validation.feature": {
        ("3 - The artefacts are stored and signed off",
         'the S3 object "releases/v1.5.0/api.zip" in the bucket "acme-artifacts-sandbox" has tag "qa" set to "passed"'),
    },
}


@dataclass
class Verified:
    code: int
    out: str
    err: str
    results: dict[str, Any]

    def records(self, *outcomes: str) -> list[dict[str, Any]]:
        return [r for r in self.results["results"] if not outcomes or r["outcome"] in outcomes]


def verify(env: str, reports: Path) -> Verified:
    out, err = io.StringIO(), io.StringIO()
    argv = ["verify", "--config", str(REPO / "runbooks.toml"), "--env", env, "--report-dir", str(reports),
            "--no-history"]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    results = json.loads((reports / "results.json").read_text(encoding="utf-8"))
    return Verified(code, out.getvalue(), err.getvalue(), results)


@pytest.fixture(scope="module")
def healthy(tmp_path_factory: pytest.TempPathFactory) -> Verified:
    return verify("sandbox", tmp_path_factory.mktemp("library-healthy"))


@pytest.fixture(scope="module")
def drifted(tmp_path_factory: pytest.TempPathFactory) -> Verified:
    return verify("sandbox-drifted", tmp_path_factory.mktemp("library-drifted"))


def test_every_runbook_passes_on_the_sandbox(healthy: Verified) -> None:
    assert healthy.code == 0, healthy.out + healthy.err
    assert healthy.records("fail", "error") == []
    assert sorted({r["runbook"] for r in healthy.records()}) == RUNBOOKS  # all of them ran
    assert len(healthy.records("pass")) >= 250


def test_only_scenarios_the_sandbox_cannot_answer_are_skipped(healthy: Verified) -> None:
    skipped = healthy.records("skipped")
    assert skipped  # the AWS Backup and container scenarios
    for record in skipped:
        requires = [t for t in record["tags"] if t.startswith("requires:")]
        assert requires, f"skipped without a @requires tag: {record['runbook']}: {record['step']}"
        assert record["observed"].startswith("not run here: "), record
    assert {t for r in skipped for t in r["tags"] if t.startswith("requires:")} == {
        "requires:aws-backup", "requires:docker", "requires:postgres", "requires:redis", "requires:prometheus",
        "requires:alertmanager", "requires:workstation"}


def test_the_monitoring_runbook_is_skipped_with_its_reason_where_there_is_no_prometheus(healthy: Verified) -> None:
    records = [r for r in healthy.records() if r["runbook"] == "features/monitoring/monitoring_and_alerting.feature"]
    automated = [r for r in records if r["outcome"] != "manual" and not r["step"].startswith("the AWS account is")]
    assert automated and {r["outcome"] for r in automated} == {"skipped"}  # never passed
    assert {r["observed"] for r in automated if "requires:prometheus" in r["tags"]} == {
        "not run here: environment sandbox declares no Prometheus server ([environments.sandbox.prometheus] url) "
        "(@requires:prometheus)"}
    assert {r["observed"] for r in automated if "requires:alertmanager" in r["tags"]} == {
        "not run here: environment sandbox declares no Alertmanager ([environments.sandbox.alertmanager] url) "
        "(@requires:alertmanager)"}


def test_each_drift_fails_in_the_runbooks_that_cover_it(drifted: Verified) -> None:
    assert drifted.code == 1, drifted.out + drifted.err
    assert drifted.records("error") == []  # drift is FAIL, never could-not-check
    failing: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for record in drifted.records("fail"):
        failing[record["runbook"]].add((record["scenario"], record["step"]))
    for runbook, expected in EXPECTED_FAILURES.items():
        missing = expected - failing[runbook]
        assert not missing, f"{runbook}: drift not caught by {sorted(missing)}"


def test_the_stale_lock_names_who_holds_it_and_how_to_release_it(drifted: Verified) -> None:
    [record] = [r for r in drifted.records("fail")
                if r["runbook"].endswith("pre_deployment_checklist.feature") and r["step"] == LOCK]
    assert record["observed"].startswith("1 stale lock(s): acme-tfstate-sandbox/platform/terraform.tfstate held by "
                                         "jenkins@ci-runner-7 since ")
    assert "(3 h 10 min, OperationTypeApply, lock ID 0f3c2a7e-5b7d-4c1e-9a52-6d1f0e8b9c31)" in record["observed"]
    assert record["hint"].endswith("terraform force-unlock 0f3c2a7e-5b7d-4c1e-9a52-6d1f0e8b9c31")


def test_failing_troubleshooting_scenarios_print_their_resolution(drifted: Verified) -> None:
    blocks = drifted.out.split("\n  Scenario: ")
    troubleshooting = {scenario for runbook, pairs in EXPECTED_FAILURES.items() if "/troubleshooting/" in runbook
                       for scenario, _ in pairs}
    for scenario in troubleshooting:
        [block] = [b for b in blocks if b.startswith(scenario + "\n")]
        assert "\n    Resolution (from the runbook): 1. " in block, block
    passing = [b for b in blocks if b.startswith("Templates not uploaded\n")]
    assert passing and "Resolution" not in passing[0]  # only under a failure


def test_the_library_lints_clean(capsys: pytest.CaptureFixture[str]) -> None:
    # --max-age: the review dates age with the calendar; this test is about the template, not the schedule
    assert main(["lint", "--config", str(REPO / "runbooks.toml"), "--max-age", "36500"]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"runbooks lint: {len(FEATURES)} runbook(s), 0 error(s), 0 warning(s)" in captured.err


def test_every_runbook_first_checks_the_account() -> None:
    for runbook in FEATURES:
        background = parse_feature(REPO / runbook).background
        assert background and background[0].text == 'the AWS account is "{account_id}"', runbook


def test_each_stage_command_of_the_promotion_runbooks_selects_its_scenarios() -> None:
    from runbooks.tags import TagFilter

    commands = [(runbook, *m.groups()) for runbook in RUNBOOKS
                for m in STAGE_COMMAND.finditer(parse_feature(REPO / runbook).description)]
    assert {(r, env) for r, env, _, _ in commands} >= {
        ("features/promotion/dev_to_sit.feature", "dev"), ("features/promotion/dev_to_sit.feature", "sit"),
        ("features/promotion/sit_to_prod.feature", "sit"), ("features/promotion/sit_to_prod.feature", "prod")}
    covered: dict[str, set[str]] = defaultdict(set)
    for runbook, _env, tags, path in commands:
        assert path == runbook  # a command runs the runbook that documents it
        expression = TagFilter(tags)
        feature = parse_feature(REPO / path)
        selected = {sc.name for sc in feature.scenarios if expression.selects(t.name for t in feature.tags + sc.tags)}
        assert selected, f"{path}: --tags {tags!r} selects no scenario"
        covered[path] |= selected
    for path, names in covered.items():  # every scenario belongs to some stage
        assert names == {sc.name for sc in parse_feature(REPO / path).scenarios}, path


def test_the_canary_abort_gate_decides_on_the_alarms_not_on_one_instance_metrics(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["verify", "--config", str(REPO / "runbooks.toml"), "--env", "sandbox-drifted", "--no-history",
                     "--report-dir", str(tmp_path), "--tags", "@abort-criteria",
                     str(REPO / "features/promotion/sit_to_prod.feature")])
    assert code == 1, out.getvalue() + err.getvalue()
    records = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))["results"]
    assert {r["scenario"] for r in records} == {"Abort criteria - PROD stays within its thresholds"}
    failed = {r["step"] for r in records if r["outcome"] == "fail"}
    assert {API_ERRORS_ALARM, API_LATENCY_ALARM} <= failed
    assert not [r for r in records if r["step"].startswith(("the metric ", "the ratio of "))]  # /metrics


# the reference stack ---------------------------------------------------------------------------------------
def test_the_sandbox_lock_items_are_what_terraform_writes() -> None:
    stack = load_stack(STACK, "drifted")
    [table] = [t for t in stack.tables if t.name == "acme-terraform-locks-sandbox"]
    [lock] = table.terraform_locks
    item = terraform_lock_item(lock)
    parsed = parse_lock(item["LockID"]["S"], item["Info"]["S"])
    assert (parsed.lock_id, parsed.who, parsed.operation) == (
        "acme-tfstate-sandbox/platform/terraform.tfstate", "jenkins@ci-runner-7", "OperationTypeApply")
    info = json.loads(item["Info"]["S"])
    assert set(info) == {"ID", "Operation", "Info", "Who", "Version", "Created", "Path"}
    assert info["Created"].endswith("000Z") and len(info["Created"].split(".")[1]) == 10  # nanoseconds + Z


def test_a_variant_naming_an_unknown_resource_is_refused(tmp_path: Path) -> None:
    stack = tmp_path / "stack.toml"
    stack.write_text('[[buckets]]\nname = "a"\n[variants.bad]\nbuckets = [{ name = "b", versioning = "Suspended" }]\n')
    with pytest.raises(ConfigError, match="variant changes buckets 'b', which the stack does not define"):
        load_stack(stack, "bad")
    stack.write_text('[[buckets]]\nname = "a"\n[variants.bad]\nbuckets = [{ name = "a", versoning = "Suspended" }]\n')
    with pytest.raises(ConfigError, match="unknown attribute 'versoning' of buckets 'a'"):
        load_stack(stack, "bad")


def test_the_metrics_page_is_an_instrumented_services() -> None:
    healthy, drifted = load_stack(STACK).service, load_stack(STACK, "drifted").service
    page = metrics_text(healthy)
    assert "# TYPE http_requests_total counter\n" in page and "# TYPE http_request_duration_seconds histogram\n" in page
    assert 'http_requests_total{handler="/api/tenants",method="GET",status="2xx"} ' in page
    assert 'http_request_duration_seconds_bucket{handler="/api/tenants",method="GET",le="1.0"} ' in page
    assert "quantile=" not in page  # no summary: histograms only
    # the drift is in the live traffic, not in the history: the totals since the start look the same
    assert metrics_text(drifted).split("# HELP http_requests_created")[0] == page.split(
        "# HELP http_requests_created")[0]
    assert (drifted.error_ratio, drifted.live_p95_seconds) == (0.09, 1.7)
    assert healthy.error_ratio < 0.01 and healthy.live_p95_seconds < 0.5


def test_the_drifted_api_fails_the_windows_for_the_right_reason(drifted: Verified) -> None:
    ratios = [r for r in drifted.records("fail") if r["step"] == ERROR_RATIO]
    latencies = [r for r in drifted.records("fail") if r["step"] == P95]
    assert ratios and latencies
    for record in ratios:  # about 9% of the requests of the window, not the history's 0.3%
        assert 6 < record["evidence"]["percent"] < 12, record
        # a window of 2 s: its own two scrapes, or an earlier scrape of the run between 2 and 4 s old (metrics.py)
        window = re.search(r" over the last (\d+(?:\.\d+)?) s", record["observed"])
        assert window and 2.0 <= float(window.group(1)) <= 4.0, record
    for record in latencies:
        assert record["observed"].startswith("p95 above 1 s, the highest finite bucket"), record


def test_a_taken_port_is_refused_by_name() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(PortInUse, match=f"cannot listen on 127.0.0.1:{port}: the port is in use"):
            ReferenceService(ServiceSpec()).start(port)
