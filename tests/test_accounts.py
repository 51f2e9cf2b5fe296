"""Many accounts: @all-accounts runs a scenario once per account (x region with @all-regions), each in the
account's role, against a moto server holding several accounts (moto: credentials from AssumeRole act in the
role's account)."""

from __future__ import annotations

import json
import textwrap
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from runbooks.cli import main
from runbooks.config import load_config
from runbooks.drift import compare
from runbooks.errors import ConfigError
from runbooks.history import History
from runbooks.result import Outcome, StepRecord
from runbooks.steps.aws_fleet import fleet_buckets_versioned
from runbooks.targets.aws_readonly import exempt
from runbooks.testing import evaluate, started_session
from tests.support.moto_server import MotoServer
from tests.test_shards import copy_history, junit, run_shards, runs

pytest_plugins = ["tests.support.moto_server"]  # fixtures: moto_server, endpoint_credentials

ROLE = "runbooks-readonly"
REGIONS = ("eu-west-1", "us-east-1")
HUB = "123456789012"  # moto's account for the plain test credentials
HUB_ROLE = f"arn:aws:iam::{HUB}:role/runbooks-hub"
FEATURE = """\
    Feature: One rule over every account
      Scenario: The hub account is the run's own
        Given the AWS account is "123456789012"
        Then the S3 bucket "hub-logs" has versioning enabled

      @all-accounts
      Scenario: Buckets keep their versions
        Then every S3 bucket matching "acme-*" has versioning enabled

      @all-accounts @all-regions
      Scenario: Tables can be recovered
        Then every DynamoDB table matching "acme-*" has point-in-time recovery enabled
    """


def in_account(server: MotoServer, account: str) -> Callable[..., Any]:
    """Unguarded clients acting in ``account`` (moto: the account of the assumed role), for provisioning."""
    creds = server.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole", RoleSessionName="seed")["Credentials"]

    def client(service: str, region: str = "us-east-1") -> Any:
        return exempt(boto3.client(
            service, region_name=region, endpoint_url=server.url, aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"]))

    return client


def seed_account(server: MotoServer, account: str, bucket: str, versioned: bool,
                 pitr_off: frozenset[str] | set[str] = frozenset()) -> None:
    """The member role, one bucket and a table per region in ``account``."""
    client = in_account(server, account)
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{HUB}:root"}, "Action": "sts:AssumeRole"}]}
    client("iam").create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(trust))
    s3 = client("s3")
    s3.create_bucket(Bucket=bucket)
    if versioned:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for region in REGIONS:
        ddb = client("dynamodb", region)
        ddb.create_table(TableName="acme-orders", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                         BillingMode="PAY_PER_REQUEST")
        if region not in pitr_off:
            ddb.update_continuous_backups(
                TableName="acme-orders", PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})


def seed_hub(server: MotoServer) -> None:
    s3 = server.client("s3")
    s3.create_bucket(Bucket="hub-logs")
    s3.put_bucket_versioning(Bucket="hub-logs", VersioningConfiguration={"Status": "Enabled"})


def write_project(tmp_path: Path, aws: str) -> Path:
    (tmp_path / "features").mkdir(parents=True, exist_ok=True)
    (tmp_path / "features" / "fleet.feature").write_text(textwrap.dedent(FEATURE), encoding="utf-8")
    config = tmp_path / "runbooks.toml"
    config.write_text("[environments.fleet.aws]\n" + textwrap.dedent(aws), encoding="utf-8")
    return config


def verify(config: Path, reports: Path, *extra: str) -> tuple[int, list[dict[str, Any]]]:
    code = main(["verify", "--config", str(config), "--no-history", "--report-dir", str(reports), *extra])
    results = reports / "results.json"
    return code, json.loads(results.read_text())["results"] if results.exists() else []


def failures(records: list[dict[str, Any]]) -> dict[tuple[str, str, str], list[str]]:
    """(scenario, account, region) -> offenders, of every FAIL."""
    return {(r["scenario"], r["account"], r["region"]): sorted(r["evidence"]["offenders"])
            for r in records if r["outcome"] == "fail"}


def assumed_roles(server: MotoServer) -> dict[str, list[Any]]:
    """Role ARN -> the session policies it was assumed with (moto keeps every AssumeRole)."""
    out: dict[str, list[Any]] = {}
    for assumed in server.state().get("sts", {}).get("AssumedRole", []):
        out.setdefault(assumed["role_arn"], []).append(json.loads(assumed["policy"]) if assumed.get("policy") else None)
    return out


