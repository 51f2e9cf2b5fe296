"""Fleet steps: one rule over every bucket or table matching a glob, one result naming every offender.

Against in-process moto for the rules, a moto server that enforces IAM for the bucket that cannot be
read, botocore event hooks for what the run really sends, and the CLI for preflight.
"""

from __future__ import annotations

import json
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from runbooks import cli, testing
from runbooks.result import Outcome
from runbooks.session import Session
from runbooks.steps.aws_fleet import (
    fleet_buckets_block_public_access,
    fleet_buckets_encrypted,
    fleet_buckets_tagged,
    fleet_buckets_versioned,
    fleet_tables_pitr,
    fleet_tables_tagged,
    validate_glob,
)
from runbooks.steps.aws_s3 import BLOCK_FLAGS, bucket_versioning_enabled
from tests.conftest import evaluate, make_run, write_config
from tests.support.moto_iam import EnforcingMoto, iam_moto  # noqa: F401

REGION = "eu-west-1"
ALL_ON = dict.fromkeys(BLOCK_FLAGS, True)
LAGGING = "(tags read via the tagging API, which can lag behind recent tag changes)"
AES = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}


def make_bucket(s3: Any, name: str, *, block: bool = True, versioned: bool = True, encrypted: bool = True,
                tags: dict[str, str] | None = None) -> None:
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    if block:
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=ALL_ON)
    if versioned:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    if encrypted:
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration=AES)
    tags = {"owner": "platform"} if tags is None else tags
    if tags:
        tag_set = [{"Key": k, "Value": v} for k, v in tags.items()]
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tag_set})


def make_table(ddb: Any, name: str, *, pitr: bool = True, tags: dict[str, str] | None = None) -> None:
    tags = {"owner": "platform"} if tags is None else tags
    ddb.create_table(
        TableName=name, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST",
        **({"Tags": [{"Key": k, "Value": v} for k, v in tags.items()]} if tags else {}),
    )
    if pitr:
        ddb.update_continuous_backups(TableName=name,
                                      PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})


def attempts(client: Any) -> Counter[str]:
    """Calls the client makes, by operation (botocore's ``before-call`` fires once per call)."""
    sent: Counter[str] = Counter()
    lock = threading.Lock()

    def count(event_name: str, **_: Any) -> None:
        with lock:
            sent[event_name.rpartition(".")[2]] += 1

    client.meta.events.register("before-call", count)
    return sent


@pytest.fixture
def buckets(moto_run: Session) -> Any:
    """acme-a..f: one offender or two per rule; other-x violates everything but does not match."""
    s3 = boto3.client("s3", region_name=REGION)
    make_bucket(s3, "acme-a")
    make_bucket(s3, "acme-b", block=False, tags={"team": "x"})  # tagged, but not with owner
    make_bucket(s3, "acme-c", versioned=False, tags={})  # no tags at all
    make_bucket(s3, "acme-d", encrypted=False)
    make_bucket(s3, "acme-e", block=False, versioned=False)
    make_bucket(s3, "acme-f")
    make_bucket(s3, "other-x", block=False, versioned=False, encrypted=False, tags={})
    return s3


def test_bucket_fleet_lists_every_offender_and_only_them(moto_run: Session, buckets: Any) -> None:
    block = evaluate(moto_run, fleet_buckets_block_public_access, pattern="acme-*")
    assert block.outcome is Outcome.FAIL
    assert block.resource == "S3 buckets matching 'acme-*'"
    assert block.expected == "every bucket matching 'acme-*' with a full public-access block"
    assert block.observed == "2 of 6 buckets without a full public-access block: acme-b, acme-e"
    assert block.hint.startswith("for each bucket listed: aws s3api put-public-access-block --bucket <bucket")
    assert block.manual_command.startswith("aws s3api list-buckets")

    versioning = evaluate(moto_run, fleet_buckets_versioned, pattern="acme-*")
    assert versioning.observed == "2 of 6 buckets without versioning enabled: acme-c, acme-e"
    encryption = evaluate(moto_run, fleet_buckets_encrypted, pattern="acme-*", algorithm="AES256")
    assert encryption.observed == "1 of 6 buckets without default encryption AES256: acme-d"
    tag = evaluate(moto_run, fleet_buckets_tagged, pattern="acme-*", key="owner")
    assert (tag.outcome, tag.observed) == (Outcome.FAIL, "2 of 6 buckets without tag 'owner': acme-b, acme-c")

    fine = evaluate(moto_run, fleet_buckets_versioned, pattern="acme-[abdf]")
    assert (fine.outcome, fine.observed) == (Outcome.PASS, "all 4 matching buckets with versioning enabled")
    one = evaluate(moto_run, fleet_buckets_tagged, pattern="acme-a", key="owner")
    # a PASS may rest on the tagging API alone, which lags behind tag changes: it says so
    assert (one.outcome, one.observed) == (
        Outcome.PASS, f"the one matching bucket with tag 'owner' {LAGGING}")


