"""PostgreSQL steps against real servers on 127.0.0.1: a primary, a streaming replica, and a closed port.

The migration steps read a real alembic migrations directory (two revisions) that the tests apply with
alembic itself. Every step has its PASS, FAIL and ERROR; a write through the query step is refused by
PostgreSQL (READ ONLY); the DSN's password reaches no output of `runbooks verify`.
"""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runbooks.cli import main as cli_main
from runbooks.config import ConfigError, load_config
from runbooks.result import CheckResult, Outcome
from runbooks.session import Session
from runbooks.steps.postgres import (
    connections_below,
    database_accepts_connections,
    database_at_migration_head,
    database_one_migration_behind,
    query_returns,
    query_returns_at_least,
    query_returns_less_than,
    replica_lag_below,
)
from runbooks.targets import missing_capability
from tests.conftest import evaluate, make_run
from tests.support.postgres import PASSWORD, PostgresServer, postgres, postgres_replica, wait_for  # noqa: F401
from tests.support.sshd import free_port

AWS = 'aws = { target = "endpoint", url = "http://127.0.0.1:9", region = "us-east-1" }\n'  # never called
FIRST, SECOND = "a1f0c0de0001", "b2e0c0de0002"

MIGRATION_ENV = '''\
from alembic import context
from sqlalchemy import create_engine

engine = create_engine(context.config.get_main_option("sqlalchemy.url"))
with engine.connect() as connection:
    context.configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()
'''
MIGRATION = '''\
"""{message}"""
import sqlalchemy as sa
from alembic import op

revision = "{revision}"
down_revision = {down!r}
branch_labels = None
depends_on = None


def upgrade():
    {upgrade}


def downgrade():
    {downgrade}
'''


def write_migrations(directory: Path) -> Path:
    """An alembic script directory with two revisions: create table orders, then add a column."""
    (directory / "versions").mkdir(parents=True)
    (directory / "env.py").write_text(MIGRATION_ENV)
    (directory / "versions" / f"{FIRST}_create_orders.py").write_text(MIGRATION.format(
        message="create orders", revision=FIRST, down=None,
        upgrade='op.create_table("orders", sa.Column("id", sa.Integer, primary_key=True))',
        downgrade='op.drop_table("orders")'))
    (directory / "versions" / f"{SECOND}_add_customer.py").write_text(MIGRATION.format(
        message="add orders.customer_id", revision=SECOND, down=FIRST,
        upgrade='op.add_column("orders", sa.Column("customer_id", sa.Integer))',
        downgrade='op.drop_column("orders", "customer_id")'))
    return directory


