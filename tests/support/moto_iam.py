"""A moto server process that enforces IAM, and what it can and cannot prove about least privilege.

moto (5.x) checks every signed request against the caller's IAM policies once its allowance of
unauthenticated actions (``INITIAL_NO_AUTH_ACTION_COUNT``, read by the server process at start) is
used up. The allowance here is exactly three actions: they create an ``admin`` user with ``*`` and its
access key; everything after that (the stack, the test users) is signed and authorised.

moto names some S3 actions differently from AWS (measured against moto 5.2.5, server mode):

- ``HeadBucket`` is authorised as ``s3:HeadBucket`` (AWS: ``s3:ListBucket``);
- S3 Control ``GetPublicAccessBlock`` as ``s3:GetPublicAccessBlock`` (AWS: ``s3:GetAccountPublicAccessBlock``);
- ``GetBucketEncryption`` and bucket ``GetPublicAccessBlock`` as ``s3:ListBucket`` (AWS:
  ``s3:GetEncryptionConfiguration`` / ``s3:GetBucketPublicAccessBlock``), so moto cannot tell whether
  those two are granted;
- ``sts:GetCallerIdentity`` is always allowed (as in AWS, where it needs no permission).

:data:`MOTO_ALIASES` adds moto's names for the first two to a policy. Neither name exists in AWS IAM,
so adding them grants nothing a real account would honour.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import boto3
import pytest
from botocore.config import Config as BotoConfig

from runbooks.targets.aws_readonly import exempt
from tests.support.moto_server import MotoServer

REGION = "eu-west-1"
BOOTSTRAP_ACTIONS = 3  # CreateUser, PutUserPolicy, CreateAccessKey for the admin
# AWS IAM action -> the names moto checks instead (names that do not exist in AWS IAM)
MOTO_ALIASES: dict[str, tuple[str, ...]] = {
    "s3:ListBucket": ("s3:HeadBucket",),
    "s3:GetAccountPublicAccessBlock": ("s3:GetPublicAccessBlock",),
}
# AWS IAM actions whose absence moto 5.2.5 cannot detect (it authorises their calls as another action)
MOTO_UNENFORCED = {
    "s3:GetEncryptionConfiguration": "moto authorises GetBucketEncryption as s3:ListBucket",
    "s3:GetBucketPublicAccessBlock": "moto authorises the bucket's GetPublicAccessBlock as s3:ListBucket",
    "sts:GetCallerIdentity": "always allowed (in AWS too: it needs no permission)",
}


@dataclass(frozen=True)
class Keys:
    user: str
    access_key_id: str
    secret_access_key: str


def with_moto_aliases(actions: Iterable[str]) -> list[str]:
    """``actions`` plus moto's own names for them, sorted and unique."""
    out = set(actions)
    for action in list(out):
        out.update(MOTO_ALIASES.get(action, ()))
    return sorted(out)


def policy_json(actions: Iterable[str]) -> str:
    return json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": sorted(actions), "Resource": "*"}]}
    )


class EnforcingMoto:
    """The server, its admin keys, and users created with exactly one managed policy each."""

    def __init__(self, server: MotoServer, admin: Keys) -> None:
        self.server = server
        self.admin = admin
        self.url = server.url

    def client(self, service: str, keys: Keys | None = None) -> Any:
        keys = keys or self.admin
        client = exempt(boto3.client(  # provisioning and verifying: not guarded by an open run
            service,
            region_name=REGION,
            endpoint_url=self.url,
            aws_access_key_id=keys.access_key_id,
            aws_secret_access_key=keys.secret_access_key,
            config=BotoConfig(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        ))
        if service == "s3control":  # botocore puts the account id in front of the host: {account}.127.0.0.1
            client.meta.events.register("before-sign.s3-control", self._same_host)
        return client

    def _same_host(self, request: Any, **_: Any) -> None:
        ours = urlsplit(self.url).netloc
        parts = urlsplit(request.url)
        if parts.netloc.endswith("." + ours):
            request.url = urlunsplit(parts._replace(netloc=ours))

    def user_with_policy(self, name: str, policy_document: str) -> Keys:
        """A new IAM user whose only permissions are ``policy_document`` (attached as a managed policy)."""
        iam = self.client("iam")
        iam.create_user(UserName=name)
        arn = iam.create_policy(PolicyName=f"{name}-policy", PolicyDocument=policy_document)["Policy"]["Arn"]
        iam.attach_user_policy(UserName=name, PolicyArn=arn)
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return Keys(name, key["AccessKeyId"], key["SecretAccessKey"])


def start_enforcing(log: Path) -> EnforcingMoto:
    """Start the server with :data:`BOOTSTRAP_ACTIONS` unauthenticated actions and spend them on the admin."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("INITIAL_NO_AUTH_ACTION_COUNT", str(BOOTSTRAP_ACTIONS))
        server = MotoServer(log).start()
    try:
        iam = server.client("iam", REGION)
        iam.create_user(UserName="admin")
        iam.put_user_policy(UserName="admin", PolicyName="admin", PolicyDocument=policy_json(["*"]))
        key = iam.create_access_key(UserName="admin")["AccessKey"]
    except BaseException:
        server.stop()
        raise
    return EnforcingMoto(server, Keys("admin", key["AccessKeyId"], key["SecretAccessKey"]))


@pytest.fixture(scope="module")
def iam_moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EnforcingMoto]:
    """A module's IAM-enforcing moto server (distinct user and resource names per test)."""
    moto = start_enforcing(tmp_path_factory.mktemp("moto-iam") / "server.log")
    try:
        yield moto
    finally:
        moto.server.stop()
