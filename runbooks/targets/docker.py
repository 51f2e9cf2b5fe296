"""The Docker target: an engine (``docker.host`` or ``DOCKER_HOST``) and the containers the runbooks name.

One docker client per engine per run, closed at its end. The docker SDK is imported on first use only, so a
run without Docker steps never loads it. Reads that the engine cannot answer raise :class:`EngineUnavailable`
(a :class:`CouldNotCheck` whose reason names the engine and why); a container or image that does not exist
is an answer (None), not a fault.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from ..faults import CouldNotCheck, Fault, FaultKind, UnknownName
from ..names import did_you_mean
from . import Target, Where, register

if TYPE_CHECKING:
    import docker

    from ..config import Environment

DEFAULT_HOST = "unix:///var/run/docker.sock"
TIMEOUT_S = 10  # per engine request; a local engine answers in milliseconds
R = TypeVar("R")

_DOCKER_KEYS = {"host", "containers"}
_DOCKER_SCHEMES = ("unix://", "tcp://", "http://", "https://", "ssh://", "npipe://")
_CONTAINER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # what the Docker engine accepts


@dataclass(frozen=True)
class DockerSettings:
    host: str | None = None  # None: DOCKER_HOST, else the default socket
    containers: dict[str, str] = field(default_factory=dict)  # name used in runbooks -> real container name


def parse_docker(raw: Any, where: Where) -> DockerSettings:
    """``[environments.X.docker]``: ``host`` (default: DOCKER_HOST) and ``containers``, a list of
    names or a table of runbook name -> real container name."""
    if raw is None:
        return DockerSettings()
    if not isinstance(raw, dict):
        raise where.error("docker must be a table (host, containers)", "", "docker")
    bad = set(raw) - _DOCKER_KEYS
    if bad:
        key = sorted(bad)[0]
        raise where.error(f"unknown docker key {key!r}" + did_you_mean(key, _DOCKER_KEYS), "docker", key)
    host = raw.get("host")
    if host is not None and (not isinstance(host, str) or not host.startswith(_DOCKER_SCHEMES)):
        raise where.error(f"docker.host must be a URL starting with {', '.join(_DOCKER_SCHEMES)} (got {host!r})",
                          "docker", "host")
    listed = raw.get("containers", [])
    section = "docker"
    if isinstance(listed, list):
        entries = [(item, item) for item in listed]
    elif isinstance(listed, dict):
        entries = list(listed.items())
        section = "docker.containers"
    else:
        raise where.error("docker.containers must be a list of names or a table of name = real name",
                          "docker", "containers")
    containers: dict[str, str] = {}
    for logical, real in entries:
        if not isinstance(real, str) or not _CONTAINER_NAME.match(real):
            raise where.error(f"container {real!r} is not a valid container name (letters, digits, '_', '.', '-')",
                              section, logical if isinstance(listed, dict) else "containers")
        containers[logical] = real
    return DockerSettings(host, containers)


@dataclass(frozen=True)
class Container:
    """A container as a runbook names it, the real name on the engine, and the engine."""

    name: str
    real: str
    host: str
    explicit_host: bool  # set in runbooks.toml, so the manual command must name it too

    @property
    def resource(self) -> str:
        alias = f" [{self.real}]" if self.real != self.name else ""
        return f"container {self.name}{alias} ({self.host})"

    def command(self, args: str) -> str:
        """The docker CLI command an operator types for this container's engine."""
        engine = f" -H {self.host}" if self.explicit_host else ""
        return f"docker{engine} {args}"

    def inspect(self, template: str) -> str:
        return self.command(f"inspect -f '{template}' {self.real}")


def engine_reason(exc: BaseException, host: str) -> str:
    """Why the engine could not answer, in one line (the SDK nests the socket error in its text)."""
    import requests
    from docker.errors import APIError

    if isinstance(exc, APIError):
        return f"the Docker engine at {host} answered {exc.status_code}: {exc.explanation or exc}"
    text = str(exc)
    if isinstance(exc, requests.exceptions.Timeout) or "timed out" in text.lower():
        return f"the Docker engine at {host} did not answer within {TIMEOUT_S} s (timed out)"
    for marker, meaning in (
        ("FileNotFoundError", "no socket there (engine stopped or wrong path)"),
        ("No such file", "no socket there (engine stopped or wrong path)"),
        ("ConnectionRefused", "connection refused (no engine listening)"),
        ("Connection refused", "connection refused (no engine listening)"),
        ("PermissionError", "permission denied on the socket"),
        ("Permission denied", "permission denied on the socket"),
    ):
        if marker in text:
            return f"cannot reach the Docker engine at {host}: {meaning}"
    return f"cannot reach the Docker engine at {host}: {type(exc).__name__}: {text}"


