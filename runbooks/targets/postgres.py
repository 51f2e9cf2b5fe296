"""The PostgreSQL target: databases by name (``[environments.NAME.postgres]``), read through psycopg 3.

``app = { dsn = "postgresql://runbooks:${PG_PASSWORD}@db.internal:5432/app", statement_timeout_ms = 5000 }``:
a libpq URI or ``key=value`` string; ``${VAR}`` is read from the process environment when the run connects
(as are libpq's own PGPASSWORD and ~/.pgpass). Further keys: ``connect_timeout_s`` (default 5) and, for the
migration steps, ``migrations`` (the alembic script directory, relative to runbooks.toml) or ``head`` (the
expected head revision when no checkout is at hand), and ``version_table`` (default ``alembic_version``).

Only reads: every statement runs in its own ``BEGIN READ ONLY`` transaction with ``SET LOCAL
statement_timeout``, through the extended query protocol (one statement per query: ``SELECT 1; COMMIT;
...`` is refused by the server), and the transaction is rolled back. A write is refused by PostgreSQL
itself (``cannot execute INSERT in a read-only transaction``). READ ONLY does not stop functions with
side effects outside the database (``pg_terminate_backend``, ``pg_reload_conf``): give the checks a role
without those privileges (``pg_monitor`` and SELECT grants are all the steps need).

One connection per database per run, opened on first use and closed when the run ends; a database that
cannot be reached keeps the reason, so every later step on it is an ERROR at once instead of another wait.
The DSN's password (and the value of every ``${VAR}`` it names, and PGPASSWORD) is registered with the
run's redactor: it never reaches an output.
"""

from __future__ import annotations

import os
import re
import shlex
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..faults import CouldNotCheck, Fault, FaultKind, UnknownName, register_classifier
from ..names import did_you_mean
from . import Target, Where, register

if TYPE_CHECKING:
    import psycopg

    from ..config import Environment
    from ..resources import Resources

_KEYS = {"dsn", "statement_timeout_ms", "connect_timeout_s", "migrations", "head", "version_table"}
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$")
_REVISION = re.compile(r"^[A-Za-z0-9_]+$")
DEFAULT_PORT = "5432"
APPLICATION_NAME = "runbooks"


@dataclass(frozen=True)
class PostgresSettings:
    name: str
    dsn: str  # as written: ${VAR} is expanded when the run connects
    statement_timeout_ms: int = 5000
    connect_timeout_s: int = 5
    migrations: Path | None = None  # the alembic script directory (env.py, versions/)
    head: tuple[str, ...] = ()  # the expected head revision(s), when set instead of migrations
    version_table: str = "alembic_version"
    host: str = "localhost"  # what the DSN names, for labels and manual commands (never the password)
    port: str = DEFAULT_PORT
    dbname: str = ""
    user: str = ""

    @property
    def label(self) -> str:
        user = f"{self.user}@" if self.user else ""
        return f"{user}{self.host}:{self.port}/{self.dbname or self.user or '?'}"

    @property
    def resource(self) -> str:
        return f"database {self.name} ({self.label})"

    def psql(self, sql: str) -> str:
        """The psql command an operator types to ask what a check asked (password from PGPASSWORD/~/.pgpass)."""
        parts = ["psql", "-h", self.host, "-p", self.port]
        parts += ["-U", self.user] if self.user else []
        parts += ["-d", self.dbname] if self.dbname else []
        return " ".join(shlex.quote(p) for p in parts) + " -Atc " + shlex.quote(sql)

    def env_refs(self) -> list[str]:
        return _ENV_REF.findall(self.dsn)


