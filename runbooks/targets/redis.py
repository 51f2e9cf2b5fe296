"""The Redis target: servers by name (``[environments.NAME.redis]``), read through redis-py.

``cache = { url = "redis://:${REDIS_PASSWORD}@cache.internal:6379/0", timeout_s = 5 }`` (or just the URL):
``redis://`` or ``rediss://`` (TLS) or ``unix://``; ``${VAR}`` is read from the process environment when
the run connects, and the password (and every ``${VAR}`` value the URL names) is registered with the run's
redactor.

Only reads: the target sends nothing but the commands in :data:`READ_COMMANDS` (PING and INFO: INFO
carries the role, the replicas and maxmemory, so no CONFIG GET is needed, which managed services often
disable); any other command is refused before it is sent. No retries: a retry would hide the latency
being measured and repeat a timeout. One client per server per run, closed when the run ends; a server
that could not be reached stays unreachable for the run, so every later step is an ERROR at once.
"""

from __future__ import annotations

import os
import re
import shlex
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from ..faults import CouldNotCheck, Fault, FaultKind, UnknownName, register_classifier
from ..names import did_you_mean
from . import Target, Where, register

if TYPE_CHECKING:
    import redis

    from ..config import Environment
    from ..resources import Resources

READ_COMMANDS = frozenset({"PING", "INFO"})  # everything this target ever sends
_KEYS = {"url", "timeout_s"}
_SCHEMES = ("redis", "rediss", "unix")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class RedisSettings:
    name: str
    url: str  # as written: ${VAR} is expanded when the run connects
    timeout_s: float = 5.0
    host: str = "localhost"  # for labels and manual commands (never the password)
    port: int = 6379
    db: int = 0
    username: str = ""
    tls: bool = False
    socket: str = ""  # unix:// path
    has_password: bool = False

    @property
    def label(self) -> str:
        where = self.socket or f"{self.host}:{self.port}"
        return f"{'rediss' if self.tls else 'redis'} {where}/{self.db}"

    @property
    def resource(self) -> str:
        return f"redis {self.name} ({self.label})"

    def cli(self, command: str) -> str:
        """The redis-cli command an operator types (the password is asked for, never written)."""
        parts = ["redis-cli"] + (["-s", self.socket] if self.socket else ["-h", self.host, "-p", str(self.port)])
        parts += ["-n", str(self.db)] if self.db else []
        parts += ["--tls"] if self.tls else []
        parts += ["--user", self.username] if self.username else []
        parts += ["--askpass"] if self.has_password else []
        return " ".join(shlex.quote(p) for p in parts) + " " + command

    def env_refs(self) -> list[str]:
        return _ENV_REF.findall(self.url)


def parse_redis(raw: dict[str, Any] | None, where: Where) -> dict[str, RedisSettings]:
    """``[environments.X.redis]``: server name -> a URL or a table (url, timeout_s)."""
    servers: dict[str, RedisSettings] = {}
    for name, value in (raw or {}).items():
        if isinstance(value, str):
            value = {"url": value}
        if not isinstance(value, dict) or "url" not in value:
            raise where.error(f"redis {name!r} must be a URL or a table with {', '.join(sorted(_KEYS))}",
                              "redis", name)
        unknown = sorted(set(value) - _KEYS)
        if unknown:
            raise where.error(f"redis {name!r}: unknown key {unknown[0]!r}" + did_you_mean(unknown[0], _KEYS),
                              "redis", name)
        url = value["url"]
        try:
            parts = urlsplit(_ENV_REF.sub("x", url)) if isinstance(url, str) else None
            port = parts.port if parts is not None else None
        except ValueError:
            parts = port = None
        if parts is None or parts.scheme not in _SCHEMES or (parts.scheme != "unix" and not parts.hostname):
            raise where.error(f"redis {name!r}: url must be redis://host:port/db, rediss://... or unix://path",
                              "redis", name)
        path_db = parts.path.strip("/") if parts.scheme != "unix" else ""
        query_db = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p).get("db", "")
        db_text = path_db or query_db or "0"
        if not db_text.isdigit():
            raise where.error(f"redis {name!r}: the database number in the url must be a number, got {db_text!r}",
                              "redis", name)
        timeout = value.get("timeout_s", 5.0)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout < 3600:
            raise where.error(f"redis {name!r}: timeout_s must be a number of seconds above 0, got {timeout!r}",
                              "redis", name)
        servers[name] = RedisSettings(
            name=name, url=url, timeout_s=float(timeout), host=parts.hostname or "localhost", port=port or 6379,
            db=int(db_text), username=unquote(parts.username or ""), tls=parts.scheme == "rediss",
            socket=parts.path if parts.scheme == "unix" else "", has_password=bool(parts.password),
        )
    return servers


