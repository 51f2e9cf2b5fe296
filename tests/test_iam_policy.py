"""``runbooks iam-policy``: what the policy contains, and proof on an IAM-enforcing moto server that it is
enough (every check runs with exactly it) and minimal (without any one action, exactly the checks
needing it turn into ERROR, naming the action; none becomes PASS or FAIL)."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.client
import pytest
from pytest_bdd import parsers

from runbooks import registry
from runbooks.cli import build_parser, main
from runbooks.iam_policy import (
    READ_ACTIONS,
    READ_PREFIXES,
    cmd_iam_policy,
    permission_problem,
    policy_document,
    render_policy,
)
from runbooks.registry import StepDefinition, load_step_modules
from runbooks.reports import read_results_json
from runbooks.result import CheckResult, Outcome, StepRecord
from runbooks.targets.aws import iam_action
from tests.support.moto_iam import (
    MOTO_ALIASES,
    MOTO_UNENFORCED,
    REGION,
    EnforcingMoto,
    Keys,
    with_moto_aliases,
)

pytest_plugins = ["tests.support.moto_iam"]  # fixture: iam_moto (module-scoped)

REPO = Path(__file__).resolve().parent.parent
load_step_modules()


def write_project(root: Path, feature: str, env_body: str = 'aws = { target = "moto" }\n',
                  name: str = "x.feature") -> Path:
    (root / "features").mkdir(parents=True, exist_ok=True)
    (root / "features" / name).write_text(textwrap.dedent(feature), encoding="utf-8")
    config = root / "runbooks.toml"
    config.write_text("[environments.test]\n" + textwrap.dedent(env_body), encoding="utf-8")
    return config


def policy_of(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["iam-policy", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def actions_of(text: str) -> list[str]:
    return list(json.loads(text)["Statement"][0]["Action"])


# --- what the policy contains -------------------------------------------------------------------


def test_shipped_features_policy_is_read_only_sorted_unique(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = policy_of(capsys, "--config", str(REPO / "runbooks.toml"))
    assert code == 0, err
    document = json.loads(out)
    assert out == json.dumps(document, indent=2) + "\n"  # 2-space JSON, as printed
    assert document["Version"] == "2012-10-17"
    [statement] = document["Statement"]
    assert set(statement) == {"Sid", "Effect", "Action", "Resource"}
    assert (statement["Sid"], statement["Effect"], statement["Resource"]) == ("RunbooksReadOnly", "Allow", "*")
    actions = statement["Action"]
    assert actions and actions == sorted(set(actions))
    for action in actions:
        service, _, verb = action.partition(":")
        assert service and service == service.lower() and verb.isalnum(), action
        assert verb.startswith(READ_PREFIXES) or verb in READ_ACTIONS, f"{action} is not a read action"
    # the post-deployment runbook's S3 and DynamoDB reads are all there
    assert {"s3:ListBucket", "s3:GetBucketVersioning", "s3:GetEncryptionConfiguration", "s3:GetBucketTagging",
            "s3:GetBucketPublicAccessBlock", "dynamodb:DescribeTable",
            "dynamodb:DescribeContinuousBackups"} <= set(actions)
    # nothing a step in these runbooks does not declare
    declared = {p for d in registry.REGISTRY.values() for p in d.permissions}
    assert set(actions) <= declared


def test_only_the_steps_used_contribute(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_project(tmp_path, """\
        Feature: Two facts
          Scenario: One of each
            Then the S3 bucket "b" has versioning enabled
            And the DynamoDB table "t" has point-in-time recovery enabled
            And the S3 bucket "b" has versioning enabled
        """)
    code, out, err = policy_of(capsys, "--config", str(config))
    assert (code, err) == (0, "")
    assert policy_of(capsys, "--config", str(config), "--explain")[2] == (
        "dynamodb:DescribeContinuousBackups: needed by features/x.feature:4\n"
        "s3:GetBucketVersioning: needed by features/x.feature:3, features/x.feature:5\n"
    )
    assert out == textwrap.dedent("""\
        {
          "Version": "2012-10-17",
          "Statement": [
            {
              "Sid": "RunbooksReadOnly",
              "Effect": "Allow",
              "Action": [
                "dynamodb:DescribeContinuousBackups",
                "s3:GetBucketVersioning"
              ],
              "Resource": "*"
            }
          ]
        }
        """)


def test_caller_identity_only_when_a_step_declares_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    without = write_project(tmp_path / "a", """\
        Feature: F
          Scenario: S
            Then the S3 bucket "b" is encrypted with "AES256"
        """)
    assert actions_of(policy_of(capsys, "--config", str(without))[1]) == ["s3:GetEncryptionConfiguration"]
    with_block = write_project(tmp_path / "b", """\
        Feature: F
          Scenario: S
            Then the S3 bucket "b" blocks all public access
        """)
    needed = registry.find('the S3 bucket "b" blocks all public access')
    assert needed is not None and "sts:GetCallerIdentity" in needed[0].permissions
    assert actions_of(policy_of(capsys, "--config", str(with_block))[1]) == sorted(needed[0].permissions)


def test_outline_rows_and_background_are_expanded(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_project(tmp_path, """\
        Feature: F
          Background:
            Given the DynamoDB table "t" is active

          Scenario Outline: one fact per row
            Then the S3 bucket "b" <fact>

            Examples:
              | fact                          |
              | has versioning enabled        |
              | has tag "owner" set to "team" |
        """)
    code, out, err = policy_of(capsys, "--config", str(config))
    assert code == 0, err
    assert actions_of(out) == ["dynamodb:DescribeTable", "s3:GetBucketTagging", "s3:GetBucketVersioning"]


def test_manual_and_non_aws_steps_need_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_project(tmp_path, """\
        Feature: F
          Scenario: S
            Then the service "api" answers GET "/health" with status 200 within 500 ms
            * manual: page the on-call engineer
        """, 'aws = { target = "moto" }\nservices = { api = "http://127.0.0.1:9" }\n')
    code, out, err = policy_of(capsys, "--config", str(config))
    assert (code, out) == (0, "")
    assert "the 2 step(s) of these runbooks need no AWS permissions" in err
    # and mixed in with an AWS step they add nothing either
    feature = tmp_path / "features" / "x.feature"
    feature.write_text(feature.read_text() + '    Then the S3 bucket "b" has versioning enabled\n')
    assert actions_of(policy_of(capsys, "--config", str(config))[1]) == ["s3:GetBucketVersioning"]


def test_undefined_step_is_refused_with_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_project(tmp_path, """\
        Feature: F
          Scenario: S
            Then the S3 bucket "b" has versioning enabled
            And the S3 bucket "b" has versioning switched on
        """)
    code, out, err = policy_of(capsys, "--config", str(config))
    assert (code, out) == (2, "")
    assert 'features/x.feature:4: undefined step: And the S3 bucket "b" has versioning switched on' in err
    assert 'closest known: the S3 bucket "{bucket}" has versioning enabled' in err
    assert "runbooks: error: 1 problem(s); no policy was written" in err


def test_explicit_paths_and_bad_paths(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_project(tmp_path, """\
        Feature: F
          Scenario: S
            Then the DynamoDB table "t" is active
        """)
    other = tmp_path / "other.feature"
    other.write_text('Feature: G\n  Scenario: S\n    Then the S3 bucket "b" has tag "a" set to "b"\n')
    code, out, _ = policy_of(capsys, "--config", str(config), str(other))
    assert code == 0 and actions_of(out) == ["s3:GetBucketTagging"]  # only the named file, not features/
    code, out, err = policy_of(capsys, "--config", str(config), str(tmp_path / "missing.feature"))
    assert (code, out) == (2, "") and "missing.feature: no such file or folder" in err
    code, out, err = policy_of(capsys, "--config", str(config), "--env", "prdo")
    assert (code, out) == (2, "") and "unknown environment 'prdo'" in err


def test_assumed_role_adds_nothing_to_the_policy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    role = "arn:aws:iam::123456789012:role/runbooks-readonly"
    config = write_project(tmp_path, """\
        Feature: F
          Scenario: S
            Then the S3 bucket "b" has versioning enabled
        """, f'aws = {{ target = "live", role_arn = "{role}" }}\n')
    code, out, err = policy_of(capsys, "--config", str(config), "--env", "test")
    assert code == 0
    assert actions_of(out) == ["s3:GetBucketVersioning"]
    assert "sts:AssumeRole" not in out
    assert role in err and "sts:AssumeRole" in err  # the caller's extra grant is only mentioned


@pytest.mark.parametrize(("permissions", "reason"), [
    (("s3 GetBucketVersioning",), "is not of the form service:Action"),
    (("s3:Get*",), "is not of the form service:Action"),
    (("S3:GetBucketVersioning",), "is not of the form service:Action"),
    (("s3:PutBucketVersioning",), "is not a read action"),
    (("sts:AssumeRole",), "is not a read action"),
])
def test_malformed_or_writing_permission_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch, permissions: tuple[str, ...],
                                                   reason: str) -> None:
    phrase = 'the test widget "{name}" is fine'
    definition = StepDefinition(phrase, lambda ctx, name: CheckResult.passed(name, "", ""), "test", permissions,
                                "", "", parsers.parse(phrase), {}, {})
    monkeypatch.setitem(registry.REGISTRY, phrase, definition)
    config = write_project(tmp_path, """\
        Feature: F
          Scenario: S
            Then the test widget "w" is fine
        """)
    code, out, err = policy_of(capsys, "--config", str(config))
    assert (code, out) == (2, "")
    assert f"step {phrase!r} ({definition.func.__module__}) declares {permissions[0]!r} {reason}" in err


def test_permission_problem_accepts_reads() -> None:
    for good in ("s3:GetBucketVersioning", "dynamodb:Query", "dynamodb:BatchGetItem", "sts:GetCallerIdentity",
                 "tag:GetResources", "s3:ListBucket", "s3:HeadBucket", "backup:DescribeBackupVault"):
        assert permission_problem(good) is None, good


def test_registered_as_a_sub_command() -> None:
    args = build_parser().parse_args(["iam-policy", "a.feature", "--env", "prod", "--config", "r.toml"])
    assert args.handler is cmd_iam_policy
    assert (args.paths, args.env, args.config, args.explain) == ([Path("a.feature")], "prod", Path("r.toml"), False)
    assert render_policy(["b:GetX", "a:GetY", "b:GetX"]) == json.dumps(policy_document(["a:GetY", "b:GetX"]),
                                                                      indent=2) + "\n"


def test_every_declared_permission_is_well_formed() -> None:
    bad = {d.phrase: p for d in registry.REGISTRY.values() for p in d.permissions if permission_problem(p)}
    assert bad == {}


# --- the proof: an IAM-enforcing moto server ----------------------------------------------------

BUCKETS = {"templates": "lp-templates", "logs": "lp-logs", "assets": "lp-assets"}
TABLE = "lp-tenants"
PROOF_FEATURE = """\
    Feature: Least-privilege proof of the storage checks
      Background:
        Given the S3 bucket "{templates_bucket}" exists
        And the DynamoDB table "{tenants_table}" is active

      Scenario: Buckets are private, versioned and encrypted
        Then the S3 bucket "{templates_bucket}" blocks all public access
        And the S3 bucket "{templates_bucket}" has versioning enabled
        And the S3 bucket "{templates_bucket}" is encrypted with "AES256"
        And the S3 bucket "{logs_bucket}" blocks all public access
        And the S3 bucket "{logs_bucket}" has versioning enabled
        And the S3 bucket "{assets_bucket}" is encrypted with "aws:kms"

      Scenario Outline: Buckets carry the owner tag
        Then the S3 bucket "<bucket>" has tag "owner" set to "{owner}"

        Examples:
          | bucket             |
          | {templates_bucket} |
          | {assets_bucket}    |

      Scenario: The table can be recovered and serves its query path
        Then the DynamoDB table "{tenants_table}" has point-in-time recovery enabled
        And the DynamoDB table "{tenants_table}" has an active global secondary index "email-index"
        And the DynamoDB table "{tenants_table}" has tag "owner" set to "{owner}"
        * manual: confirm with the data owner that the restore drill of this quarter is booked
    """
# Steps that declare an action but do not call it on this stack: the templates bucket's own block is
# complete, so the account-level block (s3control, and sts for the account id) is never read for it.
NOT_CALLED = {
    "s3:GetAccountPublicAccessBlock": {'the S3 bucket "lp-templates" blocks all public access'},
    "sts:GetCallerIdentity": {'the S3 bucket "lp-templates" blocks all public access'},
}
ALL_FOUR = {f: True for f in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")}


@pytest.fixture(scope="module")
def proof(iam_moto: EnforcingMoto, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The healthy stack (provisioned as the admin) and a project whose runbook checks it; returns the config."""
    s3 = iam_moto.client("s3")
    for name in BUCKETS.values():
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": [{"Key": "owner", "Value": "platform-team"}]})
    for name in (BUCKETS["templates"], BUCKETS["logs"]):
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    for name, rule in ((BUCKETS["templates"], {"SSEAlgorithm": "AES256"}),
                       (BUCKETS["assets"], {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "alias/assets"})):
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": rule}]})
    s3.put_public_access_block(Bucket=BUCKETS["templates"], PublicAccessBlockConfiguration=ALL_FOUR)
    # the logs bucket has no block of its own: the account's block covers it (s3control + sts are read)
    account = iam_moto.client("sts").get_caller_identity()["Account"]
    iam_moto.client("s3control").put_public_access_block(AccountId=account, PublicAccessBlockConfiguration=ALL_FOUR)
    ddb = iam_moto.client("dynamodb")
    ddb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"},
                              {"AttributeName": "email", "AttributeType": "S"}],
        GlobalSecondaryIndexes=[{"IndexName": "email-index", "KeySchema": [{"AttributeName": "email",
                                                                              "KeyType": "HASH"}],
                                 "Projection": {"ProjectionType": "ALL"}}],
        BillingMode="PAY_PER_REQUEST",
        Tags=[{"Key": "owner", "Value": "platform-team"}],
    )
    ddb.update_continuous_backups(TableName=TABLE,
                                  PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})

    root = tmp_path_factory.mktemp("least-privilege")
    return write_project(root, PROOF_FEATURE, f"""\
        aws = {{ target = "endpoint", url = "{iam_moto.url}", region = "{REGION}" }}
        [environments.test.vars]
        templates_bucket = "{BUCKETS['templates']}"
        logs_bucket = "{BUCKETS['logs']}"
        assets_bucket = "{BUCKETS['assets']}"
        tenants_table = "{TABLE}"
        owner = "platform-team"
        """, name="least_privilege.feature")


