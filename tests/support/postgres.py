"""Real PostgreSQL servers on 127.0.0.1 for the database steps: a primary and a streaming replica.

Each server is a throwaway cluster (``initdb`` into a temporary directory owned by the ``postgres`` user,
its socket in that directory, a free port), stopped and removed at teardown. It touches nothing of the
machine's own clusters. The superuser ``postgres`` authenticates by password over TCP (scram), so the
tests can check that the password never reaches an output.

Skipped when the server binaries are missing (or root cannot run them as ``postgres``), unless
``RUNBOOKS_REQUIRE_POSTGRES=1`` (CI), which makes that a failure.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.sshd import free_port

REQUIRE_ENV = "RUNBOOKS_REQUIRE_POSTGRES"  # CI sets it: missing PostgreSQL binaries are then a failure
PASSWORD = "s3cret-Pg-pass"  # long and distinctive: the redaction tests look for it in every output
START_TIMEOUT_S = 30


def unavailable(reason: str) -> None:
    """Skip the PostgreSQL tests, or fail them when CI requires a real server."""
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason} (and {REQUIRE_ENV}=1 requires the PostgreSQL tests)", pytrace=False)
    pytest.skip(reason)


def bin_dir() -> Path:
    """The server binaries: PG_BIN, else the newest /usr/lib/postgresql/*/bin, else initdb on PATH."""
    explicit = os.environ.get("PG_BIN")
    candidates = [explicit] if explicit else sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                                                     key=lambda p: int(p.split("/")[-2]), reverse=True)
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(str(Path(on_path).parent))
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").is_file() and (Path(candidate) / "pg_ctl").is_file():
            return Path(candidate)
    unavailable("PostgreSQL server binaries not found (apt-get install postgresql; or set PG_BIN)")
    raise AssertionError("unreachable")


def _as_postgres(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run a server binary as the ``postgres`` user when we are root (initdb and postgres refuse root)."""
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=120, **kwargs)  # type: ignore[call-overload, no-any-return]


@dataclass
class PostgresServer:
    """One running cluster: its port, data directory, and DSNs (with the password, as runbooks.toml has it)."""

    bin: Path
    root: Path
    port: int
    password: str = PASSWORD

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    def dsn(self, dbname: str = "postgres", user: str = "postgres", password: str | None = None) -> str:
        return f"postgresql://{user}:{password or self.password}@127.0.0.1:{self.port}/{dbname}"

    def connect(self, dbname: str = "postgres", autocommit: bool = True):  # type: ignore[no-untyped-def]
        """A superuser connection for the test's own setup (never through the steps)."""
        import psycopg

        return psycopg.connect(self.dsn(dbname), autocommit=autocommit, connect_timeout=5)

    def start(self) -> None:
        result = _as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w",
                               "-t", str(START_TIMEOUT_S), "-o", f"-k {self.root} -p {self.port} -h 127.0.0.1",
                               "start"])
        if result.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed: {result.stdout}{result.stderr}\n{self.log_tail()}")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            _as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"])

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _private_root() -> Path:
    root = Path(tempfile.mkdtemp(prefix="rbpg."))  # short: the socket path must stay under 108 bytes
    if os.geteuid() == 0:
        try:
            entry = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(root, ignore_errors=True)
            unavailable("no 'postgres' user to run the server as (we are root, and postgres refuses root)")
        os.chown(root, entry.pw_uid, entry.pw_gid)
    return root


def start_primary() -> PostgresServer:
    """initdb (scram password for TCP, trust on the socket) and start a primary that allows replication."""
    server = PostgresServer(bin_dir(), _private_root(), free_port())
    pwfile = server.root / "pwfile"
    pwfile.write_text(PASSWORD + "\n")
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(pwfile, entry.pw_uid, entry.pw_gid)
    result = _as_postgres([str(server.bin / "initdb"), "-D", str(server.data), "-U", "postgres", "--pwfile",
                           str(pwfile), "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
                           "--no-instructions"])
    if result.returncode != 0:
        server.cleanup()
        raise RuntimeError(f"initdb failed: {result.stdout}{result.stderr}")
    with (server.data / "postgresql.conf").open("a") as conf:
        conf.write("fsync = off\nwal_level = replica\nmax_wal_senders = 4\nmax_connections = 20\n"
                   "shared_buffers = 16MB\n")
    _start(server)
    return server


def start_replica(primary: PostgresServer) -> PostgresServer:
    """A streaming replica of ``primary``: pg_basebackup -R into a new directory, then start it."""
    replica = PostgresServer(primary.bin, _private_root(), free_port())
    env = {**os.environ, "PGPASSWORD": primary.password}
    command = [str(primary.bin / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
               "-D", str(replica.data), "-R", "-X", "stream", "-c", "fast"]
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", "env", f"PGPASSWORD={primary.password}", *command]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120, env=env)
    if result.returncode != 0:
        replica.cleanup()
        raise RuntimeError(f"pg_basebackup failed: {result.stdout}{result.stderr}")
    _start(replica)
    return replica


def _start(server: PostgresServer) -> None:
    for _attempt in range(3):  # a free port can be taken between probing and binding
        try:
            server.start()
            return
        except RuntimeError:
            if "could not bind" not in server.log_tail():
                server.cleanup()
                raise
            server.port = free_port()
    server.cleanup()
    raise RuntimeError(f"PostgreSQL did not start:\n{server.log_tail()}")


def wait_for(predicate, timeout_s: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(0.1)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A running PostgreSQL primary on 127.0.0.1 for the whole session (password auth over TCP)."""
    server = start_primary()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def postgres_replica(postgres: PostgresServer) -> Iterator[PostgresServer]:
    """A streaming replica of the session's primary, caught up before it is handed out."""
    replica = start_replica(postgres)
    try:
        def streaming() -> bool:
            with postgres.connect() as conn:
                row = conn.execute("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'").fetchone()
                return bool(row and row[0])

        wait_for(streaming, START_TIMEOUT_S, "the replica to stream from the primary")
        yield replica
    finally:
        replica.cleanup()
