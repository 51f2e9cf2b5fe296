"""A real OpenSSH server on 127.0.0.1 for the host steps: its own host key, client keys, config and port.

It listens on 127.0.0.1 only, accepts only the generated client key (no passwords), and touches nothing
of the machine's own sshd configuration. When ``/run/sshd.pid`` is free it writes its pid there, so that
the machine's real SysV ``ssh`` init script reports the service running (a real service-manager answer
without systemd); otherwise it keeps its pid file private.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REQUIRE_ENV = "RUNBOOKS_REQUIRE_SSHD"  # CI sets it: a missing sshd is then a failure, not a skip
SSHD = "/usr/sbin/sshd"
SYSTEM_PIDFILE = Path("/run/sshd.pid")
START_TIMEOUT_S = 15.0


def unavailable(reason: str) -> None:
    """Skip the sshd tests, or fail them when CI requires a real sshd."""
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason} (and {REQUIRE_ENV}=1 requires the sshd tests)", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pid_alive(path: Path) -> bool:
    try:
        pid = int(path.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return True


@dataclass(frozen=True)
class SshServer:
    """What the tests need to reach the server: testinfra URLs for both SSH backends, and bad variants."""

    port: int
    user: str
    directory: Path
    client_key: Path
    wrong_key: Path
    client_config: Path  # an ssh_config with host-key checking off (the host key is new every session)
    pid: int
    system_pidfile: bool  # True when `service ssh status` on this machine sees this server

    def url(self, scheme: str = "paramiko", *, key: Path | None = None, port: int | None = None,
            timeout: int = 5) -> str:
        return (f"{scheme}://{self.user}@127.0.0.1:{port or self.port}?ssh_identity_file={key or self.client_key}"
                f"&ssh_config={self.client_config}&timeout={timeout}")

    @property
    def paramiko_url(self) -> str:
        return self.url("paramiko")

    @property
    def ssh_url(self) -> str:
        return self.url("ssh")


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "runbooks-test", "-f", str(path)],
                   check=True, capture_output=True, timeout=30)


def _wait_for_banner(port: int, process: subprocess.Popen[bytes], deadline: float) -> bool:
    """True once the server answers with an SSH banner; False if it exited or the deadline passed."""
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.settimeout(2)
                if sock.recv(64).startswith(b"SSH-"):
                    return True
        except OSError:
            time.sleep(0.05)  # bounded by the deadline: the port is not bound yet
    return False


def start_sshd(directory: Path) -> tuple[SshServer, subprocess.Popen[bytes]]:
    if not os.path.isfile(SSHD):
        unavailable(f"{SSHD} not found (apt-get install openssh-server)")
    if shutil.which("ssh-keygen") is None:
        unavailable("ssh-keygen not found (apt-get install openssh-client)")
    user = getpass.getuser()
    for name in ("host_key", "client_key", "wrong_key"):
        _keygen(directory / name)
    authorized = directory / "authorized_keys"
    authorized.write_text((directory / "client_key.pub").read_text())
    authorized.chmod(0o600)
    client_config = directory / "ssh_config"
    client_config.write_text("StrictHostKeyChecking no\nUserKnownHostsFile /dev/null\nLogLevel ERROR\n")
    if os.geteuid() == 0:
        # privilege separation directory; the Debian package creates it only when its service starts
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    system_pidfile = os.geteuid() == 0 and not _pid_alive(SYSTEM_PIDFILE)
    pidfile = SYSTEM_PIDFILE if system_pidfile else directory / "sshd.pid"
    log = directory / "sshd.log"
    last_error = ""
    for _attempt in range(3):  # a free port can be taken between probing and binding
        port = free_port()
        config = directory / "sshd_config"
        config.write_text(
            "\n".join([
                "ListenAddress 127.0.0.1",
                f"Port {port}",
                f"HostKey {directory / 'host_key'}",
                f"AuthorizedKeysFile {authorized}",
                f"PidFile {pidfile}",
                "StrictModes no",
                "UsePAM no",
                "PermitRootLogin prohibit-password",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PubkeyAuthentication yes",
                "LogLevel VERBOSE",
            ]) + "\n"
        )
        with log.open("ab") as log_file:
            process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=log_file,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        if _wait_for_banner(port, process, time.monotonic() + START_TIMEOUT_S):
            server = SshServer(port, user, directory, directory / "client_key", directory / "wrong_key",
                               client_config, process.pid, system_pidfile)
            return server, process
        stop_sshd(process, pidfile)
        last_error = log.read_text(errors="replace")[-2000:]
    raise RuntimeError(f"sshd did not start on 127.0.0.1 (log {log}):\n{last_error}")


def stop_sshd(process: subprocess.Popen[bytes], pidfile: Path | None = None) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
    if pidfile is not None and pidfile.exists():
        try:
            if int(pidfile.read_text().strip()) == process.pid:
                pidfile.unlink()
        except (OSError, ValueError):
            pass


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    """A running sshd on 127.0.0.1 for the whole session (skipped without sshd unless CI requires it)."""
    server, process = start_sshd(tmp_path_factory.mktemp("sshd"))
    yield server
    stop_sshd(process, SYSTEM_PIDFILE if server.system_pidfile else server.directory / "sshd.pid")
