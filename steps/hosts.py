"""Hosts named per environment, checked through testinfra: services, ports, files, processes, disk, memory,
packages.

Each environment names its hosts with testinfra connection strings::

    [environments.prod.hosts]
    web = "local://"                      # the machine running the checks
    bastion = "paramiko://runner@10.0.0.5:22?ssh_identity_file=/home/ci/.ssh/id_ed25519&timeout=10"
    jump = "ssh://runner@10.0.0.6:22?ssh_identity_file=/home/ci/.ssh/id_ed25519&ssh_config=/etc/runbooks/ssh_config"
    api = "docker://api-container"

- ``paramiko://USER@HOST:PORT?ssh_identity_file=KEY&timeout=S`` (recommended for SSH): one connection per
  host per run, reused by every step. Host keys are accepted without verification (testinfra's default,
  with a warning; an ``ssh_config=FILE`` holding ``StrictHostKeyChecking no`` silences it).
- ``ssh://USER@HOST:PORT?ssh_identity_file=KEY&ssh_config=FILE&timeout=S``: the OpenSSH client, one process
  per command, run with ``-o BatchMode=yes`` so a rejected key is an ERROR instead of a password prompt.
  Host keys follow ``known_hosts`` and the ``ssh_config`` file (``StrictHostKeyChecking``).
- Any other testinfra connection string (``docker://``, ``podman://``, ``kubectl://`` ...) works as well.

A host that cannot be reached (refused, timed out, key rejected, unknown host key) makes every step on it
an ERROR with the reason; the attempt is made once per run.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from runbooks.sdk import CheckContext, CheckResult, Finding, HostConnection, check

TITLE = "Hosts (testinfra)"  # its heading in the step catalogue
CATALOG_ORDER = 90

# Linux keeps only the first 15 characters of a process name (TASK_COMM_LEN - 1) in `comm`.
COMM_LEN = 15
GIB = 1024**3

# Where the service check looks for a service manager (module level so tests can point them elsewhere).
SYSTEMD_RUNTIME_DIR = "/run/systemd/system"  # exists only when systemd is PID 1 (sd_booted)
SBIN_DIRS = ("/usr/sbin", "/sbin")  # `service`/`rc-service` are often not on a non-root user's PATH
INIT_D = "/etc/init.d"


# connections -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class HostCall:
    """One check on one host: the run's connection plus what the check expects and how to see it by hand,
    so that every ERROR carries them too."""

    connection: HostConnection
    expected: str
    manual: str

    @property
    def label(self) -> str:
        return self.connection.label

    @property
    def host(self) -> Any:
        return self.connection.host

    def with_manual(self, manual: str) -> HostCall:
        return HostCall(self.connection, self.expected, manual)

    def passed(self, observed: str) -> CheckResult:
        return CheckResult.passed(self.label, self.expected, observed, manual_command=self.manual)

    def failed(self, observed: str, hint: str) -> CheckResult:
        return CheckResult.failed(self.label, self.expected, observed, hint, manual_command=self.manual)

    def errored(self, observed: str, hint: str) -> CheckResult:
        return CheckResult.errored(self.label, observed, hint, expected=self.expected, manual_command=self.manual)

    @contextlib.contextmanager
    def reading(self, what: str, hint: str) -> Iterator[None]:
        """Turn any failure to read a fact from the host into an ERROR naming the host and what was read."""
        try:
            yield
        except Finding:
            raise
        except Exception as exc:  # noqa: BLE001 - a failure to read is an ERROR, never a PASS or FAIL
            lost = self.connection.lost(exc)
            if lost is not None:
                reason, connection_hint = lost
                raise Finding(self.errored(f"lost the host while trying to {what}: {reason}",
                                           connection_hint)) from None
            detail = " ".join(str(exc).split())[:300] or type(exc).__name__
            raise Finding(self.errored(f"could not {what}: {type(exc).__name__}: {detail}", hint)) from None


def on_host(ctx: CheckContext, name: str, expected: str, manual: str) -> HostCall:
    """The run's connection to the host named ``name``; ERROR (as a Finding) when it cannot be reached."""
    call = HostCall(ctx.hosts.connection(name), expected, manual)
    if call.connection.error:
        raise Finding(call.errored(f"cannot reach the host: {call.connection.error}", call.connection.hint))
    return call


def _first_line(text: str, limit: int = 200) -> str:
    for line in text.splitlines():
        if line.strip():
            return " ".join(line.split())[:limit]
    return ""


