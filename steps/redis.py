"""Redis servers named per environment: PING latency, role, memory headroom, connected replicas.

Each environment names its servers with a URL::

    [environments.prod.redis]
    websockets = { url = "rediss://:${REDIS_PASSWORD}@cache.internal:6379/0", timeout_s = 5 }

The checks send only PING and INFO (anything else is refused before it is sent); a user with
``+ping +info`` in the server's ACL is enough. When a server cannot be reached, ``answers PING`` FAILs
(the server being down is the infrastructure being wrong) and every other step on it is an ERROR saying
it could not connect; rejected credentials are an ERROR everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from runbooks.sdk import CheckContext, CheckResult, CouldNotCheck, FaultKind, Finding, RedisSettings, check

TITLE = "Redis servers"  # its heading in the step catalogue
CATALOG_ORDER = 104

T = TypeVar("T")
NOT_REACHED = (FaultKind.CONNECTION, FaultKind.TIMEOUT)  # the server did not serve: a FAIL of the PING step
ROLES = ("master", "replica")
MIB = 1024 * 1024


def _ask(settings: RedisSettings, expected: str, manual: str, read: Callable[[], T]) -> T:
    try:
        return read()
    except CouldNotCheck as exc:
        raise Finding(CheckResult.errored(settings.resource, exc.fault.reason, exc.fault.hint, expected=expected,
                                          manual_command=manual, evidence={"fault": str(exc.fault.kind)})) from None


def _role(info: dict[str, Any]) -> str:
    """INFO's role: ``master``, or ``replica`` for what Redis still calls ``slave``."""
    role = str(info.get("role", "unknown"))
    return "replica" if role == "slave" else role


def _mib(value: float) -> str:
    return f"{value / MIB:.1f} MiB"


@check(
    'the Redis "{redis}" answers PING within {ms:d} ms',
    manual="redis-cli -h <host> -p <port of {redis}> PING",
    requires="redis",
)
def redis_answers_ping(ctx: CheckContext, redis: str, ms: int) -> CheckResult:
    """A new connection answers PING with PONG within the time (connecting and authenticating included).
    FAIL when the server does not answer (refused, timed out, loading its dataset) or is slower; ERROR
    when it rejects the checks' credentials."""
    settings = ctx.redis.server(redis)
    expected = f"PONG within {ms} ms"
    manual = settings.cli("PING")
    try:
        took, answer = ctx.redis.probe(settings)
    except CouldNotCheck as exc:
        failure = {"fault": str(exc.fault.kind)}
        if exc.fault.kind in NOT_REACHED:
            return CheckResult.failed(settings.resource, expected, exc.fault.reason, exc.fault.hint,
                                      manual_command=manual, evidence=failure)
        return CheckResult.errored(settings.resource, exc.fault.reason, exc.fault.hint, expected=expected,
                                   manual_command=manual, evidence=failure)
    evidence: dict[str, Any] = {"elapsed_ms": round(took, 1)}
    observed = f"{'PONG' if answer is True or answer == 'PONG' else repr(answer)} in {took:.0f} ms"
    return CheckResult.judged(took <= ms, settings.resource, expected, observed,
                              "the server is slow: check its CPU (INFO cpu), slow log (SLOWLOG GET), big keys "
                              "and the network path", manual_command=manual, evidence=evidence)


@check(
    'the Redis "{redis}" role is "{role}"',
    manual="redis-cli -h <host> -p <port of {redis}> INFO replication",
    choices={"role": ROLES},
    requires="redis",
)
def redis_role(ctx: CheckContext, redis: str, role: str) -> CheckResult:
    """The server's replication role (INFO replication) is ``master`` or ``replica``. A replica's link to
    its master is shown too."""
    settings = ctx.redis.server(redis)
    expected = f"role {role}"
    manual = settings.cli("INFO replication")
    info = _ask(settings, expected, manual, lambda: ctx.redis.info(settings, "replication"))
    found = _role(info)
    observed = f"role {found}"
    evidence: dict[str, Any] = {"role": found}
    if found == "replica":
        link = info.get("master_link_status", "unknown")
        observed += f" of {info.get('master_host', '?')}:{info.get('master_port', '?')} (link {link})"
        evidence["master_link_status"] = link
    if found == role:
        return CheckResult.passed(settings.resource, expected, observed, manual_command=manual, evidence=evidence)
    hint = ("a failover changed the topology (Sentinel/cluster/managed service): point the application and "
            "runbooks.toml at the current master, or fail back")
    return CheckResult.failed(settings.resource, expected, observed, hint, manual_command=manual, evidence=evidence)


