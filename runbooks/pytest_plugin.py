"""The pytest plugin: collects ``.feature`` files as runbooks, runs their steps, records every result.

Loaded by the root ``conftest.py``, so ``pytest features/ --runbooks-env NAME`` and ``runbooks verify``
run exactly the same code.
"""

from __future__ import annotations

import argparse
import sys
import time
import types
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest
from pytest_bdd import scenario as bdd_scenario
from pytest_bdd.feature import features as bdd_feature_cache
from pytest_bdd.feature import get_features
from pytest_bdd.parser import Feature, Scenario, Step

from .config import Config, ConfigError, load_config
from .features import parse_feature, section
from .formatting import failure_message, step_details, step_line
from .history import DEFAULT_PATH as DEFAULT_HISTORY
from .history import History
from .preflight import check_feature, display_path
from .registry import RUN_KEY, StepDefinition
from .reports import SEVERITIES, write_reports
from .result import Outcome, StepRecord
from .run import (
    HARD_STEP_TYPES,
    Run,
    ScenarioFailed,
    ScenarioState,
    StepStopped,
    elapsed_ms,
    missing_capability,
)
from .waivers import load_waivers

_STATE = pytest.StashKey["ScenarioProgress"]()


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
    group.addoption("--runbooks-preflight-done", action="store_true", default=False,
                    help=argparse.SUPPRESS)  # set by `runbooks verify`, which ran preflight itself
    group.addoption(
        "--runbooks-procedure",
        action="store_true",
        default=False,
        help="print each runbook as a procedure while it runs (used by `runbooks verify`)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.stash[RUN_KEY] = RunbooksSession(config)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix == ".feature":
        return FeatureFile.from_parent(parent, path=file_path)
    return None


class FeatureFile(pytest.Module):
    """A runbook: one test per scenario, bound through pytest-bdd."""

    def _getobj(self) -> types.ModuleType:
        session: RunbooksSession = self.config.stash[RUN_KEY]
        if not self.config.getoption("runbooks_preflight_done"):  # `runbooks verify` checked every file already
            doc = parse_feature(self.path)  # our parser first: clear file:line errors, no silent duplicates
            problems = check_feature(doc, session.environment(), display_path(self.path, session.config_root()))
            if problems:
                raise self.CollectError("\n".join(str(p) for p in problems))
        module = types.ModuleType(self.path.stem)
        module.__file__ = str(self.path)
        # pytest-bdd caches parsed features per process; a long-lived process must see the file as it is now.
        bdd_feature_cache.pop(str(self.path), None)
        for feature in get_features([str(self.path)]):
            for name in feature.scenarios:

                def _scenario() -> None:
                    pass

                tags = feature.tags | feature.scenarios[name].tags
                regions: list[str | None] = [None]
                if "all-regions" in tags:  # one test per region of the environment
                    regions = list(session.environment().aws.all_regions)
                for region in regions:
                    test = bdd_scenario(feature.filename, name, features_base_dir=str(self.path.parent))(_scenario)
                    pinned = _tag_value(feature.scenarios[name].tags, "region") or _tag_value(feature.tags, "region")
                    test.runbooks_region = region or pinned  # type: ignore[attr-defined]
                    test_name = f"test_{_python_name(name)}" + (f"__{_python_name(region)}" if region else "")
                    while test_name in module.__dict__:  # two names that differ only in punctuation
                        test_name += "_"
                    module.__dict__[test_name] = test
        return module

    class CollectError(Exception):
        pass

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, FeatureFile.CollectError | ConfigError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)  # a Collector's repr_failure takes no style


def _tag_value(tags: set[str], prefix: str) -> str | None:
    return next((t.split(":", 1)[1] for t in sorted(tags) if t.startswith(prefix + ":")), None)


def _python_name(name: str) -> str:
    return "_".join("".join(ch if ch.isalnum() else " " for ch in name.lower()).split())[:80]


class ScenarioProgress:
    """The steps of the running scenario and what has become of them."""

    def __init__(self, feature: Feature, scenario: Scenario, runbook: str, region: str | None = None) -> None:
        self.feature = feature
        self.scenario = scenario
        self.region = region
        # A scenario run per region is one scenario per region in every report (and in drift).
        self.name = f"{scenario.name} [{region}]" if region and "all-regions" in feature.tags | scenario.tags \
            else scenario.name
        self.runbook = runbook
        self.state = ScenarioState()
        self.records: list[StepRecord] = []
        self.done: set[int] = set()
        self.current: Step | None = None
        tags = sorted(feature.tags | scenario.tags)
        self.tags = tags
        self.severity = _severity(scenario.tags) or _severity(feature.tags) or "unrated"
        self.skip_reason: str | None = None

    def failed(self) -> bool:
        return any(r.outcome in (Outcome.FAIL, Outcome.ERROR) for r in self.records)

    def resolution(self) -> str | None:
        return section(self.scenario.description, "Resolution")