def _dsn_parts(dsn: str) -> dict[str, str]:
    """libpq's reading of the DSN (URI or key=value); ValueError naming the problem (never the password)."""
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(_ENV_REF.sub("x", dsn))
    except ProgrammingError as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"libpq cannot read it: {message}") from None
    return {k: str(v) for k, v in parts.items()}


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def parse_postgres(raw: dict[str, Any] | None, where: Where) -> dict[str, PostgresSettings]:
    """``[environments.X.postgres]``: database name -> a DSN string or a table (dsn, statement_timeout_ms,
    connect_timeout_s, migrations or head, version_table)."""
    databases: dict[str, PostgresSettings] = {}
    for name, value in (raw or {}).items():
        if isinstance(value, str):
            value = {"dsn": value}
        if not isinstance(value, dict) or "dsn" not in value:
            raise where.error(f"database {name!r} must be a DSN or a table with {', '.join(sorted(_KEYS))}",
                              "postgres", name)
        unknown = sorted(set(value) - _KEYS)
        if unknown:
            raise where.error(f"database {name!r}: unknown key {unknown[0]!r}" + did_you_mean(unknown[0], _KEYS),
                              "postgres", name)
        dsn = value["dsn"]
        if not isinstance(dsn, str) or not dsn.strip():
            raise where.error(f"database {name!r}: dsn must be a libpq URI (postgresql://...) or key=value string",
                              "postgres", name)
        try:
            parts = _dsn_parts(dsn)
        except ValueError as exc:
            raise where.error(f"database {name!r}: dsn {exc}", "postgres", name) from None
        for key in ("statement_timeout_ms", "connect_timeout_s"):
            if key in value and not _positive_int(value[key]):
                raise where.error(f"database {name!r}: {key} must be a whole number above 0, got {value[key]!r}",
                                  "postgres", name)
        if "migrations" in value and "head" in value:
            raise where.error(f"database {name!r}: set migrations (an alembic directory) or head (a revision), "
                              "not both", "postgres", name)
        migrations = None
        if "migrations" in value:
            if not isinstance(value["migrations"], str) or not value["migrations"]:
                raise where.error(f"database {name!r}: migrations must be the path of an alembic script directory",
                                  "postgres", name)
            migrations = Path(value["migrations"])
            if not migrations.is_absolute() and where.root is not None:
                migrations = where.root / migrations
        head = value.get("head", ())
        heads = (head,) if isinstance(head, str) else head
        if not isinstance(heads, list | tuple) or not all(isinstance(h, str) and _REVISION.match(h) for h in heads):
            raise where.error(f"database {name!r}: head must be a revision id (or a list of them), got {head!r}",
                              "postgres", name)
        table = value.get("version_table", "alembic_version")
        if not isinstance(table, str) or not _IDENTIFIER.match(table):
            raise where.error(f"database {name!r}: version_table must be a table name (schema.table allowed), "
                              f"got {table!r}", "postgres", name)
        host = parts.get("host") or parts.get("hostaddr") or "localhost"
        databases[name] = PostgresSettings(
            name=name, dsn=dsn, statement_timeout_ms=value.get("statement_timeout_ms", 5000),
            connect_timeout_s=value.get("connect_timeout_s", 5), migrations=migrations, head=tuple(heads),
            version_table=table, host=host, port=parts.get("port") or DEFAULT_PORT,
            dbname=parts.get("dbname", ""), user=parts.get("user", ""),
        )
    return databases


def dsn_secrets(settings: PostgresSettings) -> set[str]:
    """The credentials a DSN carries or names: its password, and the values of the ${VAR}s it uses."""
    found = {os.environ.get(ref, "") for ref in settings.env_refs()}
    try:
        expanded = expand(settings)
    except CouldNotCheck:
        expanded = settings.dsn
    try:
        password = _dsn_parts(expanded).get("password", "")
    except ValueError:
        password = ""
    found.add(password)
    if password:
        from urllib.parse import quote

        found.add(quote(password, safe=""))  # as a URI writes it
    return {s for s in found if s}


def expand(settings: PostgresSettings) -> str:
    """The DSN with ``${VAR}`` read from the process environment; CouldNotCheck when one is not set."""
    missing = [ref for ref in settings.env_refs() if ref not in os.environ]
    if missing:
        raise CouldNotCheck(Fault.of(
            FaultKind.NO_CREDENTIALS, f"the dsn of database {settings.name!r} uses ${{{missing[0]}}}, which is "
            "not set in the environment of this run", f"export {missing[0]} before running the checks"))
    return _ENV_REF.sub(lambda m: os.environ[m.group(1)], settings.dsn)


# faults ---------------------------------------------------------------------------------------------------

