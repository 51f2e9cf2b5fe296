"""The pytest plugin: collects ``.feature`` files as runbooks and hands every step to the session.

``runbooks verify`` builds the :class:`~runbooks.session.Session` itself and passes a
:class:`RunbooksPlugin` instance to ``pytest.main``. Plain ``pytest features/ --runbooks-env NAME``
loads this module (through the root ``conftest.py``), and
:func:`pytest_configure` builds the same session from the ``--runbooks-*`` options.
"""

from __future__ import annotations

import argparse
import sys
import time
import types
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest
from pytest_bdd import scenario as bdd_scenario
from pytest_bdd.feature import features as bdd_features
from pytest_bdd.feature import get_features
from pytest_bdd.parser import Feature, Scenario, Step

from .config import Config, ConfigError, load_config
from .features import parse_feature
from .formatting import failure_message
from .history import DEFAULT_PATH as DEFAULT_HISTORY
from .preflight import check_feature, display_path
from .registry import STEP_RUNNER, StepDefinition
from .result import SEVERITIES, Outcome, RunStatus, StepRecord
from .session import HARD_STEP_TYPES, Options, ScenarioProgress, Session
from .tags import TagFilter
from .targets import missing_capability

_STATE = pytest.StashKey[ScenarioProgress]()
PLUGIN_NAME = "runbooks-session"


class _Reported(pytest.fail.Exception):  # type: ignore[name-defined,misc]
    """A failure whose message already carries the evidence: pytest shows it without a traceback."""

    def __init__(self, message: str) -> None:
        super().__init__(message, pytrace=False)


class StepStopped(_Reported):
    """Raised by a failed Given/When step: the rest of the scenario is recorded as skipped."""