def _severity(tags: set[str]) -> str | None:
    for tag in tags:
        if tag.startswith("severity:"):
            return tag.split(":", 1)[1]
    return None


class RunbooksSession:
    """Per pytest session: the lazily started :class:`Run` and the hooks that feed it."""

    def __init__(self, config: pytest.Config) -> None:
        self.pytest_config = config
        self._config: Config | None = None
        self.run: Run | None = None
        self.printer = ProcedurePrinter() if config.getoption("runbooks_procedure") else None
        self.report_paths: list[Path] = []

    # configuration ---------------------------------------------------------------------------
    def config(self) -> Config:
        if self._config is None:
            path = self.pytest_config.getoption("runbooks_config")
            if path is None:
                candidate = Path(self.pytest_config.rootpath) / "runbooks.toml"
                path = str(candidate) if candidate.is_file() else None
            self._config = load_config(path)
        return self._config

    def config_root(self) -> Path:
        return self.config().root

    def environment(self) -> Any:
        return self.config().environment(self.pytest_config.getoption("runbooks_env"))

    def ensure_run(self) -> Run:
        if self.run is None:
            config, option = self.config(), self.pytest_config.getoption
            run = Run(config, self.environment())
            run.fail_on = option("runbooks_fail_on")
            if self.printer:
                run.listeners.append(self.printer.step)
            try:
                waivers = option("runbooks_waivers") or (config.root / "waivers.toml")
                if option("runbooks_waivers") or Path(waivers).is_file():
                    run.waivers = load_waivers(Path(waivers))
                if not option("runbooks_no_history"):
                    run.history = History(Path(option("runbooks_history") or config.root / DEFAULT_HISTORY))
                self.run = run.start()
            except KeyboardInterrupt:
                run.stop("interrupted")
                raise
            except Exception as exc:  # noqa: BLE001 - nothing can be checked; say why once, not per scenario
                run.stop("failed")
                message = f"runbooks: error: could not start the run for {run.env.name!r}: {exc}"
                print(message, file=sys.stderr)
                pytest.exit(message, returncode=3)
        return self.run

    # steps -------------------------------------------------------------------------------------
    def execute_step(self, request: pytest.FixtureRequest, definition: StepDefinition, args: dict[str, Any]) -> None:
        progress: ScenarioProgress = request.node.stash[_STATE]
        step = progress.current
        assert step is not None
        run = self.ensure_run()
        if progress.skip_reason:
            record = self._record(progress, step, Outcome.SKIPPED, 0.0)
            record.observed = progress.skip_reason
            progress.records.append(run.record(record))
            return
        start = time.perf_counter()
        result = run.evaluate(definition, args, progress.state, progress.region)
        record = self._record(progress, step, result.outcome, elapsed_ms(start))
        record.resource, record.expected, record.observed = result.resource, result.expected, result.observed
        record.hint, record.manual_command = result.hint, result.manual_command
        progress.records.append(run.record(record))
        if definition.guard and result.outcome is Outcome.FAIL:
            run.aborted = f"guard failed: {record.step}: {result.observed}"
            pytest.exit(f"runbooks: stopped: {run.aborted}", returncode=2)
        if result.outcome in (Outcome.FAIL, Outcome.ERROR) and step.type in HARD_STEP_TYPES:
            raise StepStopped(failure_message([progress.records[-1]]))

    def _record(self, progress: ScenarioProgress, step: Step, outcome: Outcome, duration: float) -> StepRecord:
        progress.done.add(id(step))
        run = self.ensure_run()
        return StepRecord(
            runbook=progress.runbook,
            scenario=progress.name,
            step=run.resolve(step.name),
            written=step.name,
            outcome=outcome,
            duration_ms=duration,
            severity=progress.severity,
            tags=progress.tags,
            keyword=step.keyword.strip(),
            line=step.line_number,
            environment=run.env.name,
        )

    def record_unexpected(self, progress: ScenarioProgress, step: Step, message: str) -> None:
        record = self._record(progress, step, Outcome.ERROR, 0.0)
        record.observed = message
        record.hint = "fix the step or its arguments in the feature file"
        progress.records.append(self.ensure_run().record(record))

    # reports -----------------------------------------------------------------------------------
    def finish(self, exitstatus: int) -> None:
        if self.run is None:
            return
        if self.run.aborted:
            status = "aborted"  # a guard step stopped the run on purpose
        elif exitstatus == pytest.ExitCode.INTERRUPTED:
            status = "interrupted"  # Ctrl-C / SIGINT: what was gathered is kept
        else:
            status = "finished"
        self.run.stop(status)
        report_dir = Path(self.pytest_config.getoption("runbooks_report_dir"))
        self.report_paths = write_reports(report_dir, self.run.metadata(), self.run.records)


