"""Bad input, every kind: one line naming the file:line (or the option), exit 2 — never a traceback,
never "internal error", never a silent pass.

The corpus is the table below: runbooks.toml, feature files, waivers.toml and command-line arguments.
Each case is a small project (the base one with some files replaced) and a command, run in-process
through ``runbooks.cli.main``; a sample also runs as a real process. ``<<`` at the end of a line marks
the line the message must name (the marker is removed before the file is written).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from runbooks.cli import main

ENV = '[environments.test]\nhosts = { local = "local://" }\nvars = { path = "/" }\n'
OK_FEATURE = 'Feature: Root\n  Scenario: The root folder exists\n    Then on host "local", the file "{path}" exists\n'
VERIFY = ("verify", "--config", "{root}/runbooks.toml", "--no-history", "--report-dir", "{root}/reports")


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]  # after `runbooks`; "{root}" is the case's project folder
    names: str  # what the one line must name: "runbooks.toml:3", "bad.feature:2", "--tags", ...
    files: tuple[tuple[str, bytes], ...] = ()  # written over the base project (runbooks.toml, features/ok.feature)
    needs_run: bool = False  # the project needs a recorded run (history and reports/results.json) first


def _marked(text: str | bytes) -> tuple[bytes, int | None]:
    """The file's bytes without the ``<<`` marker, and the line it marked."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    lines = data.split(b"\n")
    marked = [n for n, line in enumerate(lines, start=1) if line.rstrip(b"\r").endswith(b" <<")]
    for n in marked:
        line = lines[n - 1]
        lines[n - 1] = line[:-4] + b"\r" if line.endswith(b"\r") else line[:-3]
    return b"\n".join(lines), (marked[0] if marked else None)


def _named(name: str, line: int | None) -> str:
    return f"{name}:{line}:" if line else f"{name}:"


def config(id: str, text: str | bytes, line: int | None = None) -> Case:
    data, marked = _marked(text)
    return Case(f"toml: {id}", VERIFY, _named("runbooks.toml", line or marked), (("runbooks.toml", data),))


def env(id: str, text: str) -> Case:
    """A runbooks.toml: an environment whose table is ``text``."""
    return config(id, "[environments.test]\n" + text)


def feature(id: str, text: str | bytes, line: int | None = None) -> Case:
    data, marked = _marked(text)
    files = (("features/ok.feature", b""), ("features/bad.feature", data))
    return Case(f"feature: {id}", VERIFY + ("{root}/features/bad.feature",), _named("bad.feature", line or marked),
                files)


def waivers(id: str, text: str | bytes, line: int | None = None) -> Case:
    data, marked = _marked(text)
    return Case(f"waivers: {id}", VERIFY, _named("waivers.toml", line or marked), (("waivers.toml", data),))


def command(id: str, names: str, *argv: str, files: tuple[tuple[str, bytes], ...] = (),
            needs_run: bool = False) -> Case:
    return Case(f"cli: {id}", argv, names, files, needs_run)


WAIVER = """\
[[waiver]] <<
runbook = "features/ok.feature"
scenario = "The root folder exists"
reason = "CHG-1"
accepted_by = "jane@example.com"
expires = 2030-01-01
"""
RESULTS = '{"run": {}, "results": [{"runbook": "a", "scenario": "b", "step": "c", "outcome": "PASS"}]}'