def _gib(n_bytes: float) -> str:
    return f"{n_bytes / GIB:.1f} GiB"


def _absolute_path(value: str) -> None:
    if not value.startswith("/"):
        raise ValueError("must be an absolute path (start with /)")


# services --------------------------------------------------------------------------------------


def _service_manager_probe() -> str:
    """A shell snippet printing ``systemd``, ``openrc PATH``, ``sysv PATH``, ``initd`` or ``none``."""
    def find(command: str) -> str:
        candidates = " ".join(f"{d}/{command}" for d in SBIN_DIRS)
        return (f'{{ p=$(command -v {command} 2>/dev/null) || for p in {candidates}; do [ -x "$p" ] && break; '
                f'p=""; done; [ -n "$p" ]; }}')

    return (f"if [ -d {SYSTEMD_RUNTIME_DIR} ]; then echo systemd; "
            f'elif {find("rc-service")}; then echo "openrc $p"; '
            f'elif {find("service")}; then echo "sysv $p"; '
            f"elif [ -d {INIT_D} ]; then echo initd; else echo none; fi")


def service_verdict(call: HostCall, manager: str, name: str, rc: int, stdout: str, stderr: str,
                    load_state: str = "") -> CheckResult:
    """Interpret the status command of ``manager`` (systemd, openrc, sysv, initd) for service ``name``."""
    text = _first_line(stdout) or _first_line(stderr)
    start_hint = {
        "systemd": f"start it (systemctl start {name}) and see why it stopped: systemctl status {name}; "
                   f"journalctl -u {name} -n 50",
        "openrc": f"start it (rc-service {name} start) and read its logs",
    }.get(manager, f"start it (service {name} start) and read its logs; if this host runs services without an "
                   f"init system (a container), check the process instead: the process \"{name}\" is running")
    missing_hint = f"install or enable the {name} service on this host, or correct the service name in the runbook"
    if manager == "systemd":
        state = _first_line(stdout)
        if rc == 0 and state in ("active", "reloading"):
            return call.passed(f"{state} (systemd)")
        if load_state == "not-found":
            return call.failed(f"no systemd unit named {name} (LoadState=not-found)", missing_hint)
        if state in ("inactive", "failed", "activating", "deactivating", "maintenance", "refreshing"):
            return call.failed(f"{state} (systemd)", start_hint)
        return call.errored(f"systemctl gave no service state (exit {rc}): {text or 'no output'}",
                            "check that systemd answers on the host: systemctl is-system-running")
    tool = {"openrc": "OpenRC", "sysv": "SysV init", "initd": "init script"}.get(manager, manager)
    lowered = f"{stdout}\n{stderr}".lower()
    if rc == 0:
        return call.passed(f"running ({tool}: {text or 'status exit 0'})")
    if "unrecognized service" in lowered or "does not exist" in lowered or rc == 127:
        return call.failed(f"no service named {name} ({tool}: {text or f'exit {rc}'})", missing_hint)
    # LSB status codes: 1 dead with pid file, 2 dead with lock file, 3 not running; OpenRC: 3 stopped.
    if rc in (1, 2, 3):
        return call.failed(f"not running ({tool}, status exit {rc}: {text or 'no output'})", start_hint)
    return call.errored(f"{tool} could not tell the state of {name} (status exit {rc}: {text or 'no output'})",
                        f"run the status command by hand on the host: {call.manual}")