def test_account_level_block_covers_buckets_without_their_own(moto_run: Session, buckets: Any) -> None:
    account = boto3.client("sts", region_name=REGION).get_caller_identity()["Account"]
    boto3.client("s3control", region_name=REGION).put_public_access_block(
        AccountId=account, PublicAccessBlockConfiguration=ALL_ON)
    sent = attempts(moto_run.aws.client("s3"))
    result = evaluate(moto_run, fleet_buckets_block_public_access, pattern="acme-*")
    assert (result.outcome, result.observed) == (
        Outcome.PASS, "all 6 matching buckets with a full public-access block "
        "(the account-level block has all four on)")
    assert sent == Counter({"ListBuckets": 1})  # no bucket needed reading


def test_no_match_is_a_failure(moto_run: Session, buckets: Any) -> None:
    result = evaluate(moto_run, fleet_buckets_versioned, pattern="acme-prod-*")
    assert result.outcome is Outcome.FAIL
    assert result.observed == "no bucket matches 'acme-prod-*' (7 buckets in total)"
    tables = evaluate(moto_run, fleet_tables_pitr, pattern="*")
    assert (tables.outcome, tables.observed) == (Outcome.FAIL, "no table matches '*' (0 tables in total)")


def test_table_fleet(moto_run: Session) -> None:
    ddb = boto3.client("dynamodb", region_name=REGION)
    make_table(ddb, "acme-orders")
    make_table(ddb, "acme-users", pitr=False, tags={})  # no tags at all
    make_table(ddb, "acme-audit", tags={"team": "sec"})
    make_table(ddb, "acme-cache", pitr=False)
    make_table(ddb, "scratch", pitr=False, tags={})
    pitr = evaluate(moto_run, fleet_tables_pitr, pattern="acme-*")
    assert pitr.outcome is Outcome.FAIL
    assert pitr.resource == "DynamoDB tables matching 'acme-*' (eu-west-1)"
    assert pitr.observed == "2 of 4 tables without point-in-time recovery enabled: acme-cache, acme-users"
    assert "update-continuous-backups --table-name <table>" in pitr.hint
    tag = evaluate(moto_run, fleet_tables_tagged, pattern="acme-*", key="owner")
    assert tag.observed == "2 of 4 tables without tag 'owner': acme-audit, acme-users"
    fine = evaluate(moto_run, fleet_tables_tagged, pattern="acme-[co]*", key="owner")
    assert (fine.outcome, fine.observed) == (
        Outcome.PASS, f"all 2 matching tables with tag 'owner' {LAGGING}")


def test_tags_without_the_tagging_api(moto_run: Session, buckets: Any) -> None:
    """tag:GetResources denied: every bucket's tags are read one by one, same offenders, and it says so."""
    with Stubber(moto_run.aws.client("resourcegroupstaggingapi")) as stub:
        stub.add_client_error("get_resources", "AccessDeniedException", "not authorized", 400)
        result = evaluate(moto_run, fleet_buckets_tagged, pattern="acme-*", key="owner")
    assert result.outcome is Outcome.FAIL
    assert result.observed.startswith(
        "2 of 6 buckets without tag 'owner': acme-b, acme-c (tags read bucket by bucket: "
        "the tagging API was unavailable: access denied for GetResources")


def test_a_stale_tagging_answer_is_confirmed_before_it_fails(moto_run: Session, buckets: Any) -> None:
    """The tagging API lags behind: it says acme-a has no owner tag. GetBucketTagging says it has."""
    stale = {"ResourceTagMappingList": [{"ResourceARN": "arn:aws:s3:::acme-a", "Tags": []},
                                        {"ResourceARN": "arn:aws:s3:::acme-f",
                                         "Tags": [{"Key": "owner", "Value": "platform"}]}]}
    with Stubber(moto_run.aws.client("resourcegroupstaggingapi")) as stub:
        stub.add_response("get_resources", stale)
        result = evaluate(moto_run, fleet_buckets_tagged, pattern="acme-[af]", key="owner")
    assert (result.outcome, result.observed) == (
        Outcome.PASS, "all 2 matching buckets with tag 'owner' (tags of 1 read via the tagging API, which can lag "
        "behind recent tag changes; 1 read from the bucket itself)")


