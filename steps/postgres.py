"""PostgreSQL databases named per environment: connections, read-only queries, alembic migrations,
replication lag, connection headroom.

Each environment names its databases with a DSN::

    [environments.prod.postgres]
    app = { dsn = "postgresql://runbooks@db.internal:5432/app", migrations = "../app/migrations" }
    app_replica = "postgresql://runbooks@db-replica.internal:5432/app"

Every statement runs in a READ ONLY transaction with the database's statement timeout, one statement per
query, rolled back afterwards: a write in a runbook's query is refused by PostgreSQL and is an ERROR. The
checks need a role that may CONNECT and read what the queries read; ``pg_monitor`` covers the replication
and connection steps (``pg_stat_activity``, ``pg_stat_wal_receiver``), SELECT on the alembic version table
covers the migration steps.

When a database cannot be reached, ``accepts connections`` FAILs (the server being down is the
infrastructure being wrong) and every other step on it is an ERROR saying it could not connect; rejected
credentials are an ERROR everywhere (the checks' access, not the server's health).
"""

from __future__ import annotations

import datetime
import decimal
import math
from collections.abc import Callable
from typing import Any, TypeVar

from runbooks.sdk import CheckContext, CheckResult, CouldNotCheck, FaultKind, Finding, PostgresSettings, check

from ._shared import excerpt

TITLE = "PostgreSQL databases"  # its heading in the step catalogue
CATALOG_ORDER = 102

T = TypeVar("T")
NOT_REACHED = (FaultKind.CONNECTION, FaultKind.TIMEOUT)  # the server did not serve: a FAIL of the connectivity step


def _ask(settings: PostgresSettings, expected: str, manual: str, read: Callable[[], T]) -> T:
    """``read()``; a fact that cannot be read ends the check with an ERROR carrying the expectation and the
    manual command."""
    try:
        return read()
    except CouldNotCheck as exc:
        raise Finding(CheckResult.errored(settings.resource, exc.fault.reason, exc.fault.hint, expected=expected,
                                          manual_command=manual, evidence={"fault": str(exc.fault.kind)})) from None


def _validate_query(query: str) -> None:
    if not query.strip():
        raise ValueError("the query is empty")


def text(value: Any) -> str:
    """A value as psql -At shows it: NULL, t/f as true/false, numbers without noise, timestamps in ISO form."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    finite = isinstance(value, float | decimal.Decimal) and math.isfinite(value)
    if finite and value == int(value) and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, float):
        return format(value, ".6g")
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat(sep=" ") if isinstance(value, datetime.datetime) else value.isoformat()
    return str(value)


def number(value: Any) -> float | None:
    """The value as a number (an interval as seconds), or None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | decimal.Decimal):
        return float(value)
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _scalar(ctx: CheckContext, database: str, query: str, expected: str) -> tuple[PostgresSettings, str, Any]:
    """(settings, manual command, the single value) of a runbook's query; FAIL when it returns no row,
    ERROR when it returns more than one value (the query is not a scalar one) or cannot run."""
    settings = ctx.postgres.database(database)
    manual = settings.psql(query)
    rows = _ask(settings, expected, manual, lambda: ctx.postgres.read(settings, query, limit=2))
    if not rows.rows:
        raise Finding(CheckResult.failed(
            settings.resource, expected, f"no row from: {excerpt(query)}",
            "the row the query looks for is not there: check the data, or the query's WHERE clause",
            manual_command=manual, evidence={"rows": 0}))
    if rows.more or len(rows.rows) > 1 or len(rows.columns) > 1:
        several = rows.more or len(rows.rows) > 1
        shape = f"{'more than one row' if several else 'one row'}, {len(rows.columns)} column(s)"
        raise Finding(CheckResult.errored(
            settings.resource, f"the query returns {shape}, not one value: {excerpt(query)}",
            "make it return a single value (count(*), max(...), a WHERE on one row)", expected=expected,
            manual_command=manual))
    return settings, manual, rows.rows[0][0]