# Every key of runbooks.toml with a value of the wrong type (and the ranges its numbers must be in).
WRONG_TYPES = {
    "description": "description = 5 <<",
    "secrets as a string": 'secrets = "API_TOKEN" <<',
    "secrets of numbers": "secrets = [1] <<",
    "vars as a string": 'vars = "x" <<',
    "a list variable": "[environments.test.vars]\nlist = [1, 2] <<",
    "a boolean variable": "[environments.test.vars]\nflag = true <<",
    "sandbox as a string": 'sandbox = "stack.toml" <<',
    "sandbox stack as a number": 'aws = { target = "moto" }\nsandbox = { stack = 5 } <<',
    "sandbox without a stack": 'aws = { target = "moto" }\nsandbox = { variant = "healthy" } <<',
    "sandbox stack missing": 'aws = { target = "moto" }\nsandbox = { stack = "no-such.toml" } <<',
    "sandbox on a live target": 'aws = { target = "live", region = "eu-west-1" } <<\nsandbox = { stack = "s.toml" }',
    "aws as a string": 'aws = "moto" <<',
    "aws.target as a number": "aws = { target = 5 } <<",
    "aws.target unknown": 'aws = { target = "prod" } <<',
    "aws.region as a number": 'aws = { target = "moto", region = 5 } <<',
    "aws.url as a number": 'aws = { target = "endpoint", url = 5 } <<',
    "aws.url without scheme": 'aws = { target = "endpoint", url = "localhost:4566" } <<',
    "aws endpoint without url": 'aws = { target = "endpoint" } <<',
    "aws.profile as a number": 'aws = { target = "live", profile = 5 } <<',
    "aws.role_arn as a list": 'aws = { target = "live", role_arn = ["a"] } <<',
    "aws.external_id as a bool": 'aws = { target = "live", external_id = true } <<',
    "aws.connect_timeout as a string": 'aws = { target = "moto", connect_timeout = "5" } <<',
    "aws.connect_timeout negative": 'aws = { target = "moto", connect_timeout = -1 } <<',
    "aws.connect_timeout zero": "[environments.test.aws]\ntarget = \"moto\"\nconnect_timeout = 0 <<",
    "aws.read_timeout as a bool": 'aws = { target = "moto", read_timeout = true } <<',
    "aws.read_timeout nan": 'aws = { target = "moto", read_timeout = nan } <<',
    "aws.read_timeout inf": 'aws = { target = "moto", read_timeout = inf } <<',
    "aws.max_attempts negative": 'aws = { target = "moto", max_attempts = -3 } <<',
    "aws.max_attempts zero": 'aws = { target = "moto", max_attempts = 0 } <<',
    "aws.max_attempts a fraction": 'aws = { target = "moto", max_attempts = 1.5 } <<',
    "aws.max_attempts as a string": 'aws = { target = "moto", max_attempts = "3" } <<',
    "aws.regions as a string": 'aws = { target = "moto", regions = "eu-west-1" } <<',
    "aws.regions empty": 'aws = { target = "moto", regions = [] } <<',
    "aws.regions of numbers": 'aws = { target = "moto", regions = [1] } <<',
    "aws unknown key": 'aws = { target = "moto", regoin = "eu-west-1" } <<',
    "services as a string": 'services = "http://x" <<',
    "service as a number": "services = { api = 5 } <<",
    "service url as a number": "services = { api = { url = 5 } } <<",
    "service url without scheme": 'services = { api = "api.example.com" } <<',
    "service url ftp": '[environments.test.services]\napi = "ftp://api.example.com" <<',
    "service table without url": "services = { api = { timeout_s = 2 } } <<",
    "service unknown key": 'services = { api = { url = "http://x", timeout = 2 } } <<',
    "service timeout_s as a string": 'services = { api = { url = "http://x", timeout_s = "abc" } } <<',
    "service timeout_s negative": 'services = { api = { url = "http://x", timeout_s = -1 } } <<',
    "service timeout_s zero": 'services = { api = { url = "http://x", timeout_s = 0 } } <<',
    "service timeout_s as a bool": 'services = { api = { url = "http://x", timeout_s = true } } <<',
    "service verify_tls as a number": 'services = { api = { url = "https://x", verify_tls = 7 } } <<',
    "service verify_tls empty": 'services = { api = { url = "https://x", verify_tls = "" } } <<',
    "service verify_tls missing CA file": '[environments.test.services.api] <<\nurl = "https://x"\n'
                                          'verify_tls = "/no/such/ca.pem"',
    "service headers as a string": 'services = { api = { url = "http://x", headers = "a" } } <<',
    "service header as a number": 'services = { api = { url = "http://x", headers = { a = 1 } } } <<',
    "service header with an unset variable": 'services = { api = { url = "http://x", headers = { a = '
                                             '"${RUNBOOKS_TEST_NEVER_SET}" } } } <<',
    "hosts as a string": 'hosts = "local://" <<',
    "host as a number": "[environments.test.hosts]\nweb = 5 <<",
    "host without scheme": '[environments.test.hosts]\nweb = "web.example.com" <<',
    "host unknown connection type": '[environments.test.hosts]\nweb = "sssh://web.example.com" <<',
    "docker as a string": 'docker = "unix:///var/run/docker.sock" <<',
    "docker.host as a number": "docker = { host = 5 } <<",
    "docker.host ftp": 'docker = { host = "ftp://x" } <<',
    "docker.containers as a number": "docker = { containers = 5 } <<",
    "docker container name as a number": "docker = { containers = [1] } <<",
    "docker container name invalid": 'docker = { containers = ["not a name!"] } <<',
    "docker unknown key": 'docker = { hots = "unix:///x" } <<',
    "environment unknown key": 'servcies = { api = "http://x" } <<',
    "environment unknown sub-table": "[environments.test.varz] <<\nx = 1",
}

