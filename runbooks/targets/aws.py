"""The AWS target: one session and one client per service per run, read-only at the boundary.

The guard is a botocore ``before-call`` handler registered on the session, so it runs for every
client the checks get, before a request is built or sent; while a live or endpoint run is open,
:mod:`.aws_readonly` guards every other botocore client in the process too, and a role (``role_arn``)
is assumed with a read-only session policy, so AWS itself refuses the rest. Retries are botocore's own (adaptive mode;
``max_attempts`` counts the first try), within the step's deadline (:mod:`runbooks.deadlines`).
The target owns ``[environments.NAME.aws]`` and teaches the fault classification botocore's errors.
:func:`resolve_aws` settles, once per run, what the configuration leaves to the machine: the region,
whether a configured profile applies, and where ``AWS_ENDPOINT_URL`` sends a live target's requests.
"""

from __future__ import annotations

import contextvars
import enum
import importlib
import importlib.util
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import botocore.exceptions
from botocore import xform_name
from botocore.retries.bucket import TokenBucket

from ..context import AHEAD, NotReadAhead
from ..deadlines import DeadlineReached
from ..deadlines import current as current_deadline
from ..errors import ConfigError
from ..faults import Fault, FaultKind, register_classifier
from . import Target, Where, register
from .aws_faults import check_response, classify_bare_status, classify_transport

if TYPE_CHECKING:  # boto3, botocore's session and config: imported on first use (an HTTP-only run needs none)
    import boto3
    import botocore.session
    from botocore.config import Config as BotoConfig

    from ..config import Config, Environment
    from ..iam_policy import SessionPolicy
    from ..resources import Resources


class AwsKind(enum.StrEnum):
    MOTO = "moto"  # in-process stub (the sandboxes provision it themselves)
    ENDPOINT = "endpoint"  # any endpoint URL (a moto server, LocalStack): read-only like live
    LIVE = "live"  # the default credential chain (+ optional profile / role to assume)
    NONE = "none"  # the environment has no [aws]: AWS steps ERROR instead of checking an empty stub


AWS_TARGETS = (AwsKind.MOTO.value, AwsKind.ENDPOINT.value, AwsKind.LIVE.value)


@dataclass(frozen=True)
class ConfiguredEndpoint:
    """An endpoint URL that botocore takes from the machine, not from ``runbooks.toml``."""

    url: str
    source: str  # AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_S3, profile 'ops'
    service: str | None = None  # None: every service

    def __str__(self) -> str:
        return f"{self.service + ' ' if self.service else ''}endpoint {self.url} from {self.source}"


@dataclass(frozen=True)
class AwsAccount:
    """One account a scenario tagged ``@all-accounts`` runs in (``aws.accounts``, or found by ``aws.organization``)."""

    id: str  # 12 digits
    name: str = ""  # how reports name it (scenario "Name [payments-prod/eu-west-1]"); default: the id
    role_arn: str | None = None  # None: aws.role_name (or organization.role_name) in this account
    external_id: str | None = None

    @property
    def label(self) -> str:
        return self.name or self.id


@dataclass(frozen=True)
class Organization:
    """``aws.organization``: the accounts are AWS Organizations' ACTIVE accounts whose name or id matches."""

    role_name: str | None = None  # None: aws.role_name
    include: tuple[str, ...] = ("*",)  # globs on the account's name or id
    exclude: tuple[str, ...] = ()
    external_id: str | None = None


@dataclass(frozen=True)
class AwsSettings:
    target: str = "moto"
    region: str = ""  # empty until resolve_aws fills it (config, AWS_REGION, AWS_DEFAULT_REGION, profile)
    endpoint_url: str | None = None
    profile: str | None = None
    role_arn: str | None = None
    external_id: str | None = None
    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    max_attempts: int = 5
    regions: tuple[str, ...] = ()  # scenarios tagged @all-regions run once per region (default: just `region`)
    max_workers: int | None = None  # threads of the run's AWS pool (None: DEFAULT_WORKERS for the kind)
    read_ahead: int = 4  # scenarios whose AWS reads start while the current one runs (runbooks.read_ahead); 0: none
    # scenarios tagged @all-accounts run once per account (see AwsTarget.accounts); none: just the run's own
    accounts: tuple[AwsAccount, ...] = ()
    role_name: str | None = None  # the role assumed in each account without a role_arn of its own
    organization: Organization | None = None  # the accounts from AWS Organizations' ListAccounts
    # Filled by resolve_aws, never read from runbooks.toml:
    configured_endpoints: tuple[ConfiguredEndpoint, ...] = field(default=(), metadata={"resolved": True})
    resolved: bool = field(default=False, metadata={"resolved": True})

    @property
    def kind(self) -> AwsKind:
        return AwsKind(self.target)

    @property
    def all_regions(self) -> tuple[str, ...]:
        return tuple(self.regions) or (self.region,)

    @property
    def workers(self) -> int:
        """Requests the run keeps in flight: ``aws.max_workers`` (``--workers``), else the kind's default."""
        return self.max_workers or DEFAULT_WORKERS.get(self.kind, NETWORK_WORKERS)

    @property
    def summary(self) -> str:
        """Where this environment's AWS requests go, for the banner: "live, eu-west-1", "moto, us-east-1",
        "endpoint http://127.0.0.1:5000, us-east-1", "live, eu-west-1, endpoint http://... from AWS_ENDPOINT_URL"."""
        if self.kind is AwsKind.NONE:
            return "no AWS"
        region = self.region or "no region"
        if self.kind is AwsKind.ENDPOINT:
            return f"endpoint {self.endpoint_url}, {region}" + self.accounts_summary
        return ", ".join([self.target, region, *(str(e) for e in self.configured_endpoints)]) + self.accounts_summary

    @property
    def has_accounts(self) -> bool:
        """Whether ``@all-accounts`` scenarios run per account here (``aws.accounts`` or ``aws.organization``)."""
        return bool(self.accounts) or self.organization is not None

    @property
    def accounts_summary(self) -> str:
        if self.organization is not None:
            return ", accounts of the organization"
        return f", {len(self.accounts)} account{'s' if len(self.accounts) != 1 else ''}" if self.accounts else ""


# Threads of the run's AWS pool, and connections per client. Against AWS or an endpoint a request mostly
# waits on the network (tens of ms), so many in flight pay off: benchmarks/fleet.py --latency-ms 30 (N=1000,
# 2-core host) took 18.5-20.1 s with 16, 21.3-28.8 s with 8 and 21.6-22.4 s with 24 (by then the client and
# the server are CPU-bound). The in-process stub is CPU-bound under the GIL: threads beyond the cores only
# contend there.
NETWORK_WORKERS = 16
DEFAULT_WORKERS = {AwsKind.MOTO: 4}
MAX_WORKERS = 128
MAX_READ_AHEAD = 64

_AWS_KEYS = {f.name for f in fields(AwsSettings) if not f.metadata.get("resolved")} | {"url"}