@check(
    'the database "{database}" accepts connections within {ms:d} ms',
    manual="time psql -h <host> -p <port> -U <user> -d <dbname of {database}> -Atc 'SELECT 1'",
    requires="postgres",
)
def database_accepts_connections(ctx: CheckContext, database: str, ms: int) -> CheckResult:
    """A new connection opens and answers ``SELECT 1`` within the time (connecting included: what a new
    application connection costs). FAIL when the server does not serve it (refused, timed out, name not
    resolving, no connection slot left, starting or shutting down, no such database) or answers slower;
    ERROR when it rejects the checks' credentials. Needs: CONNECT on the database."""
    settings = ctx.postgres.database(database)
    expected = f"accepts a connection and answers SELECT 1 within {ms} ms"
    manual = "time " + settings.psql("SELECT 1")
    try:
        took = ctx.postgres.probe(settings)
    except CouldNotCheck as exc:
        failure = {"fault": str(exc.fault.kind)}
        if exc.fault.kind in NOT_REACHED:
            return CheckResult.failed(settings.resource, expected, exc.fault.reason, exc.fault.hint,
                                      manual_command=manual, evidence=failure)
        return CheckResult.errored(settings.resource, exc.fault.reason, exc.fault.hint, expected=expected,
                                   manual_command=manual, evidence=failure)
    observed = f"connected and answered in {took:.0f} ms"
    evidence: dict[str, Any] = {"elapsed_ms": round(took, 1)}
    return CheckResult.judged(took <= ms, settings.resource, expected, observed,
                              "the database is slow to accept connections: check its load, connection count "
                              "and the network path (a pooler in front of it?)", manual_command=manual,
                              evidence=evidence)


@check(
    'the query "{query}" on the database "{database}" returns "{value}"',
    manual="psql -h <host> -p <port> -U <user> -d <dbname of {database}> -Atc '{query}'",
    validators={"query": _validate_query},
    requires="postgres",
)
def query_returns(ctx: CheckContext, query: str, database: str, value: str) -> CheckResult:
    """The query (one read-only statement returning one value) returns this value, compared as psql -At
    shows it (``NULL``, ``true``/``false``, numbers without trailing zeros, ISO timestamps); two numbers are
    compared as numbers. FAIL on another value or no row; ERROR when the query is refused (a write: the
    transaction is READ ONLY), fails, times out, or returns more than one value. Needs: SELECT on what
    the query reads."""
    expected = f'{excerpt(query)} returns "{value}"'
    settings, manual, found = _scalar(ctx, database, query, expected)
    shown = text(found)
    as_number, wanted = number(found), number(value)
    same = shown == value or (as_number is not None and wanted is not None and as_number == wanted)
    observed = f'returns "{shown}"'
    evidence = {"value": shown}
    return CheckResult.judged(same, settings.resource, expected, observed,
                              "the data is not as the runbook expects: find the rows behind the value with the "
                              "manual command, and the change that made them so", manual_command=manual,
                              evidence=evidence)


def _threshold(ctx: CheckContext, query: str, database: str, expected: str, holds: Callable[[float], bool]
               ) -> CheckResult:
    settings, manual, found = _scalar(ctx, database, query, expected)
    as_number = number(found)
    evidence = {"value": text(found)}
    if found is None:
        return CheckResult.failed(settings.resource, expected, "returns NULL (no value)",
                                  "the query found nothing to measure (e.g. max() over no rows): check that the "
                                  "data it measures exists", manual_command=manual, evidence=evidence)
    if as_number is None:
        return CheckResult.errored(settings.resource, f"returns {text(found)!r}, which is not a number",
                                   "make the query return a number (an interval counts as seconds)",
                                   expected=expected, manual_command=manual, evidence=evidence)
    observed = f"returns {text(found)}"
    return CheckResult.judged(holds(as_number), settings.resource, expected, observed,
                              "the measured value is out of bounds: look at the rows behind it with the manual "
                              "command", manual_command=manual, evidence=evidence)


