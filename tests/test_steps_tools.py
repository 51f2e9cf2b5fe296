"""The tool-version step against the local machine (``local://``, with made-up tools on the PATH) and a real
sshd on 127.0.0.1 (a tool the remote PATH finds), and the ``workstation`` capability of the hosts target."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from runbooks.config import load_config
from runbooks.result import CheckResult, Outcome
from runbooks.session import Session
from runbooks.steps.hosts import parse_version, tool_at_least, version_key
from runbooks.targets import missing_capability
from tests.conftest import evaluate
from tests.support.sshd import SshServer, sshd  # noqa: F401 - sshd is a fixture

TOOLS = {
    "faketf": 'printf "Terraform v1.10.2\\non linux_amd64\\n"',
    "fakeaws": 'echo "aws-cli/2.15.0 Python/3.11.6 Linux/6.5 exe/x86_64" >&2',  # v1 printed to stderr
    "chatty": 'echo "no version here"',
    "broken": 'echo "boom: cannot load config" >&2; exit 2',
}


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "bin"
    directory.mkdir()
    for name, body in TOOLS.items():
        script = directory / name
        script.write_text(f"#!/bin/sh\n{body}\n")
        script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{directory}{os.pathsep}{os.environ.get('PATH', '')}")
    return directory


def start(directory: Path, hosts: dict[str, str]) -> Session:
    lines = ["[environments.test]", 'aws = { target = "endpoint", url = "http://127.0.0.1:9", region = "us-east-1" }',
             "[environments.test.hosts]", *[f'{k} = "{v}"' for k, v in hosts.items()]]
    path = directory / "runbooks.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = load_config(path)
    return Session(config, config.environment("test")).start()


@pytest.fixture
def local(bin_dir: Path, tmp_path: Path) -> Iterator[Session]:
    run = start(tmp_path, {"workstation": "local://"})
    yield run
    run.stop()


def check(run: Session, tool: str, version: str, host: str = "workstation") -> CheckResult:
    return evaluate(run, tool_at_least, host=host, tool=tool, version=version)


def test_versions_compare_number_by_number() -> None:
    assert version_key("1.10") > version_key("1.9")
    assert version_key("1.6") == version_key("1.6.0") == version_key("1.6.0.0")
    assert version_key("2.0") > version_key("1.99.99")
    assert parse_version("Terraform v1.9.8\non linux_amd64") == "1.9.8"
    assert parse_version("aws-cli/2.15.0 Python/3.11.6") == "2.15.0"
    assert parse_version("Docker version 27.3.1, build ce12230") == "27.3.1"
    assert parse_version("jq-1.6") == "1.6"
    assert parse_version("x86_64 and nothing") is None


def test_newer_and_equal_versions_pass(local: Session) -> None:
    result = check(local, "faketf", "1.9")  # 1.10 is newer than 1.9
    assert result.outcome is Outcome.PASS, result
    assert result.observed == "1.10.2 (Terraform v1.10.2)"
    assert result.expected == "faketf 1.9 or newer"
    assert result.manual_command == "faketf --version"
    assert check(local, "faketf", "1.10.2.0").outcome is Outcome.PASS


def test_an_older_version_fails(local: Session) -> None:
    result = check(local, "faketf", "1.11")
    assert (result.outcome, result.observed) == (Outcome.FAIL, "1.10.2 (Terraform v1.10.2)")
    assert "upgrade faketf to 1.11 or newer" in result.hint


def test_a_version_on_stderr_is_read(local: Session) -> None:
    result = check(local, "fakeaws", "2")
    assert result.outcome is Outcome.PASS
    assert result.observed.startswith("2.15.0 (aws-cli/2.15.0 ")
    assert check(local, "fakeaws", "2.16").outcome is Outcome.FAIL


def test_a_missing_tool_fails(local: Session) -> None:
    result = check(local, "runbooks-no-such-tool", "1.0")
    assert result.outcome is Outcome.FAIL
    assert result.observed.startswith("runbooks-no-such-tool is not installed (not on the PATH")
    assert "install runbooks-no-such-tool 1.0 or newer" in result.hint


def test_no_readable_version_or_an_error_exit_is_an_error(local: Session) -> None:
    result = check(local, "chatty", "1.0")
    assert result.outcome is Outcome.ERROR
    assert result.observed == "chatty --version exited 0 without a version this check can read: no version here"
    result = check(local, "broken", "1.0")
    assert result.outcome is Outcome.ERROR
    assert result.observed.startswith("broken --version exited 2")


def test_over_ssh(sshd: SshServer, tmp_path: Path) -> None:  # noqa: F811
    run = start(tmp_path, {"remote": sshd.url("paramiko")})
    try:
        result = check(run, "python3", "3", host="remote")  # what the remote login's PATH finds
        assert result.outcome is Outcome.PASS, result
        assert result.observed.startswith("3.")
        assert result.resource.startswith("host remote (paramiko://")
        assert check(run, "python3", "99.0", host="remote").outcome is Outcome.FAIL
        assert check(run, "runbooks-no-such-tool", "1", host="remote").outcome is Outcome.FAIL
    finally:
        run.stop()


def test_the_workstation_capability(tmp_path: Path) -> None:
    path = tmp_path / "runbooks.toml"
    path.write_text(textwrap.dedent("""
        [environments.laptop]
        aws = { target = "endpoint", url = "http://127.0.0.1:9", region = "us-east-1" }
        hosts = { workstation = "local://" }
        [environments.servers]
        aws = { target = "endpoint", url = "http://127.0.0.1:9", region = "us-east-1" }
        hosts = { api = "local://" }
    """), encoding="utf-8")
    config = load_config(path)
    assert missing_capability(config.environment("laptop"), ["requires:workstation"]) is None
    assert missing_capability(config.environment("servers"), ["requires:workstation"]) == (
        "not run here: environment servers has no developer workstation (it takes a host named workstation, in "
        "an environment that is not a sandbox) (@requires:workstation)")
