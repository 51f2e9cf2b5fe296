"""Shared fixtures: a started run against a chosen target, and a way to evaluate one check through it."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from runbooks import testing
from runbooks.config import load_config
from runbooks.context import ScenarioState
from runbooks.registry import load_step_modules
from runbooks.result import CheckResult, Outcome
from runbooks.session import Session
from tests.support.status_service import status_service  # noqa: F401 - a fixture for every test module

load_step_modules()

pytest_plugins = [
    "tests.support.permissions",  # every step's AWS calls must be within its permissions
    "tests.support.prometheus",  # the `monitoring` fixture: a real Prometheus and Alertmanager, started on first use
]

REPO = Path(__file__).resolve().parent.parent


def write_config(directory: Path, body: str) -> Path:
    path = directory / "runbooks.toml"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def make_run(directory: Path, env_body: str, name: str = "test") -> Session:
    """A started run for ``[environments.<name>]`` with ``env_body`` as its TOML body."""
    path = write_config(directory, f"[environments.{name}]\n" + textwrap.dedent(env_body))
    config = load_config(path)
    return Session(config, config.environment(name)).start()


def evaluate(run: Session, func: Callable[..., CheckResult], state: ScenarioState | None = None, **args: Any
             ) -> CheckResult:
    """Evaluate a check the way a step does (exceptions classified into ERROR, manual command filled)."""
    return testing.evaluate(run, func, state, **args)


def checked(result: CheckResult, outcome: Outcome, *observed: str) -> CheckResult:
    """``result`` has ``outcome`` and each text in its observed; it says how to check by hand, and a FAIL says
    what was expected and how to fix it."""
    assert result.outcome is outcome, result
    for text in observed:
        assert text in result.observed, (text, result)
    assert result.manual_command, result
    if outcome is Outcome.FAIL:
        assert result.expected and result.hint, result
    return result


@pytest.fixture
def moto_run(tmp_path: Path) -> Iterator[Session]:
    """A run with the in-process moto target (empty account, eu-west-1); create resources with boto3."""
    run = make_run(tmp_path, 'aws = { target = "moto", region = "eu-west-1" }\n')
    yield run
    run.stop()


@pytest.fixture
def run_factory(tmp_path: Path) -> Iterator[Callable[[str], Session]]:
    """Build started runs from an environment body; all are stopped at teardown."""
    runs: list[Session] = []

    def factory(env_body: str, name: str = "test") -> Session:
        run = make_run(tmp_path, env_body, name)
        runs.append(run)
        return run

    yield factory
    for run in runs:
        run.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the end-to-end tests (those that run a command through the CLI) as ``e2e``."""
    import inspect

    for item in items:
        function = getattr(item, "function", None)
        try:
            source = inspect.getsource(function) if function is not None else ""
        except (OSError, TypeError):
            continue
        if any(call in source for call in ('main(["', "main([\n", "cli_main(", '"runbooks", "', "verify(")):
            item.add_marker(pytest.mark.e2e)
