"""Stand-in endpoints on 127.0.0.1: a real moto server process, a closed port, a server that never answers.

The moto server is what an ``endpoint`` target talks to over real HTTP, so the guarded client, the
retries and the error classification run exactly as they do against live AWS.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import boto3
import pytest
import requests

from runbooks.targets.aws_readonly import exempt

CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
START_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    return f"http://127.0.0.1:{free_port()}"


@contextlib.contextmanager
def silent_server() -> Iterator[str]:
    """A TCP server that accepts connections and never sends a byte: every read times out."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:  # listener closed
                return
            held.append(conn)

    thread = threading.Thread(target=accept, name="silent-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        thread.join(timeout=5)
        for conn in held:
            conn.close()


class MotoServer:
    """``python -m moto.server`` as a child process, bound to 127.0.0.1 on a free port."""

    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> MotoServer:
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",  # the access log must reach the file at once
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.answers():
                return self
            try:
                code = self.process.wait(timeout=0.1)  # the poll interval, and it notices an early exit
            except subprocess.TimeoutExpired:
                continue
            raise RuntimeError(
                f"moto server exited with {code}: {self.log.read_text(errors='replace')[-2000:]}"
            )
        self.stop()
        raise RuntimeError(f"moto server did not answer on {self.url} within {START_TIMEOUT_S:g} s")

    def answers(self) -> bool:
        try:
            return requests.get(f"{self.url}/moto-api/data.json", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def state(self) -> dict[str, Any]:
        """Everything the server holds (moto's ``/moto-api/data.json``)."""
        response = requests.get(f"{self.url}/moto-api/data.json", timeout=10)
        response.raise_for_status()
        return response.json()  # type: ignore[no-any-return]

    def requests_seen(self) -> list[str]:
        """The request lines the server logged (werkzeug's access log), e.g. ``PUT /bucket HTTP/1.1``.

        werkzeug colours some lines (a DELETE's 204, any 4xx) with ANSI escapes inside the quotes; they
        are taken out, or those requests would go unseen."""
        text = re.sub(r"\x1b\[[0-9;]*m", "", self.log.read_text(errors="replace"))
        return re.findall(r'"([A-Z]+ \S+ HTTP/[\d.]+)"', text)

    def reset(self) -> None:
        requests.post(f"{self.url}/moto-api/reset", timeout=10).raise_for_status()

    def client(self, service: str, region: str = "us-east-1") -> Any:
        """A plain, unguarded boto3 client against the server (for provisioning and verifying), exempt from
        the process-wide read-only guard of an open endpoint run (runbooks.targets.aws_readonly)."""
        client = exempt(boto3.client(service, region_name=region, endpoint_url=self.url, **CREDENTIALS))
        if service == "s3control":
            # botocore puts the account id in front of the host ({account}.127.0.0.1), which no server has
            client.meta.events.register("before-sign.s3-control", self._same_host)
        return client

    def _same_host(self, request: Any, **_: Any) -> None:
        parts = urlsplit(request.url)
        ours = urlsplit(self.url).netloc
        if parts.netloc.endswith("." + ours):
            request.url = urlunsplit(parts._replace(netloc=ours))

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None


@pytest.fixture(scope="module")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """A moto server process for the module; tests use distinct resource names (or ``reset()``)."""
    server = MotoServer(tmp_path_factory.mktemp("moto-server") / "server.log").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def endpoint_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials the moto server accepts, for runs whose target is ``endpoint``."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
