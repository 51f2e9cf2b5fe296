"""One verification run: the environment's connections, and the record of every step.

Steps hand their check to :meth:`Run.execute_step`; the check returns a :class:`CheckResult` (or
raises, and the exception is classified here), the run records it and tells the console.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from _pytest.outcomes import Failed

from . import __version__
from .aws import AwsTarget, describe_error
from .config import VARIABLE, Config, ConfigError, Environment, ServiceSettings
from .history import History
from .redact import Redactor
from .registry import StepDefinition
from .reports import exit_code
from .result import CheckResult, StepRecord
from .waivers import Waivers

HARD_STEP_TYPES = {"given", "when"}  # a failed precondition or action stops its scenario


class UnknownName(ConfigError):
    """A step names a service/host/container the environment does not declare."""


class _Reported(Failed):
    """A failure whose message already carries the evidence: pytest shows it without a traceback."""

    def __init__(self, message: str) -> None:
        super().__init__(message, pytrace=False)


class StepStopped(_Reported):
    """Raised by a failed Given/When step: the rest of the scenario is recorded as skipped."""


class ScenarioFailed(_Reported):
    """Raised at the end of a scenario whose checks failed or could not run."""


class Finding(Exception):
    """Raised inside a check to end it with ``result`` (e.g. the bucket does not exist at all)."""

    def __init__(self, result: CheckResult) -> None:
        super().__init__(result.observed)
        self.result = result


# `@requires:<capability>` on a scenario or feature: run it only where the environment can answer.
CAPABILITIES: dict[str, tuple[Callable[[Environment], bool], str]] = {
    "docker": (
        lambda env: bool(env.docker.get("host") or os.environ.get("DOCKER_HOST")),
        "environment {env} declares no Docker engine (docker.host, or DOCKER_HOST)",
    ),
    "hosts": (lambda env: bool(env.hosts), "environment {env} declares no hosts"),
    "aws-backup": (
        lambda env: env.aws.target != "moto",
        "the moto target does not implement AWS Backup selections and recovery points",
    ),
}


def missing_capability(env: Environment, tags: set[str] | list[str]) -> str | None:
    """Why a scenario with these tags cannot run in ``env`` (None when it can)."""
    for tag in sorted(tags):
        if tag.startswith("requires:"):
            name = tag.split(":", 1)[1]
            available, reason = CAPABILITIES[name]
            if not available(env):
                return f"not run here: {reason.format(env=env.name)} (@requires:{name})"
    return None


@dataclass
class ScenarioState:
    """What a scenario's steps share (e.g. the last HTTP response), reset for every scenario."""

    values: dict[str, Any] = field(default_factory=dict)


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

    def __getattr__(self, name: str) -> Any:  # account_id, name, calls, ...
        return getattr(self._target, name)


class CheckContext:
    """What a check function may use. Checks never build their own clients."""

    def __init__(self, run: Run, scenario: ScenarioState, region: str | None = None) -> None:
        self.run = run
        self.env: Environment = run.env
        self.aws: AwsTarget | RegionView = (
            run.aws if region in (None, run.aws.settings.region) else RegionView(run.aws, region)
        )
        self.http: requests.Session = run.http
        self.scenario = scenario

    def service(self, name: str) -> ServiceSettings:
        return self.run.service(name)


