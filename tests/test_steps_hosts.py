"""Host steps against the local machine (``local://``) and a real sshd on 127.0.0.1 (paramiko and OpenSSH).

Both transports reach the same machine, so each fact can be compared with what the test itself reads.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import subprocess
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runbooks.cli import main as cli_main
from runbooks.config import load_config
from runbooks.result import CheckResult, Outcome
from runbooks.session import Session
from runbooks.steps import hosts
from runbooks.steps.hosts import (
    file_exists,
    filesystem_free,
    memory_below,
    package_installed,
    parse_df,
    port_listening,
    process_running,
    service_running,
    service_verdict,
)
from runbooks.targets.hosts import HostConnection, display_url
from tests.conftest import evaluate
from tests.support.sshd import SshServer, free_port, sshd  # noqa: F401 - sshd is a fixture

GIB = 1024**3
MISSING = "runbooks-no-such-thing"


# fixtures --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def blackhole() -> Iterator[int]:
    """A port on 127.0.0.1 whose accept queue is full: new connections get no answer (a real timeout)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    held = []
    try:
        for _ in range(8):
            try:
                held.append(socket.create_connection(("127.0.0.1", port), timeout=0.5))
            except TimeoutError:
                break
        else:
            pytest.fail("could not fill the accept queue of the blackhole port")
        yield port
    finally:
        for conn in held:
            conn.close()
        server.close()


def write_env(directory: Path, hosts_table: dict[str, str], name: str = "test") -> Path:
    # aws target "endpoint": no moto to start; host checks never call AWS
    lines = [f"[environments.{name}]",
             'aws = { target = "endpoint", url = "http://127.0.0.1:9", region = "us-east-1" }',
             f"[environments.{name}.hosts]"]
    lines += [f'{key} = "{url}"' for key, url in hosts_table.items()]
    path = directory / "runbooks.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def start_run(directory: Path, hosts_table: dict[str, str]) -> Session:
    config = load_config(write_env(directory, hosts_table))
    return Session(config, config.environment("test")).start()


def host_table(server: SshServer, blackhole_port: int) -> dict[str, str]:
    closed = free_port()
    return {
        "web": "local://",
        "bastion": server.paramiko_url,
        "jump": server.ssh_url,
        "closed": server.url("paramiko", port=closed),
        "closed_ssh": server.url("ssh", port=closed),
        "wrongkey": server.url("paramiko", key=server.wrong_key),
        "wrongkey_ssh": server.url("ssh", key=server.wrong_key),
        "blackhole": server.url("paramiko", port=blackhole_port, timeout=1),
    }  # an unknown scheme (nosuchscheme://) is refused when runbooks.toml loads: tests/test_bad_input.py


@pytest.fixture(scope="module")
def run(sshd: SshServer, blackhole: int, tmp_path_factory: pytest.TempPathFactory  # noqa: F811
        ) -> Iterator[Session]:
    """One run for the module: its connections are reused by every check, as in a real run."""
    started = start_run(tmp_path_factory.mktemp("hosts-env"), host_table(sshd, blackhole))
    yield started
    started.stop()


@pytest.fixture
def check(run: Session) -> Callable[..., CheckResult]:
    def call(func: Callable[..., CheckResult], **args: object) -> CheckResult:
        return evaluate(run, func, **args)

    return call


def label(run: Session, name: str) -> str:
    return f"host {name} ({display_url(run.env.hosts[name])})"


def assert_result(result: CheckResult, outcome: Outcome, *observed: str) -> None:
    assert result.outcome is outcome, result
    assert result.expected, result  # ERRORs too say what was to be checked
    for text in observed:
        assert text in result.observed, result
    if outcome is not Outcome.PASS:
        assert result.hint, result
    assert result.manual_command, result


ALL = ["web", "bastion", "jump"]  # local, paramiko, OpenSSH client


# services --------------------------------------------------------------------------------------


def test_service_missing_is_fail_on_every_transport(check, run):
    for name in ALL:
        result = check(service_running, host=name, name=MISSING)
        assert_result(result, Outcome.FAIL, f"no service named {MISSING}")
        assert result.resource == label(run, name)
        assert result.expected == f"service {MISSING} running"


@pytest.mark.parametrize("name", ["web", "bastion"])
def test_service_running_through_sysv_init(check, sshd, name):  # noqa: F811
    if os.path.isdir("/run/systemd/system") or not sshd.system_pidfile:
        pytest.skip("needs a machine without systemd whose /run/sshd.pid the test sshd could take")
    result = check(service_running, host=name, name="ssh")
    assert_result(result, Outcome.PASS, "running (SysV init")
    assert result.manual_command.endswith("service ssh status")


