"""How the AWS target meets the machine it runs on: region, credentials from CI, endpoints, the sandbox extra.

Nothing here depends on the machine's own AWS_* variables or ~/.aws: every test starts from none.
"""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest

from runbooks.cli import main
from runbooks.config import load_config
from runbooks.errors import ConfigError
from runbooks.faults import FaultKind, classify
from runbooks.registry import REGISTRY
from runbooks.result import Outcome
from runbooks.session import Options, Session
from runbooks.targets.aws import (
    HINT_ENDPOINT_CREDENTIALS,
    AwsSettings,
    environment_credentials,
    resolve_aws,
)
from tests.support.moto_server import MotoServer, closed_port_url, moto_server  # noqa: F401

FEATURE = """\
Feature: One bucket
  Scenario: The bucket is versioned
    Then the S3 bucket "habits" has versioning enabled
"""
NO_REGION = "no region for environment {name!r}: set aws.region in runbooks.toml or AWS_REGION"


@pytest.fixture(autouse=True)
def no_machine_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No AWS_* variable of the machine, and shared config files that do not exist."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


def project(directory: Path, aws: str, name: str = "staging") -> Path:
    (directory / "features").mkdir(exist_ok=True)
    (directory / "features" / "bucket.feature").write_text(FEATURE, encoding="utf-8")
    path = directory / "runbooks.toml"
    path.write_text(f"[environments.{name}]\ndescription = \"x\"\n{textwrap.dedent(aws)}", encoding="utf-8")
    return path


def session_for(path: Path, name: str = "staging") -> Session:
    config = load_config(path)
    return Session.from_options(config, config.environment(name), Options())


def live(**fields: Any) -> AwsSettings:
    return AwsSettings(target="live", **fields)


def aws_config(directory: Path, text: str) -> str:
    path = directory / "aws-config"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return str(path)


# --- the region -----------------------------------------------------------------------------------


def test_the_configured_region_comes_first() -> None:
    environ = {"AWS_REGION": "us-west-2", "AWS_DEFAULT_REGION": "ap-south-1"}
    settings = resolve_aws(live(region="eu-west-1"), "staging", environ)
    assert settings.region == "eu-west-1"
    assert settings.all_regions == ("eu-west-1",)


def test_aws_region_then_aws_default_region() -> None:
    both = {"AWS_REGION": "us-west-2", "AWS_DEFAULT_REGION": "ap-south-1"}
    assert resolve_aws(live(), "staging", both).region == "us-west-2"
    assert resolve_aws(live(), "staging", {"AWS_DEFAULT_REGION": "ap-south-1"}).region == "ap-south-1"


def test_the_region_of_the_profile_through_aws_config_file(tmp_path: Path) -> None:
    path = aws_config(tmp_path, """\
        [default]
        region = ap-southeast-2
        [profile ops]
        region = eu-north-1
        """)
    assert resolve_aws(live(profile="ops"), "staging", {"AWS_CONFIG_FILE": path}).region == "eu-north-1"
    assert resolve_aws(live(), "staging", {"AWS_CONFIG_FILE": path, "AWS_PROFILE": "ops"}).region == "eu-north-1"
    assert resolve_aws(live(), "staging", {"AWS_CONFIG_FILE": path}).region == "ap-southeast-2"
    # an environment variable still beats the profile
    assert resolve_aws(live(profile="ops"), "staging", {"AWS_CONFIG_FILE": path, "AWS_REGION": "us-east-2"}
                       ).region == "us-east-2"


def test_a_missing_profile_does_not_crash_the_resolution(tmp_path: Path) -> None:
    path = aws_config(tmp_path, "[profile other]\nregion = eu-north-1\n")
    environ = {"AWS_CONFIG_FILE": path, "AWS_REGION": "eu-west-1"}
    assert resolve_aws(live(profile="ops"), "staging", environ).profile == "ops"  # reported when used
    with pytest.raises(ConfigError, match="no region for environment 'staging'"):
        resolve_aws(live(profile="ops"), "staging", {"AWS_CONFIG_FILE": path})