def _type_problem(key: str, value: Any) -> str | None:
    expected = {"connect_timeout": (int, float), "read_timeout": (int, float), "max_attempts": (int,)}
    if key == "regions":
        if not isinstance(value, list) or not value or not all(isinstance(r, str) and r for r in value):
            return "must be a non-empty list of region names"
        return None
    if key == "max_workers":
        return workers_problem(value)
    if key == "read_ahead":
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_READ_AHEAD:
            return f"must be a whole number from 0 (off) to {MAX_READ_AHEAD} (scenarios read ahead), got {value!r}"
        return None
    kinds = expected.get(key, (str,))
    if isinstance(value, bool) or not isinstance(value, kinds):
        return "must be a number" if kinds != (str,) else "must be a string"
    if key == "max_attempts" and isinstance(value, int) and value < 1:
        return f"must be 1 or more (attempts, the first included), got {value}"
    if key.endswith("_timeout") and isinstance(value, int | float) and not 0 < value < float("inf"):
        return f"must be a number of seconds above 0, got {value}"
    if key == "endpoint_url" and isinstance(value, str) and not re.match(r"^https?://", value):
        return f"must start with http:// or https://, got {value!r}"
    return None


def workers_problem(value: Any) -> str | None:
    """What is wrong with ``value`` as ``aws.max_workers`` / ``--workers``; None when it is fine."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_WORKERS:
        return f"must be a whole number from 1 to {MAX_WORKERS} (requests in flight at once), got {value!r}"
    return None


def workers_option(text: str) -> int:
    """``--workers`` (and ``--runbooks-workers``): requests in flight at once, 1 to MAX_WORKERS."""
    import argparse

    try:
        value: Any = int(text)
    except ValueError:
        value = text
    problem = workers_problem(value)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return int(value)


def parse_settings(raw: dict[str, Any] | None, where: Where) -> AwsSettings:
    """``[environments.NAME.aws]``; without it the environment has no AWS target (kind ``none``)."""
    from ..names import did_you_mean

    if raw is None:
        return AwsSettings(target=AwsKind.NONE.value)
    bad = set(raw) - _AWS_KEYS
    if bad:
        key = sorted(bad)[0]
        raise where.error(f"unknown aws key {key!r}" + did_you_mean(key, _AWS_KEYS), "aws", key)
    fields = {k: v for k, v in raw.items() if k != "url"}
    if "url" in raw:
        fields["endpoint_url"] = raw["url"]
    many: dict[str, Any] = {key: fields.pop(key) for key in ("accounts", "organization") if key in fields}
    for key, value in fields.items():
        problem = _type_problem(key, value)
        if problem:
            written = "url" if key == "endpoint_url" else key
            raise where.error(f"aws.{written} {problem}", "aws", written)
    if "regions" in fields:
        fields["regions"] = tuple(fields["regions"])
    settings = AwsSettings(**fields, **_parse_accounts(many, fields.get("role_name"), where))
    if settings.target not in AWS_TARGETS:
        raise where.error(f"aws.target must be one of {', '.join(AWS_TARGETS)} (got {settings.target!r})",
                          "aws", "target")
    if settings.kind is AwsKind.ENDPOINT and not settings.endpoint_url:
        raise where.error("aws.target 'endpoint' needs aws.url", "aws", "target")
    return settings


ACCOUNT_ID = re.compile(r"^\d{12}$")
ROLE_NAME = re.compile(r"^[\w+=,.@/-]{1,512}$")  # IAM: a role name, optionally behind its path
ROLE_ARN = re.compile(r"^arn:aws[\w-]*:iam::(\d{12}):role/[\w+=,.@/-]+$")
_ACCOUNT_KEYS = ("id", "name", "role_arn", "external_id")
_ORGANIZATION_KEYS = ("role_name", "include", "exclude", "external_id")


def _parse_accounts(raw: dict[str, Any], role_name: str | None, where: Where) -> dict[str, Any]:
    """``aws.accounts`` (a list of ``{ id, name, role_arn, external_id }``) or ``aws.organization``
    (``{ role_name, include, exclude, external_id }``), with ``aws.role_name`` for the accounts without a
    role_arn of their own; every problem names the key's line."""
    from ..names import did_you_mean

    if role_name is not None and not ROLE_NAME.match(role_name):
        raise where.error(f"aws.role_name must be an IAM role name such as 'runbooks-readonly', got {role_name!r}",
                          "aws", "role_name")
    if "accounts" in raw and "organization" in raw:
        raise where.error("aws.accounts and aws.organization exclude each other: list the accounts, or find them "
                          "in the organization", "aws", "organization")
    if "organization" in raw:
        org = raw["organization"]
        if not isinstance(org, dict):
            raise where.error("aws.organization must be a table: { role_name = \"...\", include = [\"prod-*\"] }",
                              "aws", "organization")
        for key in org:
            if key not in _ORGANIZATION_KEYS:
                raise where.error(f"unknown aws.organization key {key!r}" + did_you_mean(key, _ORGANIZATION_KEYS),
                                  "aws", "organization")
        for key in ("role_name", "external_id"):
            if key in org and (not isinstance(org[key], str) or not org[key]):
                raise where.error(f"aws.organization.{key} must be a non-empty string", "aws", "organization")
        if "role_name" in org and not ROLE_NAME.match(org["role_name"]):
            raise where.error(f"aws.organization.role_name must be an IAM role name, got {org['role_name']!r}",
                              "aws", "organization")
        if not org.get("role_name") and role_name is None:
            raise where.error("aws.organization needs role_name: the role assumed in each account it finds",
                              "aws", "organization")
        for key in ("include", "exclude"):
            value = org.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value) \
                    or (key == "include" and not value and key in org):
                raise where.error(f"aws.organization.{key} must be a list of account name (or id) patterns such as "
                                  "\"prod-*\"", "aws", "organization")
        return {"organization": Organization(
            org.get("role_name"), tuple(org.get("include") or ("*",)), tuple(org.get("exclude", ())),
            org.get("external_id"))}
    if "accounts" not in raw:
        if role_name is not None:
            raise where.error("aws.role_name names the role assumed in each of aws.accounts or in the accounts of "
                              "aws.organization; this environment has neither", "aws", "role_name")
        return {}
    listed = raw["accounts"]
    if not isinstance(listed, list) or not listed:
        raise where.error("aws.accounts must be a non-empty list of { id = \"111111111111\", name = \"...\", "
                          "role_arn = \"...\" }", "aws", "accounts")
    accounts: list[AwsAccount] = []
    for number, entry in enumerate(listed, start=1):
        what = f"aws.accounts entry {number}"
        if not isinstance(entry, dict):
            raise where.error(f"{what} must be a table {{ id = \"111111111111\", ... }}", "aws", "accounts")
        for key in entry:
            if key not in _ACCOUNT_KEYS:
                raise where.error(f"{what}: unknown key {key!r}" + did_you_mean(key, _ACCOUNT_KEYS), "aws", "accounts")
        for key, value in entry.items():
            if not isinstance(value, str) or not value:
                hint = " (quote it: a number loses leading zeros)" if key == "id" and isinstance(value, int) else ""
                raise where.error(f"{what}: {key} must be a non-empty string{hint}", "aws", "accounts")
        account_id = entry.get("id")
        if account_id is None or not ACCOUNT_ID.match(account_id):
            raise where.error(f"{what}: id must be an AWS account id of 12 digits, got {account_id!r}",
                              "aws", "accounts")
        what = f"aws.accounts {account_id}"
        name = entry.get("name", "")
        if any(ch in name for ch in "/[]") or name != name.strip():
            raise where.error(f"{what}: name {name!r} may not contain '/', '[' or ']' (reports name a scenario "
                              "'Name [account/region]')", "aws", "accounts")
        arn = entry.get("role_arn")
        if arn is not None:
            match = ROLE_ARN.match(arn)
            if match is None:
                raise where.error(f"{what}: role_arn must be an IAM role ARN (arn:aws:iam::{account_id}:role/NAME), "
                                  f"got {arn!r}", "aws", "accounts")
            if match.group(1) != account_id:
                raise where.error(f"{what}: role_arn {arn} is a role of account {match.group(1)}, not of "
                                  f"{account_id}", "aws", "accounts")
        elif role_name is None:
            raise where.error(f"{what} needs role_arn, or set aws.role_name (the role assumed in every account)",
                              "aws", "accounts")
        accounts.append(AwsAccount(account_id, name, arn, entry.get("external_id")))
    for label, values in (("id", [a.id for a in accounts]), ("name", [a.label for a in accounts])):
        twice = sorted({v for v in values if values.count(v) > 1})
        if twice:
            raise where.error(f"aws.accounts: {label} {twice[0]!r} appears more than once", "aws", "accounts")
    return {"accounts": tuple(accounts)}