@pytest.fixture(scope="module")
def printed_policy(proof: Path) -> str:
    """``runbooks iam-policy`` for the proof's runbook, as printed (module-scoped, so no capsys)."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["iam-policy", "--config", str(proof)]) == 0
    return out.getvalue()


@pytest.fixture
def api_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, str]]]:
    """Every AWS API call made in this process during the test, as (service, operation)."""
    calls: list[tuple[str, str]] = []
    original = botocore.client.BaseClient._make_api_call

    def recording(self: Any, operation_name: str, api_params: Any) -> Any:
        calls.append((self.meta.service_model.service_name, operation_name))
        return original(self, operation_name, api_params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", recording)
    yield calls


def verify_as(keys: Keys, config: Path, reports: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, list[StepRecord]]:
    """``runbooks verify`` with only ``keys`` as credentials (no profile, no shared files)."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", keys.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", keys.secret_access_key)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(reports / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(reports / "no-aws-credentials"))
    code = main(["verify", "--config", str(config), "--report-dir", str(reports)])
    return code, read_results_json(reports / "results.json")[1]


def policy_with(printed: str, actions: list[str]) -> str:
    """The printed policy with its Action list replaced (everything else exactly as printed)."""
    document = json.loads(printed)
    document["Statement"][0]["Action"] = actions
    return json.dumps(document)


