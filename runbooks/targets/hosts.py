"""The hosts target: machines named per environment (``[environments.NAME.hosts]``), reached through testinfra.

One testinfra host per connection string per run, opened on first use, probed once so that an unreachable
host is known before any check reads a fact from it, and closed when the run ends. A host that cannot be
reached keeps the reason and the hint: every step on it is an ERROR saying why, without trying again.
"""

from __future__ import annotations

import socket
import urllib.parse
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ..faults import UnknownName
from ..names import did_you_mean
from . import Target, Where, register

if TYPE_CHECKING:
    from ..config import Environment

PROBE_TOKEN = "runbooks-probe-ok"
SSH_SCHEMES = ("ssh", "safe-ssh")


def parse_hosts(raw: dict[str, Any] | None, where: Where) -> dict[str, str]:
    hosts = dict(raw or {})
    for host, url in hosts.items():
        if not isinstance(url, str) or "://" not in url:
            raise where.error(f"host {host!r} must be a testinfra URL such as 'local://' or 'paramiko://user@host'",
                              "hosts", host)
        from testinfra.backend import BACKENDS

        scheme = url.split("://", 1)[0]
        if scheme not in BACKENDS:
            raise where.error(f"host {host!r}: unknown connection type {scheme!r}"
                              + did_you_mean(scheme, BACKENDS, known="testinfra knows"), "hosts", host)
    return hosts


# connection errors -----------------------------------------------------------------------------


def display_url(url: str) -> str:
    """The URL without its query (key paths, options) and without any password."""
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        netloc = f"{userinfo.split(':', 1)[0]}@{hostport}"
    return f"{parts.scheme}://{netloc}{parts.path}"


def _connection_hint(url: str) -> str:
    if urllib.parse.urlsplit(url).scheme in ("paramiko", *SSH_SCHEMES):
        return ("check that the host is up, sshd listens on that port and a firewall lets this machine in; "
                "check the user and ssh_identity_file in the host URL in runbooks.toml")
    return "check the host's connection string in runbooks.toml and that the target is up"


def describe_connection_error(exc: BaseException, url: str) -> tuple[str, str]:
    """(reason, hint) for an exception raised while talking to a host; never raises."""
    parts = urllib.parse.urlsplit(url)
    where = parts.hostname or url
    if parts.port:
        where = f"{where}:{parts.port}"
    user = parts.username or "the current user"
    key_hint = (f"check that the key in ssh_identity_file is authorised for {user} on the host "
                "(~/.ssh/authorized_keys) and that the user name is right")
    name = type(exc).__name__
    text = str(exc)
    if name in ("AuthenticationException", "BadAuthenticationType", "PasswordRequiredException"):
        return f"ssh authentication failed for {user} at {where}: {text or name}", key_hint
    if name == "NoValidConnectionsError" or isinstance(exc, ConnectionRefusedError):
        return f"connection refused by {where}", "check that sshd runs on the host and listens on that port"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host name {parts.hostname!r}: {text}", "check the host name in runbooks.toml"
    if isinstance(exc, TimeoutError):  # socket.timeout is TimeoutError
        return (f"no answer from {where} within the connection timeout",
                "check that the host is up and reachable from here (VPN, security groups, firewall)")
    if isinstance(exc, RuntimeError) and exc.args and hasattr(exc.args[0], "stderr"):
        # testinfra's ssh backend: ssh exited 255; its stderr says why.
        stderr = " ".join(str(exc.args[0].stderr).split()) or "ssh exited with status 255"
        lowered = stderr.lower()
        if "permission denied" in lowered:
            return f"ssh authentication failed for {user} at {where}: {stderr}", key_hint
        if "host key verification failed" in lowered or "remote host identification has changed" in lowered:
            return (f"ssh refused the host key of {where}: {stderr}",
                    "add the host's key to known_hosts (ssh-keyscan) or set StrictHostKeyChecking in the "
                    "ssh_config file named in the host URL")
        if "refused" in lowered:
            return (f"connection refused by {where}: {stderr}",
                    "check that sshd runs on the host and listens on that port")
        if "timed out" in lowered:
            return f"no answer from {where}: {stderr}", "check that the host is up and reachable from here"
        return f"ssh to {where} failed: {stderr}", _connection_hint(url)
    if name == "SSHException" or "ssh" in type(exc).__module__:
        return f"ssh session with {where} failed: {text or name}", _connection_hint(url)
    if isinstance(exc, OSError):
        return f"cannot connect to {where}: {text or name}", _connection_hint(url)
    return f"cannot use {display_url(url)}: {name}: {text}", _connection_hint(url)