def hub_actions(settings: AwsSettings) -> tuple[str, ...]:
    """What the run's base credentials do beyond the checks when the environment has accounts: assume the
    role in each account, and (``aws.organization``) list the organization's accounts."""
    if not settings.has_accounts:
        return ()
    return ("sts:AssumeRole",) + (("organizations:ListAccounts",) if settings.organization is not None else ())


class NoAccounts(Exception):
    """``aws.organization`` found no account to run in."""


def _matches(account: Mapping[str, Any], pattern: str) -> bool:
    from fnmatch import fnmatchcase

    return fnmatchcase(str(account.get("Name", "")), pattern) or fnmatchcase(str(account.get("Id", "")), pattern)


def _safe_label(name: str, account_id: str, shared: bool) -> str:
    """An organization account's name as reports show it: no '/', '[' or ']'; with its id when another
    account has the same name (names are not unique in an organization)."""
    clean = re.sub(r"[/\[\]]", "-", name).strip() or account_id
    return f"{clean} ({account_id})" if shared and clean != account_id else clean


# What puts credentials in the environment; botocore reads them before any profile (the CI/OIDC case).
ENVIRONMENT_CREDENTIALS = (
    ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
    ("AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"),  # aws-actions/configure-aws-credentials with OIDC
)
MOTO_TARGET_REGION = "us-east-1"  # the embedded sandbox's account has no home of its own


def environment_credentials(environ: Mapping[str, str]) -> str | None:
    """The variable that gives the process credentials from its environment, or None."""
    for variable, partner in ENVIRONMENT_CREDENTIALS:
        if environ.get(variable) and environ.get(partner):
            return variable
    return None


def _warn(message: str) -> None:
    print(f"runbooks: warning: {message}", file=sys.stderr)


def resolve_aws(settings: AwsSettings, env_name: str, environ: Mapping[str, str] = os.environ,
                warn: Callable[[str], None] = _warn) -> AwsSettings:
    """The settings as the run will use them: region, profile and configured endpoints settled.

    The region is ``aws.region``, else ``AWS_REGION``, else ``AWS_DEFAULT_REGION``, else the profile's
    region, else (moto only) us-east-1; none at all is a :class:`ConfigError`. A configured profile is
    ignored, with a warning, when the environment holds credentials. Reads nothing but ``environ`` and
    the AWS config files it names.
    """
    if settings.resolved:
        return settings
    if settings.kind is AwsKind.NONE:
        return replace(settings, resolved=True)
    if settings.kind is AwsKind.MOTO and importlib.util.find_spec("moto") is None:
        raise ConfigError(f"environment {env_name!r} uses aws.target = 'moto', which needs the sandbox extra: "
                          "pip install 'runbooks[sandbox]'")
    profile = settings.profile
    source = environment_credentials(environ)
    if profile and source:
        warn(f"environment {env_name!r}: profile {profile!r} ignored: credentials come from the environment ({source})")
        profile = None
    shared = _SharedConfig(profile, environ)
    region = (settings.region or environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
              or shared.value("region")
              or (MOTO_TARGET_REGION if settings.kind is AwsKind.MOTO else ""))
    if not region:
        raise ConfigError(f"no region for environment {env_name!r}: set aws.region in runbooks.toml or AWS_REGION")
    # An endpoint target names its URL for every client and moto ignores configured ones (boto_config).
    endpoints = shared.endpoints() if settings.kind is AwsKind.LIVE else ()
    return replace(settings, region=region, profile=profile, regions=settings.regions or (region,),
                   configured_endpoints=endpoints, resolved=True)


def resolved_environment(env: Environment, config: Config, environ: Mapping[str, str] = os.environ) -> Environment:
    """``env`` with its AWS settings resolved; a problem names the environment's aws table in the config."""
    try:
        aws = resolve_aws(env.aws, env.name, environ)
    except ConfigError as exc:
        if exc.path is not None:
            raise
        raise ConfigError(exc.message, config.path, _aws_line(config.path, env.name)) from None
    return replace(env, aws=aws)


def with_workers(env: Environment, workers: int | None) -> Environment:
    """``env`` with ``workers`` as its ``aws.max_workers`` (``--workers``); unchanged when None."""
    return env if workers is None else replace(env, aws=replace(env.aws, max_workers=workers))


def _aws_line(path: Path, env_name: str) -> int | None:
    from ..config import _Locator

    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    return _Locator(text).line(f"environments.{env_name}", "aws")


