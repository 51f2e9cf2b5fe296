"""The AWS target's boundary: what a stub does with an action it lacks, and the per-run call count.

moto 5.2 answers an unimplemented action in four ways, measured here rather than assumed:
in-process it raises ``NotImplementedError`` (ListBackupSelections) or answers 404 "Not yet
implemented" (ListRecoveryPointsByBackupVault, no URL route); its server answers an HTML 500 or an
HTML 404 for the same two. The target turns all four into ``NotImplementedByTarget`` - an ERROR that
says so - at the first attempt, and leaves real "not found" answers alone.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from runbooks import cli
from runbooks.config import ConfigError, load_config
from runbooks.deadlines import DEADLINE, Deadline
from runbooks.faults import FaultKind, classify
from runbooks.resources import Resources
from runbooks.result import Outcome
from runbooks.session import Session
from runbooks.steps.aws_backup import backup_plan_protects_table, vault_has_recent_recovery_point
from runbooks.steps.aws_s3 import bucket_exists
from runbooks.targets.aws import AwsTarget, NotImplementedByTarget, moto_implements, stub_gap, with_workers
from tests.conftest import evaluate, make_run, write_config
from tests.support.moto_server import MotoServer, endpoint_credentials, moto_server  # noqa: F401

REGION = "eu-west-1"
PLAN = {"BackupPlanName": "nightly", "Rules": [{"RuleName": "r", "TargetBackupVaultName": "vault"}]}


def attempts(client: Any) -> Counter[str]:
    """HTTP attempts per operation (``before-send`` fires once per attempt, retries included)."""
    seen: Counter[str] = Counter()

    def count(event_name: str, **_: Any) -> None:
        seen[event_name.rpartition(".")[2]] += 1

    client.meta.events.register("before-send", count)
    return seen


# --- what moto does, raw ---------------------------------------------------------------------------


def test_moto_in_process_raises_not_implemented_error_or_404() -> None:
    with mock_aws():
        backup = boto3.client("backup", region_name=REGION)
        with pytest.raises(NotImplementedError, match="list_backup_selections action has not been"):
            backup.list_backup_selections(BackupPlanId="x")
        with pytest.raises(ClientError) as caught:
            backup.list_recovery_points_by_backup_vault(BackupVaultName="vault")
    assert caught.value.response["Error"] == {"Code": "404", "Message": "Not yet implemented"}


def test_describe_error_names_the_operation_of_a_bare_not_implemented_error() -> None:
    exc = NotImplementedError("The get_backup_selection action has not been implemented")
    assert classify(exc, "moto").reason == "the moto target does not implement GetBackupSelection"
    assert classify(exc, "moto").kind is FaultKind.NOT_IMPLEMENTED
    assert classify(NotImplementedError("something else"), "moto").kind is FaultKind.DEFECT


def test_stub_gap_rules() -> None:
    html = {"content-type": "text/html; charset=utf-8"}
    assert stub_gap(404, {}, b"Not yet implemented", "backup", "ListRecoveryPointsByBackupVault")
    assert stub_gap(404, html, b"<h1>Not Found</h1>", "backup", "ListRecoveryPointsByBackupVault")
    assert stub_gap(500, html, b"<h1>Internal Server Error</h1>", "backup", "ListBackupSelections")
    # a 500 for an action moto does implement is a stub failure, not a gap; an empty 404 is "not found"
    assert not stub_gap(500, html, b"<h1>Internal Server Error</h1>", "backup", "ListBackupPlans")
    assert not stub_gap(404, {}, b"", "s3", "HeadBucket")
    assert not stub_gap(404, {"content-type": "application/xml"}, b"<Error/>", "s3", "GetObject")
    assert moto_implements("backup", "ListBackupPlans") is True
    assert moto_implements("backup", "ListBackupSelections") is False
    assert moto_implements("no-such-service", "Anything") is None


# --- in-process moto target ------------------------------------------------------------------------


def test_in_process_gaps_become_errors_that_say_so(moto_run: Session) -> None:
    boto3.client("backup", region_name=REGION).create_backup_plan(BackupPlan=PLAN)
    ddb = boto3.client("dynamodb", region_name=REGION)
    ddb.create_table(TableName="orders", KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST")
    with pytest.raises(NotImplementedByTarget, match="the moto target does not implement ListBackupSel"):
        moto_run.aws.paginate("backup", "list_backup_selections", BackupPlanId="x")
    with pytest.raises(NotImplementedByTarget, match="does not implement ListRecoveryPointsByBackupVault"):
        moto_run.aws.read("backup", "list_recovery_points_by_backup_vault", BackupVaultName="vault")

    selection = evaluate(moto_run, backup_plan_protects_table, plan="nightly", table="orders")
    assert selection.outcome is Outcome.ERROR
    assert selection.observed == "the moto target does not implement ListBackupSelections"
    assert selection.resource == "backup plan nightly -> dynamodb table orders"
    assert "stub cannot answer" in selection.hint
    points = evaluate(moto_run, vault_has_recent_recovery_point, vault="vault", resource="orders", hours=24)
    assert points.outcome is Outcome.ERROR
    assert points.observed == "the moto target does not implement ListRecoveryPointsByBackupVault"


# --- moto server through an endpoint target ---------------------------------------------------------


@pytest.fixture
def endpoint_run(moto_server: MotoServer, run_factory: Callable[..., Session],  # noqa: F811
                 endpoint_credentials: None) -> Iterator[Session]:  # noqa: F811
    moto_server.reset()
    yield run_factory(f'aws = {{ target = "endpoint", url = "{moto_server.url}", region = "{REGION}" }}\n')


def test_server_gaps_are_reported_at_the_first_attempt(moto_server: MotoServer, endpoint_run: Session) -> None:  # noqa: F811
    plan_id = moto_server.client("backup", REGION).create_backup_plan(BackupPlan=PLAN)["BackupPlanId"]
    sent = attempts(endpoint_run.aws.client("backup"))
    # HTML 500: moto's server hit NotImplementedError; without the gap rule botocore would retry it 5 times
    with pytest.raises(NotImplementedByTarget, match="the endpoint target does not implement ListBackupSel"):
        endpoint_run.aws.paginate("backup", "list_backup_selections", BackupPlanId=plan_id)
    # HTML 404: the server has no route for it at all
    with pytest.raises(NotImplementedByTarget, match="does not implement ListRecoveryPointsByBackupVault"):
        endpoint_run.aws.read("backup", "list_recovery_points_by_backup_vault", BackupVaultName="vault")
    assert sent == Counter({"ListBackupSelections": 1, "ListRecoveryPointsByBackupVault": 1})


def test_a_real_not_found_from_the_server_is_not_a_gap(endpoint_run: Session) -> None:
    result = evaluate(endpoint_run, bucket_exists, bucket="no-such-bucket-here")
    assert result.outcome is Outcome.FAIL
    assert result.observed == "the bucket does not exist"


# --- the call count -----------------------------------------------------------------------------


def test_calls_count_every_request_and_no_memo_hit(moto_run: Session) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    for i in range(3):
        s3.create_bucket(Bucket=f"count-{i}", CreateBucketConfiguration={"LocationConstraint": REGION})
    before = moto_run.aws.calls
    for _ in range(3):
        moto_run.aws.read("s3", "get_bucket_versioning", Bucket="count-0")
        moto_run.aws.paginate("s3", "list_objects_v2", Bucket="count-1")
    moto_run.aws.call("s3", "get_bucket_versioning", Bucket="count-2")  # un-memoised by design
    moto_run.aws.call("s3", "get_bucket_versioning", Bucket="count-2")
    assert moto_run.aws.calls - before == 4
    assert moto_run.metadata()["aws_api_calls"] == moto_run.aws.calls


# --- the run's pool: how many requests in flight, one pool, one client per service and region ---------------


def test_workers_default_per_kind_and_the_clients_pool_as_many_connections(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, """
        [environments.live]
        aws = { target = "live", region = "eu-west-1" }
        [environments.endpoint]
        aws = { target = "endpoint", url = "http://127.0.0.1:4566", region = "eu-west-1" }
        [environments.stub]
        aws = { target = "moto" }
        [environments.tuned]
        aws = { target = "endpoint", url = "http://127.0.0.1:4566", region = "eu-west-1", max_workers = 6 }
        """))
    workers = {name: env.aws.workers for name, env in config.environments.items()}
    assert workers == {"live": 16, "endpoint": 16, "stub": 4, "tuned": 6}
    for env in config.environments.values():
        target = AwsTarget(env, Resources())
        assert target.boto_config().max_pool_connections == env.aws.workers
    assert with_workers(config.environment("live"), 3).aws.workers == 3  # --workers / --runbooks-workers
    assert with_workers(config.environment("tuned"), None).aws.workers == 6


@pytest.mark.parametrize("value", ["0", "129", "1.5", '"8"', "true"])
def test_a_bad_max_workers_names_the_file_and_line(tmp_path: Path, value: str) -> None:
    path = write_config(tmp_path, f"""\
        [environments.prod]
        aws = {{ target = "live", region = "eu-west-1", max_workers = {value} }}
        """)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}:2: environment 'prod': aws.max_workers must be a whole number "
                                        "from 1 to 128 (requests in flight at once), got ")


def test_the_workers_option_is_refused_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.build_parser().parse_args(["verify", "--workers", "12"]).workers == 12
    for bad in ("0", "many"):
        with pytest.raises(SystemExit) as caught:
            cli.build_parser().parse_args(["verify", "--workers", bad])
        assert caught.value.code == 2
        assert capsys.readouterr().err.strip().endswith(
            f"argument --workers: must be a whole number from 1 to 128 (requests in flight at once), got "
            f"{'0' if bad == '0' else repr(bad)}")


def test_one_pool_per_run_and_one_client_per_service_and_region_across_threads(tmp_path: Path) -> None:
    run = make_run(tmp_path, 'aws = { target = "moto", region = "eu-west-1", max_workers = 3 }\n')
    try:
        seen: list[tuple[str, Any, Any]] = []

        def use(i: int) -> int:
            time.sleep(0.01)  # long enough for every worker to take a turn
            seen.append((threading.current_thread().name, run.aws.client("s3"), run.aws.client("s3", "us-east-1")))
            return i * 2

        pool = run.aws.pool()
        assert [f.result() for f in run.aws.fan_out(use, range(12))] == [i * 2 for i in range(12)]
        assert [f.result() for f in run.aws.in_region("us-east-1").fan_out(use, range(6))] == [i * 2 for i in range(6)]
        assert run.aws.pool() is pool  # every step, every region view: the same pool
        threads = {name for name, _, _ in seen}
        assert 1 < len(threads) <= 3 and all(name.startswith("runbooks-aws") for name in threads)
        # one client (and so one adaptive rate limiter) per service and region, whichever thread asks
        assert len({id(s3) for _, s3, _ in seen}) == 1 and len({id(us) for _, _, us in seen}) == 1
        assert seen[0][1] is not seen[0][2]
    finally:
        run.stop()
    with pytest.raises(RuntimeError):  # shut down with the run
        pool.submit(print)


def test_fan_out_keeps_the_callers_context_and_runs_nested_work_in_place(tmp_path: Path) -> None:
    """A pool of one worker: a worker that fanned out onto its own pool would wait for itself forever."""
    run = make_run(tmp_path, 'aws = { target = "moto", region = "eu-west-1", max_workers = 1 }\n')
    deadline = Deadline.after(30)
    token = DEADLINE.set(deadline)
    try:
        def inner(i: int) -> tuple[int, Deadline | None]:
            return i, DEADLINE.get()

        def outer(i: int) -> list[tuple[int, Deadline | None]]:
            return [f.result() for f in run.aws.fan_out(inner, [i, i + 10])]

        results = [f.result(timeout=10) for f in run.aws.fan_out(outer, [1, 2])]
    finally:
        DEADLINE.reset(token)
        run.stop()
    assert results == [[(1, deadline), (11, deadline)], [(2, deadline), (12, deadline)]]