@check(
    'the query "{query}" on the database "{database}" returns less than {threshold:g}',
    manual="psql -h <host> -p <port> -U <user> -d <dbname of {database}> -Atc '{query}'",
    validators={"query": _validate_query},
    requires="postgres",
)
def query_returns_less_than(ctx: CheckContext, query: str, database: str, threshold: float) -> CheckResult:
    """The query's single value is a number strictly below the threshold (an interval counts as seconds:
    ``SELECT now() - max(finished_at) FROM backups``). FAIL when it is not below, or NULL; ERROR when it is
    not a number, or the query is refused, fails or returns more than one value. Needs: SELECT on what
    the query reads."""
    return _threshold(ctx, query, database, f"{excerpt(query)} returns less than {threshold:g}",
                      lambda v: v < threshold)


@check(
    'the query "{query}" on the database "{database}" returns at least {minimum:g}',
    manual="psql -h <host> -p <port> -U <user> -d <dbname of {database}> -Atc '{query}'",
    validators={"query": _validate_query},
    requires="postgres",
)
def query_returns_at_least(ctx: CheckContext, query: str, database: str, minimum: float) -> CheckResult:
    """The query's single value is a number at or above the minimum (an interval counts as seconds). FAIL
    when it is below, or NULL; ERROR when it is not a number, or the query is refused, fails or returns
    more than one value. Needs: SELECT on what the query reads."""
    return _threshold(ctx, query, database, f"{excerpt(query)} returns at least {minimum:g}",
                      lambda v: v >= minimum)


# --- migrations (alembic) ------------------------------------------------------------------------------


def _revisions(revisions: tuple[str, ...] | list[str]) -> str:
    return " + ".join(revisions) if revisions else "no revision"


def _pending(ctx: CheckContext, settings: PostgresSettings, heads: tuple[str, ...], current: tuple[str, ...]
             ) -> list[str]:
    """The revisions between ``current`` and ``heads`` as "id (message)", newest first; [] when unknown."""
    if settings.migrations is None:
        return []
    try:
        script = ctx.postgres.script_directory(settings)
        return [f"{s.revision} ({excerpt(s.doc or '', 60)})" if s.doc else s.revision
                for s in script.iterate_revisions(heads, current or "base")]
    except Exception:  # noqa: BLE001 - a revision the directory does not know: reported by the caller
        return []


def _current(ctx: CheckContext, settings: PostgresSettings, expected: str, manual: str
             ) -> tuple[str, ...]:
    current = _ask(settings, expected, manual, lambda: ctx.postgres.current_revisions(settings))
    if current is None:
        raise Finding(CheckResult.failed(
            settings.resource, expected, f"no {settings.version_table} table: no migration was ever applied "
            "(or version_table names another table)",
            "apply the migrations (alembic upgrade head) or set version_table in runbooks.toml",
            manual_command=settings.psql(f"SELECT to_regclass('{settings.version_table}')"),
            evidence={"current": None}))
    return current


@check(
    'the database "{database}" is at the migration head',
    manual="psql -h <host> -p <port> -U <user> -d <dbname of {database}> -Atc 'SELECT version_num FROM "
           "alembic_version'; alembic heads",
    requires="postgres",
)
def database_at_migration_head(ctx: CheckContext, database: str) -> CheckResult:
    """The alembic version table holds exactly the head revision(s): those of the database's ``migrations``
    directory (read with alembic's ScriptDirectory), or its configured ``head``. FAIL names the current
    and the head revisions and the migrations not applied; ERROR when neither is configured or the
    directory cannot be read. Needs: SELECT on the version table."""
    settings = ctx.postgres.database(database)
    manual = settings.psql(f"SELECT version_num FROM {settings.version_table}")
    heads = _ask(settings, "at the migration head", manual, lambda: ctx.postgres.head_revisions(settings))
    expected = f"at the migration head {_revisions(heads)}"
    current = _current(ctx, settings, expected, manual)
    evidence: dict[str, Any] = {"current": list(current), "head": list(heads)}
    if set(current) == set(heads):
        return CheckResult.passed(settings.resource, expected, f"at revision {_revisions(current)} (the head)",
                                  manual_command=manual, evidence=evidence)
    pending = _pending(ctx, settings, heads, current)
    evidence["pending"] = pending
    observed = f"at revision {_revisions(current)}; the head is {_revisions(heads)}"
    if pending:
        shown = ", ".join(pending[:5]) + (f" and {len(pending) - 5} more" if len(pending) > 5 else "")
        observed += f" ({len(pending)} migration(s) not applied: {shown})"
        hint = "apply the pending migrations (alembic upgrade head), or roll the application back to match"
    else:
        hint = ("the database is not at the head of these migrations: upgrade it (alembic upgrade head), or "
                "check that the migrations directory or head in runbooks.toml belongs to the deployed release")
    return CheckResult.failed(settings.resource, expected, observed, hint, manual_command=manual, evidence=evidence)