# pytest-bdd hooks ------------------------------------------------------------------------------
def pytest_bdd_before_scenario(request: pytest.FixtureRequest, feature: Feature, scenario: Scenario) -> None:
    session: RunbooksSession = request.config.stash[RUN_KEY]
    run = session.ensure_run()
    runbook = display_path(Path(feature.filename), run.config.root)
    progress = ScenarioProgress(feature, scenario, runbook, getattr(request.node.obj, "runbooks_region", None))
    progress.skip_reason = missing_capability(run.env, progress.tags)
    request.node.stash[_STATE] = progress
    if session.printer:
        session.printer.scenario(progress)


def pytest_bdd_before_step(request: pytest.FixtureRequest, step: Step, **_: Any) -> None:
    request.node.stash[_STATE].current = step


def pytest_bdd_step_error(request: pytest.FixtureRequest, step: Step, exception: Exception, **_: Any) -> None:
    progress: ScenarioProgress = request.node.stash[_STATE]
    if not isinstance(exception, StepStopped) and id(step) not in progress.done:
        request.config.stash[RUN_KEY].record_unexpected(progress, step, f"{type(exception).__name__}: {exception}")


def pytest_bdd_step_func_lookup_error(request: pytest.FixtureRequest, step: Step, **_: Any) -> None:
    progress: ScenarioProgress = request.node.stash[_STATE]
    request.config.stash[RUN_KEY].record_unexpected(progress, step, "undefined step (no step definition matches)")


def pytest_bdd_after_scenario(request: pytest.FixtureRequest, **_: Any) -> None:
    progress: ScenarioProgress = request.node.stash[_STATE]
    session: RunbooksSession = request.config.stash[RUN_KEY]
    run = session.ensure_run()
    # Steps never reached: after a failed precondition, or because the run was interrupted (Ctrl-C).
    reason = "not run: an earlier step of this scenario did not pass" if progress.failed() \
        else "not run: the run was interrupted"
    for step in progress.scenario.steps:
        if id(step) not in progress.done:
            record = session._record(progress, step, Outcome.SKIPPED, 0.0)
            record.observed = reason
            progress.records.append(run.record(record))
    if session.printer and progress.failed():
        session.printer.resolution(progress)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    result = yield
    progress = item.stash.get(_STATE, None)
    if progress is not None and progress.failed():
        message = failure_message(progress.records)
        if progress.resolution():
            message += f"\nResolution (from the runbook): {progress.resolution()}"
        raise ScenarioFailed(message)
    return result


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    runbooks: RunbooksSession | None = session.config.stash.get(RUN_KEY, None)
    if runbooks is not None:
        runbooks.finish(exitstatus)


class ProcedurePrinter:
    """Prints runbooks as they run: runbook, scenario, each step with its mark and, under a failure, the evidence."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stdout
        self.colour = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._runbook: str | None = None
        self._skip_reason: str | None = None  # said once per scenario, not under every skipped step

    def write(self, text: str = "") -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def scenario(self, progress: ScenarioProgress) -> None:
        self._skip_reason = None
        if progress.runbook != self._runbook:
            self._runbook = progress.runbook
            self.write()
            self.write(f"Runbook: {progress.feature.name}  ({progress.runbook})")
            tags = [t for t in sorted(progress.feature.tags) if ":" in t]
            if tags:
                self.write("  " + " · ".join(tags))
        self.write()
        self.write(f"  Scenario: {progress.name}")

    def resolution(self, progress: ScenarioProgress) -> None:
        text = progress.resolution()
        if text:
            self.write(f"    Resolution (from the runbook): {text}")

    def step(self, record: StepRecord) -> None:
        self.write("    " + step_line(record, self.colour))
        if record.outcome is Outcome.SKIPPED and record.observed != self._skip_reason:
            self._skip_reason = record.observed
            self.write(f"          {record.observed}")
        for line in step_details(record):
            self.write("          " + line)