# libpq's connection failures carry no SQLSTATE: its messages are the only classification it offers.
_CONNECT_FAILURES: tuple[tuple[str, FaultKind, str], ...] = (
    ("password authentication failed", FaultKind.CREDENTIALS_REJECTED, "password authentication failed"),
    ("no pg_hba.conf entry", FaultKind.CREDENTIALS_REJECTED, "no pg_hba.conf entry allows this connection"),
    ("authentication failed", FaultKind.CREDENTIALS_REJECTED, "authentication failed"),
    ("no password supplied", FaultKind.NO_CREDENTIALS, "the server asks for a password and none was supplied"),
    ("does not exist", FaultKind.CONNECTION, ""),  # role or database "x" does not exist
    ("too many clients", FaultKind.CONNECTION, "the server has no connection slot left (too many clients)"),
    ("remaining connection slots are reserved", FaultKind.CONNECTION,
     "the server has no connection slot left (the rest are reserved)"),
    ("the database system is starting up", FaultKind.CONNECTION, "the server is starting up"),
    ("the database system is shutting down", FaultKind.CONNECTION, "the server is shutting down"),
    ("the database system is in recovery mode", FaultKind.CONNECTION, "the server is recovering from a crash"),
    ("connection refused", FaultKind.CONNECTION, "connection refused (is the server running on that host and port?)"),
    ("timeout expired", FaultKind.TIMEOUT, "no answer within the connect timeout"),
    ("timed out", FaultKind.TIMEOUT, "no answer within the connect timeout"),
    ("could not translate host name", FaultKind.CONNECTION, "the host name does not resolve"),
    ("failed to resolve host", FaultKind.CONNECTION, "the host name does not resolve"),
    ("name or service not known", FaultKind.CONNECTION, "the host name does not resolve"),
    ("no such file or directory", FaultKind.CONNECTION, "no server socket there"),
    ("server closed the connection", FaultKind.CONNECTION, "the server closed the connection"),
    ("ssl", FaultKind.CONNECTION, ""),
)
CREDENTIAL_KINDS = (FaultKind.CREDENTIALS_REJECTED, FaultKind.NO_CREDENTIALS)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    text = re.sub(r"^connection failed: ", "", text)
    text = re.sub(r"^connection to server at \"[^\"]*\"(?:\s*\([^)]*\))?, port \d+ failed: ", "", text)
    return " ".join(text.splitlines()[0].split()) if text else type(exc).__name__


def connect_fault(exc: BaseException, settings: PostgresSettings) -> Fault:
    """Why a connection to the database could not be opened (psycopg's OperationalError at connect)."""
    detail = _first_line(exc).removeprefix("FATAL:").strip()
    lowered = str(exc).lower()
    kind, reason = FaultKind.CONNECTION, detail
    for marker, marked, meaning in _CONNECT_FAILURES:
        if marker in lowered:
            kind, reason = marked, (f"{meaning}: {detail}" if meaning and meaning not in detail else detail)
            break
    if kind in CREDENTIAL_KINDS:
        hint = (f"check the user and password of database {settings.name!r} (the dsn in runbooks.toml, its "
                "${VAR}, PGPASSWORD or ~/.pgpass) and the server's pg_hba.conf for this client")
    elif kind is FaultKind.TIMEOUT:
        hint = "check that the server is up and reachable from here (VPN, security groups, firewall)"
    else:
        hint = "check that the server is running and reachable, and the host, port and database in the dsn"
    return Fault.of(kind, f"could not connect to {settings.resource}: {reason}", hint)


def query_fault(exc: BaseException, settings: PostgresSettings | None) -> Fault | None:
    """The fault behind a psycopg error raised by a statement (None when ``exc`` is not psycopg's)."""
    import psycopg
    from psycopg import errors

    if not isinstance(exc, psycopg.Error):
        return None
    where = "the statement" if settings is not None else "PostgreSQL"  # the step's result names the database
    detail = _first_line(exc)
    if isinstance(exc, errors.QueryCanceled):
        limit = f" ({settings.statement_timeout_ms} ms, statement_timeout_ms)" if settings is not None else ""
        return Fault.of(FaultKind.TIMEOUT, f"the statement did not finish within its timeout{limit}",
                        "make the query cheaper (an index, a narrower WHERE), or raise statement_timeout_ms")
    if isinstance(exc, errors.ReadOnlySqlTransaction):
        return Fault.of(FaultKind.READ_ONLY, f"PostgreSQL refused a write in the checks' read-only transaction: "
                        f"{detail}", "checks must only read: use a SELECT that changes nothing")
    if isinstance(exc, errors.InsufficientPrivilege):
        return Fault.of(FaultKind.ACCESS_DENIED, f"{where}: {detail}",
                        "grant the checks' role what this read needs (SELECT on the table, or pg_monitor)")
    sqlstate = getattr(exc, "sqlstate", None) or ""
    if sqlstate.startswith(("42", "22", "0A", "25")):  # syntax, undefined object, data, unsupported, txn state
        return Fault.of(FaultKind.CLIENT_ERROR, f"the query failed: {detail}",
                        "fix the query in the runbook (try it with the manual command)")
    if isinstance(exc, psycopg.OperationalError) and (settings is None or "connection" in str(exc).lower()):
        return Fault.of(FaultKind.CONNECTION, f"the connection to the database was lost: {detail}",
                        "check that the server is up; the run reconnects on its next step")
    return Fault.of(FaultKind.SERVICE_ERROR, f"{where}: {detail}" + (f" (SQLSTATE {sqlstate})" if sqlstate else ""))