class ScenarioFailed(_Reported):
    """Raised at the end of a scenario whose checks failed or could not run."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("runbooks", "executable runbooks")
    group.addoption("--runbooks-env", default=None, help="environment from runbooks.toml (default: its default)")
    group.addoption("--runbooks-config", default=None, help="path to runbooks.toml (default: search upwards)")
    group.addoption("--runbooks-report-dir", default="reports", help="where to write results.json and junit.xml")
    group.addoption("--runbooks-fail-on", default="info", choices=SEVERITIES,
                    help="lowest severity whose failures fail the run (default: info = any)")
    group.addoption("--runbooks-waivers", default=None, help="waivers file (default: waivers.toml beside the config)")
    group.addoption("--runbooks-history", default=None,
                    help="history database (default: .runbooks/history.sqlite beside the config)")
    group.addoption("--runbooks-no-history", action="store_true", default=False, help="do not record this run")
    group.addoption("--runbooks-procedure", action="store_true", default=False, help=argparse.SUPPRESS)


def pytest_configure(config: pytest.Config) -> None:
    """Plain pytest: build the session from the options (``runbooks verify`` registered its own)."""
    if config.pluginmanager.get_plugin(PLUGIN_NAME) is None and not any(
        isinstance(p, RunbooksPlugin) for p in config.pluginmanager.get_plugins()
    ):
        config.pluginmanager.register(RunbooksPlugin(lambda: _session_from_options(config)), PLUGIN_NAME)


def _session_from_options(config: pytest.Config) -> Session:
    option = config.getoption
    path = option("runbooks_config")
    if path is None:
        candidate = Path(config.rootpath) / "runbooks.toml"
        path = str(candidate) if candidate.is_file() else None
    runbooks_config: Config = load_config(path)
    env = runbooks_config.environment(option("runbooks_env"))
    history = None if option("runbooks_no_history") else \
        Path(option("runbooks_history") or runbooks_config.root / DEFAULT_HISTORY)
    options = Options(
        fail_on=option("runbooks_fail_on"),
        report_dir=Path(option("runbooks_report_dir")),
        waivers=Path(option("runbooks_waivers")) if option("runbooks_waivers") else None,
        history=history,
    )
    if option("runbooks_procedure"):
        from .sinks.console import ConsoleSink

        options.sinks.append(ConsoleSink())
    return Session.from_options(runbooks_config, env, options)


class RunbooksPlugin:
    """The hooks that feed one session. Given a session (``runbooks verify``) or a way to build one
    when the first runbook is collected (plain pytest, which may never collect one)."""

    def __init__(self, session: Session | Callable[[], Session], *, preflight_done: bool = False,
                 tags: TagFilter | None = None) -> None:
        self._session = session if isinstance(session, Session) else None
        self._factory = None if isinstance(session, Session) else session
        self.preflight_done = preflight_done
        self.tags = tags
        self.collect_errors: list[str] = []
        self.interrupted = False

    def pytest_configure(self, config: pytest.Config) -> None:
        config.stash[STEP_RUNNER] = self

    @property
    def session(self) -> Session:
        if self._session is None:
            assert self._factory is not None
            self._session = self._factory()
        return self._session

    @property
    def built(self) -> Session | None:
        return self._session

    def started(self) -> Session:
        """The session, started on first use; a run that cannot start says why once and ends (exit 3)."""
        session = self.session
        if session.status is RunStatus.RUNNING and not session.started:
            try:
                session.start()
            except KeyboardInterrupt:
                session.stop(RunStatus.INTERRUPTED)
                raise
            except Exception as exc:  # noqa: BLE001 - nothing can be checked; say why once, not per scenario
                session.stop(RunStatus.FAILED)
                message = f"runbooks: error: could not start the run for {session.env.name!r}: {exc}"
                print(message, file=sys.stderr)
                pytest.exit(message, returncode=session.exit_code())
        return session

    # collection --------------------------------------------------------------------------------
    def pytest_collect_file(self, file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
        if file_path.suffix == ".feature":
            return FeatureFile.from_parent(parent, path=file_path, plugin=self)
        return None

    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        if self.tags is None:
            return
        keep: list[pytest.Item] = []
        dropped: list[pytest.Item] = []
        for item in items:
            selected = self.tags.selects(getattr(getattr(item, "obj", None), "runbooks_tags", ()))
            (keep if selected else dropped).append(item)
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = keep

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.collect_errors.append(str(report.longreprtext))

    def pytest_keyboard_interrupt(self) -> None:
        self.interrupted = True

    # pytest-bdd hooks ----------------------------------------------------------------------------
    def pytest_bdd_before_scenario(self, request: pytest.FixtureRequest, feature: Feature,
                                   scenario: Scenario) -> None:
        session = self.started()
        runbook = display_path(Path(feature.filename), session.config.root)
        progress = ScenarioProgress(feature, scenario, runbook, getattr(request.node.obj, "runbooks_region", None))
        progress.skip_reason = missing_capability(session.env, progress.tags)
        request.node.stash[_STATE] = progress
        session.scenario_started(progress)

    def pytest_bdd_before_step(self, request: pytest.FixtureRequest, step: Step) -> None:
        request.node.stash[_STATE].current = step

    def pytest_bdd_step_error(self, request: pytest.FixtureRequest, step: Step, exception: Exception) -> None:
        progress = request.node.stash[_STATE]
        if not isinstance(exception, StepStopped) and id(step) not in progress.done:
            self.record_unexpected(progress, step, f"{type(exception).__name__}: {exception}")

    def pytest_bdd_step_func_lookup_error(self, request: pytest.FixtureRequest, step: Step) -> None:
        self.record_unexpected(request.node.stash[_STATE], step, "undefined step (no step definition matches)")

    def pytest_bdd_after_scenario(self, request: pytest.FixtureRequest) -> None:
        progress = request.node.stash[_STATE]
        session = self.session
        # Steps never reached: after a failed precondition, or because the run was interrupted (Ctrl-C).
        reason = "not run: an earlier step of this scenario did not pass" if progress.failed() \
            else "not run: the run was interrupted"
        for step in progress.scenario.steps:
            if id(step) not in progress.done:
                record = self._record(progress, step, Outcome.SKIPPED, 0.0)
                record.observed = reason
                progress.records.append(session.record(record))
        session.scenario_ended(progress)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        result = yield
        progress = item.stash.get(_STATE, None)
        if progress is not None and progress.failed():
            message = failure_message(progress.records)
            if progress.resolution():
                message += f"\nResolution (from the runbook): {progress.resolution()}"
            raise ScenarioFailed(message)
        return result

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        built = self.built
        if built is None or not built.started or built.status is not RunStatus.RUNNING:
            return
        if built.aborted:
            status = RunStatus.ABORTED
        elif exitstatus == pytest.ExitCode.INTERRUPTED:
            status = RunStatus.INTERRUPTED
        else:
            status = RunStatus.FINISHED
        built.stop(status)

    # steps -------------------------------------------------------------------------------------
    def execute_step(self, request: pytest.FixtureRequest, definition: StepDefinition, args: dict[str, Any]) -> None:
        progress: ScenarioProgress = request.node.stash[_STATE]
        step = progress.current
        assert step is not None
        session = self.started()
        if progress.skip_reason:
            record = self._record(progress, step, Outcome.SKIPPED, 0.0)
            record.observed = progress.skip_reason
            progress.records.append(session.record(record))
            return
        start = time.perf_counter()
        result = session.evaluate(definition, args, progress.state, progress.region)
        record = self._record(progress, step, result.outcome, elapsed_ms(start))
        record.resource, record.expected, record.observed = result.resource, result.expected, result.observed
        record.hint, record.manual_command, record.evidence = result.hint, result.manual_command, result.evidence
        progress.records.append(session.record(record))
        if definition.guard and result.outcome is Outcome.FAIL:
            session.abort(f"guard failed: {record.step}: {result.observed}")
            pytest.exit(f"runbooks: stopped: {session.aborted}", returncode=session.exit_code())
        if result.outcome in (Outcome.FAIL, Outcome.ERROR) and step.type in HARD_STEP_TYPES:
            raise StepStopped(failure_message([progress.records[-1]]))

    def _record(self, progress: ScenarioProgress, step: Step, outcome: Outcome, duration: float) -> StepRecord:
        progress.done.add(id(step))
        session = self.session
        return StepRecord(
            runbook=progress.runbook,
            scenario=progress.name,
            step=session.resolve(step.name),
            written=step.name,
            outcome=outcome,
            duration_ms=duration,
            severity=progress.severity,
            tags=progress.tags,
            keyword=step.keyword.strip(),
            line=step.line_number,
            environment=session.env.name,
        )

    def record_unexpected(self, progress: ScenarioProgress, step: Step, message: str) -> None:
        record = self._record(progress, step, Outcome.ERROR, 0.0)
        record.observed = message
        record.hint = "fix the step or its arguments in the feature file"
        progress.records.append(self.started().record(record))


def plugin_of(config: pytest.Config) -> RunbooksPlugin:
    for plugin in config.pluginmanager.get_plugins():
        if isinstance(plugin, RunbooksPlugin):
            return plugin
    raise LookupError("the runbooks plugin is not registered")


class FeatureFile(pytest.Module):
    """A runbook: one test per scenario (per region for ``@all-regions``), bound through pytest-bdd."""

    def __init__(self, *args: Any, plugin: RunbooksPlugin, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.plugin = plugin

    def collect(self) -> Any:
        self.obj = self._bind()
        return super().collect()

    def _bind(self) -> types.ModuleType:
        session = self.plugin.session
        if not self.plugin.preflight_done:  # `runbooks verify` checked every file already
            doc = parse_feature(self.path)  # our checks first: clear file:line errors, no silent duplicates
            problems = check_feature(doc, session.env, display_path(self.path, session.config.root))
            if problems:
                raise CollectError("\n".join(str(p) for p in problems))
        module = types.ModuleType(self.path.stem)
        module.__file__ = str(self.path)
        # pytest-bdd parses each file once per process; an in-process run after an edit must see the edit.
        bdd_features.pop(str(self.path.resolve()), None)
        for feature in get_features([str(self.path)]):
            for name in feature.scenarios:
                self._add_scenario(module, feature, name, session)
        return module

    def _add_scenario(self, module: types.ModuleType, feature: Feature, name: str, session: Session) -> None:
        def _scenario() -> None:
            pass

        scenario_tags = feature.scenarios[name].tags
        regions: list[str | None] = [None]
        if "all-regions" in feature.tags | scenario_tags:  # one test per region of the environment
            regions = list(session.env.aws.all_regions)
        pinned = _tag_value(scenario_tags, "region") or _tag_value(feature.tags, "region")
        for region in regions:
            test = bdd_scenario(feature.filename, name, features_base_dir=str(self.path.parent))(_scenario)
            test.runbooks_region = region or pinned  # type: ignore[attr-defined]
            test.runbooks_tags = feature.tags | scenario_tags  # type: ignore[attr-defined]
            test_name = f"test_{_python_name(name)}" + (f"__{_python_name(region)}" if region else "")
            while test_name in module.__dict__:  # two names that differ only in punctuation
                test_name += "_"
            module.__dict__[test_name] = test

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, CollectError | ConfigError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)  # a Collector's repr_failure takes no style


class CollectError(Exception):
    """A feature file preflight refused: its problems, one ``file:line: message`` per line."""


def _tag_value(tags: set[str], prefix: str) -> str | None:
    return next((t.split(":", 1)[1] for t in sorted(tags) if t.startswith(prefix + ":")), None)


def _python_name(name: str) -> str:
    return "_".join("".join(ch if ch.isalnum() else " " for ch in name.lower()).split())[:80]


def elapsed_ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 1)
