"""A team's own repository: the wheel installed into a fresh venv, `runbooks init` outside this checkout,
the team's own steps used by every command, and a host pytest configuration that cannot break `verify`.

Slow (two pip installs into a new venv); everything else in the suite runs in the meantime.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


@dataclass
class Venv:
    path: Path

    @property
    def bin(self) -> Path:
        return self.path / "bin"

    def run(self, *args: str, cwd: Path, env: dict[str, str] | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "RUNBOOKS_", "AWS_"))}
        environ |= {"PATH": f"{self.bin}{os.pathsep}{environ.get('PATH', '')}", "VIRTUAL_ENV": str(self.path),
                    **(env or {})}
        environ.pop("PYTHONPATH", None)
        return subprocess.run([str(self.bin / args[0]), *args[1:]], cwd=cwd, env=environ, capture_output=True,
                              text=True, timeout=timeout, check=False)

    def packages(self) -> list[str]:
        out = self.run("python", "-m", "pip", "list", "--format=freeze", cwd=self.path)
        return [line.split("==")[0].lower() for line in out.stdout.splitlines() if "==" in line]

    def size_mb(self) -> float:
        site = next(self.path.glob("lib/python*/site-packages"))
        return sum(f.stat().st_size for f in site.rglob("*") if f.is_file()) / 1e6


def build_wheel(out: Path) -> Path:
    """The wheel, built from a copy of the checkout (the build writes build/ and *.egg-info beside it)."""
    source = out / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", ".runbooks", "reports", "site", "build", "dist", "*.egg-info", "__pycache__", ".venv", "venv"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                    str(out / "dist"), str(source)], check=True, capture_output=True, text=True, timeout=300)
    return next((out / "dist").glob("runbooks-*.whl"))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Iterator[Venv]:
    """A brand-new venv with the wheel and no extras: what a live-only `pip install runbooks` brings."""
    path = tmp_path_factory.mktemp("venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, timeout=120)
    env = Venv(path)
    installed = env.run("python", "-m", "pip", "install", "-q", str(wheel), cwd=path, timeout=600)
    assert installed.returncode == 0, installed.stderr[-3000:]
    yield env


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty directory outside this checkout: the team's repository."""
    directory = tmp_path_factory.mktemp("team-repo")
    assert not directory.resolve().is_relative_to(REPO)
    return directory


def test_the_wheel_has_no_top_level_steps_package(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert not [n for n in names if n.startswith("steps/")]
    assert "runbooks/steps/aws_s3.py" in names
    assert "runbooks/scaffold/runbooks.toml" in names
    assert "runbooks/scaffold/.github/workflows/post-deploy-validation.yml" in names
    assert "runbooks/pytest.ini" in names


def test_a_live_only_install_brings_no_sandbox(venv: Venv, team: Path) -> None:
    packages = venv.packages()
    print(f"\npip install runbooks (no extras): {len(packages)} packages, {venv.size_mb():.0f} MB in site-packages")
    assert "runbooks" in packages
    assert not {"moto", "flask", "cfn-lint", "sympy", "networkx"} & set(packages)

    init = venv.run("runbooks", "init", cwd=team)
    assert init.returncode == 0, init.stderr
    again = venv.run("runbooks", "init", cwd=team)  # never overwrites
    assert again.returncode == 2 and "already exist" in again.stderr and "Traceback" not in again.stderr

    # the scaffold's sandbox needs moto: one line naming the extra, exit 2
    verify = venv.run("runbooks", "verify", cwd=team)
    assert verify.returncode == 2, verify.stdout + verify.stderr
    assert "runbooks[sandbox]" in verify.stderr and "Traceback" not in verify.stderr


def test_the_scaffold_passes_with_the_sandbox_extra(venv: Venv, wheel: Path, team: Path) -> None:
    installed = venv.run("python", "-m", "pip", "install", "-q", f"{wheel}[sandbox]", "pytest", cwd=team, timeout=600)
    assert installed.returncode == 0, installed.stderr[-3000:]
    print(f"\npip install runbooks[sandbox]: {len(venv.packages())} packages, {venv.size_mb():.0f} MB")

    verify = venv.run("runbooks", "verify", cwd=team)
    assert verify.returncode == 0, verify.stdout[-3000:] + verify.stderr
    assert 'PASS    And the S3 object "releases/v1.0.0/bundle.tar.gz" in the bucket' in verify.stdout
    drifted = venv.run("runbooks", "verify", "--env", "sandbox-drifted", cwd=team)
    assert drifted.returncode == 1, drifted.stdout[-3000:] + drifted.stderr
    assert venv.run("runbooks", "lint", cwd=team).returncode == 0
    step_tests = venv.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "steps/", cwd=team)
    assert step_tests.returncode == 0, step_tests.stdout[-3000:]
    assert "4 passed" in step_tests.stdout
    # plain pytest over the whole repository: the runbooks, then the step tests, which find no run left open
    whole = venv.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=team)
    assert whole.returncode == 0, whole.stdout[-3000:]
    assert "6 passed" in whole.stdout


