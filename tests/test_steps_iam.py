"""IAM checks against in-process moto: old and unused access keys, the root account, a user's MFA device.

moto creates keys "now" and records no use; the tests age them in moto's own record, as the sandbox does
(runbooks/sandbox/stack.py), and read them back through the API like any check."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import boto3
from botocore.stub import Stubber

from runbooks.result import Outcome
from runbooks.session import Session
from runbooks.steps.aws_iam import (
    no_old_access_keys,
    no_unused_access_keys,
    root_has_no_access_keys,
    root_mfa_enabled,
    user_has_mfa,
)
from tests.conftest import evaluate

ACCOUNT = "123456789012"  # moto's default account


def iam() -> Any:
    return boto3.client("iam", region_name="us-east-1")


def make_key(user: str, age_days: float = 0, last_used_days: float | None = None, status: str = "Active") -> str:
    from moto.core.utils import utcnow
    from moto.iam.models import AccessKeyLastUsed, iam_backends

    try:
        iam().create_user(UserName=user)
    except iam().exceptions.EntityAlreadyExistsException:
        pass
    key_id = str(iam().create_access_key(UserName=user)["AccessKey"]["AccessKeyId"])
    if status != "Active":
        iam().update_access_key(UserName=user, AccessKeyId=key_id, Status=status)
    [key] = [k for k in iam_backends[ACCOUNT]["aws"].get_user(user).access_keys if k.access_key_id == key_id]
    key.create_date = utcnow() - timedelta(days=age_days)
    if last_used_days is not None:
        key.last_used = AccessKeyLastUsed(utcnow() - timedelta(days=last_used_days), "s3", "eu-west-1")
    return key_id


def summary(**values: int) -> None:
    from moto.iam.models import iam_backends

    account_summary = iam_backends[ACCOUNT]["aws"].account_summary
    for name, value in values.items():
        setattr(account_summary, name, value)


# access key age ---------------------------------------------------------------------------------------------
def test_no_keys_at_all_passes(moto_run: Session) -> None:
    result = evaluate(moto_run, no_old_access_keys, days=90)
    assert (result.outcome, result.observed) == (Outcome.PASS, "no active access key")
    assert result.resource == "IAM users (all)"


def test_young_keys_pass(moto_run: Session) -> None:
    make_key("ci", age_days=10)
    result = evaluate(moto_run, no_old_access_keys, days=90)
    assert (result.outcome, result.observed) == (Outcome.PASS, "none of 1 active key(s) older than 90 days")


def test_old_keys_fail_with_their_user_and_age(moto_run: Session) -> None:  # a fresh run: reads are memoised
    make_key("ci", age_days=10)
    old = make_key("deployer", age_days=200)
    make_key("retired", age_days=400, status="Inactive")  # inactive keys are not counted
    result = evaluate(moto_run, no_old_access_keys, days=90)
    assert result.outcome is Outcome.FAIL
    assert result.expected == "every active access key younger than 90 days"
    assert result.observed == (f"1 of 2 active key(s) older than 90 days: {old} of deployer: created 200 days ago; "
                               "1 inactive key(s) not counted")
    assert result.evidence["offenders"] == {f"{old} of deployer": "created 200 days ago"}
    assert "update-access-key" in result.hint and "--status Inactive" in result.hint
    assert result.manual_command.startswith("aws iam generate-credential-report")


# access key use ---------------------------------------------------------------------------------------------
def test_recently_used_and_new_unused_keys_pass(moto_run: Session) -> None:
    make_key("ci", age_days=300, last_used_days=1)
    make_key("fresh", age_days=2)  # never used, but new
    result = evaluate(moto_run, no_unused_access_keys, days=90)
    assert (result.outcome, result.observed) == (Outcome.PASS, "none of 2 active key(s) unused for 90 days")


def test_keys_unused_or_never_used_fail_saying_which(moto_run: Session) -> None:
    stale = make_key("ci", age_days=300, last_used_days=120)
    never = make_key("forgotten", age_days=100)
    result = evaluate(moto_run, no_unused_access_keys, days=90)
    assert result.outcome is Outcome.FAIL
    assert result.evidence["offenders"] == {
        f"{stale} of ci": "last used 120 days ago (s3, eu-west-1)",
        f"{never} of forgotten": "never used, created 100 days ago",
    }
    assert result.observed.startswith("2 of 2 active key(s) unused for 90 days: ")
    assert result.manual_command == ("aws iam list-access-keys --user-name USER; "
                                     "aws iam get-access-key-last-used --access-key-id KEY")


def test_a_denied_listing_is_an_error_not_a_pass(moto_run: Session) -> None:
    with Stubber(moto_run.aws.client("iam")) as stub:
        stub.add_client_error("list_users", service_error_code="AccessDenied",
                              service_message="not authorized to perform: iam:ListUsers", http_status_code=403)
        result = evaluate(moto_run, no_old_access_keys, days=90)
    assert result.outcome is Outcome.ERROR
    assert "access denied" in result.observed and "iam:ListUsers" in result.observed


# the root account -------------------------------------------------------------------------------------------
def test_root_mfa(moto_run: Session) -> None:
    summary(_account_mfa_enabled=1)
    result = evaluate(moto_run, root_mfa_enabled)
    assert (result.outcome, result.resource, result.observed) == (
        Outcome.PASS, "aws root account", "MFA enabled (AccountMFAEnabled 1)")


def test_root_without_mfa_fails(moto_run: Session) -> None:
    summary(_account_mfa_enabled=0)
    result = evaluate(moto_run, root_mfa_enabled)
    assert (result.outcome, result.observed) == (Outcome.FAIL, "no MFA on the root user (AccountMFAEnabled 0)")
    assert "break-glass" in result.hint
    assert result.manual_command == "aws iam get-account-summary --query SummaryMap.AccountMFAEnabled"


def test_root_without_access_keys_passes(moto_run: Session) -> None:
    summary(_account_access_keys_present=0)
    result = evaluate(moto_run, root_has_no_access_keys)
    assert (result.outcome, result.observed) == (Outcome.PASS, "no root access keys (AccountAccessKeysPresent 0)")


def test_root_access_keys_fail(moto_run: Session) -> None:
    summary(_account_access_keys_present=1)
    result = evaluate(moto_run, root_has_no_access_keys)
    assert (result.outcome, result.observed) == (
        Outcome.FAIL, "the root user has access keys (AccountAccessKeysPresent 1)")
    assert "security incident" in result.hint


def test_root_summary_without_the_field_is_an_error(moto_run: Session) -> None:
    with Stubber(moto_run.aws.client("iam")) as stub:
        stub.add_response("get_account_summary", {"SummaryMap": {"Users": 3}})
        result = evaluate(moto_run, root_mfa_enabled)
    assert result.outcome is Outcome.ERROR
    assert result.observed == "GetAccountSummary has no AccountMFAEnabled"


# a user's MFA -----------------------------------------------------------------------------------------------
def test_user_with_and_without_mfa(moto_run: Session) -> None:
    iam().create_user(UserName="alice")
    iam().create_user(UserName="bob")
    serial = iam().create_virtual_mfa_device(VirtualMFADeviceName="alice")["VirtualMFADevice"]["SerialNumber"]
    iam().enable_mfa_device(UserName="alice", SerialNumber=serial, AuthenticationCode1="123456",
                            AuthenticationCode2="654321")
    result = evaluate(moto_run, user_has_mfa, user="alice")
    assert result.outcome is Outcome.PASS
    assert result.observed.startswith(f"1 MFA device(s): {serial} (enabled ")
    assert result.resource == "iam user alice"
    result = evaluate(moto_run, user_has_mfa, user="bob")
    assert (result.outcome, result.observed) == (Outcome.FAIL, "no MFA device")
    assert result.manual_command == "aws iam list-mfa-devices --user-name bob"


def test_missing_user_is_a_fail_saying_so(moto_run: Session) -> None:
    result = evaluate(moto_run, user_has_mfa, user="nobody")
    assert (result.outcome, result.observed) == (Outcome.FAIL, "the user does not exist")