def test_only_the_moto_sandbox_has_a_default_region_and_no_aws_needs_none() -> None:
    assert resolve_aws(AwsSettings(target="moto"), "sandbox", {}).region == "us-east-1"
    assert resolve_aws(AwsSettings(target="none"), "bare", {}).region == ""
    for settings in (live(), AwsSettings(target="endpoint", endpoint_url="http://127.0.0.1:5000")):
        with pytest.raises(ConfigError) as caught:
            resolve_aws(settings, "staging", {})
        assert str(caught.value) == NO_REGION.format(name="staging")


def test_the_session_runs_in_the_resolved_region(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    session = session_for(project(tmp_path, 'aws = { target = "endpoint", url = "http://127.0.0.1:9" }\n'))
    assert session.env.aws.region == session.aws.settings.region == "eu-west-1"
    assert session.aws.client("s3").meta.region_name == "eu-west-1"


def test_no_region_at_all_is_exit_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = project(tmp_path, '[environments.staging.aws]\ntarget = "live"\nprofile = "ops"\n')
    assert main(["verify", "--config", str(config), "--no-history", "--report-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err == f"runbooks: error: {config}:3: {NO_REGION.format(name='staging')}\n"


# --- credentials from the environment beat a configured profile --------------------------------------


def test_environment_credentials() -> None:
    assert environment_credentials({"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"}) == "AWS_ACCESS_KEY_ID"
    oidc = {"AWS_WEB_IDENTITY_TOKEN_FILE": "/tmp/token", "AWS_ROLE_ARN": "arn:aws:iam::1:role/ci"}
    assert environment_credentials(oidc) == "AWS_WEB_IDENTITY_TOKEN_FILE"
    assert environment_credentials({"AWS_ACCESS_KEY_ID": "a"}) is None
    assert environment_credentials({"AWS_ROLE_ARN": "arn:aws:iam::1:role/ci"}) is None


def test_web_identity_variables_make_the_profile_ignored() -> None:
    warnings: list[str] = []
    oidc = {"AWS_WEB_IDENTITY_TOKEN_FILE": "/tmp/token", "AWS_ROLE_ARN": "arn:aws:iam::1:role/ci"}
    settings = resolve_aws(live(region="eu-west-1", profile="ops"), "staging", oidc, warnings.append)
    assert settings.profile is None
    assert warnings == ["environment 'staging': profile 'ops' ignored: credentials come from the environment "
                        "(AWS_WEB_IDENTITY_TOKEN_FILE)"]
    assert resolve_aws(live(region="eu-west-1", profile="ops"), "staging", {}, warnings.append).profile == "ops"
    assert len(warnings) == 1


def test_a_profile_missing_on_the_runner_is_ignored_when_credentials_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    moto_server: MotoServer,  # noqa: F811
) -> None:
    credentials(monkeypatch)
    moto_server.client("s3", "eu-west-1").create_bucket(
        Bucket="habits-ci", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    session = session_for(project(tmp_path, f"""\
        aws = {{ target = "endpoint", url = "{moto_server.url}", region = "eu-west-1", profile = "ops" }}
        """))
    assert capsys.readouterr().err == ("runbooks: warning: environment 'staging': profile 'ops' ignored: "
                                       "credentials come from the environment (AWS_ACCESS_KEY_ID)\n")
    session.start()
    try:
        assert session.aws.account_id() == "123456789012"  # no ProfileNotFound
        session.aws.read("s3", "head_bucket", Bucket="habits-ci")
    finally:
        session.stop()


# --- where the requests go ---------------------------------------------------------------------------


def test_summary_names_the_target_region_and_endpoint() -> None:
    assert resolve_aws(AwsSettings(target="none"), "x", {}).summary == "no AWS"
    assert resolve_aws(AwsSettings(target="moto"), "x", {}).summary == "moto, us-east-1"
    assert resolve_aws(live(region="eu-west-1"), "x", {}).summary == "live, eu-west-1"
    endpoint = AwsSettings(target="endpoint", endpoint_url="http://127.0.0.1:5000", region="us-east-1")
    redirect = {"AWS_ENDPOINT_URL": "http://127.0.0.1:4566"}
    assert resolve_aws(endpoint, "x", redirect).summary == "endpoint http://127.0.0.1:5000, us-east-1"
    assert resolve_aws(live(region="eu-west-1"), "x", redirect).summary == \
        "live, eu-west-1, endpoint http://127.0.0.1:4566 from AWS_ENDPOINT_URL"
    assert resolve_aws(live(region="eu-west-1"), "x", {"AWS_ENDPOINT_URL_S3": "http://s3.local"}).summary == \
        "live, eu-west-1, s3 endpoint http://s3.local from AWS_ENDPOINT_URL_S3"
    ignored = {**redirect, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}
    assert resolve_aws(live(region="eu-west-1"), "x", ignored).summary == "live, eu-west-1"


def test_summary_names_an_endpoint_from_the_profile(tmp_path: Path) -> None:
    path = aws_config(tmp_path, """\
        [profile ops]
        endpoint_url = http://127.0.0.1:4566
        [profile split]
        services = local
        [services local]
        dynamodb =
          endpoint_url = http://127.0.0.1:8000
        """)
    environ = {"AWS_CONFIG_FILE": path}
    assert resolve_aws(live(region="eu-west-1", profile="ops"), "x", environ).summary == \
        "live, eu-west-1, endpoint http://127.0.0.1:4566 from profile 'ops'"
    assert resolve_aws(live(region="eu-west-1", profile="split"), "x", environ).summary == \
        "live, eu-west-1, dynamodb endpoint http://127.0.0.1:8000 from profile 'split'"


def test_a_live_target_goes_where_aws_endpoint_url_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, moto_server: MotoServer,  # noqa: F811
) -> None:
    credentials(monkeypatch)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.url)
    moto_server.client("s3", "eu-west-1").create_bucket(
        Bucket="habits-redirected", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    session = session_for(project(tmp_path, 'aws = { target = "live", region = "eu-west-1", max_attempts = 1 }\n'))
    assert session.env.aws.summary == f"live, eu-west-1, endpoint {moto_server.url} from AWS_ENDPOINT_URL"
    session.start()
    try:
        session.aws.read("s3", "head_bucket", Bucket="habits-redirected")  # only the moto server has it
    finally:
        session.stop()


def test_the_moto_sandbox_stays_in_process_whatever_aws_endpoint_url_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", closed_port_url())
    session = session_for(project(tmp_path, 'aws = { target = "moto", max_attempts = 1 }\n', "sandbox"), "sandbox")
    assert session.env.aws.summary == "moto, us-east-1"
    session.start()
    try:
        assert session.aws.call("s3", "list_buckets")["Buckets"] == []
    finally:
        session.stop()


# --- an endpoint target needs (any) credentials --------------------------------------------------------


def test_an_endpoint_target_without_credentials_is_an_error_that_says_what_to_set(tmp_path: Path) -> None:
    session = session_for(project(tmp_path, f"""\
        aws = {{ target = "endpoint", url = "{closed_port_url()}", region = "us-east-1", max_attempts = 1 }}
        """))

    versioning = next(d for d in REGISTRY.values() if d.phrase.endswith("has versioning enabled"))
    session.start()
    try:
        result = session.evaluate(versioning, {"bucket": "habits"})
    finally:
        session.stop()
    assert result.outcome is Outcome.ERROR
    assert result.observed == "no AWS credentials found (environment, profile or instance role)"
    assert result.hint == HINT_ENDPOINT_CREDENTIALS
    assert "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (any values for moto or LocalStack)" in result.hint
    # a live target keeps the general hint
    assert classify(botocore.exceptions.NoCredentialsError(), "live").hint != HINT_ENDPOINT_CREDENTIALS
    assert classify(botocore.exceptions.NoCredentialsError(), "endpoint").kind is FaultKind.NO_CREDENTIALS


# --- the sandbox extra ---------------------------------------------------------------------------------


def test_a_moto_target_without_moto_installed_is_exit_2_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "moto", None)  # what find_spec sees when moto is not installed
    config = project(tmp_path, 'aws = { target = "moto", region = "eu-west-1" }\n', "sandbox")
    assert main(["verify", "--config", str(config), "--no-history", "--report-dir", str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err == (
        f"runbooks: error: {config}:3: environment 'sandbox' uses aws.target = 'moto', which needs the sandbox "
        "extra: pip install 'runbooks[sandbox]'\n")


def test_resolved_fields_are_not_configuration_keys(tmp_path: Path) -> None:
    path = project(tmp_path, 'aws = { target = "live", region = "eu-west-1", resolved = true }\n')
    with pytest.raises(ConfigError, match="unknown aws key 'resolved'"):
        load_config(path)