RELEASE_STEP = '''
from runbooks.sdk import CheckContext, CheckResult, check


@check('the release "{release}" is published in the bucket "{bucket}"', permissions=("s3:ListBucketVersions",),
       manual="aws s3api list-object-versions --bucket {bucket} --prefix releases/{release}/")
def release_published(ctx: CheckContext, release: str, bucket: str) -> CheckResult:
    """At least one version of the release's bundle is in the bucket."""
    page = ctx.aws.read("s3", "list_object_versions", Bucket=bucket, Prefix=f"releases/{release}/")
    versions = page.get("Versions", [])
    resource = f"s3://{bucket}/releases/{release}/"
    if not versions:
        return CheckResult.failed(resource, "a published bundle", "nothing under the prefix", "publish it")
    return CheckResult.passed(resource, "a published bundle", f"{len(versions)} version(s)")
'''

RELEASE_RUNBOOK = '''
@owner:platform-team @severity:high @reviewed:{today} @integrity
Feature: Releases are published
  Purpose:
    The release bundles a rollback needs are in the artefact bucket.

  When to use:
    Before a rollback, to see what can be rolled back to.

  Prerequisites:
    - Read-only access to the artefact bucket.

  Escalation:
    - The release manager.

  Rollback:
    Nothing to roll back: this runbook only reads.

  References:
    - steps/releases.py

  Scenario: The current and the previous release are published
    Then the release "{{release}}" is published in the bucket "{{artifacts_bucket}}"
    And the release "v0.9.0" is published in the bucket "{{artifacts_bucket}}"
'''


def test_the_teams_own_step_is_seen_by_every_command(venv: Venv, team: Path) -> None:
    import datetime as dt

    (team / "steps" / "releases.py").write_text(RELEASE_STEP, encoding="utf-8")
    (team / "features" / "releases.feature").write_text(
        RELEASE_RUNBOOK.format(today=dt.date.today().isoformat()), encoding="utf-8")

    verify = venv.run("runbooks", "verify", "features/releases.feature", cwd=team)
    assert verify.returncode == 0, verify.stdout[-3000:] + verify.stderr
    assert 'PASS    Then the release "v1.0.0" is published in the bucket "example-artifacts-sandbox"' in verify.stdout

    lint = venv.run("runbooks", "lint", cwd=team)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    steps = venv.run("runbooks", "steps", "--search", "release published", cwd=team)
    assert steps.returncode == 0 and 'the release "{release}" is published' in steps.stdout, steps.stderr
    policy = venv.run("runbooks", "iam-policy", cwd=team)
    assert policy.returncode == 0 and '"s3:ListBucketVersions"' in policy.stdout, policy.stderr

    plain = venv.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "features/", "-rA",
                     "--runbooks-no-history", cwd=team)
    assert plain.returncode == 0, plain.stdout[-3000:] + plain.stderr
    assert "PASSED features/releases.feature::test_the_current_and_the_previous_release_are_published" in plain.stdout
    assert "warning" not in plain.stdout.lower()


def test_two_definitions_of_one_phrase_name_both(venv: Venv, team: Path) -> None:
    duplicate = team / "steps" / "duplicate.py"
    duplicate.write_text(textwrap.dedent('''
        from runbooks.sdk import check


        @check('the S3 bucket "{bucket}" exists')
        def bucket_exists(ctx, bucket):
            raise NotImplementedError
    '''), encoding="utf-8")
    try:
        for command in (("verify",), ("lint",), ("steps",), ("iam-policy",)):
            result = venv.run("runbooks", *command, cwd=team)
            assert result.returncode == 2, (command, result.stdout[-2000:], result.stderr)
            message = result.stderr.strip().splitlines()[-1]
            assert "is defined twice" in message and "steps/duplicate.py:5" in message, message
            assert "runbooks/steps/aws_s3.py:" in message, message
    finally:
        duplicate.unlink()


def test_the_host_pytest_configuration_does_not_reach_verify(venv: Venv, team: Path) -> None:
    (team / "pytest.ini").write_text("[pytest]\naddopts = --cov=nothing --strict-markers\n", encoding="utf-8")
    (team / "conftest.py").write_text("import our_app_that_is_not_installed\n", encoding="utf-8")
    try:
        verify = venv.run("runbooks", "verify", cwd=team, env={"PYTEST_ADDOPTS": "--no-such-option"})
        assert verify.returncode == 0, verify.stdout[-3000:] + verify.stderr
        drifted = venv.run("runbooks", "verify", "--env", "sandbox-drifted", cwd=team)
        assert drifted.returncode == 1, drifted.stdout[-3000:] + drifted.stderr
    finally:
        (team / "pytest.ini").unlink()
        (team / "conftest.py").unlink()
