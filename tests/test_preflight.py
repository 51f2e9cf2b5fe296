"""Preflight: a runbook that would run wrongly is refused with file:line and exit 2, and nothing runs."""

from __future__ import annotations

import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from runbooks.cli import main
from runbooks.config import load_config
from runbooks.features import parse_feature
from runbooks.preflight import check_paths
from tests.conftest import write_config


class CountingServer:
    """An HTTP service that counts the requests it gets: preflight must leave it at zero."""

    def __init__(self) -> None:
        self.hits = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                owner.hits += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def api() -> Iterator[CountingServer]:
    server = CountingServer()
    yield server
    server.close()


@pytest.fixture
def project(tmp_path: Path, api: CountingServer) -> Path:
    write_config(
        tmp_path,
        f"""\
        [environments.test]
        aws = {{ target = "moto", region = "eu-west-1" }}
        vars = {{ bucket = "acme-bucket" }}
        services = {{ api = "{api.url}" }}
        """,
    )
    (tmp_path / "features").mkdir()
    return tmp_path


# Every feature starts with a step that would reach the counting server if anything ran.
HEADER = """\
Feature: Preflight subject
  Scenario: Reaches the service first
    Then the service "api" answers GET "/" with status 200 within 5000 ms
"""


def add_feature(project: Path, body: str, name: str = "subject.feature") -> tuple[str, str]:
    """Write ``HEADER + body``; return the text and its path as preflight displays it."""
    text = HEADER + textwrap.dedent(body)
    (project / "features" / name).write_text(text, encoding="utf-8")
    return text, f"features/{name}"


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    lines = [n for n, line in enumerate(text.splitlines(), start=1) if needle in line]
    return lines[occurrence - 1]


def verify(project: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(
        [
            "verify",
            "--config",
            str(project / "runbooks.toml"),
            "--report-dir",
            str(project / "reports"),
            "--no-history",
        ]
    )
    out, err = capsys.readouterr()
    return code, out, err


def assert_nothing_ran(project: Path, out: str, api: CountingServer) -> None:
    assert api.hits == 0
    assert not (project / "reports").exists()
    assert "runbooks verify: environment" not in out  # not even the run's banner


CASES = {
    "duplicate scenario names": (
        """\
          Scenario: Same name
            Then the S3 bucket "{bucket}" exists

          Scenario: Same name
            Then the S3 bucket "{bucket}" has versioning enabled
        """,
        ("Scenario: Same name", 2),
        "scenario 'Same name' has the same name as the one at line {first}; pytest-bdd would silently run "
        "only the last one - rename one of them",
    ),
    "undefined step": (
        """\
          Scenario: Typo
            Then the S3 bucket "{bucket}" has versoning enabled
        """,
        ("versoning", 1),
        'undefined step: Then the S3 bucket "{bucket}" has versoning enabled; '
        'closest known: the S3 bucket "{bucket}" has versioning enabled',
    ),
    "undefined variable": (
        """\
          Scenario: Unknown placeholder
            Then the S3 bucket "{bukcet}" exists
        """,
        ("{bukcet}", 1),
        "variable {bukcet} is not defined by environment 'test' (add it under [environments.test.vars])",
    ),
    "unknown service": (
        """\
          Scenario: Unknown service
            Then the service "apii" answers GET "/health" with status 200 within 100 ms
        """,
        ('"apii"', 1),
        "service 'apii' is not defined by environment 'test'; did you mean 'api'?",
    ),
    "bad encryption algorithm": (
        """\
          Scenario: Bad choice
            Then the S3 bucket "{bucket}" is encrypted with "AES-256"
        """,
        ("AES-256", 1),
        "algorithm 'AES-256' is not one of: AES256, aws:kms, aws:kms:dsse",
    ),
    "bad choice in an outline's example row": (
        """\
          Scenario Outline: Each algorithm
            Then the S3 bucket "{bucket}" is encrypted with "<algorithm>"

            Examples:
              | algorithm |
              | AES256    |
              | aes256    |
        """,
        ('"<algorithm>"', 1),
        "algorithm 'aes256' is not one of: AES256, aws:kms, aws:kms:dsse",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_refused_with_file_line_and_exit_2(
    project: Path, api: CountingServer, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    body, (needle, occurrence), message = CASES[case]
    text, display = add_feature(project, body)
    code, out, err = verify(project, capsys)

    assert code == 2
    expected = message.format(first=line_of(text, needle)) if "{first}" in message else message
    (line,) = err.splitlines()  # one problem: one line, like any other mistake
    wanted = f"{display}:{line_of(text, needle, occurrence)}: {expected}"
    assert line.startswith("runbooks: error: ") and line.endswith(" (nothing was run)"), line
    problem = line.removeprefix("runbooks: error: ").removesuffix(" (nothing was run)")
    # further close phrases may follow the best one as the vocabulary grows
    assert problem == wanted or problem.startswith(wanted + " | "), problem
    assert_nothing_ran(project, out, api)


def test_every_problem_in_every_file_is_listed_in_order(
    project: Path, api: CountingServer, capsys: pytest.CaptureFixture[str]
) -> None:
    first, a = add_feature(project, CASES["undefined variable"][0], "a.feature")
    second, b = add_feature(
        project, CASES["bad encryption algorithm"][0] + CASES["unknown service"][0], "b.feature"
    )
    code, out, err = verify(project, capsys)
    assert code == 2
    assert [line.split(": ", 1)[0] for line in err.splitlines()] == [
        f"{a}:{line_of(first, '{bukcet}')}",
        f"{b}:{line_of(second, 'AES-256')}",
        f"{b}:{line_of(second, 'apii')}",
        "runbooks",
    ]
    assert err.splitlines()[-1] == "runbooks: error: 3 problem(s) in feature files; nothing was run"
    assert_nothing_ran(project, out, api)


def test_gherkin_syntax_error_names_file_and_line(
    project: Path, api: CountingServer, capsys: pytest.CaptureFixture[str]
) -> None:
    text, _ = add_feature(
        project,
        """\
          Scenario: Broken
            Then the S3 bucket "{bucket}" exists
            this line is not a step
        """,
    )
    code, out, err = verify(project, capsys)
    assert code == 2
    path = (project / "features" / "subject.feature").resolve()
    assert len(err.splitlines()) == 1, err
    assert err.startswith(
        f"runbooks: error: {path}:{line_of(text, 'this line is not a step')}: Gherkin syntax error"
    )
    assert "this line is not a step" in err
    assert_nothing_ran(project, out, api)


def test_check_paths_without_an_environment_checks_only_the_vocabulary(project: Path) -> None:
    # Without an environment (e.g. linting), variables and names cannot be judged; phrases and choices can.
    text, display = add_feature(
        project, CASES["undefined variable"][0] + CASES["bad encryption algorithm"][0]
    )
    doc = parse_feature(project / display)
    assert [str(p) for p in check_paths([(doc, display)], None)] == [
        f"{display}:{line_of(text, 'AES-256')}: "
        "algorithm 'AES-256' is not one of: AES256, aws:kms, aws:kms:dsse"
    ]
    env = load_config(project / "runbooks.toml").environment("test")
    assert len(check_paths([(doc, display)], env)) == 2


def test_a_clean_feature_passes_preflight_and_runs(
    project: Path, api: CountingServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # The counterpart: the same project with nothing wrong really runs (so the counters above mean something).
    add_feature(project, "")
    code, out, err = verify(project, capsys)
    assert (code, err) == (0, "")
    assert api.hits == 1
    assert (project / "reports" / "results.json").is_file()
    assert "PASS" in out
