"""The AWS account a run is talking to: the first guard against checking the wrong environment."""

from __future__ import annotations

import re

from runbooks.sdk import CheckContext, CheckResult, check

TITLE = "AWS account"  # its heading in the step catalogue
CATALOG_ORDER = 10

ACCOUNT_ID = re.compile(r"^\d{12}$")


def validate_account_id(value: str) -> None:
    if not ACCOUNT_ID.match(value):
        raise ValueError("an AWS account id is exactly 12 digits")


@check(
    'the AWS account is "{account_id}"',
    permissions=("sts:GetCallerIdentity",),
    manual="aws sts get-caller-identity --query Account --output text",
    validators={"account_id": validate_account_id},
    guard=True,  # checks against the wrong account would report someone else's infrastructure
)
def account_is(ctx: CheckContext, account_id: str) -> CheckResult:
    """The credentials of the run belong to this account (STS GetCallerIdentity). Put it first in a
    runbook, as a Given, so that nothing else is checked against the wrong account."""
    identity = ctx.aws.read("sts", "get_caller_identity")
    observed_id = str(identity.get("Account", ""))
    arn = identity.get("Arn", "")
    expected = f"account {account_id}"
    observed = f"account {observed_id} as {arn}" if arn else f"account {observed_id}"
    if observed_id == account_id:
        return CheckResult.passed(f"aws account ({ctx.aws.name})", expected, observed)
    return CheckResult.failed(
        f"aws account ({ctx.aws.name})",
        expected,
        observed,
        "these are the wrong credentials for this environment: check the profile, role_arn and "
        "AWS_* variables the run uses (aws sts get-caller-identity shows what they resolve to)",
    )
