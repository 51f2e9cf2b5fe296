"""Named environments from ``runbooks.toml``.

Every problem is a :class:`ConfigError` that names the file and line, so the CLI can print one line
and exit 2 instead of a traceback.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONFIG_NAME = "runbooks.toml"
VARIABLE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")  # a {variable} in feature text
AWS_TARGETS = ("moto", "endpoint", "live")  # an environment without [aws] gets "none": no AWS steps can run


class ConfigError(Exception):
    """A problem in the configuration or a feature file, reported as ``file:line: message``."""

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None) -> None:
        self.message = message
        self.path = str(path) if path is not None else None
        self.line = line
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.path and self.line:
            return f"{self.path}:{self.line}: {self.message}"
        if self.path:
            return f"{self.path}: {self.message}"
        return self.message


def did_you_mean(name: str, choices: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.5)
    if close:
        return "; did you mean " + " or ".join(repr(c) for c in close) + "?"
    return "; known: " + ", ".join(sorted(choices)) if choices else ""


@dataclass(frozen=True)
class AwsSettings:
    target: str = "moto"
    region: str = "us-east-1"
    endpoint_url: str | None = None
    profile: str | None = None
    role_arn: str | None = None
    external_id: str | None = None
    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    max_attempts: int = 5
    regions: tuple[str, ...] = ()  # scenarios tagged @all-regions run once per region (default: just `region`)

    @property
    def all_regions(self) -> tuple[str, ...]:
        return tuple(self.regions) or (self.region,)


@dataclass(frozen=True)
class ServiceSettings:
    name: str
    url: str
    verify_tls: bool | str = True
    timeout_s: float = 10.0
    headers: dict[str, str] = field(default_factory=dict)  # values may use ${ENV_VAR}; they are treated as secrets


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
    docker: dict[str, str] = field(default_factory=dict)
    containers: dict[str, str] = field(default_factory=dict)  # name used in runbooks -> real container name
    sandbox: SandboxSettings | None = None
    secrets: tuple[str, ...] = ()

    @property
    def target(self) -> str:
        return self.aws.target

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
                if key is not None and current == f"{table}.{key}":  # the key as a sub-table of its own
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


_ENV_KEYS = {"description", "aws", "vars", "services", "hosts", "docker", "sandbox", "secrets"}
_AWS_KEYS = set(AwsSettings.__dataclass_fields__) | {"url"}
_SERVICE_KEYS = {"url", "verify_tls", "timeout_s", "headers"}
_SANDBOX_KEYS = {"stack", "variant", "service"}
_DOCKER_KEYS = {"host", "containers"}
_DOCKER_SCHEMES = ("unix://", "tcp://", "http://", "https://", "ssh://", "npipe://")
_CONTAINER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # what the Docker engine accepts


def _expand_env(value: str) -> str:
    """``${NAME}`` from the process environment: secrets stay out of runbooks.toml. KeyError if unset:
    an empty token would send an unauthenticated request and report the 401 as drift."""
    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: os.environ[m.group(1)], value)


def _aws_type_problem(key: str, value: Any) -> str | None:
    expected = {"connect_timeout": (int, float), "read_timeout": (int, float), "max_attempts": (int,)}
    if key == "regions":
        if not isinstance(value, list) or not value or not all(isinstance(r, str) and r for r in value):
            return "must be a non-empty list of region names"
        return None
    kinds = expected.get(key, (str,))
    if isinstance(value, bool) or not isinstance(value, kinds):
        return "must be a number" if kinds != (str,) else "must be a string"
    return None


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


def load_config(path: Path | str | None = None) -> Config:
    config_path = Path(path) if path else find_config()
    try:
        text = config_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("configuration file not found", config_path) from None
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

    unknown_top = set(data) - {"default_environment", "features", "environments"}
    if unknown_top:
        key = sorted(unknown_top)[0]
        raise fail(f"unknown top-level key {key!r}", "", key)
    root = path.resolve().parent
    raw_envs = data.get("environments")
    if not isinstance(raw_envs, dict) or not raw_envs:
        raise ConfigError("no [environments.NAME] table defined", path)
    environments = {
        name: _parse_environment(name, raw, root, fail) for name, raw in raw_envs.items()
    }
    default = data.get("default_environment", next(iter(environments)))
    if default not in environments:
        raise fail(
            f"default_environment {default!r} is not defined" + did_you_mean(default, tuple(environments)),
            "",
            "default_environment",
        )
    features = root / str(data.get("features", "features"))
    return Config(path, root, default, features, environments)


def _parse_environment(name: str, raw: Any, root: Path, fail: Any) -> Environment:
    table = f"environments.{name}"
    if not isinstance(raw, dict):
        raise fail(f"environment {name!r} must be a table", "environments", name)
    unknown = set(raw) - _ENV_KEYS
    if unknown:
        key = sorted(unknown)[0]
        raise fail(
            f"environment {name!r}: unknown key {key!r}" + did_you_mean(key, tuple(_ENV_KEYS)), table, key
        )

    for section in ("aws", "vars", "services", "hosts", "docker", "sandbox"):
        if section in raw and not isinstance(raw[section], dict):
            raise fail(f"environment {name!r}: {section} must be a table", table, section)
    aws_raw = raw.get("aws", {})
    bad = set(aws_raw) - _AWS_KEYS
    if bad:
        key = sorted(bad)[0]
        raise fail(
            f"environment {name!r}: unknown aws key {key!r}" + did_you_mean(key, tuple(_AWS_KEYS)),
            f"{table}.aws",
            key,
        )
    aws_fields = {k: v for k, v in aws_raw.items() if k != "url"}
    if "aws" not in raw:  # no [aws]: AWS steps say so (ERROR) instead of checking an empty stub
        aws_fields["target"] = "none"
    if "url" in aws_raw:
        aws_fields["endpoint_url"] = aws_raw["url"]
    for key, value in aws_fields.items():
        problem = _aws_type_problem(key, value)
        if problem:
            raise fail(f"environment {name!r}: aws.{key} {problem}", f"{table}.aws", key)
    if "regions" in aws_fields:
        aws_fields["regions"] = tuple(aws_fields["regions"])
    aws = AwsSettings(**aws_fields)
    if aws.target not in (*AWS_TARGETS, "none"):
        raise fail(
            f"environment {name!r}: aws.target must be one of {', '.join(AWS_TARGETS)} (got {aws.target!r})",
            f"{table}.aws",
            "target",
        )
    if aws.target == "endpoint" and not aws.endpoint_url:
        raise fail(f"environment {name!r}: aws.target 'endpoint' needs aws.url", f"{table}.aws", "target")

    services: dict[str, ServiceSettings] = {}
    for service, value in raw.get("services", {}).items():
        if isinstance(value, str):
            value = {"url": value}
        if not isinstance(value, dict) or "url" not in value or set(value) - _SERVICE_KEYS:
            raise fail(
                f"environment {name!r}: service {service!r} must be a URL or a table with "
                f"{', '.join(sorted(_SERVICE_KEYS))}",
                f"{table}.services",
                service,
            )
        if not re.match(r"^https?://", value["url"]):
            raise fail(
                f"environment {name!r}: service {service!r} URL must start with http:// or https://",
                f"{table}.services",
                service,
            )
        headers = value.get("headers", {})
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
            raise fail(f"environment {name!r}: service {service!r} headers must be a table of strings",
                       f"{table}.services", service)
        try:
            value = {**value, "headers": {k: _expand_env(v) for k, v in headers.items()}}
        except KeyError as exc:
            raise fail(f"environment {name!r}: service {service!r} header uses ${{{exc.args[0]}}}, which is not set "
                       "in the environment of this run", f"{table}.services", service) from None
        services[service] = ServiceSettings(name=service, **value)

    sandbox = None
    if "sandbox" in raw:
        sb = raw["sandbox"]
        if set(sb) - _SANDBOX_KEYS or "stack" not in sb:
            raise fail(
                f"environment {name!r}: sandbox needs 'stack' and may have 'variant', 'service'",
                table,
                "sandbox",
            )
        if aws.target != "moto":
            raise fail(
                f"environment {name!r}: a sandbox provisions itself and needs aws.target = 'moto'",
                f"{table}.aws",
                "target",
            )
        stack = root / sb["stack"]
        if not stack.is_file():
            raise fail(f"environment {name!r}: sandbox stack file {sb['stack']!r} not found", table, "sandbox")
        sandbox = SandboxSettings(stack, sb.get("variant", "healthy"), sb.get("service"))

    hosts = raw.get("hosts", {})
    for host, url in hosts.items():
        if not isinstance(url, str) or "://" not in url:
            raise fail(f"environment {name!r}: host {host!r} must be a testinfra URL such as 'local://' or "
                       "'paramiko://user@host'", f"{table}.hosts", host)
    secrets = raw.get("secrets", [])
    if not isinstance(secrets, list) or not all(isinstance(v, str) and v for v in secrets):
        raise fail(f"environment {name!r}: secrets must be a list of variable or environment variable names",
                   table, "secrets")
    docker, containers = _parse_docker(name, raw.get("docker", {}), table, fail)
    variables = raw.get("vars", {})
    for key, value in variables.items():
        if not isinstance(value, str | int | float):
            raise fail(f"environment {name!r}: variable {key!r} must be a string", f"{table}.vars", key)
    return Environment(
        name=name,
        description=str(raw.get("description", "")),
        aws=aws,
        vars={k: str(v) for k, v in variables.items()},
        services=services,
        hosts=hosts,
        docker=docker,
        containers=containers,
        sandbox=sandbox,
        secrets=tuple(secrets),
    )


def _parse_docker(name: str, raw: Any, table: str, fail: Any) -> tuple[dict[str, str], dict[str, str]]:
    """``[environments.X.docker]``: ``host`` (default: DOCKER_HOST) and ``containers``, a list of
    names or a table of runbook name -> real container name."""
    where = f"{table}.docker"
    if not isinstance(raw, dict):
        raise fail(f"environment {name!r}: docker must be a table (host, containers)", table, "docker")
    bad = set(raw) - _DOCKER_KEYS
    if bad:
        key = sorted(bad)[0]
        raise fail(
            f"environment {name!r}: unknown docker key {key!r}" + did_you_mean(key, tuple(_DOCKER_KEYS)),
            where,
            key,
        )
    docker: dict[str, str] = {}
    if "host" in raw:
        host = raw["host"]
        if not isinstance(host, str) or not host.startswith(_DOCKER_SCHEMES):
            raise fail(
                f"environment {name!r}: docker.host must be a URL starting with "
                f"{', '.join(_DOCKER_SCHEMES)} (got {host!r})",
                where,
                "host",
            )
        docker["host"] = host
    listed = raw.get("containers", [])
    if isinstance(listed, list):
        entries = [(item, item) for item in listed]
    elif isinstance(listed, dict):
        entries = list(listed.items())
        where = f"{where}.containers"
    else:
        raise fail(
            f"environment {name!r}: docker.containers must be a list of names or a table of name = real name",
            where,
            "containers",
        )
    containers: dict[str, str] = {}
    for logical, real in entries:
        if not isinstance(real, str) or not _CONTAINER_NAME.match(real):
            raise fail(
                f"environment {name!r}: container {real!r} is not a valid container name "
                "(letters, digits, '_', '.', '-')",
                where,
                logical if isinstance(listed, dict) else "containers",
            )
        containers[logical] = real
    return docker, containers