def expand(settings: RedisSettings) -> str:
    """The URL with ``${VAR}`` read from the process environment; CouldNotCheck when one is not set."""
    missing = [ref for ref in settings.env_refs() if ref not in os.environ]
    if missing:
        raise CouldNotCheck(Fault.of(
            FaultKind.NO_CREDENTIALS, f"the url of redis {settings.name!r} uses ${{{missing[0]}}}, which is not "
            "set in the environment of this run", f"export {missing[0]} before running the checks"))
    return _ENV_REF.sub(lambda m: os.environ[m.group(1)], settings.url)


def url_secrets(settings: RedisSettings) -> set[str]:
    found = {os.environ.get(ref, "") for ref in settings.env_refs()}
    try:
        password = urlsplit(expand(settings)).password or ""
    except (CouldNotCheck, ValueError):
        password = ""
    found |= {password, unquote(password)}
    return {s for s in found if s}


# faults ---------------------------------------------------------------------------------------------------


def redis_fault(exc: BaseException, settings: RedisSettings | None) -> Fault | None:
    """The fault behind a redis-py error (None for anything else)."""
    from redis import exceptions

    if not isinstance(exc, exceptions.RedisError):
        return None
    where = settings.resource if settings is not None else "redis"
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, exceptions.AuthenticationError | exceptions.AuthenticationWrongNumberOfArgsError):
        return Fault.of(FaultKind.CREDENTIALS_REJECTED, f"could not connect to {where}: authentication failed: {text}",
                        "check the user and password in the url (or its ${VAR}) in runbooks.toml")
    if isinstance(exc, exceptions.NoPermissionError):
        return Fault.of(FaultKind.ACCESS_DENIED, f"{where}: {text}",
                        "allow the checks' user PING and INFO in the server's ACL (+ping +info)")
    if isinstance(exc, exceptions.TimeoutError):
        limit = f" within {settings.timeout_s:g} s" if settings is not None else ""
        return Fault.of(FaultKind.TIMEOUT, f"could not connect to {where}: no answer{limit} (timeout)")
    if isinstance(exc, exceptions.BusyLoadingError):
        return Fault.of(FaultKind.CONNECTION, f"{where} is loading its dataset into memory: {text}",
                        "wait for the load to finish (INFO persistence: loading:0), then re-run")
    if isinstance(exc, exceptions.ConnectionError):
        reason = "connection refused" if "refused" in text.lower() else text
        return Fault.of(FaultKind.CONNECTION, f"could not connect to {where}: {reason}",
                        "check that the server is running and reachable, and the host and port in the url")
    return Fault.of(FaultKind.SERVICE_ERROR, f"{where}: {text}")


@register_classifier
def classify_redis(exc: BaseException, target: str) -> Fault | None:
    """A redis-py error that escaped a step (the target raises CouldNotCheck itself)."""
    if not type(exc).__module__.startswith("redis"):
        return None
    return redis_fault(exc, None)


class RedisUnavailable(CouldNotCheck):
    """The server could not be reached (down, refused, timed out, credentials rejected)."""