def test_service_without_any_service_manager_is_error(tmp_path, monkeypatch):
    # A container without an init system: no systemd, no `service`, no /etc/init.d on the PATH or disk.
    monkeypatch.setattr(hosts, "SYSTEMD_RUNTIME_DIR", str(tmp_path / "no-systemd"))
    monkeypatch.setattr(hosts, "SBIN_DIRS", (str(tmp_path / "no-sbin"),))
    monkeypatch.setattr(hosts, "INIT_D", str(tmp_path / "no-init.d"))
    monkeypatch.setenv("PATH", str(tmp_path))
    run = start_run(tmp_path, {"box": "local://"})
    try:
        result = evaluate(run, service_running, host="box", name="nginx")
    finally:
        run.stop()
    assert_result(result, Outcome.ERROR, "no service manager answered")
    assert 'the process "nginx" is running' in result.hint


@pytest.mark.parametrize(
    ("manager", "rc", "stdout", "stderr", "load", "outcome", "observed"),
    [
        ("systemd", 0, "active\n", "", "", Outcome.PASS, "active (systemd)"),
        ("systemd", 3, "inactive\n", "", "loaded", Outcome.FAIL, "inactive (systemd)"),
        ("systemd", 3, "failed\n", "", "loaded", Outcome.FAIL, "failed (systemd)"),
        ("systemd", 4, "inactive\n", "", "not-found", Outcome.FAIL, "no systemd unit named nginx"),
        ("systemd", 1, "", "Failed to connect to bus: No such file or directory", "", Outcome.ERROR,
         "Failed to connect to bus"),
        ("sysv", 3, "nginx is not running ... failed!", "", "", Outcome.FAIL, "not running (SysV init, status exit 3"),
        ("sysv", 4, "", "cannot determine", "", Outcome.ERROR, "could not tell the state"),
        ("openrc", 1, "", " * rc-service: service `nginx' does not exist", "", Outcome.FAIL, "no service named"),
        ("openrc", 3, " * status: stopped", "", "", Outcome.FAIL, "status: stopped"),
    ],
)
def test_service_verdicts_per_manager(manager, rc, stdout, stderr, load, outcome, observed):
    # systemd and OpenRC cannot run here: their answers are interpreted from their documented outputs.
    call = hosts.HostCall(HostConnection("local://", "host h (local://)"), "service nginx running", "cmd")
    result = service_verdict(call, manager, "nginx", rc, stdout, stderr, load)
    assert result.outcome is outcome, result
    assert observed in result.observed, result
    assert (result.resource, result.expected, result.manual_command) == ("host h (local://)",
                                                                         "service nginx running", "cmd")


# ports -----------------------------------------------------------------------------------------