def is_connection_error(exc: BaseException) -> bool:
    """Whether ``exc`` means the connection to the host broke (rather than a fact that could not be read)."""
    if isinstance(exc, OSError | EOFError):
        return True
    if isinstance(exc, RuntimeError) and exc.args and hasattr(exc.args[0], "stderr"):
        return True
    return "paramiko" in type(exc).__module__


# connections -----------------------------------------------------------------------------------


@dataclass
class HostConnection:
    """A testinfra host of this run, or why it cannot be reached (``error`` and ``hint``)."""

    url: str
    label: str
    host: Any = None  # testinfra.host.Host
    error: str = ""
    hint: str = ""

    def lost(self, exc: BaseException) -> tuple[str, str] | None:
        """(reason, hint) when ``exc``, raised while reading a fact, means the connection broke; else None."""
        return describe_connection_error(exc, self.url) if is_connection_error(exc) else None

    def close(self) -> None:
        backend = getattr(self.host, "backend", None)
        client = vars(backend).get("client") if backend is not None else None  # paramiko: only if connected
        if client is not None:
            client.close()


def _backend_options(url: str) -> dict[str, Any]:
    if urllib.parse.urlsplit(url).scheme in SSH_SCHEMES:
        # Never prompt for a password or passphrase: a prompt would hang the run.
        return {"ssh_extra_args": "-o BatchMode=yes"}
    return {}


def connect(url: str, label: str) -> HostConnection:
    """A new testinfra host for ``url`` (not testinfra's process-wide cache: the run closes what it opened),
    probed once so that an unreachable host is known before any check reads a fact from it."""
    import testinfra.backend
    import testinfra.host

    connection = HostConnection(url, label)
    try:
        backend = testinfra.backend.get_backend(url, **_backend_options(url))
        host = testinfra.host.Host(backend)
        backend.set_host(host)
        connection.host = host
        out = host.run("echo %s", PROBE_TOKEN)
    except Exception as exc:  # noqa: BLE001 - whatever stops the probe makes the host unreachable
        connection.error, connection.hint = describe_connection_error(exc, url)
        return connection
    if out.rc != 0 or PROBE_TOKEN not in out.stdout:
        detail = " ".join((out.stderr or out.stdout).split())[:300] or f"exit status {out.rc}"
        connection.error = f"the host did not run a probe command: {detail}"
        connection.hint = _connection_hint(url)
    return connection


@register
class HostsTarget(Target):
    name = "hosts"
    section = "hosts"
    capabilities = {
        "hosts": "environment {env} declares no hosts",
        # A developer's machine with the platform's toolchain (the onboarding runbook). A sandbox's hosts are
        # the machine running the checks standing in for servers: nothing says it is a developer's workstation.
        "workstation": "environment {env} has no developer workstation (it takes a host named workstation, "
                       "in an environment that is not a sandbox)",
    }

    @classmethod
    def parse(cls, raw: Any, where: Where) -> dict[str, str]:
        return parse_hosts(raw, where)

    @classmethod
    def can(cls, env: Environment, capability: str) -> bool:
        if capability == "workstation":
            return "workstation" in env.hosts and env.sandbox is None
        return bool(env.hosts)

    def url(self, name: str) -> str:
        """The testinfra connection string of the host the runbooks call ``name``."""
        try:
            return self.env.hosts[name]
        except KeyError:
            raise UnknownName(
                f"host {name!r} is not defined by environment {self.env.name!r}"
                + did_you_mean(name, self.env.hosts, known="defined")
            ) from None

    def label(self, name: str) -> str:
        """How results name the host: ``host NAME (URL without its query or password)``."""
        return f"host {name} ({display_url(self.url(name))})"

    def connection(self, name: str) -> HostConnection:
        """The run's connection to the host named ``name``: opened and probed on first use, once per run,
        closed when the run ends. When the host cannot be reached, ``error`` and ``hint`` say why."""
        url = self.url(name)
        label = self.label(name)
        connection: HostConnection = self.resources.get(
            ("testinfra", url), lambda: connect(url, label), HostConnection.close
        )
        # two names for one URL share the connection, each named as the runbook names it (not by whoever was first)
        return connection if connection.label == label else replace(connection, label=label)