@check(
    'the database "{database}" is one migration behind the head',
    manual="psql -h <host> -p <port> -U <user> -d <dbname of {database}> -Atc 'SELECT version_num FROM "
           "alembic_version'; alembic history -r -2:",
    requires="postgres",
)
def database_one_migration_behind(ctx: CheckContext, database: str) -> CheckResult:
    """The version table holds the revision just before the head of the database's ``migrations``
    directory: the state ``alembic downgrade -1`` leaves from the head. ERROR when the directory has
    several heads or the head is a merge (one step back is ambiguous), or no directory is configured.
    Needs: SELECT on the version table."""
    settings = ctx.postgres.database(database)
    manual = settings.psql(f"SELECT version_num FROM {settings.version_table}")
    script = _ask(settings, "one migration behind the head", manual,
                  lambda: ctx.postgres.script_directory(settings))
    heads = tuple(script.get_heads())
    head = script.get_revision(heads[0]) if len(heads) == 1 else None
    down = head.down_revision if head is not None else None
    if head is None or isinstance(down, tuple | list):
        return CheckResult.errored(settings.resource, f"one migration behind is ambiguous: the migrations have "
                                   f"{'several heads ' + _revisions(heads) if head is None else 'a merge head'}",
                                   "check the revision by id with the query step instead", manual_command=manual)
    target: tuple[str, ...] = (down,) if down else ()
    expected = f"at revision {_revisions(target)} (one before the head {heads[0]})"
    current = _current(ctx, settings, expected, manual)
    evidence = {"current": list(current), "head": list(heads), "expected": list(target)}
    observed = f"at revision {_revisions(current)}"
    if current == target:
        return CheckResult.passed(settings.resource, expected, observed, manual_command=manual, evidence=evidence)
    where = " (the head: the downgrade did not run)" if current == heads else ""
    return CheckResult.failed(settings.resource, expected, observed + where,
                              "run or repeat the downgrade (alembic downgrade -1) and read its output; check "
                              "alembic history for the revision the database is at", manual_command=manual,
                              evidence=evidence)


# --- replication and capacity --------------------------------------------------------------------------

REPLICA_SQL = (
    "SELECT pg_last_wal_receive_lsn() IS NOT NULL AND pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn(), "
    "EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8, pg_is_wal_replay_paused(), "
    "EXISTS (SELECT 1 FROM pg_stat_wal_receiver)"
)