def listener(address: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    sock.bind((address, 0))
    sock.listen(1)
    return sock


def _ipv6() -> bool:
    try:
        listener("::").close()
    except OSError:
        return False
    return True


@pytest.mark.parametrize(
    ("address", "shown"),
    [
        ("127.0.0.1", "127.0.0.1"),
        # Bound to every address: testinfra's socket("tcp://127.0.0.1:P").is_listening says False here.
        ("0.0.0.0", "0.0.0.0"),
        pytest.param("::", "[::]", marks=pytest.mark.skipif(not _ipv6(), reason="no IPv6 on this machine")),
    ],
)
def test_port_listening_whatever_the_bind_address(check, address, shown):
    with listener(address) as sock:
        port = sock.getsockname()[1]
        for name in ("web", "bastion"):
            result = check(port_listening, host=name, port=port)
            assert_result(result, Outcome.PASS, f"{shown}:{port}")
            assert result.manual_command == f"ss -ltn 'sport = :{port}'"


def test_port_not_listening_is_fail(check, sshd):  # noqa: F811
    port = free_port()
    for name in ("web", "jump"):
        result = check(port_listening, host=name, port=port)
        assert_result(result, Outcome.FAIL, f"nothing listens on TCP port {port}")
        # the listening ports are listed (the first 20): the test sshd among them unless other servers run
        assert str(sshd.port) in result.observed or " more)" in result.observed, result
        assert result.expected == f"a socket listening on TCP port {port}"


def test_port_out_of_range_is_error(check):
    assert_result(check(port_listening, host="web", port=70000), Outcome.ERROR, "not a TCP port")


def test_listener_addresses_from_testinfra_socket_list():
    sockets = ["tcp://0.0.0.0:80", "tcp://:::80", "tcp://127.0.0.1:8080", "tcp://10.0.0.5:443",
               "unix:///run/x.sock", "udp://0.0.0.0:80", "tcp://127.0.0.53%lo:53"]
    assert hosts._tcp_listeners(sockets, 80) == ["0.0.0.0:80", "[::]:80"]
    assert hosts._tcp_listeners(sockets, 443) == ["10.0.0.5:443"]
    assert hosts._tcp_listeners(sockets, 53) == ["127.0.0.53%lo:53"]
    assert hosts._tcp_listeners(sockets, 22) == []


# files and processes ---------------------------------------------------------------------------


def test_file_exists_and_missing(check, tmp_path):
    present = tmp_path / "present.conf"
    present.write_text("hello")
    for name in ALL:
        assert_result(check(file_exists, host=name, path=str(present)), Outcome.PASS,
                      "exists (regular file, 5 bytes")
    for name in ("web", "bastion"):
        result = check(file_exists, host=name, path=str(tmp_path / "absent.conf"))
        assert_result(result, Outcome.FAIL, "no such file or directory")
        assert result.manual_command == f"ls -ld {tmp_path / 'absent.conf'}"


def test_process_running_and_missing(check, sshd):  # noqa: F811
    own = Path("/proc/self/comm").read_text().strip()
    result = check(process_running, host="web", name=own)
    assert_result(result, Outcome.PASS, f"pid {os.getpid()}:")
    result = check(process_running, host="bastion", name="sshd")
    assert_result(result, Outcome.PASS, f"pid {sshd.pid}:")
    for name in ("web", "jump"):
        result = check(process_running, host=name, name=MISSING)
        assert_result(result, Outcome.FAIL, "no process named runbooks-no-su")  # comm keeps 15 characters


def test_process_with_a_long_name_matches_its_truncated_comm(check, tmp_path):
    binary = tmp_path / "runbooks-long-process-name"
    shutil.copy(shutil.which("sleep") or "/bin/sleep", binary)
    process = subprocess.Popen([str(binary), "30"])
    try:
        result = check(process_running, host="bastion", name=binary.name)
        assert_result(result, Outcome.PASS, f"pid {process.pid}:")
        assert result.manual_command == "ps -C runbooks-long-p -o pid,user,args"
    finally:
        process.kill()
        process.wait(timeout=10)


# capacity --------------------------------------------------------------------------------------


def root_free_percent() -> int:
    st = os.statvfs("/")
    used = st.f_blocks - st.f_bfree
    return math.floor(st.f_bavail * 100 / (used + st.f_bavail))


def test_filesystem_free_space_pass_and_fail(check):
    free = root_free_percent()
    for name in ("web", "bastion"):
        result = check(filesystem_free, host=name, mount="/", percent=max(0, free - 1))
        assert_result(result, Outcome.PASS, "% free (")
        assert abs(int(result.observed.split("%")[0]) - free) <= 1, result
        size = os.statvfs("/").f_blocks * os.statvfs("/").f_frsize / GIB
        assert f"of {size:.1f} GiB)" in result.observed, result
    if free <= 97:
        result = check(filesystem_free, host="jump", mount="/", percent=free + 2)
        assert_result(result, Outcome.FAIL, "% free (")
        assert result.expected == f"at least {free + 2}% free"
        assert result.manual_command == "df -P /"


def test_filesystem_missing_path_is_fail_and_subdirectory_names_its_mount(check, tmp_path):
    result = check(filesystem_free, host="web", mount=str(tmp_path / "nope"), percent=1)
    assert_result(result, Outcome.FAIL, "does not exist")
    result = check(filesystem_free, host="bastion", mount=str(tmp_path), percent=0)
    assert_result(result, Outcome.PASS, "on the filesystem mounted on /")


def test_parse_df_handles_spaces_in_the_mount_point():
    usage = parse_df("Filesystem 1024-blocks Used Available Capacity Mounted on\n"
                     "/dev/sdb1 1000 750 250 75% /mnt/my disk\n")
    assert (usage.mounted_on, usage.size_bytes, usage.available_bytes) == ("/mnt/my disk", 1024000, 256000)
    assert usage.free_ratio == 0.25
    with pytest.raises(ValueError, match="no filesystem line"):
        parse_df("df: /x: No such file or directory\n")


def test_memory_usage_pass_and_fail(check):
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GIB
    for name in ("web", "bastion"):
        result = check(memory_below, host=name, percent=100)
        assert_result(result, Outcome.PASS, "% used (", f"of {total:.1f} GiB;", "available")
    result = check(memory_below, host="jump", percent=1)
    assert_result(result, Outcome.FAIL, "% used (")
    assert result.expected == "memory usage below 1%"


def test_package_installed_and_missing(check):
    if shutil.which("dpkg-query") is None:
        pytest.skip("the package tests read dpkg (Debian/Ubuntu)")
    version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "openssh-server"], capture_output=True,
                             text=True, check=False).stdout
    for name in ("web", "jump"):
        result = check(package_installed, host=name, name="openssh-server")
        assert_result(result, Outcome.PASS, f"installed {version} (debian)")
        assert result.manual_command.startswith("dpkg-query -W")
    for name in ("web", "bastion"):
        result = check(package_installed, host=name, name=MISSING)
        assert_result(result, Outcome.FAIL, "not installed (debian)")