def test_memo_and_bounded_pool(moto_run: Session) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    for i in range(20):
        make_bucket(s3, f"memo-{i:02d}", versioned=i != 7)
    sent: Counter[str] = Counter()
    threads: set[str] = set()
    lock = threading.Lock()

    def count(event_name: str, **_: Any) -> None:
        with lock:
            sent[event_name.rpartition(".")[2]] += 1
            threads.add(threading.current_thread().name)

    for service in ("s3", "resourcegroupstaggingapi", "sts", "s3control"):
        moto_run.aws.client(service).meta.events.register("before-call", count)
    for _ in range(2):
        assert "memo-07" in evaluate(moto_run, fleet_buckets_versioned, pattern="memo-*").observed
        evaluate(moto_run, fleet_buckets_tagged, pattern="memo-*", key="owner")
        evaluate(moto_run, fleet_buckets_block_public_access, pattern="memo-1*")
    assert evaluate(moto_run, bucket_versioning_enabled, bucket="memo-07").outcome is Outcome.FAIL
    # every fact once per run: the list, each bucket's versioning (shared with the single-bucket step),
    # the tag index, 10 bucket blocks + the account's block (GetCallerIdentity for its account id)
    assert sent == Counter({"ListBuckets": 1, "GetBucketVersioning": 20, "GetResources": 1,
                            "GetPublicAccessBlock": 11, "GetCallerIdentity": 1})
    pool_threads = {name for name in threads if name.startswith("runbooks-aws")}
    assert 1 < len(pool_threads) <= moto_run.aws.settings.workers == 4  # one pool for every step of the run


def test_tag_pages_are_read_in_parallel_for_the_matching_resources_only(moto_run: Session) -> None:
    """250 matching buckets: their ARNs go to GetResources 100 a call, the calls on the run's pool at once."""
    s3 = boto3.client("s3", region_name=REGION)
    for i in range(250):
        s3.create_bucket(Bucket=f"many-{i:03d}", CreateBucketConfiguration={"LocationConstraint": REGION})
        s3.put_bucket_tagging(Bucket=f"many-{i:03d}", Tagging={"TagSet": [{"Key": "owner", "Value": "x"}]})
    make_bucket(s3, "many-untagged", tags={})
    make_bucket(s3, "other-x", tags={})  # does not match: its tags are never asked for
    asked: list[list[str]] = []
    threads: set[str] = set()
    lock = threading.Lock()

    def record(params: dict[str, Any], **_: Any) -> None:
        with lock:
            threads.add(threading.current_thread().name)
            if "PaginationToken" not in params:
                asked.append(list(params["ResourceARNList"]))
        time.sleep(0.2)  # a round trip: a worker that answered at once could take every page (no overlap to see)

    moto_run.aws.client("resourcegroupstaggingapi").meta.events.register(
        "provide-client-params.resource-groups-tagging-api.GetResources", record)
    result = evaluate(moto_run, fleet_buckets_tagged, pattern="many-*", key="owner")
    assert (result.outcome, result.observed) == (Outcome.FAIL, "1 of 251 buckets without tag 'owner': many-untagged")
    assert sorted(len(arns) for arns in asked) == [51, 100, 100]
    assert sorted(arn for arns in asked for arn in arns) == sorted(
        [f"arn:aws:s3:::many-{i:03d}" for i in range(250)] + ["arn:aws:s3:::many-untagged"])
    assert len(threads) > 1 and all(name.startswith("runbooks-aws") for name in threads)