class _SharedConfig:
    """The profile's part of the shared AWS config files, read the way botocore reads them."""

    def __init__(self, profile: str | None, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.name = profile or environ.get("AWS_PROFILE") or environ.get("AWS_DEFAULT_PROFILE") or "default"
        self._session: botocore.session.Session | None = None
        self._scoped: dict[str, Any] | None = None

    def scoped(self) -> dict[str, Any]:
        if self._scoped is None:
            import botocore.session

            session = botocore.session.Session(profile=self.name)
            session.set_config_variable("config_file", self.environ.get("AWS_CONFIG_FILE") or "~/.aws/config")
            session.set_config_variable("credentials_file",
                                        self.environ.get("AWS_SHARED_CREDENTIALS_FILE") or "~/.aws/credentials")
            try:
                self._scoped = dict(session.get_scoped_config())
            except botocore.exceptions.ProfileNotFound:
                self._scoped = {}  # the run reports it when it first needs credentials
            except botocore.exceptions.ConfigParseError as exc:
                raise ConfigError(f"cannot read the AWS config: {exc}") from None
            self._session = session
        return self._scoped

    def value(self, name: str) -> str | None:
        value = self.scoped().get(name)
        return str(value) if isinstance(value, str) and value else None

    def endpoints(self) -> tuple[ConfiguredEndpoint, ...]:
        """The endpoint URLs botocore would take for clients built without one (boto3 >= 1.28)."""
        ignore = (self.environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
                  or self.value("ignore_configured_endpoint_urls"))
        from botocore.utils import ensure_boolean

        if ignore and ensure_boolean(ignore):
            return ()
        prefix = "AWS_ENDPOINT_URL_"
        found = [ConfiguredEndpoint(url, name, name.removeprefix(prefix).lower())
                 for name, url in sorted(self.environ.items()) if name.startswith(prefix) and url]
        if self.environ.get("AWS_ENDPOINT_URL"):  # botocore: env per service, env, file per service, file
            return (*found, ConfiguredEndpoint(self.environ["AWS_ENDPOINT_URL"], "AWS_ENDPOINT_URL"))
        found += [ConfiguredEndpoint(str(url), f"profile {self.name!r}", service)
                  for service, url in sorted(self._services().items())
                  if url and not any(e.service == service for e in found)]
        if self.value("endpoint_url"):
            found.append(ConfiguredEndpoint(str(self.value("endpoint_url")), f"profile {self.name!r}"))
        return tuple(found)

    def _services(self) -> dict[str, Any]:
        """``services = NAME`` in the profile: ``[services NAME]`` with an endpoint_url per service."""
        section = self.value("services")
        if not section or self._session is None:
            return {}
        table = self._session.full_config.get("services", {}).get(section, {})
        return {service: values.get("endpoint_url") for service, values in table.items() if isinstance(values, dict)}


READ_PREFIXES = ("Describe", "Get", "List", "Head", "BatchGet")
READ_OPERATIONS = {"Query", "Scan", "GetCallerIdentity"}

# Error codes that mean "could not check", never "the resource is wrong".
ACCESS_CODES = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "403"}
# The credentials themselves are wrong: fixing permissions would not help.
CREDENTIAL_CODES = {
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidAccessKeyId",
    "ExpiredToken",
    "ExpiredTokenException",
    "RequestExpired",
    "SignatureDoesNotMatch",
    "InvalidSignatureException",
    "InvalidToken",
    "AuthFailure",
}
# Named like reads, but they change state (create users or identities): refused like any write.
MUTATING_READS = {
    "GetClusterCredentials",
    "GetClusterCredentialsWithIAM",
    "GetId",
    "GetOpenIdToken",
    "GetOpenIdTokenForDeveloperIdentity",
    "GetCredentialsForIdentity",
}
# Operations that hand out credentials or tokens, by IAM prefix: code holding them could act outside the
# guard, so they are refused to everything but the engine's own AssumeRole (the role of aws.role_arn), and
# a session policy's wildcards never cover them (runbooks.iam_policy.session_policy).
CREDENTIAL_OPERATIONS: dict[str, tuple[str, ...]] = {
    "sts": ("AssumeRole", "AssumeRoleWithSAML", "AssumeRoleWithWebIdentity", "AssumeRoot", "GetSessionToken",
            "GetFederationToken", "GetDelegatedAccessToken", "GetScopedCredentials", "GetWebIdentityToken"),
    "sso": ("GetRoleCredentials",),
    "ecr": ("GetAuthorizationToken",),
    "ecr-public": ("GetAuthorizationToken",),
    "codeartifact": ("GetAuthorizationToken",),
    "redshift": ("GetClusterCredentials", "GetClusterCredentialsWithIAM"),
    "redshift-serverless": ("GetCredentials",),
    "cognito-identity": ("GetId", "GetOpenIdToken", "GetOpenIdTokenForDeveloperIdentity",
                         "GetCredentialsForIdentity"),
}
CREDENTIAL_NAMES = frozenset(name for names in CREDENTIAL_OPERATIONS.values() for name in names)
THROTTLING_CODES = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "SlowDown",
    "ProvisionedThroughputExceededException",
    "RequestThrottled",
}


# IAM actions named differently from their API operation (S3 keeps historical names); others are service:Operation.
IAM_ACTIONS = {
    ("s3", "HeadBucket"): "s3:ListBucket",
    ("s3", "ListObjects"): "s3:ListBucket",
    ("s3", "ListObjectsV2"): "s3:ListBucket",
    ("s3", "HeadObject"): "s3:GetObject",
    ("s3", "GetBucketEncryption"): "s3:GetEncryptionConfiguration",
    ("s3", "GetPublicAccessBlock"): "s3:GetBucketPublicAccessBlock",
    ("s3", "GetBucketReplication"): "s3:GetReplicationConfiguration",
    ("s3", "GetBucketLifecycleConfiguration"): "s3:GetLifecycleConfiguration",
    ("s3control", "GetPublicAccessBlock"): "s3:GetAccountPublicAccessBlock",
    ("s3", "ListBuckets"): "s3:ListAllMyBuckets",
}
_DENIED_CODES = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}


# botocore service names whose IAM prefix differs.
IAM_PREFIXES = {"s3control": "s3", "resourcegroupstaggingapi": "tag"}


def iam_action(service: str, operation: str) -> str:
    """The IAM action that authorises ``operation`` of the botocore ``service``."""
    return IAM_ACTIONS.get((service, operation)) or f"{IAM_PREFIXES.get(service, service)}:{operation}"


def _name_iam_action(http_response: Any = None, parsed: Any = None, model: Any = None, **_: Any) -> None:
    """``after-call``: note on a denial the IAM action it needs (S3's and stubs' messages leave it out)."""
    if http_response is None or model is None or not isinstance(parsed, dict):
        return
    if http_response.status_code < 400 and "Error" not in parsed:
        return  # a successful answer: leave it exactly as the service sent it (steps read it)
    error = parsed.setdefault("Error", {})
    code = error.get("Code", "")
    if code in _DENIED_CODES or (http_response.status_code == 403 and code in ("403", "")):  # "403": no body
        error["IamAction"] = iam_action(model.service_model.service_name, model.name)
        inner = re.search(r"<Message>(.*?)</Message>", str(error.get("Message", "")), re.S)
        if inner:  # a stub answered an XML error document to a JSON API: keep its message
            error["Message"] = inner.group(1)


def is_read_operation(operation: str) -> bool:
    """Whether ``operation`` only reads: Describe*/Get*/List*/Head*/BatchGet*, Query, Scan, GetCallerIdentity;
    never one that changes state or hands out credentials (STS AssumeRole and GetSessionToken included)."""
    if operation in MUTATING_READS or operation in CREDENTIAL_NAMES:
        return False
    return operation in READ_OPERATIONS or operation.startswith(READ_PREFIXES)


class ReadOnlyViolation(Exception):
    """A check asked for a mutating AWS operation; the request was never sent."""

    def __init__(self, service: str, operation: str) -> None:
        self.service = service
        self.operation = operation
        super().__init__(
            f"refused {service}:{operation}: this run is read-only and {operation} is not a read operation"
        )


class NotImplementedByTarget(Exception):
    """The target (e.g. moto) cannot answer this operation, so the fact cannot be checked."""

    def __init__(self, target: str, operation: str) -> None:
        self.target = target
        self.operation = operation
        super().__init__(f"the {target} target does not implement {operation}")


class NoAwsTarget(Exception):
    """The environment declares no AWS target, so no AWS fact can be checked."""

    def __init__(self) -> None:
        super().__init__("this environment declares no AWS target (add [environments.NAME.aws] to runbooks.toml)")


def _guard(model: Any, **_: Any) -> None:
    if not is_read_operation(model.name):
        raise ReadOnlyViolation(model.service_model.service_name, model.name)


# moto answers an action it has no handler for in three ways: in-process it raises NotImplementedError
# ("The list_backup_selections action has not been implemented") or returns 404 "Not yet implemented"
# (no URL route); its server answers an HTML 500 (the same NotImplementedError, uncaught) or an HTML
# 404 (no route). None of these is an AWS error shape, so a stub target's gap is recognisable.
_MOTO_NOT_IMPLEMENTED = re.compile(r"The (\w+) action has not been implemented")


def moto_implements(service: str, operation: str) -> bool | None:
    """Whether the installed moto has a handler for ``operation`` (None: moto or the service is absent)."""
    try:
        module = importlib.import_module(f"moto.{service}.responses")
        from moto.core.responses import BaseResponse
    except ImportError:
        return None
    handlers = [v for v in vars(module).values() if isinstance(v, type) and issubclass(v, BaseResponse)]
    if not handlers:
        return None
    method = xform_name(operation)
    return any(hasattr(cls, method) for cls in handlers)