def engine_fault(exc: BaseException, container: Container) -> Fault | None:
    """The fault when ``exc`` comes from the docker SDK or its HTTP transport (None for anything else)."""
    import requests
    from docker.errors import APIError, DockerException

    if not isinstance(exc, DockerException | requests.exceptions.RequestException):
        return None
    if isinstance(exc, APIError):
        kind = FaultKind.SERVICE_ERROR
    elif isinstance(exc, requests.exceptions.Timeout) or "timed out" in str(exc).lower():
        kind = FaultKind.TIMEOUT
    else:
        kind = FaultKind.CONNECTION
    hint = ("check that the Docker engine is running and that docker.host (or DOCKER_HOST) points at it: "
            + container.command("version"))
    return Fault.of(kind, engine_reason(exc, container.host), hint)


class EngineUnavailable(CouldNotCheck):
    """The Docker engine could not answer a read (stopped, unreachable, refused, timed out, an API error)."""


@register
class DockerTarget(Target):
    name = "docker"
    section = "docker"
    capabilities = {"docker": "environment {env} declares no Docker engine (docker.host, or DOCKER_HOST)"}

    @classmethod
    def parse(cls, raw: Any, where: Where) -> DockerSettings:
        return parse_docker(raw, where)

    @classmethod
    def can(cls, env: Environment, capability: str) -> bool:
        return bool(env.docker.host or os.environ.get("DOCKER_HOST"))

    def container(self, name: str) -> Container:
        """The container the runbooks call ``name``: its real name and its engine."""
        try:
            real = self.env.docker.containers[name]
        except KeyError:
            raise UnknownName(
                f"container {name!r} is not defined by environment {self.env.name!r}"
                + did_you_mean(name, self.env.docker.containers, known="defined")
            ) from None
        host = self.env.docker.host
        return Container(name, real, host or os.environ.get("DOCKER_HOST") or DEFAULT_HOST, host is not None)

    def client(self, container: Container) -> docker.DockerClient:
        """The run's docker client for the container's engine (one per engine, closed when the run ends)."""
        def connect() -> docker.DockerClient:
            import docker

            if container.explicit_host:
                return docker.DockerClient(base_url=container.host, timeout=TIMEOUT_S)
            return docker.from_env(timeout=TIMEOUT_S)  # DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH

        client = self.resources.get(("docker", container.host), connect, close=lambda c: c.close())
        return client  # type: ignore[no-any-return]

    def engine_reason(self, exc: BaseException, container: Container) -> str:
        return engine_reason(exc, container.host)

    def _ask(self, container: Container, read: Callable[[docker.DockerClient], R], missing: R) -> R:
        """``read(client)``; ``missing`` when the engine says there is no such object; EngineUnavailable
        when the engine cannot answer."""
        from docker.errors import NotFound

        try:
            return read(self.client(container))
        except NotFound:
            return missing
        except Exception as exc:
            fault = engine_fault(exc, container)
            if fault is None:
                raise
            raise EngineUnavailable(fault) from None

    def inspect_container(self, container: Container) -> dict[str, Any] | None:
        """``docker inspect`` of the container; None when it does not exist."""
        return self._ask(container, lambda c: c.api.inspect_container(container.real), None)

    def inspect_image(self, container: Container, image: str) -> dict[str, Any] | None:
        """``docker image inspect`` on the container's engine; None when the image does not exist."""
        return self._ask(container, lambda c: c.api.inspect_image(image), None)

    def container_names(self, container: Container) -> list[str]:
        """The names of every container (running or not) on the container's engine."""
        return self._ask(container, lambda c: [each.name for each in c.containers.list(all=True)], [])