class Run:
    def __init__(self, config: Config, env: Environment, read_only: bool | None = None) -> None:
        self.config = config
        self.env = env
        # Only a sandbox provisions (and it does so with its own session); checks are always guarded.
        self.aws = AwsTarget(env.aws, read_only=True if read_only is None else read_only)
        self.http = requests.Session()
        self.http.headers["User-Agent"] = f"runbooks/{__version__}"
        self.records: list[StepRecord] = []
        self.services: dict[str, ServiceSettings] = dict(env.services)
        self.vars: dict[str, str] = dict(env.vars)
        self.git_commit = git_commit(config.root)
        self.redactor = Redactor.for_environment(env)
        self.started_at = datetime.now(UTC)
        self.finished_at: datetime | None = None
        self.listeners: list[Callable[[StepRecord], None]] = []
        self._lock = threading.Lock()
        self._stoppers: list[Callable[[], None]] = []
        self._resources: dict[Any, Any] = {}
        self.waivers: Waivers | None = None
        self.fail_on = "info"
        self.history: History | None = None
        self.run_id: str | None = None
        self.status = "running"
        self.aborted: str | None = None  # why a guard step stopped the run early

    # lifecycle -------------------------------------------------------------------------------
    def start(self) -> Run:
        if self.history is not None:
            self.run_id = self.history.start_run(self.metadata())
        if self.env.aws.target == "moto":
            from .sandbox import start_moto

            mock = start_moto()
            self._stoppers.append(mock.stop)
        if self.env.sandbox is not None:
            from .sandbox import Sandbox

            sandbox = Sandbox(self.env).start()
            self._stoppers.append(sandbox.stop)
            for name, url in sandbox.service_urls().items():
                self.services[name] = ServiceSettings(name=name, url=url)
                self.vars[f"{name}_port"] = url.rsplit(":", 1)[1]
        return self

    def stop(self, status: str = "finished") -> None:
        self.finished_at = datetime.now(UTC)
        self.status = status
        if self.history is not None and self.run_id is not None:
            self.history.finish_run(self.run_id, self.metadata(), self.exit_code(), status)
            self.history.close()
        while self._stoppers:
            stop = self._stoppers.pop()
            try:
                stop()
            except Exception as exc:  # noqa: BLE001 - one failing cleanup must not skip the others
                print(f"runbooks: warning: cleanup failed: {exc}", file=sys.stderr)
        self.http.close()

    def resource(self, key: Any, factory: Callable[[], Any], close: Callable[[Any], None] | None = None) -> Any:
        """A connection or client shared by every step of the run (a testinfra host, a docker client),
        created on first use and closed by :meth:`stop`."""
        with self._lock:
            if key in self._resources:
                return self._resources[key]
        value = factory()
        with self._lock:
            if key in self._resources:  # another thread won the race; keep theirs, close ours
                if close is not None:
                    close(value)
                return self._resources[key]
            self._resources[key] = value
            if close is not None:
                self._stoppers.append(lambda: close(value))
            return value

    def service(self, name: str) -> ServiceSettings:
        try:
            return self.services[name]
        except KeyError:
            from .preflight import registry_hint

            raise UnknownName(
                f"service {name!r} is not defined by environment {self.env.name!r}"
                + registry_hint(name, list(self.services))
            ) from None

    # steps -----------------------------------------------------------------------------------
    def resolve(self, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        return VARIABLE.sub(lambda m: self.vars.get(m.group(1), m.group(0)), value)

    def arguments(self, definition: StepDefinition, args: dict[str, Any]) -> dict[str, Any]:
        """Arguments with variables resolved and numeric fields (``{port:d}``) converted."""
        out = {name: self.resolve(value) for name, value in args.items()}
        for name, convert in definition.numeric.items():
            if isinstance(out.get(name), str):
                try:
                    out[name] = convert(out[name])
                except ValueError:
                    raise UnknownName(f"{name}: {args[name]} is {out[name]!r}, not a number") from None
        return out

    def evaluate(self, definition: StepDefinition, args: dict[str, Any], state: ScenarioState,
                 region: str | None = None) -> CheckResult:
        """Run one check and turn any exception into an ERROR result; never raises."""
        try:
            args = self.arguments(definition, args)
            result = definition.func(CheckContext(self, state, region), **args)
        except Finding as exc:
            result = exc.result
        except UnknownName as exc:
            result = CheckResult.errored("", exc.message, "declare it in runbooks.toml for this environment")
        except Exception as exc:  # noqa: BLE001 - every failure to check becomes an ERROR record
            reason = describe_error(exc, self.aws.name)
            if reason is None:
                reason = f"{type(exc).__name__}: {exc}"
            result = CheckResult.errored(args_resource(args), reason, error_hint(reason))
        if not result.manual_command and definition.manual:
            result = result.with_manual(definition.manual_command(args))
        return result

    def record(self, record: StepRecord) -> StepRecord:
        if self.waivers is not None:
            record = self.waivers.apply(record)
        record = self.redactor.record(record)
        with self._lock:
            self.records.append(record)
        if self.history is not None and self.run_id is not None:
            self.history.add(self.run_id, record)
        for listener in self.listeners:
            listener(record)
        return record

    def exit_code(self) -> int:
        if self.aborted:
            return 2  # a guard stopped the run: the environment is not the one named
        if self.status == "interrupted":
            return 130
        if self.status == "failed":
            return 3  # could not even start: nothing was verified
        return exit_code(self.records, self.fail_on)

    def metadata(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": self.status,
            "fail_on": self.fail_on,
            "exit_code": self.exit_code(),
            "environment": self.env.name,
            "target": self.env.aws.target,
            "region": self.env.aws.region,
            "started_at": self.started_at.isoformat(timespec="seconds"),
            "finished_at": (self.finished_at or datetime.now(UTC)).isoformat(timespec="seconds"),
            "git_commit": self.git_commit,
            "tool_version": __version__,
            "aws_api_calls": self.aws.calls,
        }


def args_resource(args: dict[str, Any]) -> str:
    for key in ("bucket", "table", "service", "host", "container", "plan", "vault", "alarm"):
        if key in args:
            return f"{key} {args[key]}"
    return ""


def error_hint(reason: str) -> str:
    lowered = reason.lower()
    if "access denied" in lowered:
        return "grant the read permission named above to the identity running the checks (see `runbooks iam-policy`)"
    if "credentials were rejected" in lowered:
        return "refresh or fix the credentials of this environment (expired session, wrong key or clock skew)"
    if "credentials" in lowered or "profile" in lowered:
        return "configure AWS credentials for this environment (profile, environment variables or role)"
    if "read-only" in lowered:
        return "checks must only read; use a Describe/Get/List call"
    if "throttled" in lowered:
        return "re-run later or lower concurrency; botocore already retried in adaptive mode"
    if "timed out" in lowered or "connect" in lowered:
        return "check network access to the endpoint (VPN, proxy, security groups) and that it is up"
    if "does not implement" in lowered:
        return "verify this fact against a real environment; the stub cannot answer it"
    return "this is a defect in the check or the target; re-run with -v and report it"


def git_commit(root: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def elapsed_ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 1)