def stub_gap(status: int, headers: Any, body: bytes, service: str, operation: str) -> bool:
    """Whether a stub target's HTTP answer means "this action is not implemented here"."""
    html = str((headers or {}).get("content-type", "")).startswith("text/html")
    # an empty 404 is a real "not found" (HeadBucket on a missing bucket has no body), not a missing route
    if status == 404 and (body.strip() == b"Not yet implemented" or (html and body.strip())):
        return True
    return status == 500 and html and moto_implements(service, operation) is False


def _deadline_passed(**_: Any) -> None:
    """``before-send``, before the adaptive rate limiter's wait: nothing is sent, nor waited for, once the
    step's deadline has passed."""
    deadline = current_deadline()
    if deadline is not None and deadline.passed():
        raise deadline.reached()


def _deadline_attempt(read_timeout: float) -> Callable[..., None]:
    """``before-send``, last (after the rate limiter's wait): count the attempt against the step's deadline
    and cut its read timeout to the time left (botocore's per-request ``read_timeout``)."""

    def handler(request: Any = None, **_: Any) -> None:
        deadline = current_deadline()
        if deadline is None:
            return
        deadline.attempt()  # DeadlineReached when the rate limiter's wait used up the rest
        context = getattr(request, "context", None)
        if isinstance(context, dict):
            context["read_timeout"] = deadline.bound(read_timeout)

    return handler


def _deadline_retry(caught_exception: BaseException | None = None, **_: Any) -> None:
    """``needs-retry``, after the retry handler: an attempt that got no answer (its read timeout cut to the
    time left, say) once the deadline has passed ends the call as :class:`DeadlineReached`, not as that
    attempt's own timeout."""
    deadline = current_deadline()
    if caught_exception is not None and deadline is not None and deadline.remaining() <= 0.01:
        raise deadline.reached() from caught_exception


def _retries_within_deadline(client: Any, max_attempts: int) -> None:
    """Wrap ``client``'s standard retry handler: a retry whose backoff would end past the step's deadline is
    neither waited for nor sent; the call ends at once with :class:`DeadlineReached`.

    botocore registers the handler under a ``unique_id`` and keeps no public hold on it, so it is made
    again (``standard.register_retry_handler``, as botocore does) and registered wrapped in its place."""
    from botocore.retries import standard

    service = client.meta.service_model.service_id.hyphenize()
    event, unique_id = f"needs-retry.{service}", f"retry-config-{service}"
    events = client.meta.events
    events.unregister(event, unique_id=unique_id)
    handler = standard.register_retry_handler(client, max_attempts)
    events.unregister(event, unique_id=unique_id)

    def needs_retry(**kwargs: Any) -> float | None:
        delay: float | None = handler.needs_retry(**kwargs)
        deadline = current_deadline()
        if delay is not None and deadline is not None and deadline.remaining() <= delay:
            raise deadline.reached()  # the retry could only start after the deadline
        return delay

    events.register(event, needs_retry, unique_id=unique_id)


class _DeadlineTokenBucket(TokenBucket):
    """botocore's adaptive-mode token bucket, whose wait for a send token ends at the step's deadline."""

    def acquire(self, amount: float = 1, block: bool = True) -> bool:
        deadline = current_deadline()
        if deadline is None or not block:
            return bool(super().acquire(amount, block))
        while True:
            if deadline.passed():
                raise deadline.reached()
            try:
                return bool(super().acquire(amount, block=False))
            except botocore.exceptions.CapacityNotAvailableError:
                # a token comes every 1/rate s; wake then, or at the deadline, whichever is first
                time.sleep(max(min(amount / max(self.max_rate, 0.5), deadline.remaining()), 0.001))


def _adaptive_within_deadline(client: Any) -> None:
    """botocore's adaptive retry mode on ``client`` (made in standard mode): one client-side rate limiter
    per client, which lowers the send rate on throttling answers and raises it again as calls succeed,
    built as ``botocore.retries.adaptive.register_retry_handler`` builds it, except that the wait for a
    send token ends at the step's deadline (:class:`_DeadlineTokenBucket`): with many threads queued on a
    throttled client, botocore's own would let the last of them wait workers / 0.5 s past it."""
    from botocore.retries import adaptive, bucket, standard, throttling

    clock = bucket.Clock()
    limiter = adaptive.ClientRateLimiter(
        rate_adjustor=throttling.CubicCalculator(starting_max_rate=0, start_time=clock.current_time()),
        rate_clocker=adaptive.RateClocker(clock),
        token_bucket=_DeadlineTokenBucket(max_rate=1, clock=clock),
        throttling_detector=standard.ThrottlingErrorDetector(retry_event_adapter=standard.RetryEventAdapter()),
        clock=clock,
    )
    client.meta.events.register("before-send", limiter.on_sending_request)
    client.meta.events.register("needs-retry", limiter.on_receiving_response)


def _stub_gap_handler(target: str) -> Callable[..., None]:
    """A ``needs-retry`` handler: a gap is reported at once, without retries, as NotImplementedByTarget."""

    def handler(response: Any = None, operation: Any = None, **_: Any) -> None:
        if response is None or operation is None:
            return
        http = response[0]
        service = operation.service_model.service_name
        if stub_gap(http.status_code, http.headers, http.content or b"", service, operation.name):
            raise NotImplementedByTarget(target, operation.name)

    return handler