# --- listed accounts ------------------------------------------------------------------------------------

ACCOUNTS = [f"2100000000{n:02d}" for n in range(1, 21)]
UNVERSIONED = {"210000000003", "210000000007", "210000000012"}
PITR_OFF = {("210000000005", "us-east-1"), ("210000000017", "eu-west-1")}


LABEL = {a: f"team-{n:02d}" for n, a in enumerate(ACCOUNTS, start=1)}


def seed_fleet(server: MotoServer, tmp_path: Path, order: Callable[[list[Any]], list[Any]] = list) -> Path:
    """The hub and 20 listed accounts x 2 regions on the moto server (UNVERSIONED and PITR_OFF violate), and the
    project that checks them all; its runbooks.toml, listing the accounts and regions in ``order``."""
    server.reset()
    seed_hub(server)
    for n, account in enumerate(ACCOUNTS, start=1):
        seed_account(server, account, f"acme-{n:02d}-data", account not in UNVERSIONED,
                     {r for a, r in PITR_OFF if a == account})
    listed = ",\n".join(
        # every fifth names its role in full; the others take aws.role_name
        f'  {{ id = "{a}", name = "{LABEL[a]}"'
        + (f', role_arn = "arn:aws:iam::{a}:role/{ROLE}"' if int(a) % 5 == 0 else "") + " }"
        for a in order(ACCOUNTS))
    return write_project(tmp_path, f"""\
        target = "endpoint"
        url = "{server.url}"
        region = "eu-west-1"
        regions = {json.dumps(order(list(REGIONS)))}
        role_name = "{ROLE}"
        accounts = [
        {listed}
        ]
        """.replace("        {listed}", listed))


def fleet_failures(unversioned: set[str], pitr_off: set[tuple[str, str]]) -> dict[tuple[str, str, str], list[str]]:
    """:func:`failures` of a run over the fleet whose violations are these."""
    return {
        **{(f"Buckets keep their versions [{LABEL[a]}]", a, "eu-west-1"): [f"acme-{n:02d}-data"]
           for n, a in enumerate(ACCOUNTS, start=1) if a in unversioned},
        **{(f"Tables can be recovered [{LABEL[a]}/{r}]", a, r): ["acme-orders"] for a, r in pitr_off},
    }


def assert_names_its_account_and_region(records: list[dict[str, Any]]) -> None:
    """Each record of a per-account scenario names the account and region in its name; the plain one, neither."""
    for record in records:
        if "[" in record["scenario"]:
            account, _, region = record["scenario"].rsplit("[", 1)[1].rstrip("]").partition("/")
            assert LABEL[record["account"]] == account and record["region"] == (region or "eu-west-1"), record
        else:  # the plain scenario: the run's own credentials; only per-account scenarios name an account,
            # so that a record never depends on what ran before it (or in which shard)
            assert (record["account"], record["region"]) == ("", "eu-west-1"), record


@pytest.mark.timeout(60)
def test_one_run_covers_twenty_accounts_in_two_regions(tmp_path: Path, moto_server: MotoServer,
                                                      endpoint_credentials: None) -> None:
    start = time.monotonic()
    config = seed_fleet(moto_server, tmp_path)
    reports = tmp_path / "reports"
    seeded = time.monotonic()
    code, records = verify(config, reports, "--cucumber-json", str(tmp_path / "cucumber.json"))
    took = time.monotonic() - seeded
    assert code == 1

    assert failures(records) == fleet_failures(UNVERSIONED, PITR_OFF)
    # every scenario ran once per account (x region), and nothing else failed or errored
    assert len(records) == 2 + len(ACCOUNTS) * (1 + len(REGIONS))
    assert {r["outcome"] for r in records} == {"pass", "fail"}
    assert_names_its_account_and_region(records)

    # each account's role was assumed once, with the runbooks' read-only session policy
    assumed = assumed_roles(moto_server)
    for account in ACCOUNTS:
        policies = assumed[f"arn:aws:iam::{account}:role/{ROLE}"]
        assert len(policies) == 1
        actions = policies[0]["Statement"][0]["Action"]
        assert "s3:GetBucketVersioning" in actions and "sts:AssumeRole" not in actions

    # JUnit and Cucumber name the account (and region) in the scenario
    junit = ET.parse(reports / "junit.xml").getroot()
    cases = {case.get("name") for case in junit.iter("testcase")}
    assert "Tables can be recovered [team-05/us-east-1]" in cases and len(cases) == 1 + 3 * len(ACCOUNTS)
    failed = {case.get("name") for case in junit.iter("testcase") if case.find("failure") is not None}
    assert failed == {k[0] for k in failures(records)}
    cucumber = json.loads((tmp_path / "cucumber.json").read_text())
    assert "Buckets keep their versions [team-03]" in {e["name"] for f in cucumber for e in f["elements"]}
    print(f"seeded in {seeded - start:.1f} s, verified in {took:.1f} s")