@check('on host "{host}", the service "{name}" is running', manual="systemctl is-active {name}")
def service_running(ctx: CheckContext, host: str, name: str) -> CheckResult:
    """The service manager of the host says the service runs: systemd (`systemctl is-active`), else OpenRC
    (`rc-service NAME status`), else SysV init (`service NAME status`, LSB exit codes). FAIL when it is
    stopped, failed or unknown to the manager; ERROR when no service manager answers (a container without
    an init system: check the process or its port instead) or the host cannot be reached."""
    call = on_host(ctx, host, f"service {name} running", f"systemctl is-active {name}")
    with call.reading("find the service manager", "check that /bin/sh works on the host"):
        detected = call.host.run(_service_manager_probe()).stdout.strip().split(maxsplit=1)
    manager = detected[0] if detected else "none"
    tool = detected[1] if len(detected) > 1 else ""
    if manager == "systemd":
        with call.reading(f"ask systemd about {name}", "check that systemctl works on the host"):
            out = call.host.run("systemctl is-active -- %s", name)
            load = ""
            if out.rc != 0:
                load = call.host.run("systemctl show -p LoadState --value -- %s", name).stdout.strip()
        return service_verdict(call, "systemd", name, out.rc, out.stdout, out.stderr, load)
    if manager in ("openrc", "sysv", "initd"):
        command = f"{tool} %s status" if tool else f"{INIT_D}/%s status"
        call = call.with_manual(command.replace("%s", name))
        with call.reading(f"ask the init system about {name}", "check the init script on the host"):
            if manager == "initd" and not call.host.file(f"{INIT_D}/{name}").exists:
                return service_verdict(call, manager, name, 127, "", f"no {INIT_D}/{name}")
            out = call.host.run(command, name)
        return service_verdict(call, manager, name, out.rc, out.stdout, out.stderr)
    return call.errored(
        f"no service manager answered: no systemd running as PID 1, no OpenRC, no SysV `service` or {INIT_D} "
        "on this host (typical of a container), so the state of a service cannot be asked",
        f'check what the service does instead: the process "{name}" is running, or its port is listening',
    )


# ports -----------------------------------------------------------------------------------------


def _tcp_listeners(sockets: list[str], port: int) -> list[str]:
    """``host:port`` of every listening TCP socket on ``port`` in testinfra's ``tcp://HOST:PORT`` list
    (wildcards included: 0.0.0.0, ::, and `*` which testinfra reports as both)."""
    found = []
    for spec in sockets:
        if not spec.startswith("tcp://"):
            continue
        address, _, port_text = spec[len("tcp://"):].rpartition(":")
        if port_text.isdigit() and int(port_text) == port:
            address = address.strip("[]")
            found.append(f"[{address}]:{port}" if ":" in address else f"{address}:{port}")
    return found


def _port_list(sockets: list[str]) -> str:
    ports = sorted({int(s.rpartition(":")[2]) for s in sockets
                    if s.startswith("tcp://") and s.rpartition(":")[2].isdigit()})
    if not ports:
        return "none"
    shown = ", ".join(str(p) for p in ports[:20])
    return shown + (f" and {len(ports) - 20} more" if len(ports) > 20 else "")


def _not_a(what: str, host: str, expected: str, manual: str) -> CheckResult:
    return CheckResult.errored(f"host {host}", what, "correct the runbook", expected=expected, manual_command=manual)


def _port_number(value: str) -> None:
    if not 0 < int(value) < 65536:
        raise ValueError("is not a TCP port number (1-65535)")


def _percentage(value: str) -> None:
    if not 0 <= int(value) <= 100:
        raise ValueError("is not a percentage (0-100)")


@check('on host "{host}", port {port:d} is listening', manual="ss -ltn", validators={"port": _port_number})
def port_listening(ctx: CheckContext, host: str, port: int) -> CheckResult:
    """Some socket on the host listens on the TCP port, whatever address it is bound to (127.0.0.1,
    0.0.0.0, ::, a single interface): read from `ss` (or `netstat`) on the host, so it also sees ports a
    firewall hides from the network."""
    expected, manual = f"a socket listening on TCP port {port}", f"ss -ltn 'sport = :{port}'"
    if not 0 < port < 65536:
        return _not_a(f"{port} is not a TCP port number (1-65535)", host, expected, manual)
    call = on_host(ctx, host, expected, manual)
    with call.reading("list the listening sockets", "install iproute2 (ss) or net-tools (netstat) on the host"):
        sockets = list(call.host.socket.get_listening_sockets())
    if not sockets:
        # ss/netstat failing (no netlink in a sandbox, no permission) prints nothing rather than failing.
        return call.errored("ss/netstat reported no listening sockets at all",
                            "run the command by hand on the host and check that it can read sockets")
    found = _tcp_listeners(sockets, port)
    if found:
        return call.passed("listening on " + ", ".join(found))
    return call.failed(f"nothing listens on TCP port {port} (listening TCP ports: {_port_list(sockets)})",
                       f"start the service that should listen on {port}, and check its configured port and "
                       "bind address")


# files and processes ---------------------------------------------------------------------------


@check('on host "{host}", the file "{path}" exists', manual="ls -ld {path}",
       validators={"path": _absolute_path})
