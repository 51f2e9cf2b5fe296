"""Named environments from ``runbooks.toml``.

Every problem is a :class:`ConfigError` that names the file and line, so the CLI can print one line
and exit 2 instead of a traceback.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError, read_text
from .names import did_you_mean
from .targets import Where, targets
from .targets.aws import AWS_TARGETS, AwsKind, AwsSettings
from .targets.docker import DockerSettings
from .targets.http import ServiceSettings
from .targets.postgres import PostgresSettings
from .targets.redis import RedisSettings

__all__ = ["AWS_TARGETS", "AwsKind", "AwsSettings", "Config", "ConfigError", "DockerSettings", "Environment",
           "ServiceSettings", "did_you_mean", "load_config"]

CONFIG_NAME = "runbooks.toml"
VARIABLE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")  # a {variable} in feature text
# Time limits (seconds; 0: none), top-level for every environment or per environment (runbooks.deadlines)
TIME_LIMITS = ("step_timeout_s", "run_timeout_s")
DEFAULT_STEP_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class SandboxSettings:
    stack: Path
    variant: str = "healthy"
    service: str | None = None


@dataclass(frozen=True)
class Environment:
    name: str
    description: str
    aws: AwsSettings
    vars: dict[str, str] = field(default_factory=dict)
    services: dict[str, ServiceSettings] = field(default_factory=dict)
    hosts: dict[str, str] = field(default_factory=dict)
    docker: DockerSettings = field(default_factory=DockerSettings)
    postgres: dict[str, PostgresSettings] = field(default_factory=dict)  # databases by name
    redis: dict[str, RedisSettings] = field(default_factory=dict)  # Redis servers by name
    prometheus: ServiceSettings | None = None  # a Prometheus server's API (targets/prometheus.py)
    alertmanager: ServiceSettings | None = None  # an Alertmanager's API (targets/alertmanager.py)
    sandbox: SandboxSettings | None = None
    secrets: tuple[str, ...] = ()
    step_timeout_s: float | None = DEFAULT_STEP_TIMEOUT_S  # None: no step deadline
    run_timeout_s: float | None = None  # None: no run deadline

    @property
    def containers(self) -> dict[str, str]:
        """Container names used in runbooks -> real container names."""
        return self.docker.containers

    @property
    def provided_vars(self) -> set[str]:
        """Variables the run itself provides: the sandbox service's port, e.g. ``{api_port}``."""
        if self.sandbox is not None and self.sandbox.service:
            return {f"{self.sandbox.service}_port"}
        return set()


@dataclass(frozen=True)
class Config:
    path: Path
    root: Path
    default_environment: str
    features: Path
    environments: dict[str, Environment]
    # The project's step modules: paths (relative to root) or dotted module names; None: steps/ if present.
    steps: tuple[str, ...] | None = None

    def environment(self, name: str | None) -> Environment:
        name = name or self.default_environment
        try:
            return self.environments[name]
        except KeyError:
            raise ConfigError(
                f"unknown environment {name!r}" + did_you_mean(name, tuple(self.environments)), self.path
            ) from None


class _Locator:
    """Finds the line of a table or key in a TOML text; tomllib gives no positions for semantics."""

    _header = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def line(self, table: str, key: str | None = None) -> int | None:
        current = ""
        header_line = None
        for number, raw in enumerate(self.lines, start=1):
            match = self._header.match(raw)
            if match:
                current = match.group(1).replace('"', "").replace(" ", "")
                if current == table:
                    header_line = number
                if key is not None and current == (f"{table}.{key}" if table else key):  # a sub-table of its own
                    return number
                continue
            if key is None:
                continue
            stripped = raw.strip().replace('"', "")
            if current == table and re.match(rf"{re.escape(key)}\s*=", stripped):
                return number
            # dotted keys / inline tables: `aws = { ... }` under the parent table
            parent, _, last = table.rpartition(".")
            if current == parent and re.match(rf"{re.escape(last)}\s*=", stripped):
                return number
        return header_line


_ENV_KEYS = {"description", "vars", "sandbox", "secrets", *TIME_LIMITS}  # plus each target's section
_SANDBOX_KEYS = {"stack", "variant", "service"}


def find_config(start: Path | None = None) -> Path:
    explicit = os.environ.get("RUNBOOKS_CONFIG")
    if explicit:
        return Path(explicit)
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        candidate = directory / CONFIG_NAME
        if candidate.is_file():
            return candidate
    raise ConfigError(f"no {CONFIG_NAME} found in {here} or its parents (use --config PATH)")


def load_optional_config(path: Path | str | None = None) -> Config | None:
    """The named configuration, else the one found upwards, else None (for commands that can do without)."""
    if path is not None:
        return load_config(path)
    try:
        found = find_config()
    except ConfigError:
        return None
    return load_config(found)


def load_config(path: Path | str | None = None) -> Config:
    config_path = Path(path) if path else find_config()
    text = read_text(config_path, "configuration file")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        raise ConfigError(
            f"invalid TOML: {exc}", config_path, int(match.group(1)) if match else None
        ) from None
    return _parse(data, config_path, _Locator(text))