# unreachable hosts -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "observed"),
    [
        ("closed", "connection refused by 127.0.0.1:"),
        ("closed_ssh", "connection refused by 127.0.0.1:"),
        ("wrongkey", "ssh authentication failed for"),
        ("wrongkey_ssh", "ssh authentication failed for"),
        ("blackhole", "no answer from 127.0.0.1:"),
    ],
)
def test_unreachable_host_is_error(check, run, name, observed):
    result = check(file_exists, host=name, path="/etc/passwd")
    assert_result(result, Outcome.ERROR, "cannot reach the host: ", observed)
    assert result.resource == label(run, name)
    assert (result.expected, result.manual_command) == ("/etc/passwd exists", "ls -ld /etc/passwd")
    assert "ssh_identity_file" not in result.resource  # the key path stays out of the report


def test_unreachable_host_is_tried_once_per_run(check):
    started = time.perf_counter()
    first = check(memory_below, host="blackhole", percent=90)  # tried by the parametrized test or now
    second = check(port_listening, host="blackhole", port=22)
    took = time.perf_counter() - started
    assert first.outcome is second.outcome is Outcome.ERROR
    assert first.observed == second.observed
    assert took < 2.5, took  # one 1 s connection timeout at most, not one per step


def test_undeclared_host_is_error(check):
    result = check(file_exists, host="nowhere", path="/etc/passwd")
    assert result.outcome is Outcome.ERROR
    assert "host 'nowhere' is not defined by environment 'test'" in result.observed


def test_a_run_opens_its_own_connections_and_closes_them(tmp_path, sshd):  # noqa: F811
    import testinfra.host

    run = start_run(tmp_path, {"bastion": sshd.paramiko_url})
    assert evaluate(run, file_exists, host="bastion", path="/etc/passwd").outcome is Outcome.PASS
    connection = run.targets["hosts"].connection("bastion")  # the run's own, opened by the check
    transport = connection.host.backend.client.get_transport()
    assert transport.is_active()
    run.stop()
    assert not transport.is_active()
    assert not any(key[0] == sshd.paramiko_url for key in testinfra.host.Host._host_cache)


def test_display_url_drops_query_and_password():
    assert display_url("ssh://ops:s3cret@db.example.com:2222?ssh_identity_file=/k") == \
        "ssh://ops@db.example.com:2222"
    assert display_url("local://") == "local://"


# end to end ------------------------------------------------------------------------------------


def test_cli_runs_a_host_runbook(tmp_path, sshd, capsys):  # noqa: F811
    write_env(tmp_path, {"web": "local://", "bastion": sshd.paramiko_url}, name="hosts")
    feature = tmp_path / "features" / "hosts.feature"
    feature.parent.mkdir()
    feature.write_text(textwrap.dedent(f"""\
        Feature: Host health
          Scenario: The bastion serves SSH
            Then on host "bastion", the process "sshd" is running
            And on host "bastion", port {sshd.port} is listening
            And on host "web", the file "/etc/passwd" exists
            And on host "web", memory usage is below 100%

          Scenario: A file that is not there
            Then on host "bastion", the file "/{MISSING}" exists
        """))
    reports = tmp_path / "reports"
    code = cli_main(["verify", str(feature), "--config", str(tmp_path / "runbooks.toml"), "--env", "hosts",
                     "--report-dir", str(reports)])
    out = capsys.readouterr().out
    print(out)
    assert code == 1, out
    records = json.loads((reports / "results.json").read_text())["results"]
    outcomes = [(r["step"].split(", ", 1)[1], r["outcome"]) for r in records]
    assert outcomes == [
        ('the process "sshd" is running', "pass"),
        (f"port {sshd.port} is listening", "pass"),
        ('the file "/etc/passwd" exists', "pass"),
        ("memory usage is below 100%", "pass"),
        (f'the file "/{MISSING}" exists', "fail"),
    ], out
    failed = records[-1]
    assert failed["resource"].startswith("host bastion (paramiko://")
    assert "no such file or directory" in failed["observed"]
    assert failed["manual_command"] == f"ls -ld /{MISSING}"
    assert "no such file or directory" in out