def file_exists(ctx: CheckContext, host: str, path: str) -> CheckResult:
    """Something exists at the absolute path (file, directory, or a symlink that resolves), as the
    connecting user sees it. A path hidden by permissions is an ERROR, not a FAIL."""
    call = on_host(ctx, host, f"{path} exists", f"ls -ld {path}")
    with call.reading(f"look at {path}", "check that the connecting user may read the path"):
        if call.host.file(path).exists:
            detail = call.host.run("stat -L -c '%%F, %%s bytes, owner %%U:%%G, mode %%a' -- %s", path)
            shown = detail.stdout.strip() if detail.rc == 0 else ""
            return call.passed(f"exists ({shown})" if shown else "exists")
        reason = _first_line(call.host.run("ls -ld -- %s", path).stderr)
    if "permission denied" in reason.lower():
        return call.errored(f"cannot see {path}: {reason}", "connect as a user that may read the path's directories")
    return call.failed(f"no such file or directory ({reason or 'test -e failed'})",
                       f"create or restore {path} (redeploy the package or configuration that owns it), "
                       "or correct the path in the runbook")


@check('on host "{host}", the process "{name}" is running', manual="ps -C {name} -o pid,user,args")
def process_running(ctx: CheckContext, host: str, name: str) -> CheckResult:
    """At least one process whose command name (`comm`, as `ps -C` matches it; Linux keeps its first 15
    characters) is the given name runs on the host. Works without any service manager."""
    comm = name[:COMM_LEN]
    call = on_host(ctx, host, f"a process named {name}", f"ps -C {comm} -o pid,user,args")
    with call.reading("list the processes", "install procps (ps) on the host"):
        processes = call.host.process.filter(comm=comm)
    if not processes:
        return call.failed(f"no process named {comm} is running",
                           f"start {name} (through its service manager or supervisor) and read its logs to see "
                           "why it stopped")
    shown = "; ".join(f"pid {p['pid']}: {' '.join(str(p['args']).split())[:80]}" for p in processes[:3])
    more = f"; and {len(processes) - 3} more" if len(processes) > 3 else ""
    count = f"{len(processes)} process{'es' if len(processes) > 1 else ''}"
    return call.passed(f"{count} ({shown}{more})")


# capacity --------------------------------------------------------------------------------------

_DF_LINE = re.compile(
    r"^(?P<fs>.+?)\s+(?P<size>\d+)\s+(?P<used>\d+)\s+(?P<avail>\d+)\s+(?P<cap>\d+%|-)\s+(?P<mount>/.*)$"
)


@dataclass(frozen=True)
class DiskUsage:
    filesystem: str
    mounted_on: str
    size_bytes: int
    used_bytes: int
    available_bytes: int

    @property
    def free_ratio(self) -> float:
        """Available over used + available, as `df` computes its Capacity (blocks reserved for root excluded)."""
        usable = self.used_bytes + self.available_bytes
        return self.available_bytes / usable if usable else 0.0


def parse_df(output: str) -> DiskUsage:
    """The last data line of `df -P` (1024-byte blocks); ValueError when there is none."""
    for line in reversed(output.strip().splitlines()[1:]):
        match = _DF_LINE.match(line.strip())
        if match:
            kib = 1024
            return DiskUsage(match["fs"], match["mount"], int(match["size"]) * kib, int(match["used"]) * kib,
                             int(match["avail"]) * kib)
    raise ValueError(f"no filesystem line in df output: {_first_line(output) or 'empty'}")


@check('on host "{host}", the filesystem "{mount}" has at least {percent:d}% free space', manual="df -P {mount}",
       validators={"mount": _absolute_path, "percent": _percentage})
