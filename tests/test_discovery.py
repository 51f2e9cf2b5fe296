"""Step discovery: the built-in library, installed step packs (entry points) and the project's own steps —
one registry for every command, and one line (exit 2) when two packs define the same phrase."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from runbooks import registry
from runbooks.cli import main
from runbooks.config import load_config
from runbooks.discovery import load_steps
from runbooks.errors import ConfigError, UsageError

REPO = Path(__file__).resolve().parent.parent

STEP = '''
from runbooks.sdk import CheckResult, check


@check('the widget "{{name}}" is {state}')
def widget_{state}(ctx, name):
    """A test step."""
    return CheckResult.passed(f"widget {{name}}", "{state}", "{state}")
'''


@pytest.fixture(autouse=True)
def isolated_imports() -> Iterator[None]:
    """Whatever a test imports as a team's steps is forgotten afterwards: the registry, modules, sys.path."""
    saved_registry, saved_path, saved_modules = dict(registry.REGISTRY), list(sys.path), set(sys.modules)
    yield
    registry.REGISTRY.clear()
    registry.REGISTRY.update(saved_registry)
    sys.path[:] = saved_path
    for name in set(sys.modules) - saved_modules:
        del sys.modules[name]


def project(tmp_path: Path, config_extra: str = "") -> Path:
    (tmp_path / "features").mkdir(exist_ok=True)
    config = tmp_path / "runbooks.toml"
    config.write_text(f'{config_extra}\n[environments.ci]\n', encoding="utf-8")
    return config


def write_step(path: Path, state: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(STEP.format(state=state), encoding="utf-8")


def phrases() -> set[str]:
    return set(registry.REGISTRY)


def test_the_projects_steps_folder_is_loaded_by_default(tmp_path: Path) -> None:
    write_step(tmp_path / "steps" / "widgets.py", "ready")
    write_step(tmp_path / "steps" / "_helpers.py", "helper")  # helpers and tests are not step modules
    write_step(tmp_path / "steps" / "test_widgets.py", "tested")
    modules = load_steps(load_config(project(tmp_path)))
    names = [m.__name__ for m in modules]
    assert "steps.widgets" in names and "steps._helpers" not in names and "steps.test_widgets" not in names
    assert 'the widget "{name}" is ready' in phrases()
    assert 'the widget "{name}" is tested' not in phrases()
    assert names[0] == "runbooks.steps"  # built-in first


def test_configured_paths_files_and_dotted_modules(tmp_path: Path) -> None:
    write_step(tmp_path / "ops" / "checks" / "widgets.py", "on")
    write_step(tmp_path / "extra.py", "off")
    write_step(tmp_path / "lib" / "teamlib" / "probes.py", "warm")
    sys.path.append(str(tmp_path / "lib"))
    config = project(tmp_path, 'steps = ["ops/checks", "extra.py", "teamlib.probes"]')
    load_steps(load_config(config))
    assert {'the widget "{name}" is on', 'the widget "{name}" is off', 'the widget "{name}" is warm'} <= phrases()


def test_a_configured_step_path_that_does_not_exist_is_a_config_error(tmp_path: Path) -> None:
    config = project(tmp_path, 'steps = ["no/such/dir"]')
    with pytest.raises(ConfigError, match="'no/such/dir' is neither a file or folder"):
        load_steps(load_config(config))
    with pytest.raises(ConfigError, match="steps must be a list"):
        load_config(project(tmp_path, 'steps = "steps"'))


def test_a_step_module_that_cannot_be_imported_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "steps").mkdir()
    (tmp_path / "steps" / "broken.py").write_text("import our_app_that_is_not_installed\n", encoding="utf-8")
    config = project(tmp_path)
    assert main(["steps", "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "steps.broken" in err and "No module named 'our_app_that_is_not_installed'" in err


def test_the_same_phrase_twice_names_both_definitions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "steps").mkdir()
    (tmp_path / "steps" / "mine.py").write_text(textwrap.dedent('''
        from runbooks.sdk import check


        @check('the S3 bucket "{bucket}" exists')
        def my_bucket_exists(ctx, bucket):
            raise NotImplementedError
    '''), encoding="utf-8")
    config = project(tmp_path)
    (tmp_path / "features" / "a.feature").write_text(
        'Feature: A\n  Scenario: B\n    Then the S3 bucket "b" exists\n', encoding="utf-8")
    for command in (["steps", "--config", str(config)], ["lint", "--config", str(config)],
                    ["iam-policy", "--config", str(config)]):
        capsys.readouterr()
        assert main(command) == 2, command
        err = capsys.readouterr().err.strip()
        assert "is defined twice" in err and f"{tmp_path / 'steps' / 'mine.py'}:5" in err, err
        assert "steps/aws_s3.py:" in err, err
    with pytest.raises(UsageError):
        load_steps(load_config(config))


def test_an_installed_step_pack_is_found_through_its_entry_point(tmp_path: Path) -> None:
    site = tmp_path / "site"
    write_step(site / "widgetpack" / "checks.py", "shiny")
    (site / "widgetpack" / "__init__.py").write_text("", encoding="utf-8")
    dist = site / "widgetpack-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: widgetpack\nVersion: 1.0\n", encoding="utf-8")
    (dist / "entry_points.txt").write_text("[runbooks.steps]\nwidgets = widgetpack\n", encoding="utf-8")
    sys.path.insert(0, str(site))
    modules = [m.__name__ for m in load_steps(None)]  # no project: built-in and installed packs
    assert "widgetpack.checks" in modules
    assert 'the widget "{name}" is shiny' in phrases()


def test_this_repository_never_imports_a_top_level_steps_package() -> None:
    """Its steps/ folder is the built-in library, installed as runbooks.steps: nothing may import it as
    `steps`, which is the name a team's own steps/ folder takes."""
    code = ("import sys; from runbooks.config import load_config; from runbooks.discovery import load_steps; "
            "load_steps(load_config('runbooks.toml')); import runbooks.cli; "
            "assert 'steps' not in sys.modules, sys.modules['steps']; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "ok", out.stderr
