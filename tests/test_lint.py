"""`runbooks lint`: each rule fires on a small bad runbook with its exact `file:line: message`, and the shipped
library passes."""

from __future__ import annotations

import textwrap
from datetime import date, timedelta
from pathlib import Path

import pytest

from runbooks.cli import main
from runbooks.config import load_config
from runbooks.lint import lint_files
from tests.conftest import REPO, write_config

TODAY = date(2026, 3, 1)
F = "features/ops/example.feature"

CONFIG = """\
default_environment = "test"

[environments.test]
aws = { target = "moto", region = "eu-west-1" }
vars = { bucket = "acme-b1" }
services = { api = "http://127.0.0.1:9" }

[environments.bare]
aws = { target = "moto", region = "eu-west-1" }
"""

# Line numbers matter: the tests below name them.
GOOD = """\
@owner:platform-team @severity:high @reviewed:2026-01-10 @operational
Feature: Example runbook
  Purpose:
    Show the template.

  When to use:
    In tests.

  Prerequisites:
    - Nothing.

  Escalation:
    - Page nobody.

  Rollback:
    Nothing to roll back; see features/ops/ for the others.

  References:
    - Guide: docs/guide.md, docs/guide.md#anchor
    - All of them: features/ops/ (https://example.com/not/a/path)

  Scenario: Bucket is versioned
    Then the S3 bucket "{bucket}" has versioning enabled

  Scenario: API is live
    Then the service "api" answers GET "/health" with status 200 within 500 ms
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    write_config(tmp_path, CONFIG)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "guide.md").write_text("# Guide\n")
    (tmp_path / "features" / "ops").mkdir(parents=True)
    return tmp_path


def lint(repo: Path, text: str, *, today: date = TODAY, env: str | None = "test", **kw: object) -> list[str]:
    path = repo / F
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    config = load_config(repo / "runbooks.toml")
    return [str(i) for i in lint_files(config, config.environment(env), [path], today=today, **kw)]  # type: ignore[arg-type]


def edit(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new, 1)


def test_the_template_example_is_clean(repo):
    assert lint(repo, GOOD) == []


def test_undefined_step_names_the_closest_phrase(repo):
    (issue,) = lint(repo, edit("has versioning enabled", "has versioning enabeld"))
    prefix = f'{F}:23: undefined step: Then the S3 bucket "{{bucket}}" has versioning enabeld; closest known: '
    assert issue.startswith(prefix)
    assert 'the S3 bucket "{bucket}" has versioning enabled' in issue[len(prefix):].split(" | ")


def test_missing_template_tags(repo):
    assert lint(repo, GOOD.split("\n", 1)[1]) == [
        f"{F}:1: missing class tag @operational or @integrity",
        f"{F}:1: missing tag @owner:<team>",
        f"{F}:1: missing tag @reviewed:YYYY-MM-DD",
        f"{F}:1: missing tag @severity:<critical|high|medium|low|info>",
    ]


def test_empty_owner_and_invalid_severity_on_feature_and_scenario(repo):
    text = edit("@owner:platform-team @severity:high", "@owner: @severity:urgent")
    text = text.replace("  Scenario: API is live", "  @severity:hi\n  Scenario: API is live")
    assert lint(repo, text) == [
        f"{F}:1: empty @owner: tag; write @owner:<team>",
        f"{F}:1: invalid severity 'urgent'; use one of: critical, high, medium, low, info",
        f"{F}:25: invalid severity 'hi'; use one of: critical, high, medium, low, info",
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2026-02-30", "invalid review date '2026-02-30'; write @reviewed:YYYY-MM-DD"),
        ("20260110", "invalid review date '20260110'; write @reviewed:YYYY-MM-DD"),
        ("last-week", "invalid review date 'last-week'; write @reviewed:YYYY-MM-DD"),
        ("2026-03-02", "review date 2026-03-02 is in the future (today is 2026-03-01)"),
    ],
)
def test_invalid_or_future_review_date(repo, value, message):
    assert lint(repo, edit("@reviewed:2026-01-10", f"@reviewed:{value}")) == [f"{F}:1: {message}"]


def test_review_age_boundary(repo):
    text = edit("@reviewed:2026-01-10", "@reviewed:2025-09-02")  # 180 days before 2026-03-01
    assert (TODAY - date(2025, 9, 2)).days == 180
    assert lint(repo, text, max_age=180) == []
    advice = "review the runbook and update @reviewed:"
    stale = f"{F}:1: warning: last reviewed 2025-09-02, 181 days ago (more than 180): {advice}"
    assert lint(repo, text, max_age=180, today=TODAY + timedelta(days=1)) == [stale]
    assert lint(repo, text, max_age=180, today=TODAY + timedelta(days=1), strict=True) == [
        stale.replace("warning: ", "")
    ]
    assert lint(repo, text, max_age=179) == [
        f"{F}:1: warning: last reviewed 2025-09-02, 180 days ago (more than 179): {advice}"
    ]


def test_missing_and_empty_description_sections(repo):
    text = edit("  Rollback:\n    Nothing to roll back; see features/ops/ for the others.\n\n", "")
    text = text.replace("  Escalation:\n    - Page nobody.\n", "  Escalation:\n")
    assert lint(repo, text) == [
        f"{F}:2: missing description section 'Rollback:'",
        f"{F}:12: description section 'Escalation:' is empty",
    ]


def test_troubleshooting_scenarios_need_symptom_root_cause_resolution(repo):
    text = GOOD.replace("  Scenario: Bucket is versioned\n", textwrap.indent(textwrap.dedent("""\
        @troubleshooting
        Scenario: Bucket is versioned
          Symptom: old object versions cannot be restored.
          Resolution:
            Enable versioning.
        """), "  "))
    assert lint(repo, text) == [
        f"{F}:23: troubleshooting scenario 'Bucket is versioned' is missing 'Root cause:' in its description "
        "(needs Symptom:, Root cause:, Resolution:)"
    ]
    # A feature tagged @troubleshooting makes every scenario a troubleshooting one.
    issues = lint(repo, edit("@operational", "@operational @troubleshooting"))
    assert [i.split(" is missing ")[0] for i in issues] == [
        f"{F}:22: troubleshooting scenario 'Bucket is versioned'",
        f"{F}:25: troubleshooting scenario 'API is live'",
    ]
    all_missing = "is missing 'Symptom:', 'Root cause:', 'Resolution:' in its description"
    assert all(all_missing in i for i in issues)


def test_undefined_variable_and_unknown_service_for_the_chosen_environment(repo):
    text = edit('"{bucket}"', '"{buckett}"').replace('service "api"', 'service "apii"')
    assert lint(repo, text) == [
        f"{F}:23: variable {{buckett}} is not defined by environment 'test' (add it under [environments.test.vars])",
        f"{F}:26: service 'apii' is not defined by environment 'test'; did you mean 'api'?",
    ]
    assert lint(repo, GOOD, env="bare") == [
        f"{F}:23: variable {{bucket}} is not defined by environment 'bare' (add it under [environments.bare.vars])",
        f"{F}:26: service 'api' is not defined by environment 'bare'; defined: none",
    ]


def test_broken_references(repo):
    text = edit("docs/guide.md, docs/guide.md#anchor", "docs/guide.md, docs/gone.md#anchor, notes/runbook.md")
    text = text.replace("see features/ops/ for", "see features/rollback/emergency.feature for")
    hint = "no such file or folder (paths are relative to the repo root)"
    assert lint(repo, text) == [
        f"{F}:16: broken reference 'features/rollback/emergency.feature': {hint}",
        f"{F}:19: broken reference 'docs/gone.md#anchor': {hint}",
        f"{F}:19: broken reference 'notes/runbook.md': {hint}",
    ]
    (repo / "features" / "rollback").mkdir()
    (repo / "features" / "rollback" / "emergency.feature").write_text(GOOD)
    (repo / "notes").mkdir()
    (repo / "notes" / "runbook.md").write_text("notes")
    assert lint(repo, text) == [f"{F}:19: broken reference 'docs/gone.md#anchor': {hint}"]


CROSS_REFERENCES = GOOD.replace("""  Scenario: Bucket is versioned
""", """  @troubleshooting
  Scenario: Bucket is versioned
    Symptom:
      Overwritten objects are lost.
    Root cause:
      Versioning was suspended.
    Resolution:
      1. Enable it, then follow features/rollback/restore.feature.