CASES: list[Case] = [
    # runbooks.toml: the top level
    config("default_environment as a number", "default_environment = 5 <<\n" + ENV),
    config("default_environment empty", 'default_environment = "" <<\n' + ENV),
    config("default_environment undefined", 'default_environment = "prod" <<\n' + ENV),
    config("features as a number", "features = 5 <<\n" + ENV),
    config("features as a list", 'features = ["a"] <<\n' + ENV),
    config("steps as a string", 'steps = "steps" <<\n' + ENV),
    config("steps of numbers", "steps = [1] <<\n" + ENV),
    config("environments as a number", "environments = 5 <<\n"),
    config("environments empty", "[environments] <<\n"),
    config("environment as a string", 'environments = { test = "x" } <<\n'),
    config("unknown top-level key", 'enviroments = 1 <<\n' + ENV),
    config("empty file", ""),
    config("only comments", "# nothing here\n"),
    config("invalid TOML", ENV + "owner = platform-team <<\n"),
    config("unterminated string", ENV + 'description = "never closed <<\n'),
    config("duplicated table", ENV + "[environments.test] <<\n"),
    config("duplicated key", ENV + 'description = "a"\ndescription = "b" <<\n'),
    config("bad date", ENV + "description = 2026-13-45 <<\n"),
    config("not UTF-8", ENV.encode() + b'description = "caf\xe9" <<\n'),
    config("latin-1 on the first line", b"# r\xe9sum\xe9 <<\n" + ENV.encode()),
    config("binary", b"\x00\x01\x02\x03 <<"),
    config("UTF-16", "[environments.test]\n".encode("utf-16"), 1),
    config("BOM, then a mistake", "\ufeff" + ENV + "servcies = {} <<\n"),
    config("CRLF, then a mistake", (ENV + "servcies = {} <<\n").replace("\n", "\r\n")),
    config("a huge line", ENV + 'description = "' + "x" * 200_000 + " <<\n"),
    config("a huge unknown key", ENV + "k" * 10_000 + " = 1 <<\n"),
    *(env(name, text + "\n") for name, text in WRONG_TYPES.items()),
    # feature files
    feature("a lone @ tag", "Feature: F\n  @ <<\n  Scenario: S\n    Then on host \"local\", the file \"/\" exists\n"),
    feature("@@", "@@ <<\nFeature: F\n  Scenario: S\n    Then on host \"local\", the file \"/\" exists\n"),
    feature("a tag with no name before its value", "Feature: F\n  @:critical <<\n  Scenario: S\n"
            "    Then on host \"local\", the file \"/\" exists\n"),
    feature("a tag starting with _", "Feature: F\n  @_private <<\n  Scenario: S\n"
            "    Then on host \"local\", the file \"/\" exists\n"),
    feature("a lone @ on Examples", "Feature: F\n  Scenario Outline: S\n    Then on host \"local\", the file \"<p>\" "
            "exists\n    @ <<\n    Examples:\n      | p |\n      | / |\n"),
    feature("a tag with a space", "Feature: F\n  @severity: critical <<\n  Scenario: S\n"
            "    Then on host \"local\", the file \"/\" exists\n"),
    feature("not UTF-8", b'Feature: F\n  Scenario: S\n    Then on host "local", the file "/caf\xe9" exists <<\n'),
    feature("binary", b"\x7fELF\x02\x01\x01\x00 <<\n"),
    feature("UTF-16", "Feature: F\n".encode("utf-16"), 1),
    feature("a byte-order mark", "\ufeffFeature: F <<\n  Scenario: S\n"
            "    Then on host \"local\", the file \"/\" exists\n"),
    feature("CRLF, then an unknown step", "Feature: F\r\n  Scenario: S\r\n    Then the moon is made of cheese <<\r\n"),
    feature("empty", "", 1),
    feature("only comments", "# nothing yet <<\n"),
    feature("no Feature: line", "Scenario: S <<\n  Then on host \"local\", the file \"/\" exists\n"),
    feature("a second Feature", "Feature: F\n  Scenario: S\n    Then on host \"local\", the file \"/\" exists\n"
            "Feature: G <<\n  Scenario: T\n    Then on host \"local\", the file \"/\" exists\n"),
    feature("a step before the first Scenario", "Feature: F\n  Given on host \"local\", the file \"/\" exists <<\n"
            "  Scenario: S\n    Then on host \"local\", the file \"/\" exists\n"),
    feature("a misspelt step before the first Scenario", "Feature: F\n"
            "  Then on host \"local\", the file \"/\" exist <<\n"
            "  Scenario: S\n    Then on host \"local\", the file \"/\" exists\n"),
    feature("a * step before the first Scenario", "Feature: F\n  * manual: page the on-call engineer <<\n"
            "  Scenario: S\n    Then on host \"local\", the file \"/\" exists\n"),
    feature("a step in a Rule's description", "Feature: F\n  Rule: R\n"
            "    And on host \"local\", the file \"/\" exists <<\n"
            "    Scenario: S\n      Then on host \"local\", the file \"/\" exists\n"),
    feature("steps and no Scenario", "Feature: F\n  Then on host \"local\", the file \"/\" exists <<\n"),
    feature("an outline placeholder without a column", "Feature: F\n  Scenario Outline: S\n"
            "    Then on host \"local\", the file \"<p>\" exists <<\n    Examples:\n      | q |\n      | / |\n"),
    feature("an outline without Examples", "Feature: F\n  Scenario Outline: S\n"
            "    Then on host \"local\", the file \"<p>\" exists <<\n"),
    feature("an outline with an empty Examples table", "Feature: F\n  Scenario Outline: S\n"
            "    Then on host \"local\", the file \"<p>\" exists <<\n    Examples:\n      | p |\n"),
    feature("an outline with a misspelt column", "Feature: F\n  Scenario Outline: S\n"
            "    Then on host \"local\", the file \"<pth>\" exists <<\n    Examples:\n      | path |\n      | / |\n"),
    feature("a table row with another cell count", "Feature: F\n  Scenario Outline: S\n"
            "    Then on host \"local\", the file \"<p>\" exists\n    Examples:\n      | p |\n      | / | x | <<\n"),
    feature("an unknown step", "Feature: F\n  Scenario: S\n    Then the moon is made of cheese <<\n"),
    feature("a misspelt step", "Feature: F\n  Scenario: S\n    Then on host \"local\", the file \"/\" exist <<\n"),
    feature("an unknown step in the Background", "Feature: F\n  Background:\n    Given the coffee is hot <<\n"
            "  Scenario: S\n    Then on host \"local\", the file \"/\" exists\n"),
    feature("an undefined {variable}", "Feature: F\n  Scenario: S\n"
            "    Then on host \"local\", the file \"{pth}\" exists <<\n"),
    feature("an unknown host", "Feature: F\n  Scenario: S\n    Then on host \"locla\", the file \"/\" exists <<\n"),
    feature("a relative path", "Feature: F\n  Scenario: S\n    Then on host \"local\", the file \"etc\" exists <<\n"),
    feature("a negative number", "Feature: F\n  Scenario: S\n"
            "    Then on host \"local\", the filesystem \"/\" has at least -5% free space <<\n"),
    feature("a number too large", "Feature: F\n  Scenario: S\n"
            "    Then on host \"local\", memory usage is below 250% <<\n"),
    feature("a number variable that is not a number", "Feature: F\n  Scenario: S\n"
            "    Then on host \"local\", port {path} is listening <<\n"),
    feature("duplicate scenario names", "Feature: F\n  Scenario: S\n    Then on host \"local\", the file \"/\" exists\n"
            "  Scenario: S <<\n    Then on host \"local\", the file \"/\" exists\n"),
    feature("And as the first step", "Feature: F\n  Scenario: S\n"
            "    And on host \"local\", the file \"/\" exists <<\n"),
    feature("an unknown capability", "Feature: F\n  @requires:teleporter <<\n  Scenario: S\n"
            "    Then on host \"local\", the file \"/\" exists\n"),
    feature("stray text", "Feature: F\n  Scenario: S\n    Then on host \"local\", the file \"/\" exists\n"
            "    this line is not a step <<\n"),
    feature("an unterminated doc string", "Feature: F\n  Scenario: S\n    Then on host \"local\", the file \"/\" "
            "exists\n      \"\"\"\n      text\n"),
    feature("an unknown language", "# language: xx <<\nFeature: F\n  Scenario: S\n"
            "    Then on host \"local\", the file \"/\" exists\n"),
    feature("a Background after a Scenario", "Feature: F\n  Scenario: S\n    Then on host \"local\", the file \"/\" "
            "exists\n  Background: <<\n    Given on host \"local\", the file \"/\" exists\n"),
    feature("a huge line", "Feature: F\n  Scenario: S\n    Then the step " + "x" * 100_000 + " <<\n"),
    # waivers.toml
    waivers("waiver = [1, 2]", "waiver = [1, 2] <<\n"),
    waivers("waiver as a number", "# accepted exceptions\nwaiver = 5 <<\n"),
    waivers("a single [waiver] table", "[waiver] <<\nrunbook = \"x\"\n"),
    waivers("unknown top-level key", "waivers = [] <<\n"),
    waivers("missing keys", '[[waiver]] <<\nrunbook = "features/ok.feature"\n'),
    waivers("unknown key", WAIVER + 'ticket = "CHG-1"\n'),
    waivers("expires not a date", WAIVER.replace("2030-01-01", '"soon"')),
    waivers("expires an impossible date string", WAIVER.replace("2030-01-01", '"2030-02-30"')),
    waivers("expires a number", WAIVER.replace("2030-01-01", "2030")),
    waivers("reason a number", WAIVER.replace('"CHG-1"', "1")),
    waivers("reason empty", WAIVER.replace('"CHG-1"', '"  "')),
    waivers("step a list", WAIVER + 'step = ["a"]\n'),
    waivers("invalid TOML", "[[waiver]]\nrunbook = <<\n"),
    waivers("an impossible TOML date", WAIVER.replace("2030-01-01", "2030-13-01"), 6),
    waivers("not UTF-8", b'[[waiver]]\nreason = "caf\xe9" <<\n'),
    waivers("binary", b"\x00\x00\x00 <<"),
    waivers("BOM, then a mistake", "\ufeffwaiver = 5 <<\n"),
    waivers("CRLF, then a mistake", "# x\r\nwaiver = 5 <<\r\n"),
    waivers("a huge line", "# " + "x" * 100_000 + "\nwaiver = 5 <<\n"),
    # the command line
    command("--config a folder", "{root}:", "verify", "--config", "{root}"),
    command("--config missing", "nope.toml:", "verify", "--config", "{root}/nope.toml"),
    command("--env unknown", "unknown environment 'prd'", *VERIFY, "--env", "prd"),
    command("--tags unbalanced", "--tags", *VERIFY, "--tags", "@smoke and ("),
    command("--tags a lone operator", "--tags", *VERIFY, "--tags", "and"),
    command("--tags matching nothing", "--tags", *VERIFY, "--tags", "@no-such-tag"),
    command("--fail-on bogus", "--fail-on", *VERIFY, "--fail-on", "bogus"),
    command("an unknown option", "--bogus", *VERIFY, "--bogus"),
    command("an unknown command", "'verfy'", "verfy"),
    command("a path that does not exist", "nowhere:", *VERIFY, "{root}/nowhere"),
    command("a path that is not a feature", "notes.txt:", *VERIFY, "{root}/notes.txt",
            files=(("notes.txt", b"hello\n"),)),
    command("a folder without features", "no .feature files under", *VERIFY, "{root}/empty",
            files=(("empty/README", b""),)),
    command("--waivers missing", "no-waivers.toml:", *VERIFY, "--waivers", "{root}/no-waivers.toml"),
    command("--waivers a folder", "{root}/reports:", *VERIFY, "--waivers", "{root}/reports",
            files=(("reports/keep", b""),)),
    command("a folder named waivers.toml", "waivers.toml:", *VERIFY, files=(("waivers.toml/keep", b""),)),
    command("--report-dir under a file", "--report-dir", "verify", "--config", "{root}/runbooks.toml",
            "--no-history", "--report-dir", "{root}/afile/reports", files=(("afile", b""),)),
    command("--cucumber-json under a file", "--cucumber-json", *VERIFY, "--cucumber-json", "{root}/afile/c.json",
            files=(("afile", b""),)),
    command("--drift with --no-history", "--no-history", *VERIFY, "--drift"),
    command("lint --max-age negative", "--max-age", "lint", "--config", "{root}/runbooks.toml", "--max-age", "-1"),
    command("history --limit negative", "--limit", "history", "--config", "{root}/runbooks.toml", "--limit", "-1"),
    command("history --limit not a number", "--limit", "history", "--limit", "ten"),
    command("drift --against a foreign JSON file", "foreign.json:", "drift", "--config", "{root}/runbooks.toml",
            "--against", "{root}/foreign.json", files=(("foreign.json", b'{"run": {}, "results": [1]}'),),
            needs_run=True),
    command("drift --against a JSON list", "foreign.json:", "drift", "--config", "{root}/runbooks.toml",
            "--against", "{root}/foreign.json", files=(("foreign.json", b"[1, 2]"),), needs_run=True),
    command("drift --against a binary file", "foreign.json:", "drift", "--config", "{root}/runbooks.toml",
            "--against", "{root}/foreign.json", files=(("foreign.json", b"\xff\xfe\x00"),), needs_run=True),
    command("drift --against a folder", "--against", "drift", "--config", "{root}/runbooks.toml",
            "--against", "{root}/features", needs_run=True),
    command("drift --against an unknown run", "--against", "drift", "--config", "{root}/runbooks.toml",
            "--against", "zzzz", needs_run=True),
    command("render --out under a file", "--out", "render", "--config", "{root}/runbooks.toml",
            "--out", "{root}/afile/site", files=(("afile", b""),)),
    command("render --out a file", "--out", "render", "--config", "{root}/runbooks.toml", "--out", "{root}/afile",
            files=(("afile", b""),)),
    command("render --results a foreign JSON file", "foreign.json:", "render", "--config", "{root}/runbooks.toml",
            "--out", "{root}/site", "--results", "{root}/foreign.json",
            files=(("foreign.json", b'{"run": {}, "results": [{"step": 5}]}'),)),
    command("render --results missing", "results file not found", "render", "--config", "{root}/runbooks.toml",
            "--out", "{root}/site", "--results", "{root}/nope.json"),
    command("render without --out", "--out", "render", "--config", "{root}/runbooks.toml"),
]


