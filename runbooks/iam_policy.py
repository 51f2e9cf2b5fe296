"""``runbooks iam-policy``: the least-privilege, read-only IAM policy that a set of runbooks needs.

The policy is derived, never written by hand: every step of the runbooks (background, scenarios,
one row of an outline at a time) is matched to its definition in the step registry, and the
``permissions`` those definitions declare are united into one ``Allow`` statement on ``"*"``.
``manual:`` steps and steps that do not touch AWS declare nothing and so add nothing; an undefined
step is refused (exit 2, ``file:line``), as ``runbooks verify`` would refuse it.

Role assumption: when the environment's ``aws`` settings name a ``role_arn``, this policy belongs
on that role (it is what the checks need). The identity that runs ``runbooks verify`` then also
needs ``sts:AssumeRole`` on that role ARN (and the role's trust policy must allow it, with the
``external_id`` if one is set). That grant is deliberately not part of this output, which stays
about the checks; the command only mentions it on stderr.

Many accounts: when the environment lists ``aws.accounts`` or finds them with ``aws.organization``, this
policy belongs on the role assumed in each account (the member role). ``--organization`` prints instead the
policy of the identity that runs ``runbooks verify`` (:func:`organization_policy_document`):
``organizations:ListAccounts`` (with ``aws.organization``) and ``sts:AssumeRole`` on the member roles.

Session policy: ``runbooks verify`` assumes that role with :func:`session_policy` of the runbooks it
runs (plus :data:`ENGINE_ACTIONS`) as an inline session policy, so AWS refuses everything else to any
code holding those credentials, whatever the role itself allows.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import registry
from .config import Config, load_config, load_optional_config
from .errors import ConfigError, UsageError
from .features import FeatureDoc, StepDoc, discover, parse_feature
from .preflight import closest_phrases, display_path
from .targets.aws import CREDENTIAL_OPERATIONS, READ_OPERATIONS, READ_PREFIXES, AwsSettings, is_read_operation

POLICY_VERSION = "2012-10-17"
STATEMENT_ID = "RunbooksReadOnly"
# ``service:Action``: a lowercase service prefix, an action name without wildcards.
PERMISSION = re.compile(r"^[a-z0-9][a-z0-9-]*:[A-Z][A-Za-z0-9]*$")
# IAM actions that only read: the read-only guard's vocabulary (runbooks.targets.aws), less
# sts:AssumeRole, which belongs to the caller, not to the checks.
READ_ACTIONS = frozenset(READ_OPERATIONS - {"AssumeRole"})


def permission_problem(permission: str) -> str | None:
    """Why ``permission`` cannot go into a read-only policy, or None when it can."""
    if not isinstance(permission, str) or not PERMISSION.match(permission):
        return f"{permission!r} is not of the form service:Action (e.g. s3:GetBucketVersioning)"
    verb = permission.split(":", 1)[1]
    if not is_read_operation(verb):  # GetSessionToken and its kind hand out credentials: not reads either
        return f"{permission!r} is not a read action (Get*/List*/Describe*/Head*/BatchGet*/Query/Scan)"
    return None


@dataclass
class Requirements:
    """Which steps (as ``file:line``) need which IAM action."""

    needed_by: dict[str, list[str]] = field(default_factory=dict)
    steps: int = 0  # concrete steps examined (outline rows expanded)

    @property
    def actions(self) -> list[str]:
        return sorted(self.needed_by)


def requirements(features: list[tuple[FeatureDoc, str]]) -> Requirements:
    """The IAM actions the steps of ``features`` need. Raises :class:`runbooks.cli.UsageError` listing
    every undefined step and every malformed permission a step declares (the registry must be loaded)."""
    found = Requirements()
    problems: list[str] = []
    bad_definitions: dict[str, str] = {}
    for feature, display in features:
        steps: list[tuple[StepDoc, str]] = [(s, s.text) for s in feature.background]
        for scenario in feature.scenarios:
            steps.extend(scenario.concrete_steps())
        for step, text in steps:
            found.steps += 1
            match = registry.find(text)
            if match is None:
                suggestions = closest_phrases(text)
                hint = "; closest known: " + " | ".join(suggestions) if suggestions else ""
                problems.append(f"{display}:{step.line}: undefined step: {step.keyword} {text}{hint}")
                continue
            definition = match[0]
            for permission in definition.permissions:
                reason = permission_problem(permission)
                if reason:
                    bad_definitions[f"{definition.phrase}|{permission}"] = (
                        f"step {definition.phrase!r} ({definition.func.__module__}) declares {reason}"
                    )
                    continue
                where = f"{display}:{step.line}"
                users = found.needed_by.setdefault(permission, [])
                if where not in users:
                    users.append(where)
    problems.extend(bad_definitions.values())
    if problems:
        for problem in dict.fromkeys(problems):
            print(problem, file=sys.stderr)
        raise UsageError(f"{len(dict.fromkeys(problems))} problem(s); no policy was written")
    return found


def policy_document(actions: list[str] | set[str] | tuple[str, ...]) -> dict[str, Any]:
    """The IAM policy granting exactly ``actions`` (sorted, unique) on every resource."""
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Sid": STATEMENT_ID,
                "Effect": "Allow",
                "Action": sorted(set(actions)),
                "Resource": "*",
            }
        ],
    }


def render_policy(actions: list[str] | set[str] | tuple[str, ...]) -> str:
    return json.dumps(policy_document(actions), indent=2) + "\n"


def organization_policy_document(aws: AwsSettings) -> dict[str, Any]:
    """The policy of the identity that runs ``runbooks verify`` in an environment with accounts: list the
    organization's accounts (``aws.organization``) and assume the member role in each account."""
    partition = _partition(aws.region)
    statements: list[dict[str, Any]] = []
    if aws.organization is not None:
        statements.append({"Sid": "RunbooksListAccounts", "Effect": "Allow",
                           "Action": ["organizations:ListAccounts"], "Resource": "*"})
        roles = [f"arn:{partition}:iam::*:role/{aws.organization.role_name or aws.role_name}"]
    else:
        roles = sorted({a.role_arn or f"arn:{partition}:iam::{a.id}:role/{aws.role_name}" for a in aws.accounts})
    statements.append({"Sid": "RunbooksAssumeAccountRole", "Effect": "Allow", "Action": ["sts:AssumeRole"],
                       "Resource": roles})
    return {"Version": POLICY_VERSION, "Statement": statements}


