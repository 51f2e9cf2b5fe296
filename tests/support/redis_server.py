"""Real Redis servers on 127.0.0.1 for the Redis steps: a master (password, maxmemory) and its replica.

Each runs from ``redis-server`` with its own free port and a throwaway working directory, no persistence
(``--save ""``, no AOF), and is stopped and removed at teardown. Skipped when redis-server is missing,
unless ``RUNBOOKS_REQUIRE_REDIS=1`` (CI), which makes that a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.sshd import free_port

REQUIRE_ENV = "RUNBOOKS_REQUIRE_REDIS"  # CI sets it: a missing redis-server is then a failure, not a skip
PASSWORD = "s3cret-Redis-pass"  # distinctive: the redaction tests look for it in every output
MAXMEMORY = 64 * 1024 * 1024
START_TIMEOUT_S = 15.0


def unavailable(reason: str) -> None:
    """Skip the Redis tests, or fail them when CI requires a real server."""
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason} (and {REQUIRE_ENV}=1 requires the Redis tests)", pytrace=False)
    pytest.skip(reason)


@dataclass
class RedisServer:
    root: Path
    port: int
    process: subprocess.Popen[bytes]
    password: str = PASSWORD

    def url(self, db: int = 0, password: str | None = None) -> str:
        return f"redis://:{password or self.password}@127.0.0.1:{self.port}/{db}"

    def client(self):  # type: ignore[no-untyped-def]
        """A client for the test's own setup (CONFIG SET ...), never through the steps."""
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password, decode_responses=True,
                           socket_timeout=5)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self) -> str:
        try:
            return (self.root / "redis.log").read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith((b"+PONG", b"-NOAUTH", b"-LOADING"))
    except OSError:
        return False


def start_redis(*args: str) -> RedisServer:
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable("redis-server not found (apt-get install redis-server)")
    assert binary is not None
    for _attempt in range(3):  # a free port can be taken between probing and binding
        root = Path(tempfile.mkdtemp(prefix="rbredis."))
        port = free_port()
        command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                   "--dir", str(root), "--logfile", str(root / "redis.log"), "--requirepass", PASSWORD,
                   "--maxmemory", str(MAXMEMORY), *args]
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        server = RedisServer(root, port, process)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and process.poll() is None:
            if _answers(port):
                return server
            time.sleep(0.05)
        log = server.log_tail()
        server.stop()
        if "Address already in use" not in log:
            raise RuntimeError(f"redis-server did not start:\n{log}")
    raise RuntimeError("redis-server did not start: no free port")


@pytest.fixture(scope="session")
def redis_master() -> Iterator[RedisServer]:
    """A running Redis master on 127.0.0.1 (password, maxmemory 64 MiB) for the whole session."""
    server = start_redis()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_replica(redis_master: RedisServer) -> Iterator[RedisServer]:
    """A replica of the session's master, linked before it is handed out."""
    server = start_redis("--replicaof", "127.0.0.1", str(redis_master.port), "--masterauth", PASSWORD)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while server.client().info("replication").get("master_link_status") != "up":
            if time.monotonic() > deadline:
                raise RuntimeError(f"the replica did not link to its master:\n{server.log_tail()}")
            time.sleep(0.1)
        yield server
    finally:
        server.stop()