def project(root: Path, case: Case) -> Path:
    (root / "features").mkdir(parents=True, exist_ok=True)
    (root / "runbooks.toml").write_text(ENV, encoding="utf-8")
    (root / "features" / "ok.feature").write_text(OK_FEATURE, encoding="utf-8")
    for name, data in case.files:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if name == "features/ok.feature" and not data:
            path.unlink()  # the bad feature alone
            continue
        path.write_bytes(data)
    return root


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with one recorded run: its history, for the drift cases."""
    root = project(tmp_path_factory.mktemp("recorded"), Case("recorded", (), ""))
    assert main(["verify", "--config", str(root / "runbooks.toml"), "--report-dir", str(root / "reports")]) == 0
    return root


def run(argv: tuple[str, ...], root: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        code = main([arg.replace("{root}", str(root)) for arg in argv])
    except SystemExit as exc:  # argparse's own usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_the_corpus_is_large(capsys: pytest.CaptureFixture[str]) -> None:
    kinds = {case.id.split(":")[0] for case in CASES}
    with capsys.disabled():
        print(f"\nbad-input corpus: {len(CASES)} cases ({', '.join(sorted(kinds))})")
    assert len(CASES) >= 100
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_one_line_and_exit_2(case: Case, tmp_path: Path, recorded: Path,
                                           capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RUNBOOKS_CONFIG", raising=False)
    monkeypatch.delenv("RUNBOOKS_NOTIFY_URL", raising=False)
    root = project(tmp_path / "project", case)
    if case.needs_run:
        shutil.copytree(recorded / ".runbooks", root / ".runbooks")
    monkeypatch.chdir(root)
    code, out, err = run(case.argv, root, capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, (code, out, err)
    assert len(lines) == 1, err
    assert lines[0].startswith("runbooks: error: "), err
    assert case.names.replace("{root}", str(root)) in lines[0], (case.names, lines[0])
    assert "Traceback" not in out + err and "internal error" not in err
    assert not (root / "reports" / "results.json").exists()  # nothing ran


def test_a_report_folder_made_read_only_during_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """One line naming the reports that could not be written, exit 2; the summary, the history and the
    Cucumber JSON written elsewhere are kept. (chmod would not stop root: the write itself is refused.)"""
    import tempfile

    import runbooks.reports

    root = project(tmp_path, Case("read-only", (), ""))
    reports = root / "reports"
    real_mkstemp = tempfile.mkstemp

    def read_only(*args: object, dir: str | Path | None = None, **kwargs: object) -> tuple[int, str]:
        if dir is not None and Path(dir) == reports:
            raise PermissionError(13, "Permission denied", str(dir))
        return real_mkstemp(*args, dir=dir, **kwargs)  # type: ignore[call-overload,no-any-return]

    monkeypatch.setattr(runbooks.reports.tempfile, "mkstemp", read_only)
    code, out, err = run(("verify", "--config", "{root}/runbooks.toml", "--report-dir", "{root}/reports",
                          "--cucumber-json", "{root}/elsewhere/cucumber.json"), root, capsys)
    assert code == 2, out + err
    (line,) = err.splitlines()
    assert line.startswith(f"runbooks: error: could not write {reports / 'junit.xml'} (Permission denied), "
                           f"{reports / 'results.json'} (Permission denied); the run ended with exit 0"), line
    assert "PASS" in out and "Summary: 1 automated steps: 1 passed" in out  # the results were shown
    assert (root / "elsewhere" / "cucumber.json").is_file()  # the report that could be written was
    assert (root / ".runbooks" / "history.sqlite").is_file()
    assert not list(reports.glob("*"))  # and no half-written file is left behind


SAMPLE = ["feature: a lone @ tag", "toml: not UTF-8", "cli: --config a folder", "waivers: waiver = [1, 2]"]


@pytest.mark.parametrize("case_id", SAMPLE)
def test_a_sample_as_a_real_process(case_id: str, tmp_path: Path) -> None:
    case = next(c for c in CASES if c.id == case_id)
    root = project(tmp_path, case)
    proc = subprocess.run([sys.executable, "-m", "runbooks.cli", *(a.replace("{root}", str(root)) for a in case.argv)],
                          cwd=root, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.splitlines()
    assert case.names.replace("{root}", str(root)) in line and "Traceback" not in proc.stderr + proc.stdout