@register
class RedisTarget(Target):
    name = "redis"
    section = "redis"
    capabilities = {"redis": "environment {env} declares no Redis server ([environments.{env}.redis])"}

    def __init__(self, env: Environment, resources: Resources) -> None:
        super().__init__(env, resources)
        self._lock = threading.Lock()
        self._clients: dict[str, redis.Redis] = {}
        self._unreachable: dict[str, Fault] = {}

    @classmethod
    def parse(cls, raw: Any, where: Where) -> dict[str, RedisSettings]:
        return parse_redis(raw, where)

    @classmethod
    def can(cls, env: Environment, capability: str) -> bool:
        return bool(env.redis)

    @classmethod
    def secrets(cls, env: Environment) -> Iterable[str]:
        return {secret for settings in env.redis.values() for secret in url_secrets(settings)}

    def server(self, name: str) -> RedisSettings:
        try:
            return self.env.redis[name]  # type: ignore[no-any-return]
        except KeyError:
            raise UnknownName(
                f"redis {name!r} is not defined by environment {self.env.name!r}"
                + did_you_mean(name, self.env.redis, known="defined")
            ) from None

    def _client(self, settings: RedisSettings) -> redis.Redis:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        return redis.Redis.from_url(  # type: ignore[no-any-return]
            expand(settings), socket_timeout=settings.timeout_s, socket_connect_timeout=settings.timeout_s,
            retry=Retry(NoBackoff(), 0), retry_on_timeout=False, decode_responses=True, client_name="runbooks",
            health_check_interval=0)

    def _send(self, client: redis.Redis, settings: RedisSettings, command: str, *args: str) -> Any:
        """``command`` if it is a read (READ_COMMANDS), else refused before it is sent."""
        if command.upper() not in READ_COMMANDS:
            raise CouldNotCheck(Fault.of(FaultKind.READ_ONLY, f"{settings.resource}: {command} is not a read "
                                         f"command; the checks send only {', '.join(sorted(READ_COMMANDS))}"))
        return client.execute_command(command, *args)

    def probe(self, settings: RedisSettings) -> tuple[float, Any]:
        """(milliseconds, answer) of PING on a new connection; RedisUnavailable when no answer arrives. The
        client is kept as the run's client for this server when it has none yet."""
        client = self._client(settings)
        started = time.perf_counter()
        try:
            answer = self._send(client, settings, "PING")
        except Exception as exc:
            client.close()
            fault = redis_fault(exc, settings)
            if fault is None:
                raise
            with self._lock:
                self._unreachable.setdefault(settings.name, fault)
            raise RedisUnavailable(fault) from None
        elapsed = (time.perf_counter() - started) * 1000
        with self._lock:
            self._unreachable.pop(settings.name, None)
            keep = settings.name not in self._clients
            if keep:
                self._clients[settings.name] = client
        if not keep:
            client.close()
        return elapsed, answer

    def client(self, settings: RedisSettings) -> redis.Redis:
        with self._lock:
            fault = self._unreachable.get(settings.name)
            client = self._clients.get(settings.name)
            if fault is None and client is None:
                client = self._clients[settings.name] = self._client(settings)
        if fault is not None:
            raise RedisUnavailable(fault)
        assert client is not None
        return client

    def info(self, settings: RedisSettings, section: str) -> dict[str, Any]:
        """``INFO <section>`` parsed (redis-py's reading: numbers as numbers)."""
        client = self.client(settings)
        try:
            answer = self._send(client, settings, "INFO", section)
        except CouldNotCheck:
            raise
        except Exception as exc:
            fault = redis_fault(exc, settings)
            if fault is None:
                raise
            if fault.kind in (FaultKind.CONNECTION, FaultKind.TIMEOUT, FaultKind.CREDENTIALS_REJECTED):
                with self._lock:
                    self._unreachable.setdefault(settings.name, fault)
            raise RedisUnavailable(fault) from None
        return dict(answer)

    def close(self) -> None:
        with self._lock:
            clients = list(self._clients.values())
            self._clients.clear()
        for client in clients:
            client.close()
