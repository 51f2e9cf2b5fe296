"""A real, private Docker engine for the tests: its own socket, data root and exec root under /tmp.

No iptables, no bridge, vfs storage: it needs root but touches nothing of the host's own engine.
Containers must use ``network_mode="none"`` (or ``"host"``). Images are built ``FROM scratch`` with a
static busybox, so no registry is needed.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import docker
import pytest

REQUIRE_ENV = "RUNBOOKS_REQUIRE_DOCKER"  # CI sets it: a missing engine is then a failure, not a skip
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 20
BUSYBOX = ("/bin/busybox", "/usr/bin/busybox")


def unavailable(reason: str) -> None:
    """Skip the docker tests, or fail them when CI requires a real engine."""
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason} (and {REQUIRE_ENV}=1 requires the Docker tests)", pytrace=False)
    pytest.skip(reason)


def busybox_path() -> str:
    for path in BUSYBOX:
        if os.path.isfile(path):
            return path
    unavailable("static busybox not found (apt-get install busybox-static)")
    raise AssertionError("unreachable")


class Dockerd:
    """One dockerd process; :attr:`url` is its ``unix://`` socket."""

    def __init__(self) -> None:
        # mkdtemp directly under /tmp: a unix socket path must stay under 108 bytes
        self.root = Path(tempfile.mkdtemp(prefix="rbd.", dir="/tmp"))
        self.socket = self.root / "docker.sock"
        self.url = f"unix://{self.socket}"
        self.log = self.root / "dockerd.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Dockerd:
        command = [
            "dockerd", "--iptables=false", "--ip-forward=false", "--ip-masq=false", "--bridge=none",
            "--storage-driver=vfs",
            "--data-root", str(self.root / "data"), "--exec-root", str(self.root / "exec"),
            "--pidfile", str(self.root / "dockerd.pid"), "-H", self.url,
        ]  # fmt: skip
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dockerd exited with {self.process.returncode}:\n{self.log_tail()}")
            if self.ping():
                return self
            time.sleep(0.1)  # polling interval of a bounded wait, not a synchronisation
        self.stop()
        raise RuntimeError(f"dockerd did not answer /_ping within {START_TIMEOUT_S} s:\n{self.log_tail()}")

    def ping(self) -> bool:
        """``GET /_ping`` straight on the socket: answers ``OK`` once the engine serves its API."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(2)
                sock.connect(str(self.socket))
                sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
                answer = b""
                while chunk := sock.recv(4096):
                    answer += chunk
        except OSError:
            return False
        return answer.startswith(b"HTTP/1.") and b" 200 " in answer.split(b"\r\n", 1)[0]

    def stop(self) -> None:
        """SIGTERM (dockerd stops its containers and containerd), bounded wait, then SIGKILL."""
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)  # its own session: dockerd and its containerd
                process.wait(timeout=STOP_TIMEOUT_S)

    def cleanup(self) -> None:
        self.stop()
        # vfs layers are plain directories; a leftover mount (rare) is detached before removal
        subprocess.run(["umount", "-R", "-l", str(self.root / "exec")], capture_output=True, check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@contextmanager
def running_dockerd() -> Iterator[Dockerd]:
    """A started engine, stopped and removed on exit; skips (or fails under CI) when it cannot exist."""
    if shutil.which("dockerd") is None:
        unavailable("dockerd is not installed (apt-get install docker.io busybox-static)")
    if os.geteuid() != 0:
        unavailable("dockerd needs root to start a private engine")
    engine = Dockerd()
    try:
        engine.start()
    except BaseException:
        engine.cleanup()
        raise
    try:
        yield engine
    finally:
        engine.cleanup()


def build_image(client: docker.DockerClient, tag: str, dockerfile: str, with_busybox: bool = False) -> str:
    """Build ``tag`` from ``dockerfile`` (no registry: FROM scratch or a local image); returns its id."""
    context = Path(tempfile.mkdtemp(prefix="rbimg."))
    try:
        (context / "Dockerfile").write_text(dockerfile, encoding="utf-8")
        if with_busybox:
            shutil.copy2(busybox_path(), context / "busybox")
        image, _ = client.images.build(path=str(context), tag=tag, rm=True, forcerm=True)
        return str(image.id)
    finally:
        shutil.rmtree(context, ignore_errors=True)


def wait_for(predicate: Callable[[], object], timeout_s: float, what: str, interval_s: float = 0.2) -> None:
    """Poll ``predicate()`` until true, at most ``timeout_s``; raises with ``what`` when it never holds."""
    deadline = time.monotonic() + timeout_s
    while True:
        if predicate():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(interval_s)