def declares(record: StepRecord, action: str) -> bool:
    found = registry.find(record.step)
    assert found is not None, record.step
    return action in found[0].permissions


def test_enforcement_is_on_for_s3_and_dynamodb(iam_moto: EnforcingMoto) -> None:
    """The premise: past the bootstrap allowance, unknown keys and ungranted reads are refused."""
    stranger = Keys("nobody", "AKIAUNKNOWNUNKNOWN00", "secret")
    with pytest.raises(botocore.exceptions.ClientError) as unknown:
        iam_moto.client("s3", stranger).list_buckets()
    assert unknown.value.response["Error"]["Code"] == "InvalidAccessKeyId"
    keys = iam_moto.user_with_policy("lp-nothing", render_policy(["sqs:ListQueues"]))
    with pytest.raises(botocore.exceptions.ClientError) as s3_denied:
        iam_moto.client("s3", keys).get_bucket_tagging(Bucket="any-bucket")
    assert s3_denied.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(botocore.exceptions.ClientError) as ddb_denied:
        iam_moto.client("dynamodb", keys).describe_table(TableName="any-table")
    assert "AccessDenied" in str(ddb_denied.value) and "dynamodb:DescribeTable" in str(ddb_denied.value)


def test_the_printed_policy_is_enough(iam_moto: EnforcingMoto, proof: Path, printed_policy: str,
                                      api_calls: list[tuple[str, str]], tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    actions = actions_of(printed_policy)
    assert actions == ["dynamodb:DescribeContinuousBackups", "dynamodb:DescribeTable",
                       "dynamodb:ListTagsOfResource", "s3:GetAccountPublicAccessBlock",
                       "s3:GetBucketPublicAccessBlock", "s3:GetBucketTagging", "s3:GetBucketVersioning",
                       "s3:GetEncryptionConfiguration", "s3:ListBucket", "sts:GetCallerIdentity"]
    granted = with_moto_aliases(actions)
    assert set(granted) - set(actions) == {a for names in MOTO_ALIASES.values() for a in names}
    keys = iam_moto.user_with_policy("lp-exact", policy_with(printed_policy, granted))
    api_calls.clear()  # only the run's own calls from here

    code, records = verify_as(keys, proof, tmp_path / "reports", monkeypatch)

    outcomes = [(r.step, r.outcome) for r in records]
    assert [r for r in records if r.outcome is Outcome.ERROR] == []
    assert code == 0, outcomes
    assert {r.outcome for r in records} == {Outcome.PASS, Outcome.MANUAL}
    assert sum(r.outcome is Outcome.PASS for r in records) == 19  # 2 background x 4 scenarios + 11 checks
    logs_block = next(r for r in records if r.step == 'the S3 bucket "lp-logs" blocks all public access')
    assert "no bucket-level block; all four on" in logs_block.observed  # the account-level path really ran
    # every call the run made is one the printed policy names (the AWS name, not moto's)
    made = set(api_calls)
    assert {("s3", "HeadBucket"), ("s3control", "GetPublicAccessBlock"), ("sts", "GetCallerIdentity"),
            ("dynamodb", "ListTagsOfResource")} <= made
    assert {iam_action(service, operation) for service, operation in made} == set(actions)


# Actions moto enforces under their AWS name (or an alias that exists only in moto): removing one must
# turn exactly the checks that need it into ERROR. The others are expected to fail (strict), see MOTO_UNENFORCED.
ENFORCED = ["s3:GetBucketVersioning", "s3:GetBucketTagging", "s3:ListBucket", "s3:GetAccountPublicAccessBlock",
            "dynamodb:DescribeTable", "dynamodb:DescribeContinuousBackups", "dynamodb:ListTagsOfResource"]


@pytest.mark.parametrize("missing", ENFORCED + [
    pytest.param(action, marks=pytest.mark.xfail(strict=True, reason=f"not provable on moto: {why}"))
    for action, why in MOTO_UNENFORCED.items()
])
def test_without_one_action_exactly_its_checks_error(iam_moto: EnforcingMoto, proof: Path, printed_policy: str,
                                                      tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      missing: str) -> None:
    actions = [a for a in actions_of(printed_policy) if a != missing]
    granted = [a for a in with_moto_aliases(actions) if a not in MOTO_ALIASES.get(missing, ())]
    keys = iam_moto.user_with_policy("lp-without-" + missing.replace(":", "-"), policy_with(printed_policy, granted))

    code, records = verify_as(keys, proof, tmp_path / "reports", monkeypatch)

    assert code == 3, [(r.step, r.outcome, r.observed) for r in records]
    assert [r for r in records if r.outcome is Outcome.FAIL] == []
    errors = [r for r in records if r.outcome is Outcome.ERROR]
    assert errors, "no check noticed the missing permission"
    for record in errors:
        assert declares(record, missing), f"{record.step} errored without needing {missing}: {record.observed}"
        assert missing in record.observed and "access denied" in record.observed, record.observed
    by_scenario: dict[str, list[StepRecord]] = {}
    for record in records:
        by_scenario.setdefault(record.scenario, []).append(record)
    for scenario, items in by_scenario.items():
        for index, record in enumerate(items):
            if record.outcome is Outcome.SKIPPED:  # only behind a precondition that errored
                assert any(r.outcome is Outcome.ERROR for r in items[:index]), (scenario, record.step)
            elif declares(record, missing) and record.step not in NOT_CALLED.get(missing, set()):
                assert record.outcome is Outcome.ERROR, (record.step, record.outcome, record.observed)
            elif record.outcome is not Outcome.ERROR:
                assert record.outcome in (Outcome.PASS, Outcome.MANUAL), (record.step, record.outcome)