def test_all_regions_list_every_region_at_once(tmp_path: Path) -> None:
    """A scenario run per region: the first region's step lists the tables of every region in parallel;
    the other regions' steps find their listing read (and each judges only its own region's tables)."""
    regions = ["eu-west-1", "us-east-1", "ap-southeast-2"]
    run = make_run(tmp_path, f'aws = {{ target = "moto", region = "eu-west-1", regions = {json.dumps(regions)} }}\n')
    try:
        for region in regions:
            make_table(boto3.client("dynamodb", region_name=region), f"acme-{region}", pitr=region != "us-east-1")
        listed: Counter[str] = Counter()
        for region in regions:
            run.aws.client("dynamodb", region).meta.events.register(
                "before-call.dynamodb.ListTables", lambda region=region, **_: listed.update([region]))
        outcomes = {"eu-west-1": testing.evaluate(run, fleet_tables_pitr, region="eu-west-1", pattern="acme-*")}
        assert listed == Counter(regions)  # the first region's step listed them all
        outcomes |= {region: testing.evaluate(run, fleet_tables_pitr, region=region, pattern="acme-*")
                     for region in regions[1:]}
    finally:
        run.stop()
    assert listed == Counter(regions)  # once per region for the whole run
    assert outcomes["us-east-1"].observed == "1 of 1 table without point-in-time recovery enabled: acme-us-east-1"
    assert outcomes["ap-southeast-2"].observed == "the one matching table with point-in-time recovery enabled"
    assert outcomes["eu-west-1"].resource == "DynamoDB tables matching 'acme-*' (eu-west-1)"


# --- one bucket the checker may not read ----------------------------------------------------------


def test_a_bucket_that_cannot_be_read_is_never_an_offender(
    iam_moto: EnforcingMoto, run_factory: Callable[..., Session], monkeypatch: pytest.MonkeyPatch,  # noqa: F811
) -> None:
    s3 = iam_moto.client("s3")
    for name, versioned in (("iam-ok", True), ("iam-off", False), ("iam-denied", False)):
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
        if versioned:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:ListAllMyBuckets", "s3:GetBucketVersioning"], "Resource": "*"},
        {"Effect": "Deny", "Action": "s3:GetBucketVersioning", "Resource": "arn:aws:s3:::iam-denied"},
    ]}
    keys = iam_moto.user_with_policy("fleet-checker", json.dumps(policy))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", keys.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", keys.secret_access_key)
    run = run_factory(
        f'aws = {{ target = "endpoint", url = "{iam_moto.url}", region = "{REGION}", max_attempts = 1 }}\n')
    denied = "iam-denied (access denied for GetBucketVersioning (AccessDenied): Access Denied"

    with_offender = evaluate(run, fleet_buckets_versioned, pattern="iam-*")
    assert with_offender.outcome is Outcome.FAIL
    offenders, unchecked = with_offender.observed.split("; 1 could not be checked: ")
    assert offenders == "1 of 3 buckets without versioning enabled: iam-off"
    assert unchecked.startswith(denied) and unchecked.endswith(")")

    only_unchecked = evaluate(run, fleet_buckets_versioned, pattern="iam-[do]*[dk]")  # iam-denied, iam-ok
    assert only_unchecked.outcome is Outcome.ERROR
    assert only_unchecked.observed.startswith(f"1 of 2 buckets could not be checked: {denied}")
    assert only_unchecked.observed.endswith("; the other 1 with versioning enabled")
    assert "iam-off" not in only_unchecked.observed
    assert "runbooks iam-policy" in only_unchecked.hint


# --- patterns and preflight -----------------------------------------------------------------------


@pytest.mark.parametrize("pattern", ["acme-*", "acme-[0-9]*", "acme-[!x]?", "[]]x", "*"])
def test_good_globs(pattern: str) -> None:
    validate_glob(pattern)


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [("", "empty pattern"), (" ", "empty pattern"), ("acme-[0-9", "unbalanced '[' at position 6"),
     ("acme-]", "']' at position 6 closes no '['"), ("acme *", "whitespace")],
)
def test_bad_globs(pattern: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason.replace("[", r"\[").replace("]", r"\]")):
        validate_glob(pattern)


def test_preflight_rejects_a_bad_glob_before_anything_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                            ) -> None:
    config = write_config(tmp_path, '[environments.test]\naws = { target = "moto", region = "eu-west-1" }\n')
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "fleet.feature").write_text(textwrap.dedent("""\
        Feature: Fleet
          Scenario: Buckets
            Then every S3 bucket matching "acme-*" has versioning enabled
            And every S3 bucket matching "acme-[0-9" has versioning enabled
        """), encoding="utf-8")
    code = cli.main(["verify", "--config", str(config), "--report-dir", str(tmp_path / "reports")])
    err = capsys.readouterr().err
    assert code == 2
    assert "features/fleet.feature:4: pattern 'acme-[0-9': unbalanced '[' at position 6" in err
    assert not (tmp_path / "reports").exists()