@check(
    'the database "{database}" is a replica lagging less than {seconds:g} s',
    manual="psql -h <host> -p <port> -U <user> -d <dbname of {database}> -Atc 'SELECT pg_is_in_recovery(), "
           "now() - pg_last_xact_replay_timestamp()'",
    requires="postgres",
)
def replica_lag_below(ctx: CheckContext, database: str, seconds: float) -> CheckResult:
    """The database is a replica (in recovery) whose replay is less than this far behind: 0 when it has
    replayed all the WAL it received and is streaming, else the age of the last transaction it replayed.
    A primary FAILs ("not a replica"): the runbook names a replica, so a promoted replica or a DSN that
    reaches the primary is itself the finding. FAIL also when no transaction was replayed yet. Needs:
    ``pg_monitor`` (for pg_stat_wal_receiver)."""
    settings = ctx.postgres.database(database)
    manual = settings.psql("SELECT pg_is_in_recovery(), now() - pg_last_xact_replay_timestamp()")
    expected = f"a replica less than {seconds:g} s behind"
    in_recovery = _ask(settings, expected, manual,
                       lambda: ctx.postgres.scalar(settings, "SELECT pg_is_in_recovery()"))
    if not in_recovery:
        return CheckResult.failed(settings.resource, expected, "not a replica: pg_is_in_recovery() is false "
                                  "(this is a primary)",
                                  "the replica was promoted (failover?) or the dsn reaches the primary: check the "
                                  "cluster's topology and the dsn in runbooks.toml", manual_command=manual,
                                  evidence={"replica": False})
    rows = _ask(settings, expected, manual, lambda: ctx.postgres.read(settings, REPLICA_SQL, limit=1))
    caught_up, age, paused, streaming = rows.rows[0]
    notes = ([] if streaming else ["not streaming: no WAL receiver"]) + (["replay paused"] if paused else [])
    suffix = f" ({'; '.join(notes)})" if notes else ""
    evidence: dict[str, Any] = {"replica": True, "streaming": bool(streaming), "paused": bool(paused)}
    hint = ("find why the replica falls behind: its WAL receiver (pg_stat_wal_receiver), disk and CPU, long "
            "queries holding replay back; " + ("resume replay: SELECT pg_wal_replay_resume()" if paused else
                                                "and the primary's write rate"))
    if caught_up and streaming:
        lag = 0.0
        observed = "0 s behind (replayed all WAL received, streaming)"
    elif age is None:
        return CheckResult.failed(settings.resource, expected, "no transaction replayed since the replica started"
                                  + suffix, hint, manual_command=manual, evidence={**evidence, "lag_s": None})
    else:
        lag = max(0.0, float(age))
        observed = f"{lag:.1f} s behind (last replayed transaction){suffix}"
    evidence["lag_s"] = round(lag, 3)
    return CheckResult.judged(lag < seconds, settings.resource, expected, observed, hint, manual_command=manual,
                              evidence=evidence)


CONNECTIONS_SQL = ("SELECT count(*) FILTER (WHERE backend_type = 'client backend'), "
                   "current_setting('max_connections')::int FROM pg_stat_activity")


@check(
    'the database "{database}" uses less than {percent:g}% of its max_connections',
    manual="psql -h <host> -p <port> -U <user> -d <dbname of {database}> -Atc \"SELECT count(*) FROM "
           "pg_stat_activity WHERE backend_type = 'client backend'; SHOW max_connections\"",
    requires="postgres",
)
def connections_below(ctx: CheckContext, database: str, percent: float) -> CheckResult:
    """Client connections to the server (all databases, from pg_stat_activity) are below this share of
    ``max_connections``, so new connections still find a slot. Needs: CONNECT (pg_stat_activity lists
    every session to any role)."""
    settings = ctx.postgres.database(database)
    manual = settings.psql("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'; "
                           "SHOW max_connections")
    expected = f"client connections below {percent:g}% of max_connections"
    rows = _ask(settings, expected, manual, lambda: ctx.postgres.read(settings, CONNECTIONS_SQL, limit=1))
    used, limit = (int(v) for v in rows.rows[0])
    share = used * 100 / limit if limit else 100.0
    observed = f"{used} of {limit} connections ({share:.0f}%)"
    evidence = {"connections": used, "max_connections": limit, "percent": round(share, 1)}
    return CheckResult.judged(share < percent, settings.resource, expected, observed,
                              "find who holds the connections (pg_stat_activity by application_name, state and "
                              "client_addr): a leak, idle-in-transaction sessions, or a pool sized too large; "
                              "put a pooler in front or raise max_connections", manual_command=manual,
                              evidence=evidence)