def exact_records(report_dir: Path) -> list[dict[str, Any]]:
    """results.json's records, in their order, without their timings: against one unchanged moto server nothing
    else differs from run to run (:func:`tests.test_shards.records` also blurs every digit: account ids)."""
    return [{k: v for k, v in r.items() if k != "duration_ms"}
            for r in json.loads((report_dir / "results.json").read_text())["results"]]


def fleet_drift(config: Path, history: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["drift", "--config", str(config), "--env", "fleet", "--history", str(history), "--json"]) == 0
    return {name: [{k: v for k, v in r.items() if k != "duration_ms"} for r in items]
            for name, items in json.loads(capsys.readouterr().out).items()}


@pytest.mark.timeout(90)
def test_twenty_accounts_in_three_shards_merge_into_the_single_run(
        tmp_path: Path, moto_server: MotoServer, endpoint_credentials: None,
        capsys: pytest.CaptureFixture[str]) -> None:
    start = time.monotonic()
    # listed in reverse: a merge that put scenarios in name order instead of the run's would be seen
    config = seed_fleet(moto_server, tmp_path, order=lambda items: items[::-1])
    command = ["verify", "--config", str(config), "--env", "fleet"]
    # The previous run, in both histories: what the drift compares with and the shards balance by.
    base = tmp_path / "base.sqlite"
    assert main([*command, "--history", str(base), "--report-dir", str(tmp_path / "base")]) == 1
    (baseline_id, _), = runs(base)
    single, sharded = copy_history(base, tmp_path / "single.sqlite"), copy_history(base, tmp_path / "sharded.sqlite")
    # Then one bucket is fixed, another loses its versions and a table its point-in-time recovery.
    in_account(moto_server, "210000000003")("s3").put_bucket_versioning(
        Bucket="acme-03-data", VersioningConfiguration={"Status": "Enabled"})
    in_account(moto_server, "210000000010")("s3").put_bucket_versioning(
        Bucket="acme-10-data", VersioningConfiguration={"Status": "Suspended"})
    in_account(moto_server, "210000000009")("dynamodb", "eu-west-1").update_continuous_backups(
        TableName="acme-orders", PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": False})
    unversioned = UNVERSIONED - {"210000000003"} | {"210000000010"}
    pitr_off = PITR_OFF | {("210000000009", "eu-west-1")}
    seeded = time.monotonic()

    one = tmp_path / "single"
    code = main([*command, "--history", str(single), "--report-dir", str(one), "--drift"])
    assert code == 1
    single_out = capsys.readouterr().out
    parts = run_shards(command, sharded, tmp_path, capsys, baseline_id, scenarios=str(1 + 3 * len(ACCOUNTS)))
    assert [status for _, status in runs(sharded)] == ["finished"]  # a shard records nothing
    shares = [exact_records(Path(part)) for part in parts]
    assert all(shares) and sum(map(len, shares)) == len(exact_records(one))  # each shard ran a part of the fleet
    merged = tmp_path / "merged"
    assert main(["merge", *parts, "--config", str(config), "--history", str(sharded), "--report-dir", str(merged),
                 "--drift"]) == code
    merge_out = capsys.readouterr().out

    # every seeded violation found, each record naming its account and region, in the single and merged runs
    records = exact_records(one)
    assert failures(records) == fleet_failures(unversioned, pitr_off)
    assert len(records) == 2 + len(ACCOUNTS) * (1 + len(REGIONS))
    assert_names_its_account_and_region(records)
    # the same records, in the same order; the same JUnit
    assert exact_records(merged) == records
    assert junit(merged) == junit(one)
    doc = json.loads((merged / "results.json").read_text())
    assert doc["run"]["exit_code"] == code and doc["run"]["status"] == "finished" and doc["run"]["shard"]["merged"] == 3

    # the history holds the merged run as one run, and the drift is the same: told apart by account and region
    assert [status for _, status in runs(sharded)] == ["finished", "finished"]
    assert doc["run"]["run_id"] == runs(sharded)[-1][0]
    history = History(sharded)
    assert [{k: v for k, v in r.to_json().items() if k != "duration_ms"}
            for r in history.records(doc["run"]["run_id"])] == records
    history.close()
    drift = fleet_drift(config, single, capsys)
    assert fleet_drift(config, sharded, capsys) == drift
    assert [(r["scenario"], r["account"], r["region"]) for r in drift["new failures"]] == [
        ("Buckets keep their versions [team-10]", "210000000010", "eu-west-1"),
        ("Tables can be recovered [team-09/eu-west-1]", "210000000009", "eu-west-1")]
    assert [(r["account"], r["region"]) for r in drift["fixed"]] == [("210000000003", "eu-west-1")]
    assert len(drift["still failing"]) == len(UNVERSIONED) - 1 + len(PITR_OFF)
    assert not drift["checks added"] and not drift["checks removed"]

    def drift_lines(out: str) -> list[str]:  # what --drift printed, below its header (which names the run)
        return out[out.index("Drift for fleet"):].splitlines()[1:]

    assert drift_lines(merge_out) == drift_lines(single_out) and "team-09/eu-west-1" in merge_out
    took = time.monotonic() - seeded
    print(f"seeded in {seeded - start:.1f} s; one run, three shards and their merge in {took:.1f} s")


# --- accounts found in the organization -----------------------------------------------------------------

@pytest.mark.timeout(60)
def test_organization_accounts_are_listed_filtered_and_assumed(tmp_path: Path, moto_server: MotoServer,
                                                             endpoint_credentials: None) -> None:
    moto_server.reset()
    seed_hub(moto_server)
    org = moto_server.client("organizations")
    org.create_organization(FeatureSet="ALL")

    def account(name: str) -> str:
        status = org.create_account(AccountName=name, Email=f"{name}@example.com")["CreateAccountStatus"]
        return str(status["AccountId"])

    prod = {name: account(name) for name in ("prod-payments", "prod-search", "prod-ledger")}
    retired = account("prod-retired")  # closed: not ACTIVE
    org.close_account(AccountId=retired)
    excluded = account("prod-sandbox")  # matched by include, dropped by exclude
    others = [account(f"dev-{n}") for n in range(3)]  # not matched by include
    for name, account_id in prod.items():
        seed_account(moto_server, account_id, f"acme-{name}", versioned=name != "prod-search",
                     pitr_off={"us-east-1"} if name == "prod-ledger" else set())
    config = write_project(tmp_path, f"""\
        target = "endpoint"
        url = "{moto_server.url}"
        region = "eu-west-1"
        regions = ["eu-west-1", "us-east-1"]
        role_arn = "{HUB_ROLE}"
        organization = {{ role_name = "{ROLE}", include = ["prod-*"], exclude = ["prod-sandbox"] }}
        """)
    reports = tmp_path / "reports"
    code, records = verify(config, reports)
    assert code == 1
    assert failures(records) == {
        ("Buckets keep their versions [prod-search]", prod["prod-search"], "eu-west-1"): ["acme-prod-search"],
        ("Tables can be recovered [prod-ledger/us-east-1]", prod["prod-ledger"], "us-east-1"): ["acme-orders"],
    }
    ran = {r["account"] for r in records if "[" in r["scenario"]}
    assert ran == set(prod.values())
    assert len(records) == 2 + 3 * len(prod)
    # the hub role (aws.role_arn) lists the accounts and assumes the role in each; the roles only read
    assumed = {arn: policies for arn, policies in assumed_roles(moto_server).items()
               if not arn.endswith("/OrganizationAccountAccessRole")}  # the test's own, to provision
    assert set(assumed) == {HUB_ROLE, *(f"arn:aws:iam::{a}:role/{ROLE}" for a in prod.values())}
    hub = assumed[HUB_ROLE][0]["Statement"][0]["Action"]
    assert {"organizations:ListAccounts", "sts:AssumeRole", "s3:GetBucketVersioning"} <= set(hub)
    for account_id in prod.values():
        member = assumed[f"arn:aws:iam::{account_id}:role/{ROLE}"][0]["Statement"][0]["Action"]
        assert "s3:GetBucketVersioning" in member and not {"sts:AssumeRole", "organizations:ListAccounts"} & set(member)
    assert not {retired, excluded, *others} & {arn.split(":")[4] for arn in assumed}


@pytest.mark.timeout(60)
def test_an_organization_without_matching_accounts_stops_the_run(
        tmp_path: Path, moto_server: MotoServer, endpoint_credentials: None,
        capsys: pytest.CaptureFixture[str]) -> None:
    moto_server.reset()
    moto_server.client("organizations").create_organization(FeatureSet="ALL")
    config = write_project(tmp_path, f"""\
        target = "endpoint"
        url = "{moto_server.url}"
        region = "eu-west-1"
        organization = {{ role_name = "{ROLE}", include = ["prod-*"] }}
        """)
    code, _ = verify(config, tmp_path / "reports")
    err = capsys.readouterr().err
    assert code == 3
    assert "could not list the accounts of the organization for 'fleet': no ACTIVE account of the organization " \
           "matches include ['prod-*'] (1 in the organization)" in err


# --- iam-policy -----------------------------------------------------------------------------------------

def test_iam_policy_prints_the_member_role_and_the_caller_policies(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_project(tmp_path, f"""\
        target = "live"
        region = "eu-west-1"
        organization = {{ role_name = "{ROLE}", include = ["prod-*"] }}
        """)
    assert main(["iam-policy", "--config", str(config)]) == 0
    out, err = capsys.readouterr()
    member = json.loads(out)["Statement"][0]["Action"]
    assert member == ["dynamodb:DescribeContinuousBackups", "dynamodb:ListTables", "s3:GetBucketVersioning",
                      "s3:ListAllMyBuckets", "sts:GetCallerIdentity"]  # what the steps need, in each account
    assert "attach this policy to the role assumed there; `runbooks iam-policy --organization`" in err
    assert main(["iam-policy", "--config", str(config), "--organization"]) == 0
    caller = json.loads(capsys.readouterr().out)["Statement"]
    assert caller == [
        {"Sid": "RunbooksListAccounts", "Effect": "Allow", "Action": ["organizations:ListAccounts"], "Resource": "*"},
        {"Sid": "RunbooksAssumeAccountRole", "Effect": "Allow", "Action": ["sts:AssumeRole"],
         "Resource": [f"arn:aws:iam::*:role/{ROLE}"]},
    ]
    listed = write_project(tmp_path / "listed", f"""\
        target = "live"
        region = "cn-north-1"
        role_name = "{ROLE}"
        accounts = [
          {{ id = "111111111111" }},
          {{ id = "222222222222", role_arn = "arn:aws-cn:iam::222222222222:role/x" }},
        ]
        """)
    assert main(["iam-policy", "--config", str(listed), "--organization"]) == 0
    assert json.loads(capsys.readouterr().out)["Statement"] == [
        {"Sid": "RunbooksAssumeAccountRole", "Effect": "Allow", "Action": ["sts:AssumeRole"],
         "Resource": [f"arn:aws-cn:iam::111111111111:role/{ROLE}", "arn:aws-cn:iam::222222222222:role/x"]},
    ]
    plain = write_project(tmp_path / "plain", 'target = "live"\nregion = "eu-west-1"\n')
    assert main(["iam-policy", "--config", str(plain), "--organization"]) == 2
    assert "has no aws.accounts and no aws.organization" in capsys.readouterr().err


# --- the configuration ----------------------------------------------------------------------------------

BAD = {
    "id as a number": ('role_name = "r"\naccounts = [{ id = 111111111111 }]', 4,
                       "id must be a non-empty string (quote it"),
    "short id": ('role_name = "r"\naccounts = [{ id = "1234" }]', 4, "id must be an AWS account id of 12 digits"),
    "no role": ('accounts = [{ id = "111111111111" }]', 3, "needs role_arn, or set aws.role_name"),
    "role of another account": ('accounts = [{ id = "111111111111", role_arn = "arn:aws:iam::222222222222:role/r" }]',
                                3, "is a role of account 222222222222, not of 111111111111"),
    "same name twice": ('role_name = "r"\naccounts = [\n  { id = "111111111111", name = "a" },\n'
                        '  { id = "222222222222", name = "a" },\n]', 4, "name 'a' appears more than once"),
    "slash in a name": ('role_name = "r"\naccounts = [{ id = "111111111111", name = "a/b" }]', 4, "may not contain"),
    "unknown key": ('role_name = "r"\naccounts = [{ id = "111111111111", nmae = "a" }]', 4,
                    "unknown key 'nmae'; did you mean 'name'?"),
    "both": ('role_name = "r"\naccounts = [{ id = "111111111111" }]\norganization = { include = ["x"] }', 5,
             "aws.accounts and aws.organization exclude each other"),
    "organization without role": ('organization = { include = ["prod-*"] }', 3, "aws.organization needs role_name"),
    "organization include": ('organization = { role_name = "r", include = "prod-*" }', 3,
                             "aws.organization.include must be a list"),
    "organization unknown key": ('organization = { role_name = "r", exclud = ["x"] }', 3,
                                 "unknown aws.organization key 'exclud'; did you mean 'exclude'"),
    "role_name alone": ('role_name = "r"', 3, "aws.role_name names the role assumed in each of"),
    "bad role_name": ('role_name = "r o"\naccounts = [{ id = "111111111111" }]', 3,
                      "aws.role_name must be an IAM role"),
}


@pytest.mark.parametrize("case", BAD)
def test_a_bad_accounts_configuration_names_its_line(tmp_path: Path, case: str) -> None:
    body, line, message = BAD[case]
    path = tmp_path / "runbooks.toml"
    path.write_text('[environments.fleet.aws]\ntarget = "live"\n' + body + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert str(raised.value).startswith(f"{path}:{line}: environment 'fleet': "), str(raised.value)
    assert message in str(raised.value)


def test_accounts_as_tables_of_their_own(tmp_path: Path) -> None:
    path = tmp_path / "runbooks.toml"
    path.write_text(textwrap.dedent("""\
        [environments.fleet.aws]
        target = "live"
        role_name = "runbooks-readonly"

        [[environments.fleet.aws.accounts]]
        id = "111111111111"
        name = "payments-prod"

        [[environments.fleet.aws.accounts]]
        id = "222222222222"
        role_arn = "arn:aws:iam::222222222222:role/audit"
        external_id = "acme"
        """), encoding="utf-8")
    aws = load_config(path).environment("fleet").aws
    assert [(a.label, a.role_arn, a.external_id) for a in aws.accounts] == [
        ("payments-prod", None, None), ("222222222222", "arn:aws:iam::222222222222:role/audit", "acme")]
    assert aws.has_accounts and aws.summary.endswith(", 2 accounts")


# --- drift ----------------------------------------------------------------------------------------------

def _record(outcome: Outcome, account: str = "", region: str = "", scenario: str = "S") -> StepRecord:
    return StepRecord("f.feature", scenario, "step", outcome, written="step", account=account, region=region)


def test_drift_tells_the_same_check_in_two_accounts_apart() -> None:
    before = [_record(Outcome.PASS, "111111111111", "eu-west-1"), _record(Outcome.FAIL, "222222222222", "eu-west-1")]
    after = [_record(Outcome.FAIL, "111111111111", "eu-west-1"), _record(Outcome.PASS, "222222222222", "eu-west-1")]
    drift = compare(before, after)
    assert [r.account for r in drift.new_failures] == ["111111111111"]
    assert [r.account for r in drift.fixed] == ["222222222222"]
    assert not drift.added and not drift.removed


def test_drift_matches_records_from_before_they_named_account_and_region() -> None:
    drift = compare([_record(Outcome.FAIL)], [_record(Outcome.FAIL, "", "eu-west-1")])
    assert [r.region for r in drift.still_failing] == ["eu-west-1"]
    assert not drift.added and not drift.removed and not drift.new_failures


# --- a step test in one account (runbooks.testing, the in-process stub) ---------------------------------

def test_a_step_test_runs_a_check_in_one_account_of_the_in_process_stub() -> None:
    config = 'aws = { target = "moto", role_name = "r", accounts = [{ id = "111111111111", name = "a" }, ' \
             '{ id = "222222222222", name = "b" }] }\n'
    with started_session(config) as run:
        for account, versioned in (("111111111111", True), ("222222222222", False)):
            creds = boto3.client("sts", region_name="us-east-1").assume_role(
                RoleArn=f"arn:aws:iam::{account}:role/r", RoleSessionName="seed")["Credentials"]
            s3 = boto3.client("s3", region_name="us-east-1", aws_access_key_id=creds["AccessKeyId"],
                              aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"])
            s3.create_bucket(Bucket=f"acme-{account}")
            if versioned:
                s3.put_bucket_versioning(Bucket=f"acme-{account}", VersioningConfiguration={"Status": "Enabled"})
        a, b = run.aws.accounts()
        assert evaluate(run, fleet_buckets_versioned, aws_account=a, pattern="acme-*").outcome is Outcome.PASS
        failed = evaluate(run, fleet_buckets_versioned, aws_account=b, pattern="acme-*")
        assert failed.outcome is Outcome.FAIL and list(failed.evidence["offenders"]) == ["acme-222222222222"]
        assert run.aws.account(b).account_id() == "222222222222" and run.aws.account_id() == HUB