def _partition(region: str) -> str:
    """The ARN partition of ``region`` ("aws" when it is unknown or not set)."""
    import botocore.session

    try:
        return str(botocore.session.get_session().get_partition_for_region(region)) if region else "aws"
    except Exception:  # noqa: BLE001 - a region botocore does not know: the commercial partition
        return "aws"


# What the engine calls itself, whatever the runbooks: the account check (ctx.aws.account_id).
ENGINE_ACTIONS = ("sts:GetCallerIdentity",)
# AWS STS: "The plaintext that you use for both inline and managed session policies can't exceed 2,048
# characters" (AssumeRole, Policy). AWS also packs the policy with the session tags; over its own limit
# AssumeRole fails with PackedPolicyTooLarge, which the run reports as an error.
SESSION_POLICY_LIMIT = 2048


@dataclass(frozen=True)
class SessionPolicy:
    """The inline session policy for AssumeRole: compact JSON, and whether it needed wildcards."""

    document: str
    actions: tuple[str, ...]  # as granted: exact names, or ``service:Verb*`` when compressed
    compressed: bool


def session_policy(actions: Iterable[str]) -> SessionPolicy:
    """``actions`` plus :data:`ENGINE_ACTIONS` as a session policy of at most 2048 characters.

    Too long with exact names, the actions become one wildcard per service and read verb
    (``s3:GetBucketTagging`` + ``s3:GetBucketVersioning`` -> ``s3:Get*``), still read-only: a verb
    under which the service has a credential-issuing operation (``sts:Get*`` would grant
    GetSessionToken) keeps its exact names. Still too long: :class:`ConfigError`."""
    exact = sorted(set(actions) | set(ENGINE_ACTIONS))
    document = _compact(exact)
    if len(document) <= SESSION_POLICY_LIMIT:
        return SessionPolicy(document, tuple(exact), False)
    grouped = wildcard_actions(exact)
    document = _compact(grouped)
    if len(document) > SESSION_POLICY_LIMIT:
        raise ConfigError(f"the read-only session policy for these runbooks needs {len(document)} characters even "
                          f"with wildcards per service ({len(grouped)} entries); AWS allows {SESSION_POLICY_LIMIT}: "
                          "verify fewer runbooks per run")
    return SessionPolicy(document, tuple(grouped), True)