@register_classifier
def classify_postgres(exc: BaseException, target: str) -> Fault | None:
    """A psycopg error that escaped a step (the target raises CouldNotCheck itself)."""
    if not type(exc).__module__.startswith("psycopg"):
        return None
    return query_fault(exc, None)


class DatabaseUnavailable(CouldNotCheck):
    """The database could not be reached (down, refused, timed out, credentials rejected)."""


@dataclass(frozen=True)
class Rows:
    """What a statement returned: its column names and up to ``limit`` rows (values as psycopg loads them)."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    more: bool  # there were more rows than were read


# the target ------------------------------------------------------------------------------------------------


@register
class PostgresTarget(Target):
    name = "postgres"
    section = "postgres"
    capabilities = {"postgres": "environment {env} declares no PostgreSQL database ([environments.{env}.postgres])"}

    def __init__(self, env: Environment, resources: Resources) -> None:
        super().__init__(env, resources)
        self._lock = threading.Lock()
        self._connections: dict[str, psycopg.Connection[Any]] = {}
        self._unreachable: dict[str, Fault] = {}
        self._scripts: dict[str, Any] = {}  # database -> ScriptDirectory, or the Fault reading it gave

    @classmethod
    def parse(cls, raw: Any, where: Where) -> dict[str, PostgresSettings]:
        return parse_postgres(raw, where)

    @classmethod
    def can(cls, env: Environment, capability: str) -> bool:
        return bool(env.postgres)

    @classmethod
    def secrets(cls, env: Environment) -> Iterable[str]:
        found = {os.environ.get("PGPASSWORD", "")} if env.postgres else set()
        for settings in env.postgres.values():
            found |= dsn_secrets(settings)
        return found

    def database(self, name: str) -> PostgresSettings:
        try:
            return self.env.postgres[name]  # type: ignore[no-any-return]
        except KeyError:
            raise UnknownName(
                f"database {name!r} is not defined by environment {self.env.name!r}"
                + did_you_mean(name, self.env.postgres, known="defined")
            ) from None

    # connections ---------------------------------------------------------------------------------------
    def _connect(self, settings: PostgresSettings) -> psycopg.Connection[Any]:
        """A new read-only connection (BEGIN READ ONLY for every transaction); DatabaseUnavailable if none."""
        import psycopg

        dsn = expand(settings)
        parts = _dsn_parts(dsn)
        options: dict[str, Any] = {}
        if "connect_timeout" not in parts:
            options["connect_timeout"] = settings.connect_timeout_s
        if "application_name" not in parts:
            options["application_name"] = APPLICATION_NAME
        try:
            connection = psycopg.connect(dsn, autocommit=True, **options)
        except psycopg.Error as exc:
            raise DatabaseUnavailable(connect_fault(exc, settings)) from None
        connection.read_only = True
        return connection

    def probe(self, settings: PostgresSettings) -> float:
        """Milliseconds to open a new connection and answer ``SELECT 1``; DatabaseUnavailable when it cannot.
        The connection is kept as the run's connection to this database when it has none yet."""
        started = time.perf_counter()
        try:
            connection = self._connect(settings)
        except DatabaseUnavailable as exc:
            with self._lock:
                self._unreachable.setdefault(settings.name, exc.fault)
            raise
        try:
            self._read(connection, settings, "SELECT 1", None, 1)
        except CouldNotCheck:
            connection.close()
            raise
        elapsed = (time.perf_counter() - started) * 1000
        with self._lock:
            self._unreachable.pop(settings.name, None)
            current = self._connections.get(settings.name)
            keep = current is None or current.closed or current.broken
            if keep:
                self._connections[settings.name] = connection
        if keep and current is not None:
            current.close()  # the lost connection it replaces
        elif not keep:
            connection.close()
        return elapsed

    def connection(self, settings: PostgresSettings) -> psycopg.Connection[Any]:
        """The run's connection to the database, opened on first use; a lost one is reopened once per step.
        A database that could not be reached stays unreachable for the run (DatabaseUnavailable at once)."""
        with self._lock:
            fault = self._unreachable.get(settings.name)
            current = self._connections.get(settings.name)
        if fault is not None:
            raise DatabaseUnavailable(fault)
        if current is not None and not current.closed and not current.broken:
            return current
        try:
            fresh = self._connect(settings)
        except DatabaseUnavailable as exc:
            with self._lock:
                self._unreachable[settings.name] = exc.fault
            raise
        with self._lock:
            self._connections[settings.name] = fresh
        return fresh

    def close(self) -> None:
        with self._lock:
            connections = list(self._connections.values())
            self._connections.clear()
        for connection in connections:
            connection.close()

    # reads ---------------------------------------------------------------------------------------------
    def read(self, settings: PostgresSettings, sql: Any, params: Any = None, limit: int = 100) -> Rows:
        """One statement in a READ ONLY transaction with the database's statement timeout, rolled back after;
        at most ``limit`` rows are read. CouldNotCheck (with the fault) when it cannot be answered."""
        return self._read(self.connection(settings), settings, sql, params, limit)

    def _read(self, connection: psycopg.Connection[Any], settings: PostgresSettings, sql: Any, params: Any,
              limit: int) -> Rows:
        import psycopg

        rows: list[tuple[Any, ...]] = []
        more = False
        columns: tuple[str, ...] = ()
        try:
            with connection.transaction() as transaction:  # BEGIN READ ONLY (connection.read_only)
                connection.execute("SELECT set_config('statement_timeout', %s, true)",
                                   [str(settings.statement_timeout_ms)])
                cursor = connection.cursor()
                # stream() sends through the extended protocol: one statement only, refused otherwise
                for row in cursor.stream(sql, params):
                    if len(rows) >= limit:
                        more = True
                        break
                    rows.append(tuple(row))
                columns = tuple(c.name for c in cursor.description or ())
                raise psycopg.Rollback(transaction)  # nothing to keep: a read leaves no trace
        except psycopg.Error as exc:
            fault = query_fault(exc, settings)
            raise CouldNotCheck(fault or Fault.of(FaultKind.DEFECT, str(exc))) from None
        return Rows(columns, tuple(rows), more)

    def scalar(self, settings: PostgresSettings, sql: str, params: Any = None) -> Any:
        rows = self.read(settings, sql, params, 1)
        return rows.rows[0][0] if rows.rows else None

    # migrations ----------------------------------------------------------------------------------------
    def head_revisions(self, settings: PostgresSettings) -> tuple[str, ...]:
        """The head revision(s): ``head`` from the settings, else those of the alembic script directory.
        CouldNotCheck when neither is set or the directory cannot be read."""
        if settings.head:
            return settings.head
        return tuple(sorted(self.script_directory(settings).get_heads()))

    def script_directory(self, settings: PostgresSettings) -> Any:
        """alembic's ScriptDirectory of ``migrations``, read once per run (alembic imports each migration
        script to read its revision ids). CouldNotCheck when none is set or it cannot be read."""
        with self._lock:
            known = self._scripts.get(settings.name)
        if known is None:
            try:
                known = self._load_scripts(settings)
            except CouldNotCheck as exc:
                known = exc.fault
            with self._lock:
                self._scripts[settings.name] = known
        if isinstance(known, Fault):
            raise CouldNotCheck(known)
        return known

    def _load_scripts(self, settings: PostgresSettings) -> Any:
        if settings.migrations is None:
            raise CouldNotCheck(Fault.of(
                FaultKind.NO_TARGET, f"database {settings.name!r} declares no migrations directory",
                f"set migrations (the alembic script directory) for {settings.name} under "
                f"[environments.{self.env.name}.postgres]"))
        from alembic.script import ScriptDirectory

        try:
            script = ScriptDirectory(str(settings.migrations))
            script.get_heads()  # reads every revision file now, so that a broken one is reported here
        except Exception as exc:  # noqa: BLE001 - alembic's CommandError, a script's own ImportError/SyntaxError
            raise CouldNotCheck(Fault.of(
                FaultKind.CLIENT_ERROR,
                f"cannot read the alembic migrations at {settings.migrations}: {type(exc).__name__}: {exc}",
                "check the migrations path in runbooks.toml (the directory holding env.py and versions/), or "
                "set head = \"<revision>\" instead")) from None
        return script

    def current_revisions(self, settings: PostgresSettings) -> tuple[str, ...] | None:
        """The revisions in the version table (sorted), or None when the table does not exist."""
        from psycopg import sql

        if self.scalar(settings, "SELECT to_regclass(%s) IS NOT NULL", [settings.version_table]) is not True:
            return None
        table = sql.Identifier(*settings.version_table.split("."))
        rows = self.read(settings, sql.SQL("SELECT version_num FROM {} ORDER BY 1").format(table), limit=50)
        return tuple(str(row[0]) for row in rows.rows)