def _parse(data: dict[str, Any], path: Path, where: _Locator) -> Config:
    def fail(message: str, table: str, key: str | None = None) -> ConfigError:
        return ConfigError(message, path, where.line(table, key))

    top_keys = ("default_environment", "features", "environments", "steps", *TIME_LIMITS)
    unknown_top = set(data) - set(top_keys)
    if unknown_top:
        key = sorted(unknown_top)[0]
        raise fail(f"unknown top-level key {key!r}" + did_you_mean(key, top_keys), "", key)
    root = path.resolve().parent
    raw_envs = data.get("environments")
    if not isinstance(raw_envs, dict) or not raw_envs:
        raise fail("no [environments.NAME] table defined", "", "environments" if "environments" in data else None)
    limits = _time_limits(data, "", fail)
    environments = {
        name: _parse_environment(name, raw, root, fail, limits) for name, raw in raw_envs.items()
    }
    for key in ("default_environment", "features"):
        if key in data and (not isinstance(data[key], str) or not data[key].strip()):
            raise fail(f"{key} must be a non-empty string (got {data[key]!r})", "", key)
    default = data.get("default_environment", next(iter(environments)))
    if default not in environments:
        raise fail(
            f"default_environment {default!r} is not defined" + did_you_mean(default, tuple(environments)),
            "",
            "default_environment",
        )
    features = root / str(data.get("features", "features"))
    steps = data.get("steps")
    if steps is not None and (not isinstance(steps, list) or not all(isinstance(v, str) and v for v in steps)):
        raise fail("steps must be a list of step module paths or dotted module names", "", "steps")
    return Config(path, root, default, features, environments, tuple(steps) if steps is not None else None)


def _time_limits(raw: dict[str, Any], table: str, fail: Any, prefix: str = "") -> dict[str, float | None]:
    """``step_timeout_s``/``run_timeout_s`` as ``table`` gives them: seconds, 0 for no limit (None)."""
    limits: dict[str, float | None] = {}
    for key in TIME_LIMITS:
        if key not in raw:
            continue
        value = raw[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
            raise fail(f"{prefix}{key} must be a number of seconds, 0 or more (0: no limit), got {value!r}",
                       table, key)
        limits[key] = float(value) or None
    return limits


def _parse_environment(name: str, raw: Any, root: Path, fail: Any,
                       limits: dict[str, float | None] | None = None) -> Environment:
    table = f"environments.{name}"
    if not isinstance(raw, dict):
        raise fail(f"environment {name!r} must be a table", "environments", name)
    sections = {target.section: target for target in targets().values()}
    known = _ENV_KEYS | set(sections)
    unknown = set(raw) - known
    if unknown:
        key = sorted(unknown)[0]
        raise fail(f"environment {name!r}: unknown key {key!r}" + did_you_mean(key, known), table, key)
    for section in (*sections, "vars", "sandbox"):
        if section in raw and not isinstance(raw[section], dict):
            raise fail(f"environment {name!r}: {section} must be a table", table, section)
    where = Where(fail, name, root)
    settings = {section: target.parse(raw.get(section), where) for section, target in sections.items()}
    sandbox = _parse_sandbox(raw["sandbox"], settings["aws"], root, where) if "sandbox" in raw else None
    if not isinstance(raw.get("description", ""), str):
        raise fail(f"environment {name!r}: description must be a string", table, "description")
    secrets = raw.get("secrets", [])
    if not isinstance(secrets, list) or not all(isinstance(v, str) and v for v in secrets):
        raise fail(f"environment {name!r}: secrets must be a list of variable or environment variable names",
                   table, "secrets")
    variables = raw.get("vars", {})
    for key, value in variables.items():
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise fail(f"environment {name!r}: variable {key!r} must be a string", f"{table}.vars", key)
    timeouts = {**(limits or {}), **_time_limits(raw, table, fail, f"environment {name!r}: ")}  # env over top level
    return Environment(
        name=name,
        description=str(raw.get("description", "")),
        vars={k: str(v) for k, v in variables.items()},
        sandbox=sandbox,
        secrets=tuple(secrets),
        step_timeout_s=timeouts.get("step_timeout_s", DEFAULT_STEP_TIMEOUT_S),
        run_timeout_s=timeouts.get("run_timeout_s"),
        **settings,
    )


def _parse_sandbox(raw: dict[str, Any], aws: AwsSettings, root: Path, where: Where) -> SandboxSettings:
    if set(raw) - _SANDBOX_KEYS or "stack" not in raw:
        raise where.error("sandbox needs 'stack' and may have 'variant', 'service'", "", "sandbox")
    for key, value in raw.items():
        if not isinstance(value, str) or not value:
            raise where.error(f"sandbox.{key} must be a non-empty string (got {value!r})", "", "sandbox")
    if aws.kind is not AwsKind.MOTO:
        raise where.error("a sandbox provisions itself and needs aws.target = 'moto'", "aws", "target")
    stack = root / raw["stack"]
    if not stack.is_file():
        raise where.error(f"sandbox stack file {raw['stack']!r} not found", "", "sandbox")
    return SandboxSettings(stack, raw.get("variant", "healthy"), raw.get("service"))