def wildcard_actions(actions: Iterable[str]) -> list[str]:
    """One ``service:Verb*`` per service and read verb (Describe, Get, List, Head, BatchGet), except where
    the wildcard would also match one of the service's credential-issuing operations."""
    out: set[str] = set()
    for action in actions:
        service, name = action.split(":", 1)
        verb = next((v for v in READ_PREFIXES if name.startswith(v)), None)
        if verb is None or any(op.startswith(verb) for op in CREDENTIAL_OPERATIONS.get(service, ())):
            out.add(action)
        else:
            out.add(f"{service}:{verb}*")
    return sorted(out)


def _compact(actions: list[str]) -> str:
    return json.dumps(policy_document(actions), separators=(",", ":"))


def registered_actions() -> list[str]:
    """Every read permission a registered step declares (the session policy of a run that does not say
    which runbooks it runs: plain pytest)."""
    return sorted({p for definition in registry.REGISTRY.values() for p in definition.permissions
                   if permission_problem(p) is None})


def actions_for_files(files: list[Path], root: Path) -> tuple[str, ...]:
    """The actions the steps of these feature files need (``runbooks verify``'s session policy), checked
    against the session policy's size limit before anything runs."""
    docs = [(parse_feature(f), display_path(f, root)) for f in files]
    actions = tuple(requirements(docs).actions)
    session_policy(actions)  # too large even with wildcards: exit 2 now, not an error per step later
    return actions


def policy_for_paths(paths: list[Path], root: Path | None = None,
                     config: Config | None = None) -> tuple[str, Requirements]:
    """Parse the feature files under ``paths`` and return (policy JSON, requirements)."""
    registry.load_step_modules(config)
    files = discover(paths)
    if not files:
        raise UsageError(f"no .feature files under {', '.join(str(p) for p in paths)}")
    docs = [(parse_feature(f), display_path(f, root or Path.cwd())) for f in files]
    needed = requirements(docs)
    return render_policy(needed.actions), needed


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "iam-policy",
        help="print the least-privilege read-only IAM policy the runbooks need",
        description="Print the minimal read-only IAM policy (JSON) for the steps these runbooks use. "
        "If the environment assumes a role, attach it to that role; the caller then also needs "
        "sts:AssumeRole on the role (not included).",
    )
    parser.add_argument("paths", nargs="*", type=Path, help="feature files or folders (default: features/)")
    parser.add_argument("--env", dest="env", help="environment from runbooks.toml (default: its default)")
    parser.add_argument("--config", type=Path, help="path to runbooks.toml (default: search upwards)")
    parser.add_argument("--explain", action="store_true", help="also list on stderr which steps need each action")
    parser.add_argument("--organization", action="store_true",
                        help="for an environment with aws.accounts or aws.organization: print the policy of the "
                        "identity running `runbooks verify` (organizations:ListAccounts, sts:AssumeRole on the role "
                        "of each account) instead of the policy of that role")
    parser.set_defaults(handler=cmd_iam_policy)


def _config(args: argparse.Namespace) -> Config | None:
    """The configuration; optional only when feature paths are given and none is named or found."""
    if args.config or args.env or not args.paths:
        return load_config(args.config)
    return load_optional_config(None)


def cmd_iam_policy(args: argparse.Namespace) -> int:
    config = _config(args)
    env = config.environment(args.env) if config else None
    if args.organization:
        if env is None or not env.aws.has_accounts:
            name = f"environment {env.name!r}" if env is not None else "no environment"
            raise UsageError(f"--organization: {name} has no aws.accounts and no aws.organization")
        sys.stdout.write(json.dumps(organization_policy_document(env.aws), indent=2) + "\n")
        return 0
    if env is not None and env.aws.has_accounts:
        print(f"runbooks iam-policy: note: environment {env.name!r} runs @all-accounts scenarios in each of its "
              "accounts: attach this policy to the role assumed there; `runbooks iam-policy --organization` prints "
              "the policy of the identity that assumes it", file=sys.stderr)
    paths = list(args.paths) or ([config.features] if config else [])
    text, needed = policy_for_paths(paths, config.root if config else None, config)
    if env is not None and env.aws.role_arn:
        print(
            f"runbooks iam-policy: note: environment {env.name!r} assumes {env.aws.role_arn}; attach this policy "
            "to that role, and allow the identity running `runbooks verify` sts:AssumeRole on it",
            file=sys.stderr,
        )
    if not needed.actions:
        print(f"runbooks iam-policy: the {needed.steps} step(s) of these runbooks need no AWS permissions",
              file=sys.stderr)
        return 0
    sys.stdout.write(text)
    if args.explain:
        for action in needed.actions:
            print(f"{action}: needed by {', '.join(needed.needed_by[action])}", file=sys.stderr)
    return 0