def filesystem_free(ctx: CheckContext, host: str, mount: str, percent: int) -> CheckResult:
    """The filesystem holding the path has at least the given share of its space available to ordinary
    users (`df -P`: available / (used + available), the complement of df's Capacity)."""
    expected, manual = f"at least {percent}% free", f"df -P {mount}"
    if not 0 <= percent <= 100:
        return _not_a(f"{percent}% is not a percentage (0-100)", host, expected, manual)
    call = on_host(ctx, host, expected, manual)
    with call.reading(f"run df on {mount}", "check that df (coreutils) exists on the host"):
        out = call.host.run("df -P -- %s", mount)
    if out.rc != 0:
        reason = _first_line(out.stderr) or f"df exited {out.rc}"
        if "no such file" in reason.lower():
            return call.failed(f"{mount} does not exist ({reason})",
                               f"mount the filesystem at {mount}, or correct the path in the runbook")
        return call.errored(f"df could not read {mount}: {reason}", "run the command by hand on the host")
    try:
        usage = parse_df(out.stdout)
    except ValueError as exc:
        return call.errored(str(exc), "run the command by hand on the host")
    if usage.used_bytes + usage.available_bytes == 0:
        return call.errored(f"{usage.mounted_on} ({usage.filesystem}) reports no size",
                            "point the step at a disk-backed filesystem")
    free_pct = math.floor(usage.free_ratio * 100)
    observed = f"{free_pct}% free ({_gib(usage.available_bytes)} of {_gib(usage.size_bytes)})"
    if usage.mounted_on != mount:
        observed += f", on the filesystem mounted on {usage.mounted_on}"
    if usage.free_ratio * 100 >= percent:
        return call.passed(observed)
    return call.failed(observed, f"free space on {usage.mounted_on}: find what grew (du -xh {usage.mounted_on} "
                                 "--max-depth=2 | sort -h | tail), rotate or delete old logs and artefacts, or "
                                 "grow the volume")


