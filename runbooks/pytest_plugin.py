"""The pytest plugin: collects ``.feature`` files as runbooks and hands every step to the session.

``runbooks verify`` builds the :class:`~runbooks.session.Session` itself and passes a
:class:`RunbooksPlugin` instance to ``pytest.main``, with a pytest configuration of its own. Plain
``pytest features/ --runbooks-env NAME`` loads this module through its ``pytest11`` entry point, and
:func:`pytest_configure` builds the same session from the ``--runbooks-*`` options when the first
runbook is collected. Either way the plugin registers the step modules (:mod:`runbooks.discovery`)
and maps each scenario to one pytest outcome: FAIL -> failed, ERROR -> error, nothing automated -> skipped.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
import types
from collections.abc import Callable, Generator
from contextlib import ExitStack
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from pytest_bdd import scenario as bdd_scenario
from pytest_bdd.feature import features as bdd_features
from pytest_bdd.feature import get_features
from pytest_bdd.parser import Feature, Scenario, Step

from . import shards
from .config import Config, ConfigError, load_config
from .deadlines import seconds_option
from .faults import classify
from .features import is_template, parse_feature
from .formatting import failure_message
from .history import DEFAULT_PATH as DEFAULT_HISTORY
from .preflight import check_feature, display_path
from .process import signal_of, terminate_as_interrupt
from .read_ahead import PlannedScenario, ReadAhead, plan_scenario
from .registry import STEP_RUNNER, StepDefinition
from .result import SEVERITIES, Outcome, RunStatus, ScenarioOutcome, StepRecord, scenario_outcome
from .session import HARD_STEP_TYPES, Options, ScenarioProgress, Session, scenario_name
from .shards import Part, Sharding, ShardLog, Unit, load_durations, shard_option
from .tags import TagFilter
from .targets import missing_capability
from .targets.aws import AwsAccount, AwsKind, NoAccounts, with_workers, workers_option

_STATE = pytest.StashKey[ScenarioProgress]()
_STOPPED = pytest.StashKey[bool]()  # a step error (a failed Given/When, an unexpected error) ended the scenario
PLUGIN_NAME = "runbooks-session"


class _Reported(pytest.fail.Exception):  # type: ignore[name-defined,misc]
    """A failure whose message already carries the evidence: pytest shows it without a traceback."""

    def __init__(self, message: str) -> None:
        super().__init__(message, pytrace=False)


class StepStopped(_Reported):
    """Raised by a failed Given/When step: the rest of the scenario is recorded as skipped."""


class ScenarioFailed(_Reported):
    """Raised at the end of a scenario whose checks failed."""


class ScenarioErrored(_Reported):
    """Raised at the end of a scenario whose checks could not run (no FAIL): reported as an error."""


_OUTCOME = pytest.StashKey[ScenarioOutcome]()


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
    group.addoption("--runbooks-cucumber-json", default=None, metavar="PATH",
                    help="write a Cucumber JSON report (pytest-bdd's --cucumberjson writes the same one)")
    group.addoption("--runbooks-timeout", type=seconds_option, default=None, metavar="SECONDS",
                    help="run deadline: steps not run by then are ERROR (default: run_timeout_s; 0: none)")
    group.addoption("--runbooks-step-timeout", type=seconds_option, default=None, metavar="SECONDS",
                    help="deadline of each step (default: step_timeout_s, else 300; 0: none)")
    group.addoption("--runbooks-workers", type=workers_option, default=None, metavar="N",
                    help="AWS requests in flight at once (default: aws.max_workers, else 16; moto: 4)")
    group.addoption("--runbooks-shard", type=shard_option, default=None, metavar="K/N",
                    help="run the K-th of N parts (no history recorded; `runbooks merge` joins the parts)")
    group.addoption("--runbooks-procedure", action="store_true", default=False, help=argparse.SUPPRESS)


@pytest.hookimpl(trylast=True)  # the instance's own pytest_configure runs after pytest-bdd's
def pytest_configure(config: pytest.Config) -> None:
    """Plain pytest: build the session from the options (``runbooks verify`` registered its own)."""
    if config.pluginmanager.get_plugin(PLUGIN_NAME) is None and not any(
        isinstance(p, RunbooksPlugin) for p in config.pluginmanager.get_plugins()
    ):
        config.pluginmanager.register(RunbooksPlugin(None), PLUGIN_NAME)


def _config_from_options(config: pytest.Config) -> Config | None:
    """The runbooks configuration plain pytest runs with: ``--runbooks-config``, else ``runbooks.toml`` at
    the rootdir, else the one found upwards when ``--runbooks-env`` asks for a run; None: no runbooks here."""
    path = config.getoption("runbooks_config")
    if path is not None:
        return load_config(path)
    candidate = Path(config.rootpath) / "runbooks.toml"
    if candidate.is_file():
        return load_config(candidate)
    return load_config(None) if config.getoption("runbooks_env") else None


def _session_from_options(config: pytest.Config, runbooks_config: Config) -> Session:
    option = config.getoption
    env = with_workers(runbooks_config.environment(option("runbooks_env")), option("runbooks_workers"))
    history = None if option("runbooks_no_history") or option("runbooks_shard") else \
        Path(option("runbooks_history") or runbooks_config.root / DEFAULT_HISTORY)
    cucumber = option("runbooks_cucumber_json") or getattr(config.option, "cucumber_json_path", None)
    options = Options(
        fail_on=option("runbooks_fail_on"),
        report_dir=Path(option("runbooks_report_dir")),
        waivers=Path(option("runbooks_waivers")) if option("runbooks_waivers") else None,
        history=history,
        cucumber_json=Path(cucumber) if cucumber else None,
        run_timeout_s=option("runbooks_timeout"),
        step_timeout_s=option("runbooks_step_timeout"),
    )
    if option("runbooks_procedure"):
        from .sinks.console import ConsoleSink

        options.sinks.append(ConsoleSink())
    if hasattr(config, "workerinput"):  # an xdist worker: its part goes to the controller, which reports the run
        options.report_dir = options.history = options.cucumber_json = None
        options.sinks = []
    return Session.from_options(runbooks_config, env, options)


class RunbooksPlugin:
    """The hooks that feed one session. Given a session and its step modules (``runbooks verify``), or
    None: plain pytest, which builds both from its options when the first runbook is collected."""

    def __init__(self, session: Session | None, *, step_modules: list[ModuleType] | None = None,
                 preflight_done: bool = False, tags: TagFilter | None = None,
                 shard: Sharding | None = None) -> None:
        self._session = session
        self.shard = shard
        self.shard_log: ShardLog | None = None  # what a shard or an xdist worker records for merging
        self.positions: dict[str, int] = {}  # each selected scenario's place in the whole run, by node id
        self.worker_parts: list[Part] = []  # an xdist controller: what each worker ran
        self.step_modules = step_modules
        self.preflight_done = preflight_done
        self.tags = tags
        self.collect_errors: list[str] = []
        self.interrupted = False
        self.interrupt_signal = int(signal.SIGINT)  # SIGTERM when the run was terminated
        self.config: pytest.Config | None = None
        self._runbooks_config: Config | None = None
        self._markers: set[str] | None = None  # marker names registered in this pytest run, read once
        self._signals = ExitStack()
        self._accounts_problem: str | None = None  # why the organization's accounts could not be listed
        self.last_scenario: str | None = None  # node id of the run's last scenario: the run ends after it
        self.ended_after_last_scenario = False

    @pytest.hookimpl(trylast=True)  # after pytest-bdd configured its Cucumber JSON writer
    def pytest_configure(self, config: pytest.Config) -> None:
        self.config = config
        config.stash[STEP_RUNNER] = self
        if self.step_modules is not None:
            self._register(self.step_modules)
        _replace_bdd_cucumber_writer(config)

    @property
    def runbooks_config(self) -> Config | None:
        if self._session is not None:
            return self._session.config
        if self._runbooks_config is None and self.config is not None:
            self._runbooks_config = _config_from_options(self.config)
        return self._runbooks_config

    @property
    def session(self) -> Session:
        if self._session is None:
            assert self.config is not None and self.runbooks_config is not None
            from .registry import load_step_modules

            self._register(load_step_modules(self.runbooks_config))
            self._session = _session_from_options(self.config, self.runbooks_config)
            # pytest-bdd configured its writer after this plugin's pytest_configure (both trylast, loaded as
            # entry points): a run of runbooks takes it out here
            _replace_bdd_cucumber_writer(self.config)
        return self._session

    @property
    def built(self) -> Session | None:
        return self._session

    def _register(self, modules: list[ModuleType]) -> None:
        """Step modules become pytest plugins: pytest-bdd finds the step definitions among their fixtures."""
        assert self.config is not None
        manager = self.config.pluginmanager
        for module in modules:
            if not manager.is_registered(module) and manager.get_plugin(module.__name__) is None:
                manager.register(module, module.__name__)

    def accounts(self) -> tuple[AwsAccount, ...]:
        """The accounts ``@all-accounts`` scenarios run in. Finding them in the organization reads AWS, so
        the run starts here (at collection); a run that cannot list them ends, exit 3, saying why once."""
        session = self.session
        if session.env.aws.organization is None:
            return session.env.aws.accounts
        if self._accounts_problem is None:
            session = self.started()
            try:
                return session.aws.accounts()  # type: ignore[no-any-return]
            except Exception as exc:  # noqa: BLE001 - nothing per account can be checked; say why once
                reason = str(exc) if isinstance(exc, NoAccounts) else classify(exc, session.aws.target_name).reason
                self._accounts_problem = (f"runbooks: error: could not list the accounts of the organization for "
                                          f"{session.env.name!r}: {reason}")
                session.stop(RunStatus.FAILED)
        raise CollectError(self._accounts_problem)

    def started(self) -> Session:
        """The session, started on first use; a run that cannot start says why once and ends (exit 3)."""
        session = self.session
        if session.status is RunStatus.RUNNING and not session.started:
            if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:  # plain pytest (`runbooks verify` has its own)
                self._signals.enter_context(terminate_as_interrupt())
            try:
                session.start()
            except KeyboardInterrupt as exc:
                session.interrupt_signal = signal_of(exc)
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
        if file_path.suffix == ".feature" and self._claims(file_path) and not self._unnamed_template(file_path):
            return FeatureFile.from_parent(parent, path=file_path, plugin=self)
        return None

    def _unnamed_template(self, file_path: Path) -> bool:
        """The runbook template (``TEMPLATE.feature``) found in a folder: copied, never run unless named."""
        if not is_template(file_path) or self.config is None:
            return False
        named = {Path(str(arg).split("::", 1)[0]) for arg in self.config.args}
        return not any((self.config.invocation_params.dir / arg).resolve() == file_path.resolve() for arg in named)

    def _claims(self, file_path: Path) -> bool:
        """Whether a .feature file is a runbook: always under ``runbooks verify``; under plain pytest when
        a run was asked for (``--runbooks-env``/``--runbooks-config``) or it lies in the features folder
        of the project's runbooks.toml — a pytest-bdd suite of the host repository is left alone."""
        if self._session is not None or self.config is None:
            return True
        if self.config.getoption("runbooks_env") or self.config.getoption("runbooks_config"):
            return True
        runbooks_config = self.runbooks_config
        return runbooks_config is not None and file_path.resolve().is_relative_to(runbooks_config.features.resolve())

    @pytest.hookimpl(tryfirst=True)
    def pytest_bdd_apply_tag(self, tag: str, function: Callable[..., Any]) -> Callable[..., Any]:
        """A runbook tag becomes a registered marker (no unknown-mark warning, ``--strict-markers`` safe):
        ``@smoke`` -> ``smoke``, ``@severity:critical`` -> ``severity("critical")``."""
        name, _, value = tag.partition(":")
        if self.config is not None:
            if self._markers is None:
                self._markers = _registered_markers(self.config)
            if name not in self._markers:
                self.config.addinivalue_line("markers", f"{name}: runbook tag @{name}")
                self._markers.add(name)
        mark = getattr(pytest.mark, name)
        return mark(value)(function) if value else mark(function)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Tell the sinks which runbooks will run, in order (the console's ``[3/16]``); plan the read-ahead."""
        built = self.built
        if built is not None:
            runbooks = list(dict.fromkeys(display_path(item.path, built.config.root) for item in session.items))
            for sink in built.sinks:
                sink.on_collected(built, runbooks)
            built.read_ahead = _read_ahead(built, session.items, session.config)
        if getattr(session.config, "workerinput", None) is None:  # an xdist worker's share is decided as it goes
            scenarios = [item.nodeid for item in session.items if hasattr(getattr(item, "obj", None), "runbooks_where")]
            self.last_scenario = scenarios[-1] if scenarios else None

    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        if self.tags is not None:
            keep: list[pytest.Item] = []
            dropped: list[pytest.Item] = []
            for item in items:
                selected = self.tags.selects(getattr(getattr(item, "obj", None), "runbooks_tags", ()))
                (keep if selected else dropped).append(item)
            if dropped:
                config.hook.pytest_deselected(items=dropped)
                items[:] = keep
        self.positions = {item.nodeid: n for n, item in enumerate(items)}
        if self.shard is None and config.getoption("runbooks_shard", None) is not None:  # plain pytest
            no_history = config.getoption("runbooks_no_history")
            self.shard = Sharding(config.getoption("runbooks_shard"), None if no_history else Path(
                config.getoption("runbooks_history") or self.session.config.root / DEFAULT_HISTORY))
        if self.shard is not None:
            self._select_shard(config, items)
        workerinput = getattr(config, "workerinput", None)
        if workerinput is not None:
            self.shard_log = self.shard_log or ShardLog()
            self.shard_log.worker = str(workerinput.get("workerid"))
        if self.built is not None and self.shard_log is not None:
            self.built.shard = self.shard_log

    def _select_shard(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        """Keep this shard's part of the plan every shard computes alike (:mod:`runbooks.shards`)."""
        assert self.shard is not None
        session, spec = self.session, self.shard.spec
        units = [_unit(item, session.config.root) for item in items]
        plan = shards.plan(units, spec.count, load_durations(self.shard.history, session.env.name))
        chosen = plan.selects(spec.index)
        keep = [item for item, mine in zip(items, chosen, strict=True) if mine]
        if len(keep) < len(items):
            config.hook.pytest_deselected(items=[item for item, mine in zip(items, chosen, strict=True) if not mine])
            items[:] = keep
        self.shard_log = ShardLog(spec, plan)
        if self.shard.announce:
            print(f"shard {spec}: {len(keep)} of {len(chosen)} scenario(s), balanced by {plan.balance} "
                  f"(plan {plan.digest})")

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.collect_errors.append(str(report.longreprtext))

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        """Ctrl-C or SIGTERM; pytest calls this for ``pytest.exit`` too (a guard, a run that could not start),
        which is no interruption, and for errors during collection (``pytest.Session.Interrupted``), neither."""
        if isinstance(excinfo.value, KeyboardInterrupt) and not isinstance(excinfo.value, pytest.Session.Interrupted):
            self.interrupted = True
            self.interrupt_signal = signal_of(excinfo.value)

    def pytest_unconfigure(self) -> None:
        self._signals.close()  # the SIGTERM handler installed when the run started, if any

    # pytest-bdd hooks ----------------------------------------------------------------------------
    def pytest_bdd_before_scenario(self, request: pytest.FixtureRequest, feature: Feature,
                                   scenario: Scenario) -> None:
        session = self.started()
        runbook = display_path(Path(feature.filename), session.config.root)
        progress = ScenarioProgress(feature, scenario, runbook, getattr(request.node.obj, "runbooks_region", None),
                                    account=getattr(request.node.obj, "runbooks_account", None))
        progress.skip_reason = missing_capability(session.env, progress.tags)
        request.node.stash[_STATE] = progress
        if self.shard_log is not None:
            self.shard_log.started(progress, self.positions.get(request.node.nodeid))
        session.scenario_started(progress)
        if session.read_ahead is not None:
            session.read_ahead.scenario_started(request.node.nodeid)

    def pytest_bdd_before_step(self, request: pytest.FixtureRequest, step: Step) -> None:
        request.node.stash[_STATE].current = step

    def pytest_bdd_step_error(self, request: pytest.FixtureRequest, step: Step, exception: Exception) -> None:
        progress = request.node.stash[_STATE]
        request.node.stash[_STOPPED] = True
        if not isinstance(exception, StepStopped) and id(step) not in progress.done:
            self.record_unexpected(progress, step, f"{type(exception).__name__}: {exception}")

    def pytest_bdd_step_func_lookup_error(self, request: pytest.FixtureRequest, step: Step) -> None:
        request.node.stash[_STOPPED] = True
        self.record_unexpected(request.node.stash[_STATE], step, "undefined step (no step definition matches)")

    def pytest_bdd_after_scenario(self, request: pytest.FixtureRequest) -> None:
        progress = request.node.stash[_STATE]
        session = self.session
        # Steps never reached: a step error ended the scenario (a failed Given/When, an unexpected error),
        # else the run was interrupted (Ctrl-C, SIGTERM) - even after a soft (Then) step had failed.
        reason = "not run: an earlier step of this scenario did not pass" if request.node.stash.get(_STOPPED, False) \
            else "not run: the run was interrupted"
        if session.out_of_time():  # the run's deadline ended it
            reason = f"not run: {session.out_of_time()}"
        for step in progress.scenario.steps:
            if id(step) not in progress.done:
                record = self._record(progress, step, Outcome.SKIPPED, 0.0)
                record.observed = reason
                progress.records.append(session.record(record))
        session.scenario_ended(progress)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        """The scenario's one outcome, from its records — the rule JUnit and Cucumber JSON use too."""
        try:
            result = yield
        except pytest.exit.Exception:  # a guard stopped the whole run
            raise
        except (Exception, _Reported):
            progress = item.stash.get(_STATE, None)
            if progress is None or not progress.failed():  # not a step we recorded: pytest reports it as is
                raise
            result = None  # a stopped precondition or an unexpected step error: its record says what it was
        progress = item.stash.get(_STATE, None)
        if progress is None:
            return result
        outcome = item.stash[_OUTCOME] = scenario_outcome(progress.records)
        if outcome is ScenarioOutcome.SKIPPED:
            raise pytest.skip.Exception(_skip_reason(progress.records), _use_item_location=True)
        if outcome in (ScenarioOutcome.FAILED, ScenarioOutcome.ERROR):
            message = failure_message(progress.records)
            if progress.resolution():
                message += f"\nResolution (from the runbook): {progress.resolution()}"
            raise (ScenarioFailed if outcome is ScenarioOutcome.FAILED else ScenarioErrored)(message)
        return result

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, None, None]:
        """The run's last scenario done: the run ends now, so that the tests pytest runs after it (a team's step
        tests) find none of its stub, pool or read-only guard. The reports are written as at the session's end."""
        result = yield
        built = self.built
        if item.nodeid == self.last_scenario and built is not None and built.started \
                and built.status is RunStatus.RUNNING:
            built.stop(RunStatus.ABORTED if built.aborted else RunStatus.FINISHED)
            self.ended_after_last_scenario = True
        return result

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[
            None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if call.when == "call" and item.stash.get(_OUTCOME, None) is ScenarioOutcome.ERROR:
            report.runbooks_error = True  # type: ignore[attr-defined]
        return report

    def pytest_report_teststatus(self, report: pytest.TestReport) -> tuple[str, str, Any] | None:
        """A scenario that could not be verified is an error, as pytest shows a broken fixture: not a failure."""
        if report.when == "call" and report.failed and getattr(report, "runbooks_error", False):
            return "error", "E", ("ERROR", {"red": True})
        return None

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        built = self.built
        if self.worker_parts:  # an xdist controller: the workers' parts are the run
            self._report_workers(session)
            return
        if built is not None and not built.started and self.shard_log is not None and self.shard_log.empty:
            built.started = True  # nothing to run here, yet it reports (empty), so that merge sees every shard
            if session.exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
                session.exitstatus = pytest.ExitCode.OK
        if built is None or not built.started:
            return
        if built.status is RunStatus.RUNNING:
            if built.aborted:
                status = RunStatus.ABORTED
            elif exitstatus == pytest.ExitCode.INTERRUPTED:
                status = RunStatus.INTERRUPTED
                built.interrupt_signal = self.interrupt_signal
            else:
                status = RunStatus.FINISHED
            built.stop(status)
        elif not self.ended_after_last_scenario:  # it could not start, or the account guard stopped it
            return
        workeroutput = getattr(self.config, "workeroutput", None)
        if workeroutput is not None:  # an xdist worker: its part, for the controller (pytest_testnodedown)
            from .reports import results_document

            workeroutput["runbooks_part"] = json.dumps(results_document(built.metadata(), built.records))
        if built.unwritten:  # the report folder went away or became read-only during the run: one line
            print(f"runbooks: error: could not write {', '.join(built.unwritten)}; the run ended with exit "
                  f"{built.exit_code()}, see the summary above", file=sys.stderr)
            if session.exitstatus == pytest.ExitCode.OK:  # plain pytest: the run must not look clean
                session.exitstatus = pytest.ExitCode.USAGE_ERROR

    # pytest-xdist (only called when it is installed) ---------------------------------------------
    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """A worker ended: keep its part of the run (its session's records and what merging needs)."""
        part = getattr(node, "workeroutput", {}).get("runbooks_part")
        if part:
            assert self.config is not None
            _replace_bdd_cucumber_writer(self.config)  # the controller writes Cucumber JSON from the parts
            doc = json.loads(part)
            records = [StepRecord.from_json(r) for r in doc["results"]]
            self.worker_parts.append(Part(f"worker {node.gateway.id}", doc["run"], records))

    def _report_workers(self, session: pytest.Session) -> None:
        """The reports and history of a ``pytest -n`` run, written once by the controller from the workers'
        parts: the same records, in the same order, as a serial run (:func:`runbooks.shards.merge`)."""
        from .merge import publish

        assert self.config is not None and self.runbooks_config is not None
        built = _session_from_options(self.config, self.runbooks_config)
        merged = shards.merge(self.worker_parts, fail_on=built.fail_on, shards=False)
        published = publish(merged, built.options)
        if published.unwritten:
            print(f"runbooks: error: could not write {', '.join(published.unwritten)}; the run ended with exit "
                  f"{merged.exit_code}", file=sys.stderr)
            if session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.USAGE_ERROR

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
        result = session.evaluate(definition, args, progress.state, progress.region, account=progress.account)
        record = self._record(progress, step, result.outcome, elapsed_ms(start))
        record.resource, record.expected, record.observed = result.resource, result.expected, result.observed
        record.hint, record.manual_command, record.evidence = result.hint, result.manual_command, result.evidence
        progress.records.append(session.record(record))
        if session.read_ahead is not None:
            session.read_ahead.step_done(request.node.nodeid, definition, result.outcome)
        if definition.guard and result.outcome is Outcome.FAIL:
            session.abort(f"guard failed: {record.step}: {result.observed}")
            pytest.exit(f"runbooks: stopped: {session.aborted}", returncode=session.exit_code())
        if result.outcome in (Outcome.FAIL, Outcome.ERROR) and (step.type in HARD_STEP_TYPES or session.out_of_time()):
            raise StepStopped(failure_message([progress.records[-1]]))  # past the run's deadline: nothing more runs

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
            # Only a per-account scenario names its account: filling it in from whatever a step happened to
            # read before would make records depend on the order (and the shard) they ran in.
            account=progress.account.id if progress.account is not None else "",
            region=progress.region or session.env.aws.region,
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
        items = list(super().collect())
        for item in items:  # reports point at the scenario in the .feature file, not into pytest-bdd
            where = getattr(getattr(item, "obj", None), "runbooks_where", None)
            if where is not None:
                item.reportinfo = lambda where=where: (self.path, *where)  # type: ignore[method-assign,union-attr]
        return items

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
        accounts: tuple[AwsAccount | None, ...] = (None,)
        if "all-accounts" in feature.tags | scenario_tags and session.env.aws.has_accounts:  # per account (x region)
            accounts = self.plugin.accounts()
        pinned = _tag_value(scenario_tags, "region") or _tag_value(feature.tags, "region")
        for account, region in [(a, r) for a in accounts for r in regions]:
            test = bdd_scenario(feature.filename, name, features_base_dir=str(self.path.parent))(_scenario)
            test.runbooks_region = region or pinned  # type: ignore[attr-defined]
            test.runbooks_account = account  # type: ignore[attr-defined]
            test.runbooks_tags = feature.tags | scenario_tags  # type: ignore[attr-defined]
            test.runbooks_where = (feature.scenarios[name].line_number - 1, name)  # type: ignore[attr-defined]
            test.runbooks_template = feature.scenarios[name]  # type: ignore[attr-defined]
            parts = (account.label if account is not None else None, region)
            test_name = f"test_{_python_name(name)}" + "".join(f"__{_python_name(p)}" for p in parts if p)
            while test_name in module.__dict__:  # two names that differ only in punctuation
                test_name += "_"
            module.__dict__[test_name] = test

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, CollectError | ConfigError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)  # a Collector's repr_failure takes no style


def _read_ahead(session: Session, items: list[pytest.Item], config: pytest.Config) -> ReadAhead | None:
    """The run's read-ahead over its AWS target (``aws.read_ahead`` scenarios; none for 0, without an AWS
    target, or in a pytest-xdist worker, whose share of the scenarios is decided as it goes)."""
    window = session.env.aws.read_ahead
    if not window or session.env.aws.kind is AwsKind.NONE or getattr(config, "workerinput", None) is not None:
        return None
    plans: dict[str, PlannedScenario] = {}
    known: dict[str, Any] = {}
    for item in items:
        obj = getattr(item, "obj", None)
        template = getattr(obj, "runbooks_template", None)
        if template is None:
            continue
        skipped = missing_capability(session.env, getattr(obj, "runbooks_tags", set())) or any(
            item.iter_markers("skip")) or any(item.iter_markers("skipif"))
        if skipped:  # its steps will not run: nothing to read for them (a skipif is not judged here)
            plans[item.nodeid] = PlannedScenario((), None, None, 0)
            continue
        # pytest-bdd parametrizes an outline's test with its example row, a dict: its only parameter here
        callspec = getattr(item, "callspec", None)
        example = next((v for v in callspec.params.values() if isinstance(v, dict)), {}) if callspec else {}
        plans[item.nodeid] = plan_scenario(template.render(example).steps, getattr(obj, "runbooks_region", None),
                                           getattr(obj, "runbooks_account", None), known)
    return ReadAhead(session, plans, window) if plans else None


def _unit(item: pytest.Item, root: Path) -> Unit:
    """A collected scenario as ``--shard`` plans it: its node id, and the (runbook, scenario) of its records."""
    obj = getattr(item, "obj", None)
    where = getattr(obj, "runbooks_where", None)
    if where is None:  # not a runbook's scenario
        return Unit(item.nodeid, None)
    account = getattr(obj, "runbooks_account", None)
    name = scenario_name(where[1], getattr(obj, "runbooks_region", None), set(getattr(obj, "runbooks_tags", ())),
                         account.label if account is not None else None)
    return Unit(item.nodeid, (display_path(item.path, root), name))


class CollectError(Exception):
    """A feature file preflight refused: its problems, one ``file:line: message`` per line."""


def _tag_value(tags: set[str], prefix: str) -> str | None:
    return next((t.split(":", 1)[1] for t in sorted(tags) if t.startswith(prefix + ":")), None)


def _python_name(name: str) -> str:
    return "_".join("".join(ch if ch.isalnum() else " " for ch in name.lower()).split())[:80]


def elapsed_ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 1)


def _skip_reason(records: list[StepRecord]) -> str:
    reasons = [r.observed for r in records if r.outcome is Outcome.SKIPPED and r.observed]
    return reasons[0] if reasons else "manual procedure: every step is performed by a person"


def _registered_markers(config: pytest.Config) -> set[str]:
    return {line.split(":")[0].split("(")[0].strip() for line in config.getini("markers")}


def _replace_bdd_cucumber_writer(config: pytest.Config) -> None:
    """pytest-bdd's ``--cucumberjson`` writer only knows whether a step raised: every checked FAIL would be
    "passed" and names left as ``{variables}``. The session writes that file instead, from its records
    (the same writer as ``runbooks verify --cucumber-json``)."""
    writer = getattr(config, "_bddcucumberjson", None)
    if writer is not None:
        config.pluginmanager.unregister(writer)
        del config._bddcucumberjson  # type: ignore[attr-defined]