def alembic(server: PostgresServer, migrations: Path, dbname: str, action: str, revision: str) -> None:
    """Apply migrations with alembic itself (upgrade/downgrade), as a team's deployment does."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations))
    config.set_main_option("sqlalchemy.url", server.dsn(dbname).replace("postgresql://", "postgresql+psycopg://"))
    getattr(command, action)(config, revision)


@pytest.fixture(scope="module")
def migrations(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_migrations(tmp_path_factory.mktemp("alembic") / "migrations")


@pytest.fixture(scope="module")
def databases(postgres: PostgresServer, migrations: Path) -> dict[str, str]:  # noqa: F811 - a fixture
    """Databases in known states: app (a table of orders), behind (at the first revision), head (at the head),
    rolled (upgraded to head, then downgraded by one), empty (never migrated)."""
    with postgres.connect() as conn:
        for name in ("app", "behind", "head", "rolled", "empty"):
            conn.execute(f"DROP DATABASE IF EXISTS {name}")
            conn.execute(f"CREATE DATABASE {name}")
    with postgres.connect("app") as conn:
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY, total numeric, created timestamptz DEFAULT now())")
        conn.execute("INSERT INTO orders VALUES (1, 10.5), (2, 20), (3, NULL)")
        conn.execute("CREATE SEQUENCE order_numbers")
    alembic(postgres, migrations, "behind", "upgrade", FIRST)
    alembic(postgres, migrations, "head", "upgrade", "head")
    alembic(postgres, migrations, "rolled", "upgrade", "head")
    alembic(postgres, migrations, "rolled", "downgrade", "-1")
    return {"app": "app"}


def env_body(server: PostgresServer, migrations: Path, replica: PostgresServer | None = None) -> str:
    lines = [AWS, "[environments.test.postgres]"]
    for name in ("app", "behind", "head", "rolled", "empty"):
        lines.append(f'{name} = {{ dsn = "{server.dsn(name)}", migrations = "{migrations}" }}')
    lines.append(f'slow = {{ dsn = "{server.dsn("app")}", statement_timeout_ms = 300 }}')
    lines.append(f'pinned = {{ dsn = "{server.dsn("head")}", head = "{SECOND}" }}')
    lines.append(f'nomigrations = "{server.dsn("app")}"')
    lines.append(f'broken = {{ dsn = "{server.dsn("app")}", migrations = "{migrations.parent / "nowhere"}" }}')
    lines.append(f'down = {{ dsn = "postgresql://postgres:{PASSWORD}@127.0.0.1:{free_port()}/app", '
                 f'migrations = "{migrations}" }}')
    lines.append(f'badpass = "{server.dsn("app", password="wrong-password")}"')
    if replica is not None:
        lines.append(f'replica = "{replica.dsn("app")}"')
    return "\n".join(lines) + "\n"


@pytest.fixture
def run(tmp_path: Path, postgres: PostgresServer, migrations: Path, databases: dict[str, str]  # noqa: F811
        ) -> Iterator[Session]:
    session = make_run(tmp_path, env_body(postgres, migrations))
    yield session
    session.stop()


def check(run: Session, func: Callable[..., CheckResult], **args: object) -> CheckResult:
    result = evaluate(run, func, **args)
    assert result.manual_command, result
    assert PASSWORD not in json.dumps(result.__dict__, default=str)
    return result


# connections -------------------------------------------------------------------------------------------


def test_a_database_that_answers_passes_and_a_slow_one_fails(run: Session) -> None:
    result = check(run, database_accepts_connections, database="app", ms=5000)
    assert result.outcome is Outcome.PASS, result
    assert "connected and answered in" in result.observed and result.evidence["elapsed_ms"] >= 0
    assert result.resource == f"database app (postgres@127.0.0.1:{run.env.postgres['app'].port}/app)"
    assert result.manual_command.startswith("time psql -h 127.0.0.1 -p ")
    slow = check(run, database_accepts_connections, database="app", ms=0)
    assert slow.outcome is Outcome.FAIL and "slow to accept connections" in slow.hint


def test_a_server_that_is_down_fails_the_connection_step_and_errors_the_others(run: Session) -> None:
    result = check(run, database_accepts_connections, database="down", ms=5000)
    assert result.outcome is Outcome.FAIL, result
    assert "could not connect to database down" in result.observed and "connection refused" in result.observed
    for func, args in ((query_returns, {"query": "SELECT 1", "value": "1"}),
                       (query_returns_less_than, {"query": "SELECT 1", "threshold": 5}),
                       (database_at_migration_head, {}),
                       (replica_lag_below, {"seconds": 5}),
                       (connections_below, {"percent": 90})):
        other = check(run, func, database="down", **args)
        assert other.outcome is Outcome.ERROR, (func.__name__, other)
        assert other.observed.startswith("could not connect to database down"), other


def test_rejected_credentials_are_an_error_not_a_failure(run: Session) -> None:
    result = check(run, database_accepts_connections, database="badpass", ms=5000)
    assert result.outcome is Outcome.ERROR, result
    assert "password authentication failed" in result.observed and "pg_hba.conf" in result.hint
    assert check(run, query_returns, database="badpass", query="SELECT 1", value="1").outcome is Outcome.ERROR


def test_an_unknown_database_name_is_an_error_with_a_suggestion(run: Session) -> None:
    result = evaluate(run, query_returns, database="ap", query="SELECT 1", value="1")
    assert result.outcome is Outcome.ERROR and "did you mean 'app'" in result.observed


# queries -----------------------------------------------------------------------------------------------


def test_a_query_value_passes_when_equal_and_fails_otherwise(run: Session) -> None:
    passed = check(run, query_returns, database="app", query="SELECT count(*) FROM orders", value="3")
    assert passed.outcome is Outcome.PASS and passed.observed == 'returns "3"' and passed.evidence == {"value": "3"}
    assert passed.manual_command.endswith("-Atc 'SELECT count(*) FROM orders'")
    assert check(run, query_returns, database="app", query="SELECT 10.50::numeric", value="10.5").outcome \
        is Outcome.PASS
    assert check(run, query_returns, database="app", query="SELECT total IS NULL FROM orders WHERE id = 3",
                 value="true").outcome is Outcome.PASS
    failed = check(run, query_returns, database="app", query="SELECT count(*) FROM orders WHERE total IS NULL",
                   value="0")
    assert failed.outcome is Outcome.FAIL and failed.observed == 'returns "1"'
    none = check(run, query_returns, database="app", query="SELECT id FROM orders WHERE id = 99", value="99")
    assert none.outcome is Outcome.FAIL and none.observed.startswith("no row")


def test_a_write_through_the_query_step_is_refused_by_postgresql(run: Session, postgres: PostgresServer  # noqa: F811
                                                                 ) -> None:
    for query in ("INSERT INTO orders VALUES (9, 1) RETURNING id", "DELETE FROM orders RETURNING 1",
                  "WITH gone AS (DELETE FROM orders RETURNING 1) SELECT count(*) FROM gone",
                  "SELECT nextval('order_numbers')"):
        result = check(run, query_returns, database="app", query=query, value="1")
        assert result.outcome is Outcome.ERROR, (query, result)
        assert "read-only transaction" in result.observed or "nextval" in result.observed, result
    write = check(run, query_returns, database="app", query="INSERT INTO orders VALUES (9, 1) RETURNING id",
                  value="9")
    assert "PostgreSQL refused a write" in write.observed and write.evidence == {"fault": "read-only"}
    # several statements cannot sneak a COMMIT in: the extended protocol takes one
    sneaky = check(run, query_returns, database="app", query="SELECT 1; COMMIT; DELETE FROM orders", value="1")
    assert sneaky.outcome is Outcome.ERROR and "multiple commands" in sneaky.observed
    with postgres.connect("app") as conn:
        assert conn.execute("SELECT count(*) FROM orders").fetchone() == (3,)  # nothing was written


def test_a_query_that_runs_too_long_or_fails_is_an_error(run: Session) -> None:
    slow = check(run, query_returns, database="slow", query="SELECT pg_sleep(5)::text", value="")
    assert slow.outcome is Outcome.ERROR and "statement_timeout_ms" in slow.observed, slow
    bad = check(run, query_returns, database="app", query="SELECT nope FROM orders", value="1")
    assert bad.outcome is Outcome.ERROR and 'column "nope" does not exist' in bad.observed
    several = check(run, query_returns, database="app", query="SELECT id FROM orders", value="1")
    assert several.outcome is Outcome.ERROR and "not one value" in several.observed
    # the connection survives the errors
    assert check(run, query_returns, database="app", query="SELECT 1", value="1").outcome is Outcome.PASS


def test_thresholds_compare_numbers_and_intervals(run: Session) -> None:
    below = check(run, query_returns_less_than, database="app", query="SELECT max(total) FROM orders", threshold=25)
    assert below.outcome is Outcome.PASS and below.observed == "returns 20"
    assert check(run, query_returns_less_than, database="app", query="SELECT max(total) FROM orders",
                 threshold=20).outcome is Outcome.FAIL
    age = check(run, query_returns_less_than, database="app", query="SELECT now() - min(created) FROM orders",
                threshold=3600)
    assert age.outcome is Outcome.PASS, age  # an interval counts as seconds
    least = check(run, query_returns_at_least, database="app", query="SELECT count(*) FROM orders", minimum=3)
    assert least.outcome is Outcome.PASS
    assert check(run, query_returns_at_least, database="app", query="SELECT count(*) FROM orders",
                 minimum=4).outcome is Outcome.FAIL
    null = check(run, query_returns_at_least, database="app", query="SELECT max(total) FROM orders WHERE false",
                 minimum=1)
    assert null.outcome is Outcome.FAIL and "NULL" in null.observed
    text = check(run, query_returns_at_least, database="app", query="SELECT 'many'", minimum=1)
    assert text.outcome is Outcome.ERROR and "not a number" in text.observed


# migrations --------------------------------------------------------------------------------------------


def test_an_unapplied_migration_fails_naming_the_current_and_head_revisions(run: Session) -> None:
    result = check(run, database_at_migration_head, database="behind")
    assert result.outcome is Outcome.FAIL, result
    assert FIRST in result.observed and SECOND in result.observed, result.observed
    assert "1 migration(s) not applied: " + SECOND in result.observed and "add orders.customer_id" in result.observed
    assert result.evidence["current"] == [FIRST] and result.evidence["head"] == [SECOND]
    assert "alembic upgrade head" in result.hint
    assert result.manual_command.endswith("-Atc 'SELECT version_num FROM alembic_version'")


def test_a_database_at_the_head_passes_from_the_directory_or_a_configured_head(run: Session) -> None:
    for database in ("head", "pinned"):
        result = check(run, database_at_migration_head, database=database)
        assert result.outcome is Outcome.PASS, result
        assert result.observed == f"at revision {SECOND} (the head)"


def test_migration_state_that_cannot_be_read_is_an_error_and_a_missing_table_a_failure(run: Session) -> None:
    never = check(run, database_at_migration_head, database="empty")
    assert never.outcome is Outcome.FAIL and "no alembic_version table" in never.observed
    unset = check(run, database_at_migration_head, database="nomigrations")
    assert unset.outcome is Outcome.ERROR and "declares no migrations directory" in unset.observed
    broken = check(run, database_at_migration_head, database="broken")
    assert broken.outcome is Outcome.ERROR and "cannot read the alembic migrations" in broken.observed


def test_one_migration_behind_the_head_is_what_downgrade_minus_one_leaves(run: Session) -> None:
    rolled = check(run, database_one_migration_behind, database="rolled")
    assert rolled.outcome is Outcome.PASS and rolled.observed == f"at revision {FIRST}", rolled
    still = check(run, database_one_migration_behind, database="head")
    assert still.outcome is Outcome.FAIL and "the downgrade did not run" in still.observed
    pinned = check(run, database_one_migration_behind, database="pinned")  # a head, but no directory
    assert pinned.outcome is Outcome.ERROR


# replication and capacity ------------------------------------------------------------------------------


@pytest.fixture
def replica_run(tmp_path: Path, postgres: PostgresServer, postgres_replica: PostgresServer,  # noqa: F811
                migrations: Path, databases: dict[str, str]) -> Iterator[Session]:
    def replayed() -> bool:
        with postgres_replica.connect("app") as conn:
            return conn.execute("SELECT to_regclass('orders') IS NOT NULL").fetchone() == (True,)

    wait_for(replayed, 30, "the replica to replay the test databases")
    session = make_run(tmp_path, env_body(postgres, migrations, postgres_replica))
    yield session
    session.stop()


def test_a_caught_up_replica_passes_and_a_primary_fails_as_not_a_replica(replica_run: Session) -> None:
    result = check(replica_run, replica_lag_below, database="replica", seconds=5)
    assert result.outcome is Outcome.PASS, result
    assert result.evidence["replica"] is True and result.evidence["lag_s"] < 5
    primary = check(replica_run, replica_lag_below, database="app", seconds=5)
    assert primary.outcome is Outcome.FAIL and primary.observed.startswith("not a replica"), primary


def test_a_replica_whose_replay_is_paused_falls_behind_and_fails(replica_run: Session, postgres: PostgresServer,  # noqa: F811
                                                                  postgres_replica: PostgresServer) -> None:  # noqa: F811
    with postgres.connect("app") as primary, postgres_replica.connect("app") as replica:
        primary.execute("CREATE TABLE IF NOT EXISTS ticks (at timestamptz)")
        primary.execute("INSERT INTO ticks VALUES (now())")
        wait_for(lambda: replica.execute("SELECT to_regclass('ticks') IS NOT NULL").fetchone() == (True,), 30,
                 "the replica to replay the first write")
        time.sleep(1.2)
        replica.execute("SELECT pg_wal_replay_pause()")
        try:
            primary.execute("INSERT INTO ticks VALUES (now())")
            wait_for(lambda: replica.execute("SELECT pg_last_wal_receive_lsn() > pg_last_wal_replay_lsn()"
                                             ).fetchone() == (True,), 30, "WAL received but not replayed")
            result = check(replica_run, replica_lag_below, database="replica", seconds=1)
        finally:
            replica.execute("SELECT pg_wal_replay_resume()")
    assert result.outcome is Outcome.FAIL, result
    assert "replay paused" in result.observed and result.evidence["lag_s"] >= 1
    assert "pg_wal_replay_resume" in result.hint


def test_connection_headroom(run: Session) -> None:
    result = check(run, connections_below, database="app", percent=90)
    assert result.outcome is Outcome.PASS, result
    assert result.evidence["max_connections"] == 20 and result.evidence["connections"] >= 1
    crowded = check(run, connections_below, database="app", percent=1)
    assert crowded.outcome is Outcome.FAIL and "of 20 connections" in crowded.observed


# configuration and capability --------------------------------------------------------------------------


@pytest.mark.parametrize(("table", "message"), [
    ('app = { dsn = "postgresql://h/db", port = 5 }', "unknown key 'port'"),
    ('app = { dsn = "postgresql://h/db", statement_timeout_ms = 0 }', "statement_timeout_ms must be"),
    ('app = { dsn = "postgresql://h/db", migrations = "m", head = "abc" }', "not both"),
    ('app = { dsn = "postgresql://h/db", head = "not a revision!" }', "head must be a revision id"),
    ('app = { dsn = "postgresql://h/db", version_table = "x; drop" }', "version_table must be"),
    ('app = "host=h port=notaport dbname=x zz=1"', "libpq cannot read it"),
    ("app = 5", "must be a DSN or a table"),
])
def test_bad_database_settings_are_refused_naming_the_line(tmp_path: Path, table: str, message: str) -> None:
    path = tmp_path / "runbooks.toml"
    path.write_text(f"[environments.test]\n{AWS}[environments.test.postgres]\n{table}\n")
    with pytest.raises(ConfigError, match=message) as raised:
        load_config(path)
    assert ":4" in str(raised.value) or raised.value.args  # the line of the database


def test_migrations_are_relative_to_the_configuration_and_scenarios_need_a_database(tmp_path: Path) -> None:
    path = tmp_path / "runbooks.toml"
    path.write_text(f"[environments.test]\n{AWS}[environments.test.postgres]\n"
                    'app = { dsn = "postgresql://u@h/db", migrations = "db/migrations" }\n'
                    f"[environments.none]\n{AWS}")
    config = load_config(path)
    assert config.environment("test").postgres["app"].migrations == tmp_path / "db" / "migrations"
    assert missing_capability(config.environment("test"), {"requires:postgres"}) is None
    reason = missing_capability(config.environment("none"), {"requires:postgres"})
    assert reason and "declares no PostgreSQL database" in reason


# the password in outputs -------------------------------------------------------------------------------


def test_the_dsn_password_appears_in_no_output_of_a_run(tmp_path: Path, postgres: PostgresServer,  # noqa: F811
                                                         databases: dict[str, str], capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNBOOKS_TEST_PG_PASSWORD", PASSWORD)
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "db.feature").write_text(textwrap.dedent("""\
        @owner:test @severity:high
        Feature: The database

          @requires:postgres
          Scenario: Reads
            Then the database "app" accepts connections within 5000 ms
            And the query "SELECT count(*) FROM orders" on the database "app" returns "3"
            And the query "SELECT current_setting('is_superuser')" on the database "env" returns "off"
            And the query "INSERT INTO orders VALUES (7, 1) RETURNING id" on the database "app" returns "7"
            And the database "down" accepts connections within 1000 ms
            And the query "SELECT 1" on the database "down" returns "1"
        """))
    port = postgres.port
    (tmp_path / "runbooks.toml").write_text(
        f"[environments.ci]\n{AWS}[environments.ci.postgres]\n"
        f'app = "postgresql://postgres:{PASSWORD}@127.0.0.1:{port}/app"\n'
        f'env = {{ dsn = "postgresql://postgres:${{RUNBOOKS_TEST_PG_PASSWORD}}@127.0.0.1:{port}/app" }}\n'
        f'down = "host=127.0.0.1 port={free_port()} dbname=app user=postgres password={PASSWORD}"\n')
    reports = tmp_path / "reports"
    code = cli_main(["verify", "--config", str(tmp_path / "runbooks.toml"), "--report-dir", str(reports)])
    captured = capsys.readouterr()
    assert code == 1, captured.out + captured.err
    results = json.loads((reports / "results.json").read_text())["results"]
    outcomes = [r["outcome"] for r in results]
    assert outcomes == ["pass", "pass", "fail", "error", "fail", "error"], [(r["step"], r["observed"])
                                                                            for r in results]
    outputs = {"stdout": captured.out, "stderr": captured.err, "results.json": (reports / "results.json").read_text(),
               "junit.xml": (reports / "junit.xml").read_text()}
    for name, text in outputs.items():
        assert PASSWORD not in text, f"the password leaked into {name}"
    assert "PostgreSQL refused a write" in outputs["results.json"]
