"""A pytest plugin: every AWS call a step makes during the test session must be one its ``permissions``
declare, so the generated IAM policy (built from those declarations) is enough to run it.

Calls are attributed through the engine's ``CURRENT_STEP``; calls made outside a step (sandbox
provisioning, test setup with boto3) are not the steps' business and are ignored.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from runbooks.context import CURRENT_STEP
from runbooks.registry import StepDefinition
from runbooks.targets.aws import CALL_OBSERVERS, iam_action

# The run's own credentials, not any step's: the IAM policy leaves it out on purpose (iam_policy.py).
ENGINE_ACTIONS = frozenset({"sts:AssumeRole"})


class CallRecorder:
    """A ``CALL_OBSERVERS`` entry: which IAM action each step's calls needed (called from any thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: dict[tuple[str, str], StepDefinition] = {}  # (phrase, action) -> the step that called

    def __call__(self, service: str, operation: str) -> None:
        definition: StepDefinition | None = CURRENT_STEP.get()
        if definition is None:
            return
        action = iam_action(service, operation)
        with self._lock:
            self.calls[(definition.phrase, action)] = definition

    def violations(self) -> list[str]:
        """One line per (step, action) recorded that the step does not declare."""
        with self._lock:
            calls = list(self.calls.items())
        return sorted(
            f"{d.domain}.{d.name}: called {action}, not among its permissions {list(d.permissions)}"
            for (_, action), d in calls
            if action not in d.permissions and action not in ENGINE_ACTIONS
        )


@contextmanager
def recording() -> Iterator[CallRecorder]:
    recorder = CallRecorder()
    CALL_OBSERVERS.append(recorder)
    try:
        yield recorder
    finally:
        CALL_OBSERVERS.remove(recorder)


SESSION_RECORDER: pytest.StashKey[CallRecorder] = pytest.StashKey()


def pytest_sessionstart(session: pytest.Session) -> None:
    recorder = CallRecorder()
    CALL_OBSERVERS.append(recorder)
    session.config.stash[SESSION_RECORDER] = recorder


def pytest_sessionfinish(session: pytest.Session) -> None:
    recorder = session.config.stash.get(SESSION_RECORDER, None)
    if recorder is None:
        return
    if recorder in CALL_OBSERVERS:
        CALL_OBSERVERS.remove(recorder)
    violations = recorder.violations()
    if not violations:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_sep("=", "AWS calls outside the calling step's declared permissions", red=True)
        for line in violations:
            reporter.write_line(line, red=True)
    else:
        print("AWS calls outside the calling step's declared permissions:", *violations, sep="\n")
    if session.exitstatus == pytest.ExitCode.OK:  # keep a worse status (failures, interruption) as it is
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