@check(
    'the Redis "{redis}" uses less than {percent:g}% of its maxmemory',
    manual="redis-cli -h <host> -p <port of {redis}> INFO memory",
    requires="redis",
)
def redis_memory_below(ctx: CheckContext, redis: str, percent: float) -> CheckResult:
    """``used_memory`` is below this share of ``maxmemory`` (INFO memory). A server without a limit
    (``maxmemory`` 0) FAILs: it grows until the host runs out of memory, and the runbook asserts a bound
    it does not have; set ``maxmemory`` and a ``maxmemory-policy``."""
    settings = ctx.redis.server(redis)
    expected = f"used_memory below {percent:g}% of maxmemory"
    manual = settings.cli("INFO memory")
    info = _ask(settings, expected, manual, lambda: ctx.redis.info(settings, "memory"))
    used, limit = float(info.get("used_memory", 0)), float(info.get("maxmemory", 0))
    policy = info.get("maxmemory_policy", "unknown")
    evidence: dict[str, Any] = {"used_memory": int(used), "maxmemory": int(limit), "maxmemory_policy": policy}
    if limit <= 0:
        return CheckResult.failed(settings.resource, expected,
                                  f"no maxmemory set (0: unlimited); {_mib(used)} used",
                                  "set maxmemory (and maxmemory-policy, e.g. allkeys-lru for a cache) in the "
                                  "server's configuration or parameter group", manual_command=manual,
                                  evidence=evidence)
    share = used * 100 / limit
    evidence["percent"] = round(share, 1)
    observed = f"{_mib(used)} of {_mib(limit)} ({share:.0f}%, policy {policy})"
    return CheckResult.judged(share < percent, settings.resource, expected, observed,
                              "find what grows (redis-cli --bigkeys, INFO keyspace, keys without TTL); raise "
                              "maxmemory or scale out; with noeviction, writes fail at the limit",
                              manual_command=manual, evidence=evidence)


@check(
    'the Redis "{redis}" has at least {count:d} connected replicas',
    manual="redis-cli -h <host> -p <port of {redis}> INFO replication",
    requires="redis",
)
def redis_replicas_at_least(ctx: CheckContext, redis: str, count: int) -> CheckResult:
    """The server (a master) has at least this many replicas connected (INFO replication
    ``connected_slaves``), each listed with its state and offset lag."""
    settings = ctx.redis.server(redis)
    expected = f"at least {count} connected replicas"
    manual = settings.cli("INFO replication")
    info = _ask(settings, expected, manual, lambda: ctx.redis.info(settings, "replication"))
    connected = int(info.get("connected_slaves", 0))
    master_offset = int(info.get("master_repl_offset", 0))
    replicas = []
    for index in range(connected):
        entry = info.get(f"slave{index}")
        if isinstance(entry, dict):
            lag = master_offset - int(entry.get("offset", 0))
            replicas.append(f"{entry.get('ip')}:{entry.get('port')} {entry.get('state')} ({lag} bytes behind)")
    role = _role(info)
    observed = f"{connected} connected replica(s)" + (f": {', '.join(replicas)}" if replicas else "")
    if role != "master":
        observed += f" (this server is a {role})"
    evidence = {"role": role, "connected_replicas": connected, "replicas": replicas}
    return CheckResult.judged(connected >= count, settings.resource, expected, observed,
                              "check the missing replicas: are they up, do they reach the master "
                              "(INFO replication on the replica: master_link_status), is their masterauth right",
                              manual_command=manual, evidence=evidence)