""").replace("""    Then the service "api" answers GET "/health" with status 200 within 500 ms
""", """    Then the service "api" answers GET "/health" with status 200 within 500 ms
    * manual: if it is not, roll back (features/rollback/emergency.feature).
""")


def test_runbooks_mentioned_in_scenario_paragraphs_and_steps_must_exist(repo, capsys):
    hint = "no such file or folder (paths are relative to the repo root)"
    expected = [
        f"{F}:29: broken reference 'features/rollback/restore.feature': {hint}",
        f"{F}:35: broken reference 'features/rollback/emergency.feature': {hint}",
    ]
    assert lint(repo, CROSS_REFERENCES) == expected
    code, out, err = run_cli(repo, capsys, "--max-age", "36500")  # the example's review date ages
    assert (code, out) == (1, expected)
    assert "1 runbook(s), 2 error(s), 0 warning(s)" in err
    (repo / "features" / "rollback").mkdir()
    for name in ("restore.feature", "emergency.feature"):
        (repo / "features" / "rollback" / name).write_text(GOOD)
    assert lint(repo, CROSS_REFERENCES) == []


def test_duplicate_scenario_names(repo):
    text = edit("Scenario: API is live", "Scenario: Bucket is versioned")
    assert lint(repo, text) == [
        f"{F}:25: scenario 'Bucket is versioned' has the same name as the one at line 22; "
        "pytest-bdd would silently run only the last one - rename one of them"
    ]


def test_unknown_requires_capability(repo):
    text = edit("  Scenario: API is live", "  @requires:gpu\n  Scenario: API is live")
    (issue,) = lint(repo, text)
    assert issue.startswith(f"{F}:25: unknown capability @requires:gpu; known: @requires:docker, ")


def test_gherkin_syntax_error_is_one_issue(repo):
    (issue,) = lint(repo, GOOD + "    this is not a step\n")
    assert issue.startswith(f"{F}:27: Gherkin syntax error: ")
    assert "this is not a step" in issue


# The command line -----------------------------------------------------------------------------------------
def run_cli(repo: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], str]:
    code = main(["lint", "--config", str(repo / "runbooks.toml"), *args])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def write(repo: Path, text: str) -> None:
    (repo / F).write_text(text, encoding="utf-8")


def test_cli_exit_codes_warnings_and_strict(repo, capsys):
    write(repo, edit("@reviewed:2026-01-10", f"@reviewed:{(date.today() - timedelta(days=181)).isoformat()}"))
    code, out, err = run_cli(repo, capsys)
    assert code == 0
    assert len(out) == 1 and out[0].startswith(f"{F}:1: warning: last reviewed ")
    assert "181 days ago (more than 180)" in out[0]
    assert "1 runbook(s), 0 error(s), 1 warning(s)" in err

    code, out, _ = run_cli(repo, capsys, "--strict")
    assert code == 1 and out[0].startswith(f"{F}:1: last reviewed ")
    code, out, _ = run_cli(repo, capsys, "--max-age", "181")
    assert (code, out) == (0, [])

    write(repo, GOOD.replace("@reviewed:2026-01-10", f"@reviewed:{date.today().isoformat()}"))
    assert run_cli(repo, capsys)[:2] == (0, [])
    code, out, _ = run_cli(repo, capsys, "--env", "bare", str(repo / F))
    assert code == 1 and len(out) == 2 and "not defined by environment 'bare'" in out[0]


def test_cli_refuses_bad_input_with_one_line(repo, capsys):
    write(repo, GOOD)
    code, out, err = run_cli(repo, capsys, "--env", "prd")
    assert code == 2 and err.startswith("runbooks: error: ") and "unknown environment 'prd'" in err
    code, out, err = run_cli(repo, capsys, str(repo / "nowhere"))
    assert code == 2 and "no such file or folder" in err
    code, _, err = run_cli(repo, capsys, "--max-age", "-1")
    assert code == 2 and "--max-age" in err


def test_shipped_library_passes_lint(capsys):
    """The acceptance test for the runbook library in features/: every runbook follows the template."""
    code = main(["lint", "--config", str(REPO / "runbooks.toml")])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert "0 error(s)" in err