def parse_meminfo(text: str) -> dict[str, int]:
    """/proc/meminfo as bytes by field name."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        fields = rest.split()
        if fields and fields[0].isdigit():
            values[key.strip()] = int(fields[0]) * (1024 if fields[1:2] == ["kB"] else 1)
    return values


@check('on host "{host}", memory usage is below {percent:d}%',
       manual="grep -E 'MemTotal|MemAvailable' /proc/meminfo", validators={"percent": _percentage})
def memory_below(ctx: CheckContext, host: str, percent: int) -> CheckResult:
    """Memory in use, (MemTotal - MemAvailable) / MemTotal from /proc/meminfo, is below the given share.
    MemAvailable counts reclaimable cache as available, as `free` does. In a container /proc/meminfo shows
    the machine's memory, not the container's limit."""
    expected, manual = f"memory usage below {percent}%", "grep -E 'MemTotal|MemAvailable' /proc/meminfo"
    if not 0 <= percent <= 100:
        return _not_a(f"{percent}% is not a percentage (0-100)", host, expected, manual)
    call = on_host(ctx, host, expected, manual)
    with call.reading("read /proc/meminfo", "this check needs a Linux host"):
        out = call.host.run("cat /proc/meminfo")
    info = parse_meminfo(out.stdout) if out.rc == 0 else {}
    total = info.get("MemTotal", 0)
    if not total:
        reason = _first_line(out.stderr) or "no MemTotal"
        return call.errored(f"cannot read /proc/meminfo: {reason}", "this check needs a Linux host")
    note = ""
    available = info.get("MemAvailable")
    if available is None:  # kernels before 3.14
        available = info.get("MemFree", 0) + info.get("Buffers", 0) + info.get("Cached", 0)
        note = ", estimated from MemFree+Buffers+Cached"
    used = total - available
    used_pct = used * 100 / total
    observed = f"{math.floor(used_pct)}% used ({_gib(used)} of {_gib(total)}; {_gib(available)} available{note})"
    if used_pct < percent:
        return call.passed(observed)
    return call.failed(observed, "find the largest consumers (ps aux --sort=-rss | head), look for a leak or a "
                                 "runaway job, restart or scale it; check the OOM killer in dmesg")


# packages --------------------------------------------------------------------------------------

_PACKAGE_COMMANDS: dict[str, Callable[[str], str]] = {
    "DebianPackage": lambda n: f"dpkg-query -W -f='${{Status}} ${{Version}}\\n' {n}",
    "RpmPackage": lambda n: f"rpm -q {n}",
    "AlpinePackage": lambda n: f"apk info -e {n}",
    "ArchPackage": lambda n: f"pacman -Q {n}",
    "FreeBSDPackage": lambda n: f"pkg query %n-%v {n}",
    "OpenBSDPackage": lambda n: f"pkg_info -e '{n}-*'",
    "HomebrewPackage": lambda n: f"brew list --versions {n}",
}


@check('on host "{host}", the package "{name}" is installed', manual="dpkg-query -W {name}")
def package_installed(ctx: CheckContext, host: str, name: str) -> CheckResult:
    """The host's package manager (dpkg, rpm, apk, pacman, pkg, brew; as testinfra detects it) lists the
    package as installed. ERROR when the host has no package manager testinfra knows."""
    call = on_host(ctx, host, f"package {name} installed", f"dpkg-query -W {name}")
    with call.reading("find the package manager", "this check needs dpkg, rpm, apk, pacman, pkg or brew"):
        try:
            package = call.host.package(name)
        except NotImplementedError:
            raise Finding(call.errored("no package manager that testinfra knows (dpkg, rpm, apk, pacman, pkg, "
                                       "brew) answered on the host", "check the package by hand on the host")
                          ) from None
    # testinfra hands out a subclass named after the implementation (DebianPackage, RpmPackage, ...).
    kind = next((c.__name__ for c in type(package).__mro__ if c.__name__ in _PACKAGE_COMMANDS), "")
    if kind:
        call = call.with_manual(_PACKAGE_COMMANDS[kind](name))
    manager = kind.removesuffix("Package").lower() or "package manager"
    with call.reading(f"ask the package manager about {name}", "run the command by hand on the host"):
        installed = package.is_installed
        version = ""
        if installed:
            with contextlib.suppress(Exception):  # not every manager reports a version
                version = str(package.version)
    if installed:
        return call.passed(f"installed{' ' + version if version else ''} ({manager})")
    return call.failed(f"not installed ({manager})",
                       f"install {name} through the host's configuration management (not by hand), or correct "
                       "the package name in the runbook")


# tools -----------------------------------------------------------------------------------------

_VERSION = re.compile(r"(?<![\w.])v?(\d+(?:\.\d+)+)")
_TOOL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
_MIN_VERSION = re.compile(r"^\d+(\.\d+)*$")


def _tool_name(value: str) -> None:
    if not _TOOL_NAME.match(value):
        raise ValueError("is not a command name (letters, digits, '.', '_', '+', '-'; no path, no spaces)")


def _min_version(value: str) -> None:
    if not _MIN_VERSION.match(value):
        raise ValueError("is not a version of numbers and dots, e.g. 1.6 or 2.13.0")


def parse_version(output: str) -> str | None:
    """The first version-looking token (``1.9.8`` in ``Terraform v1.9.8``, ``2.15.0`` in ``aws-cli/2.15.0
    Python/3.11.6``), or None. Suffixes after the numbers (``-beta1``, ``+build``) are left out."""
    match = _VERSION.search(output)
    return match.group(1) if match else None


def version_key(version: str) -> tuple[int, ...]:
    """Numbers compared as numbers (1.10 is after 1.9), shorter versions padded with zeros (1.6 = 1.6.0)."""
    parts = [int(p) for p in version.split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


@check('on host "{host}", the tool "{tool}" is at least version "{version}"', manual="{tool} --version",
       validators={"tool": _tool_name, "version": _min_version})
def tool_at_least(ctx: CheckContext, host: str, tool: str, version: str) -> CheckResult:
    """The command is on the connecting user's PATH and `TOOL --version` reports at least this version:
    the first version-looking token of its output (stdout first, then stderr) is compared number by
    number, so 1.10 is newer than 1.9 and 1.6 equals 1.6.0. FAIL when the tool is missing or older;
    ERROR when it runs but prints no version, or exits with an error."""
    expected, manual = f"{tool} {version} or newer", f"{tool} --version"
    call = on_host(ctx, host, expected, manual)
    with call.reading(f"run {tool} --version", "run the command by hand on the host"):
        out = call.host.run("%s --version", tool)
    source = out.stdout if parse_version(out.stdout or "") else (out.stderr or "")
    found = parse_version(source)
    if out.rc == 127 or (out.rc != 0 and "not found" in (out.stderr or "").lower() and found is None):
        return call.failed(f"{tool} is not installed (not on the PATH: {_first_line(out.stderr) or 'exit 127'})",
                           f"install {tool} {version} or newer (the onboarding runbook names the source), then "
                           "open a new shell so the PATH is read again")
    if out.rc != 0 or found is None:
        text = _first_line(out.stdout) or _first_line(out.stderr) or "no output"
        return call.errored(f"{tool} --version exited {out.rc} without a version this check can read: {text}",
                            f"run {tool} --version (or {tool} version) by hand and compare with {version}")
    line = next((line for line in source.splitlines() if found in line), found)
    observed = f"{found} ({' '.join(line.split())[:120]})"
    if version_key(found) >= version_key(version):
        return call.passed(observed)
    return call.failed(observed, f"upgrade {tool} to {version} or newer (the team's pinned version: see the "
                                 "onboarding runbook); several versions side by side: check which one the PATH "
                                 f"finds first with: command -v {tool}")