def error_code(exc: BaseException) -> str:
    if isinstance(exc, botocore.exceptions.ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


@register_classifier
def classify_aws(exc: BaseException, target: str = "aws") -> Fault | None:
    """The fault behind a botocore (or stub) exception; None when it is not one of AWS's."""
    if isinstance(exc, ReadOnlyViolation):
        return Fault.of(FaultKind.READ_ONLY, str(exc))
    if isinstance(exc, NotImplementedByTarget):
        return Fault.of(FaultKind.NOT_IMPLEMENTED, str(exc))
    if isinstance(exc, NoAwsTarget):
        return Fault.of(FaultKind.NO_TARGET, str(exc), HINT_NO_TARGET)
    if isinstance(exc, NotImplementedError):
        match = _MOTO_NOT_IMPLEMENTED.search(str(exc))
        if match:
            operation = "".join(part.capitalize() for part in match.group(1).split("_"))
            return Fault.of(FaultKind.NOT_IMPLEMENTED, str(NotImplementedByTarget(target, operation)))
        return None
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return Fault.of(FaultKind.NO_CREDENTIALS, "no AWS credentials found (environment, profile or instance role)",
                        HINT_ENDPOINT_CREDENTIALS if target == AwsKind.ENDPOINT.value else None)
    if isinstance(exc, botocore.exceptions.PartialCredentialsError):
        return Fault.of(FaultKind.NO_CREDENTIALS, f"incomplete AWS credentials: {exc}")
    if isinstance(exc, botocore.exceptions.ProfileNotFound):
        return Fault.of(FaultKind.NO_CREDENTIALS, f"AWS profile not found: {exc}")
    if isinstance(exc, botocore.exceptions.ConnectTimeoutError | botocore.exceptions.ReadTimeoutError):
        return Fault.of(FaultKind.TIMEOUT, f"timed out talking to AWS: {exc}")
    transport = classify_transport(exc)  # malformed answers, DNS, refused and reset connections
    if transport is not None:
        return transport
    if isinstance(exc, botocore.exceptions.ClientError):
        return _classify_client_error(exc, target)
    if isinstance(exc, botocore.exceptions.BotoCoreError):
        return Fault.of(FaultKind.CLIENT_ERROR, f"AWS client error: {exc}")
    return None


HINT_NO_TARGET = "declare [environments.NAME.aws] in runbooks.toml for this environment"
HINT_ENDPOINT_CREDENTIALS = ("an endpoint target signs its requests: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                             "(any values for moto or LocalStack)")


def _classify_client_error(exc: botocore.exceptions.ClientError, target: str) -> Fault | None:
    code = error_code(exc)
    operation = getattr(exc, "operation_name", "?")
    error = exc.response.get("Error", {})
    message = error.get("Message", "")
    bare = classify_bare_status(exc, target)  # no error code: a HEAD answer, or a bare status from a proxy
    if bare is not None:
        return bare
    if code in CREDENTIAL_CODES:
        return Fault.of(FaultKind.CREDENTIALS_REJECTED,
                        f"the AWS credentials were rejected for {operation} ({code}): {message}".rstrip(": "))
    needed = error.get("IamAction", "")
    if code in ACCESS_CODES or (needed and not code):
        reason = f"access denied for {operation} ({code or 'HTTP 403'}): {message}".rstrip(": ")
        return Fault.of(FaultKind.ACCESS_DENIED,
                        reason + (f"; needs {needed}" if needed and needed not in message else ""))
    if code in THROTTLING_CODES:
        return Fault.of(FaultKind.THROTTLED, f"throttled on {operation} ({code}) after retries")
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    if code in {"NotImplemented", "InternalFailure", "InternalError", "ServiceUnavailable"} or status >= 500:
        reason = f"the {target} target could not answer {operation} ({code}): {message}".rstrip(": ")
        kind = FaultKind.NOT_IMPLEMENTED if code == "NotImplemented" else FaultKind.SERVICE_ERROR
        return Fault.of(kind, reason)
    return None


# Called with (botocore service, operation) for every AWS request a run sends (tests record them).
CALL_OBSERVERS: list[Callable[[str, str], None]] = []


@register
class AwsTarget(Target):
    """Sessions, guarded clients and a per-run memo of read calls for one environment."""

    name = "aws"
    section = "aws"
    capabilities = {"aws-backup": "the moto target does not implement AWS Backup selections and recovery points"}

    def __init__(self, env: Environment, resources: Resources, read_only: bool = True) -> None:
        super().__init__(env, resources)
        # Session.from_options resolved them already; a session built directly resolves them here.
        self.settings = resolve_aws(env.aws, env.name)
        self.read_only = read_only
        self._lock = threading.Lock()
        self._clients: dict[tuple[str, str], Any] = {}
        self._memo: dict[Hashable, Future[Any]] = {}
        self._session: boto3.Session | None = None
        self.calls = 0  # API calls actually made by this run's clients (memo hits excluded)
        # its own lock: AssumeRole is counted while session() holds self._lock
        self._calls_lock = threading.Lock()
        # What the session policy of aws.role_arn allows: set by the Session from Options.read_only_actions
        # (`runbooks verify`: the actions its runbooks need); None: every registered step's permissions.
        self.read_only_actions: tuple[str, ...] | None = None
        self._enforcing = False  # this run holds the process-wide guard (aws_readonly)
        self._pool: ThreadPoolExecutor | None = None  # the run's one pool for AWS reads (see pool())
        self._ahead_gate = threading.BoundedSemaphore(self.settings.workers)
        self._closed = False
        self._views: dict[str, AccountTarget] = {}  # the run's target in each account, by id (see account())

    @classmethod
    def parse(cls, raw: Any, where: Where) -> AwsSettings:
        return parse_settings(raw, where)

    @classmethod
    def can(cls, env: Environment, capability: str) -> bool:
        return env.aws.kind is not AwsKind.MOTO

    @property
    def kind(self) -> AwsKind:
        return self.settings.kind

    def open(self) -> None:
        if self.kind is AwsKind.MOTO:  # the in-process stub lives as long as the run
            from moto import mock_aws

            mock = mock_aws()
            mock.start()
            self.resources.on_close(mock.stop)
        elif self.read_only and self.kind in (AwsKind.ENDPOINT, AwsKind.LIVE):
            from . import aws_readonly  # every botocore client in the process, not only this run's

            aws_readonly.enforce()
            self._enforcing = True

    def close(self) -> None:
        with self._lock:
            views, self._views = list(self._views.values()), {}
        for view in views:  # before the pool: their reads run on it
            view.close()
        with self._lock:
            pool, self._pool = self._pool, None
            self._closed = True
        if pool is not None:  # queued reads are dropped; those in flight end within their timeouts
            pool.shutdown(wait=True, cancel_futures=True)
        if self._enforcing:
            from . import aws_readonly

            self._enforcing = False
            aws_readonly.release()

    @property
    def target_name(self) -> str:
        """How the target is named in reasons: "moto", "endpoint", "live"."""
        return self.settings.target

    def in_region(self, region: str | None) -> AwsTarget | RegionView:
        """This target, or a view of it whose default region is ``region``."""
        return self if region in (None, self.settings.region) else RegionView(self, region)

    # many accounts (aws.accounts, aws.organization) -----------------------------------------------
    def accounts(self) -> tuple[AwsAccount, ...]:
        """The accounts ``@all-accounts`` scenarios run in: ``aws.accounts`` as listed, or the organization's
        ACTIVE accounts whose name or id matches ``include`` and none of ``exclude``, by name (ListAccounts
        with the run's base credentials, all pages, once per run). Empty: the environment has no accounts."""
        org = self.settings.organization
        if org is None:
            return self.settings.accounts
        pages = self.paginate("organizations", "list_accounts")
        found = [a for page in pages for a in page.get("Accounts", [])
                 if (a.get("State") or a.get("Status")) == "ACTIVE"
                 and any(_matches(a, p) for p in org.include) and not any(_matches(a, p) for p in org.exclude)]
        if not found:
            raise NoAccounts(f"no ACTIVE account of the organization matches include {list(org.include)}"
                             + (f" and not exclude {list(org.exclude)}" if org.exclude else "")
                             + f" ({sum(len(page.get('Accounts', [])) for page in pages)} in the organization)")
        names = [str(a.get("Name") or a["Id"]) for a in found]
        accounts = [AwsAccount(str(a["Id"]), _safe_label(name, str(a["Id"]), names.count(name) > 1),
                               external_id=org.external_id) for a, name in zip(found, names, strict=True)]
        return tuple(sorted(accounts, key=lambda a: (a.label, a.id)))

    def role_arn_of(self, account: AwsAccount) -> str:
        """The role assumed in ``account``: its role_arn, else ``aws.role_name`` (or the organization's) there."""
        if account.role_arn:
            return account.role_arn
        org = self.settings.organization
        name = (org.role_name if org is not None else None) or self.settings.role_name
        return f"arn:{self.partition()}:iam::{account.id}:role/{name}"

    def account(self, account: AwsAccount) -> AccountTarget:
        """The run's target in ``account``, made on first use (its role assumed when its first client is),
        closed when the run ends."""
        with self._lock:
            view = self._views.get(account.id)
            if view is None:
                view = self._views[account.id] = AccountTarget(self, account)
            return view

    def classify(self, exc: BaseException) -> Fault | None:
        return classify_aws(exc, self.target_name)

    def boto_config(self) -> BotoConfig:
        from botocore.config import Config as BotoConfig

        return BotoConfig(
            region_name=self.settings.region,
            # total_max_attempts counts the first try; botocore's own "max_attempts" would count retries only.
            # "standard" here: client() adds adaptive mode's rate limiter itself, bounded by the deadline
            retries={"mode": "standard", "total_max_attempts": self.settings.max_attempts},
            connect_timeout=self.settings.connect_timeout,
            read_timeout=self.settings.read_timeout,
            max_pool_connections=self.settings.workers,  # one connection per worker of the run's pool
            # a custom endpoint (moto server, LocalStack) serves buckets by path, not by host name, and
            # s3control's account id cannot be a host prefix of 127.0.0.1
            s3={"addressing_style": "path"} if self.settings.endpoint_url else None,
            inject_host_prefix=not self.settings.endpoint_url,
            # AWS_ENDPOINT_URL must not lead the in-process stub's requests out of the process
            ignore_configured_endpoint_urls=True if self.kind is AwsKind.MOTO else None,
        )

    def session(self) -> boto3.Session:
        with self._lock:
            if self._session is None:
                self._session = self._make_session()
            return self._session

    def _make_session(self) -> boto3.Session:
        import boto3

        s = self.settings
        session = boto3.Session(profile_name=s.profile, region_name=s.region)
        self._hook(session, guard=not s.role_arn)  # with a role, this session only assumes it
        if s.role_arn:
            # AWS itself refuses anything else to whoever holds these credentials; with accounts, they also
            # assume the role in each account (and list the organization's accounts)
            policy = self.session_policy(hub_actions(s)).document if self.read_only else None
            session = self._assume(session, s.role_arn, s.external_id, policy)
        return session

    def _assume(self, base: boto3.Session, role_arn: str, external_id: str | None, policy: str | None
                ) -> boto3.Session:
        """A guarded session of ``role_arn``, assumed with ``base``'s credentials and the session ``policy``."""
        import boto3
        import botocore.session

        from . import aws_readonly

        s = self.settings
        # the one client allowed to ask for credentials; it never leaves this method
        sts = aws_readonly.exempt(base.client("sts", config=self.boto_config(), endpoint_url=s.endpoint_url))
        sts.meta.events.unregister("before-call.*.*", _guard)  # a guarded base: the run's own, for an account
        params: dict[str, Any] = {"RoleArn": role_arn, "RoleSessionName": "runbooks-verify"}
        if external_id:
            params["ExternalId"] = external_id
        if policy is not None:
            params["Policy"] = policy
        creds = sts.assume_role(**params)["Credentials"]
        # the base's loader: the service models are read (and kept) once per run, not once per account
        core = botocore.session.Session()
        core.register_component("data_loader", base._session.get_component("data_loader"))
        session = boto3.Session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
            region_name=s.region,
            botocore_session=core,
        )
        self._hook(session)
        return session

    def session_policy(self, extra: Iterable[str] = ()) -> SessionPolicy:
        """The inline session policy for aws.role_arn (and each account's role): the runbooks' read actions
        and the engine's own, plus ``extra``."""
        from ..iam_policy import registered_actions, session_policy

        actions = self.read_only_actions if self.read_only_actions is not None else registered_actions()
        policy = session_policy([*actions, *extra])
        if policy.compressed:
            role = self.settings.role_arn or "each account's role"
            _warn(f"the session policy for {role} uses wildcards per service "
                  f"({', '.join(policy.actions)}): the exact actions exceed the 2048 characters AWS allows it")
        return policy

    def _hook(self, session: boto3.Session, guard: bool = True) -> None:
        """Guard and count every call of the session's clients; on stub targets, recognise their gaps."""
        if self.read_only and guard:
            session.events.register("before-call.*.*", _guard)
        session.events.register("before-call.*.*", self._count)
        session.events.register("after-call.*.*", _name_iam_action)
        session.events.register_first("before-parse.*.*", check_response)  # a garbage 2xx is never a fact
        # the step's deadline: no attempt once it has passed, checked before the adaptive rate limiter's wait
        # (registered on "before-send": a more specific name runs first) and after it (last), each attempt's
        # read timeout cut to the time left; retries: see _retries_within_deadline
        session.events.register_first("before-send.*.*", _deadline_passed)
        session.events.register_last("before-send", _deadline_attempt(self.settings.read_timeout))
        session.events.register("needs-retry", _deadline_retry)
        if self.kind is not AwsKind.LIVE:
            session.events.register("needs-retry", _stub_gap_handler(self.target_name))

    def _count(self, model: Any = None, **_: Any) -> None:
        with self._calls_lock:
            self.calls += 1
        if model is not None:
            for observer in CALL_OBSERVERS:
                observer(model.service_model.service_name, model.name)

    def client(self, service: str, region: str | None = None) -> Any:
        if self.kind is AwsKind.NONE:
            raise NoAwsTarget()
        _memoised_only(f"a {service} client")
        if self._closed and AHEAD.get():  # a read-ahead still going as the run ends
            raise NotReadAhead("the run has ended")
        if self._enforcing:
            from . import aws_readonly

            aws_readonly.check_installed()  # a guard a step took out is noticed (and put back) here
        region = region or self.settings.region
        key = (service, region)
        with self._lock:
            client = self._clients.get(key)
        if client is not None:
            return client
        session = self.session()
        with self._lock:
            if key not in self._clients:
                client = session.client(
                    service,
                    region_name=region,
                    endpoint_url=self.settings.endpoint_url,
                    config=self.boto_config(),
                )
                if self.settings.endpoint_url and service == "s3control":
                    same_host = _endpoint_host(self.settings.endpoint_url)
                    client.meta.events.register("before-sign.s3-control", same_host)
                _retries_within_deadline(client, self.settings.max_attempts)
                _adaptive_within_deadline(client)
                self._clients[key] = client
            return self._clients[key]

    def pool(self) -> ThreadPoolExecutor:
        """The run's one thread pool for AWS reads, ``settings.workers`` threads (``aws.max_workers``,
        ``--workers``): made on first use, shut down when the run ends. Every fleet step, tag page and region
        listing shares it, so the run never has more requests in flight than its clients pool connections,
        and each client's adaptive rate limiter sees all of the run's traffic to its service and region."""
        with self._lock:
            if self._pool is None:
                if self._closed and AHEAD.get():  # a read-ahead still going as the run ends: no pool outliving it
                    raise NotReadAhead("the run has ended")
                self._pool = ThreadPoolExecutor(self.settings.workers, thread_name_prefix="runbooks-aws")
            return self._pool

    def fan_out(self, fn: Callable[[_T], _R], items: Iterable[_T]) -> list[Future[_R]]:
        """``fn(item)`` for every item on the run's pool, in order; each runs in a copy of the caller's
        context, so the step (and its deadline) still hold in the worker. Called from one of the pool's own
        threads, or while computing a memo entry (which pool workers may be waiting for), it runs them there
        one by one: a worker waiting for its own pool could wait forever."""
        if getattr(_IN_POOL, "active", False) or _IN_MEMO.get():  # a memo's owner is waited for: never queue it
            return [_done(fn, item) for item in items]
        pool = self.pool()
        if not AHEAD.get():
            return [pool.submit(contextvars.copy_context().run, _pooled, fn, item) for item in items]
        # Read ahead: at most `workers` items queued at once, so a step in its turn never waits behind more
        # than one round of them.
        gate, futures = self.ahead_gate(), []
        for item in items:
            while not gate.acquire(timeout=0.05):
                deadline = current_deadline()
                if deadline is not None and deadline.passed():
                    raise deadline.reached()
            future = pool.submit(contextvars.copy_context().run, _pooled, fn, item)
            future.add_done_callback(lambda _: gate.release())
            futures.append(future)
        return futures

    def ahead_gate(self) -> threading.BoundedSemaphore:
        """How many read-ahead items the run's pool may hold at once (see :meth:`fan_out`)."""
        return self._ahead_gate

    def partition(self, region: str | None = None) -> str:
        """The ARN partition of ``region`` (default: the environment's): "aws", "aws-cn", "aws-us-gov"."""
        try:
            return str(self.session().get_partition_for_region(region or self.settings.region))
        except Exception:  # noqa: BLE001 - a region botocore does not know: the commercial partition
            return "aws"

    def call(self, service: str, operation: str, region: str | None = None, **params: Any) -> Any:
        """One un-memoised call through the guarded client (for reads that must stop early)."""
        _memoised_only(f"{service}.{operation} outside the memo")
        client = self.client(service, region)
        try:
            return getattr(client, operation)(**params)
        except NotImplementedError as exc:  # in-process moto: the action has no handler
            raise self._gap(client, operation) from exc

    def read(self, service: str, operation: str, region: str | None = None, **params: Any) -> Any:
        """Call ``operation`` once per run for the same parameters; later callers get the same answer.

        Exceptions are memoised too: a missing bucket is missing for every step that asks.
        """
        return self.memo(
            (service, region or self.settings.region, operation, _freeze(params)),
            lambda: self.call(service, operation, region, **params),
        )

    def paginate(
        self, service: str, operation: str, region: str | None = None, **params: Any
    ) -> list[Any]:
        """All pages of a paginated read, memoised like :meth:`read`."""
        def fetch() -> list[Any]:
            client = self.client(service, region)
            try:
                return list(client.get_paginator(operation).paginate(**params))
            except NotImplementedError as exc:
                raise self._gap(client, operation) from exc

        return self.memo(("paginate", service, region or self.settings.region, operation, _freeze(params)), fetch)

    def _gap(self, client: Any, operation: str) -> NotImplementedByTarget:
        return NotImplementedByTarget(self.target_name, client.meta.method_to_api_mapping.get(operation, operation))

    def memo(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        while True:
            with self._lock:
                future = self._memo.get(key)
                owner = future is None
                if owner:
                    future = self._memo[key] = Future()
            assert future is not None
            if owner:
                inside = _IN_MEMO.set(True)
                try:
                    future.set_result(compute())
                except BaseException as exc:  # noqa: BLE001
                    # one step's lack of time, or a read-ahead that stopped, is not the answer: forgotten
                    # before anyone is told, so that whoever asks next (or waits now) asks afresh
                    if isinstance(exc, DeadlineReached | NotReadAhead):
                        with self._lock:
                            self._memo.pop(key, None)
                    future.set_exception(exc)
                finally:
                    _IN_MEMO.reset(inside)
                return future.result()
            deadline = current_deadline()
            try:  # another step (or a read-ahead) is reading it: wait, as long as this step has time
                return future.result(timeout=deadline.remaining() if deadline is not None else None)
            except FutureTimeout:
                assert deadline is not None
                raise deadline.reached() from None
            except (DeadlineReached, NotReadAhead):
                # the owner's own lack of time (another step's): ask again, with this step's
                if deadline is not None and deadline.passed():
                    raise deadline.reached() from None

    def account_id(self) -> str:
        return str(self.read("sts", "get_caller_identity")["Account"])


_T = TypeVar("_T")
_R = TypeVar("_R")
_IN_POOL = threading.local()  # .active: this thread is one of a run's pool workers
# Set while a memo entry is computed: what is asked for there is asked once per run, so it may be done ahead.
_IN_MEMO: contextvars.ContextVar[bool] = contextvars.ContextVar("runbooks_in_memo", default=False)


def _memoised_only(what: str) -> None:
    """Ahead of its turn (runbooks.read_ahead) a check may only make memoised reads: anything else would be
    done twice, once ahead and once in its turn."""
    if AHEAD.get() and not _IN_MEMO.get():
        raise NotReadAhead(what)


def _pooled(fn: Callable[[_T], _R], item: _T) -> _R:
    _IN_POOL.active = True
    return fn(item)


def _done(fn: Callable[[_T], _R], item: _T) -> Future[_R]:
    """``fn(item)`` run here, as a finished future."""
    future: Future[_R] = Future()
    try:
        future.set_result(fn(item))
    except BaseException as exc:  # noqa: BLE001 - delivered by future.result(), as from the pool
        future.set_exception(exc)
    return future


def _endpoint_host(endpoint_url: str) -> Callable[..., None]:
    """S3 Control puts the account id in front of the host (``{account}.127.0.0.1``); a custom endpoint
    (moto server, LocalStack) has no such host, so send the request to the endpoint as configured."""
    ours = urlsplit(endpoint_url).netloc

    def handler(request: Any, **_: Any) -> None:
        parts = urlsplit(request.url)
        if parts.netloc.endswith("." + ours):
            request.url = urlunsplit(parts._replace(netloc=ours))

    return handler


def _freeze(value: Any) -> Hashable:
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value  # type: ignore[no-any-return]


class RegionView:
    """The run's AWS target seen from one region: same clients, same memo, another default region."""

    def __init__(self, target: AwsTarget, region: str | None) -> None:
        self._target = target
        self.region = region or target.settings.region
        self.settings = replace(target.settings, region=self.region)

    def read(self, service: str, operation: str, region: str | None = None, **params: Any) -> Any:
        return self._target.read(service, operation, region or self.region, **params)

    def paginate(self, service: str, operation: str, region: str | None = None, **params: Any) -> Any:
        return self._target.paginate(service, operation, region or self.region, **params)

    def client(self, service: str, region: str | None = None) -> Any:
        return self._target.client(service, region or self.region)

    def memo(self, key: Any, compute: Callable[[], Any]) -> Any:
        return self._target.memo((self.region, key), compute)

    def call(self, service: str, operation: str, region: str | None = None, **params: Any) -> Any:
        return self._target.call(service, operation, region or self.region, **params)

    def __getattr__(self, name: str) -> Any:  # account_id, kind, calls, ...
        return getattr(self._target, name)


class AccountTarget(AwsTarget):
    """The run's AWS target in one account of ``aws.accounts`` / ``aws.organization``: its own session, the
    account's role assumed from the run's base credentials with the same read-only session policy (on first
    use), its own guarded clients; the run's memo (keyed by the account), pool and call count."""

    def __init__(self, parent: AwsTarget, account: AwsAccount) -> None:
        super().__init__(replace(parent.env, aws=parent.settings), parent.resources, parent.read_only)
        self.parent = parent
        self.member = account  # (``account()`` is the parent's lookup)
        self.read_only_actions = parent.read_only_actions

    def open(self) -> None:  # the run's target opened the run
        pass

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

    def _make_session(self) -> boto3.Session:
        parent = self.parent
        policy = parent.memo(("account-session-policy",), lambda: parent.session_policy().document) \
            if self.read_only else None
        return self._assume(parent.session(), parent.role_arn_of(self.member), self.member.external_id, policy)

    def _count(self, model: Any = None, **_: Any) -> None:
        self.parent._count(model=model)

    def pool(self) -> ThreadPoolExecutor:
        return self.parent.pool()

    def ahead_gate(self) -> threading.BoundedSemaphore:
        return self.parent.ahead_gate()

    def memo(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        return self.parent.memo(("account", self.member.id, key), compute)

    def accounts(self) -> tuple[AwsAccount, ...]:
        return (self.member,)

    def account(self, account: AwsAccount) -> AccountTarget:
        return self.parent.account(account)
