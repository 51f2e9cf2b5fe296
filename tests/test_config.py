"""runbooks.toml: what a valid file means; every mistake named by file and line (CLI: exit 2, one line)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from runbooks.cli import main
from runbooks.config import AwsSettings, ConfigError, load_config
from tests.conftest import write_config


def line_of(text: str, needle: str) -> int:
    """1-based line of the only line containing ``needle``."""
    lines = [n for n, line in enumerate(textwrap.dedent(text).splitlines(), start=1) if needle in line]
    assert len(lines) == 1, (needle, lines)
    return lines[0]


def config_error(tmp_path: Path, body: str) -> tuple[Path, ConfigError]:
    path = write_config(tmp_path, body)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return path, caught.value


def test_a_valid_file(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        """\
        default_environment = "staging"

        [environments.sandbox]
        aws = { target = "moto", region = "eu-west-1" }

        [environments.staging]
        description = "Staging"
        aws = { target = "endpoint", url = "http://127.0.0.1:4566", region = "eu-central-1", read_timeout = 3}
        secrets = ["API_TOKEN"]

        [environments.staging.vars]
        bucket = "acme-staging"
        replicas = 3

        [environments.staging.services]
        api = "https://api.staging.example.com"
        admin = { url = "http://127.0.0.1:8080", timeout_s = 2.5, verify_tls = false }
        """,
    )
    config = load_config(path)
    assert config.default_environment == "staging"
    assert config.root == tmp_path.resolve()
    assert config.features == tmp_path.resolve() / "features"
    staging = config.environment(None)
    assert staging.name == "staging"
    assert staging.aws == AwsSettings(
        target="endpoint", region="eu-central-1", endpoint_url="http://127.0.0.1:4566", read_timeout=3
    )
    assert staging.vars == {"bucket": "acme-staging", "replicas": "3"}
    assert staging.services["api"].url == "https://api.staging.example.com"
    assert staging.services["api"].timeout_s == 10.0
    assert (staging.services["admin"].timeout_s, staging.services["admin"].verify_tls) == (2.5, False)
    assert staging.secrets == ("API_TOKEN",)
    assert config.environment("sandbox").aws.region == "eu-west-1"


INVALID_TOML = """\
    [environments.test]
    aws = { target = "moto" }
    owner = platform-team
    """


def test_invalid_toml(tmp_path: Path) -> None:
    path, error = config_error(tmp_path, INVALID_TOML)
    assert error.line == 3
    assert str(error).startswith(f"{path}:3: invalid TOML: ")


CASES = {
    "unknown env key": (
        """\
        [environments.test]
        aws = { target = "moto" }
        servcies = { api = "http://127.0.0.1:1" }
        """,
        "servcies",
        "environment 'test': unknown key 'servcies'; did you mean 'services'",
    ),
    "unknown env key as a sub-table": (
        """\
        [environments.test]
        aws = { target = "moto" }

        [environments.test.varz]
        bucket = "b"
        """,
        "[environments.test.varz]",
        "environment 'test': unknown key 'varz'; did you mean 'vars'",
    ),
    "bad aws.target inline": (
        """\
        [environments.test]
        description = "x"
        aws = { target = "prod", region = "eu-west-1" }
        """,
        "aws =",
        "environment 'test': aws.target must be one of moto, endpoint, live (got 'prod')",
    ),
    "bad aws.target in an aws table": (
        """\
        [environments.test]
        description = "x"

        [environments.test.aws]
        region = "eu-west-1"
        target = "prod"
        """,
        'target = "prod"',
        "environment 'test': aws.target must be one of moto, endpoint, live (got 'prod')",
    ),
    "unknown aws key": (
        """\
        [environments.test]
        aws = { target = "moto", regoin = "eu-west-1" }
        """,
        "regoin",
        "environment 'test': unknown aws key 'regoin'; did you mean 'region'",
    ),
    "endpoint without url": (
        """\
        [environments.other]
        aws = { target = "moto" }

        [environments.test]
        aws = { target = "endpoint", region = "us-east-1" }
        """,
        '"endpoint"',
        "environment 'test': aws.target 'endpoint' needs aws.url",
    ),
    "service URL without scheme": (
        """\
        [environments.test]
        aws = { target = "moto" }

        [environments.test.services]
        web = "http://127.0.0.1:8080"
        api = "api.example.com"
        """,
        "api.example.com",
        "environment 'test': service 'api' URL must start with http:// or https://",
    ),
    "service URL with another scheme, inline": (
        """\
        [environments.test]
        aws = { target = "moto" }
        services = { api = { url = "ftp://api.example.com" } }
        """,
        "ftp://",
        "environment 'test': service 'api' URL must start with http:// or https://",
    ),
    "service URL in a sub-table of its own": (
        """\
        [environments.test]
        aws = { target = "moto" }

        [environments.test.services.api]
        timeout_s = 2
        url = "ftp://api.example.com"
        """,
        "[environments.test.services.api]",
        "environment 'test': service 'api' URL must start with http:// or https://",
    ),
    "service table with an unknown key": (
        """\
        [environments.test]
        aws = { target = "moto" }

        [environments.test.services]
        api = { url = "https://api.example.com", timeout = 5 }
        """,
        "timeout = 5",
        "environment 'test': service 'api' must be a URL or a table with ",
    ),
    "sandbox on a non-moto target": (
        """\
        [environments.test]
        aws = { target = "endpoint", url = "http://127.0.0.1:4566" }
        sandbox = { stack = "stack.toml" }
        """,
        "aws =",
        "environment 'test': a sandbox provisions itself and needs aws.target = 'moto'",
    ),
    "sandbox stack missing": (
        """\
        [environments.test]
        aws = { target = "moto" }
        sandbox = { stack = "no-such-stack.toml" }
        """,
        "sandbox =",
        "environment 'test': sandbox stack file 'no-such-stack.toml' not found",
    ),
    "unknown default environment": (
        """\
        default_environment = "stagign"

        [environments.staging]
        aws = { target = "moto" }
        """,
        "default_environment",
        "default_environment 'stagign' is not defined; did you mean 'staging'?",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_mistakes_are_named_by_file_and_line(tmp_path: Path, case: str) -> None:
    body, needle, message = CASES[case]
    path, error = config_error(tmp_path, body)
    # a prefix: suggestions and lists of allowed keys may grow with the vocabulary
    assert str(error).startswith(f"{path}:{line_of(body, needle)}: {message}"), str(error)
    assert error.line == line_of(body, needle)


def test_unknown_environment_name_suggests_the_closest(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[environments.staging]\n[environments.prod]\naws = { target = "moto" }\n')
    config = load_config(path)
    with pytest.raises(ConfigError) as caught:
        config.environment("stagign")
    # the name came from the command line, not from the file: no line to point at
    assert str(caught.value) == f"{path}: unknown environment 'stagign'; did you mean 'staging'?"
    with pytest.raises(ConfigError, match=r"unknown environment 'qa'; known: prod, staging$"):
        config.environment("qa")


def test_missing_file_and_no_file_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "nope.toml")
    assert str(caught.value) == f"{tmp_path / 'nope.toml'}: configuration file not found"
    monkeypatch.delenv("RUNBOOKS_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"no runbooks\.toml found in .* \(use --config PATH\)"):
        load_config()


@pytest.mark.parametrize("case", ["invalid TOML", "unknown env key", "sandbox on a non-moto target"])
def test_cli_prints_one_line_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    if case == "invalid TOML":
        body, needle = INVALID_TOML, "owner"
    else:
        body, needle, _ = CASES[case]
    path = write_config(tmp_path, body)
    code = main(["verify", "--config", str(path), "--report-dir", str(tmp_path / "reports")])
    out, err = capsys.readouterr()
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"runbooks: error: {path}:{line_of(body, needle)}: ")
    assert "Traceback" not in err
    assert out == ""
    assert not (tmp_path / "reports").exists()
