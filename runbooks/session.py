"""One verification run: configuration, environment, targets, waivers, sinks — and the record of every step.

A :class:`Session` is built once, by ``runbooks verify`` or by plain ``pytest`` from its options
(:meth:`Session.from_options`), and handed to pytest as a plugin instance. Steps reach it only through
their :class:`~runbooks.context.CheckContext`; it turns whatever a check raises into a result, records
it, tells its sinks, and is the one place that decides the exit code.
"""

from __future__ import annotations

import signal
import subprocess
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from .config import VARIABLE, Config, Environment
from .context import CURRENT_STEP, CheckContext, Finding, ScenarioState
from .deadlines import DEADLINE, RUN, Deadline, for_step, not_started
from .errors import UsageError
from .faults import UnknownName, classify
from .features import section
from .process import exit_status
from .redact import Redactor
from .registry import StepDefinition
from .resources import Resources
from .result import CheckResult, Outcome, RunStatus, Severity, StepRecord, exit_code
from .sinks import Sink
from .targets import targets as target_classes
from .waivers import Waivers

if TYPE_CHECKING:
    from pytest_bdd.parser import Feature, Scenario, Step

    from .read_ahead import ReadAhead
    from .shards import ShardLog
    from .targets.aws import AwsAccount

HARD_STEP_TYPES = {"given", "when"}  # a failed precondition or action stops its scenario


def scenario_name(name: str, region: str | None, tags: set[str], account: str | None = None) -> str:
    """A scenario as its records name it. A scenario run per region (``@all-regions``) or per account
    (``@all-accounts``, ``account`` is its label) is one scenario per region or account in every report
    (and in drift, and to ``--shard``'s durations): "Name [eu-west-1]", "Name [payments-prod/eu-west-1]"."""
    where = [v for v, tag in ((account, "all-accounts"), (region, "all-regions")) if v and tag in tags]
    return f"{name} [{'/'.join(where)}]" if where else name


class ScenarioProgress:
    """The steps of the running scenario and what has become of them."""

    def __init__(self, feature: Feature, scenario: Scenario, runbook: str, region: str | None = None,
                 account: AwsAccount | None = None) -> None:
        self.feature = feature
        self.scenario = scenario
        self.region = region
        self.account = account  # @all-accounts: the account this run of the scenario is in
        self.name = scenario_name(scenario.name, region, feature.tags | scenario.tags,
                                  account.label if account is not None else None)
        self.runbook = runbook
        self.state = ScenarioState()
        self.records: list[StepRecord] = []
        self.done: set[int] = set()
        self.current: Step | None = None
        self.tags = sorted(feature.tags | scenario.tags)
        self.severity = Severity.of_tags(scenario.tags) or Severity.of_tags(feature.tags) or "unrated"
        self.skip_reason: str | None = None

    def failed(self) -> bool:
        return any(r.outcome in (Outcome.FAIL, Outcome.ERROR) for r in self.records)

    def resolution(self) -> str | None:
        return section(self.scenario.description, "Resolution")


@dataclass
class Options:
    """How a run reports: what ``runbooks verify`` and ``pytest --runbooks-*`` both set."""

    fail_on: str = "info"
    report_dir: Path | None = None
    waivers: Path | None = None  # None: waivers.toml beside the config, when there is one
    history: Path | None = None  # None: no history
    cucumber_json: Path | None = None  # None: no Cucumber JSON report
    sinks: list[Sink] = field(default_factory=list)
    # The IAM actions of aws.role_arn's session policy (`runbooks verify`: what its runbooks need);
    # None: every registered step's permissions (plain pytest)
    read_only_actions: tuple[str, ...] | None = None
    # --step-timeout / --timeout: seconds (0: no limit); None: the environment's step_timeout_s / run_timeout_s
    step_timeout_s: float | None = None
    run_timeout_s: float | None = None


class Session:
    def __init__(self, config: Config, env: Environment, options: Options | None = None) -> None:
        self.config = config
        self.env = env
        self.options = options or Options()
        self.fail_on = self.options.fail_on
        self.waivers: Waivers | None = None
        self.sinks: list[Sink] = list(self.options.sinks)
        self.resources = Resources()
        self.targets: dict[str, Any] = {name: cls(env, self.resources) for name, cls in target_classes().items()}
        self.aws.read_only_actions = self.options.read_only_actions
        self.vars: dict[str, str] = dict(env.vars)
        self.records: list[StepRecord] = []
        self.redactor = Redactor.for_environment(env)
        self.git_commit = git_commit(config.root)
        self.started_at = datetime.now(UTC)
        self.finished_at: datetime | None = None
        self.run_id: str | None = None
        self.status = RunStatus.RUNNING
        self.aborted: str | None = None  # why a guard step stopped the run early
        self.interrupt_signal = int(signal.SIGINT)  # what interrupted the run: SIGINT (Ctrl-C) or SIGTERM
        self.report_paths: list[Path] = []
        self.unwritten: list[str] = []  # reports that could not be written at the end: "path (why)"
        self._lock = threading.Lock()
        self.started = False
        # How long a step, and the run, may take (None: no limit); the run's deadline starts with the run.
        self.step_timeout_s = _limit(self.options.step_timeout_s, env.step_timeout_s)
        self.run_timeout_s = _limit(self.options.run_timeout_s, env.run_timeout_s)
        self.run_deadline: Deadline | None = None
        self.shard: ShardLog | None = None  # a shard's or an xdist worker's part: what merging it needs
        self.read_ahead: ReadAhead | None = None  # set by the runbooks plugin once it knows the scenarios

    @classmethod
    def from_options(cls, config: Config, env: Environment, options: Options) -> Session:
        """A session whose inputs were all checked up front: malformed waivers, an unwritable report
        directory or history are refused here (exit 2), before anything runs."""
        from .sinks.cucumber import CucumberJsonSink
        from .sinks.files import JUnitSink, ResultsJsonSink
        from .sinks.history import HistorySink
        from .targets.aws import resolved_environment
        from .waivers import load_waivers

        env = resolved_environment(env, config)  # region, profile and AWS endpoints as the run will use them
        session = cls(config, env, options)
        waivers = options.waivers or config.root / "waivers.toml"
        if options.waivers or waivers.exists():  # a folder of that name is refused, not ignored
            session.waivers = load_waivers(waivers)
        front: list[Sink] = []
        if options.history is not None:
            check_history(options.history)
            front.append(HistorySink(options.history))
        if options.report_dir is not None:
            check_writable(options.report_dir, "--report-dir")
            front += [JUnitSink(options.report_dir / "junit.xml"), ResultsJsonSink(options.report_dir / "results.json")]
        if options.cucumber_json is not None:
            check_writable(options.cucumber_json.parent, "--cucumber-json")
            front.append(CucumberJsonSink(options.cucumber_json))
        session.sinks = front + session.sinks
        return session

    @property
    def aws(self) -> Any:
        return self.targets["aws"]

    @property
    def http(self) -> Any:
        return self.targets["http"]

    # lifecycle -------------------------------------------------------------------------------
    def start(self) -> Session:
        if self.started:
            return self
        self.started = True
        if self.run_timeout_s:
            self.run_deadline = Deadline.after(self.run_timeout_s, RUN)
        for sink in self.sinks:
            sink.on_start(self)
        for target in self.targets.values():
            target.open()
        if self.env.sandbox is not None:
            from .sandbox import Sandbox

            sandbox = Sandbox(self.env).start()
            self.resources.on_close(sandbox.stop)
            for name, url in sandbox.service_urls().items():
                self.http.provide(name, url)
                self.vars[f"{name}_port"] = url.rsplit(":", 1)[1]
        return self

    def stop(self, status: RunStatus | str = RunStatus.FINISHED) -> None:
        """End the run: close every connection, then tell the sinks (history, reports, console)."""
        self.finished_at = datetime.now(UTC)
        self.status = RunStatus(status)
        if self.read_ahead is not None:  # before the targets: its checks read through them
            self.read_ahead.close()
        for target in self.targets.values():
            target.close()
        self.resources.close()
        if self.started:
            for sink in self.sinks:
                sink.on_finish(self)

    def abort(self, reason: str) -> None:
        self.aborted = reason

    def out_of_time(self) -> str | None:
        """Why no further step runs ("run deadline of 1800 s reached"); None while the run has time."""
        deadline = self.run_deadline
        return deadline.reason() if deadline is not None and deadline.passed() else None

    # steps -----------------------------------------------------------------------------------
    def context(self, state: ScenarioState | None = None, region: str | None = None,
                account: AwsAccount | None = None) -> CheckContext:
        return CheckContext(self.env, self.targets, self.resources, state, region, account)

    def resolve(self, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        return VARIABLE.sub(lambda m: self.vars.get(m.group(1), m.group(0)), value)

    def arguments(self, definition: StepDefinition, args: dict[str, Any]) -> dict[str, Any]:
        """Arguments with variables resolved and numeric fields (``{port:d}``) converted."""
        out = {name: self.resolve(value) for name, value in args.items()}
        for name, convert in definition.numeric.items():
            if isinstance(out.get(name), str):
                try:
                    out[name] = convert(out[name])
                except ValueError:
                    raise UnknownName(f"{name}: {args[name]} is {out[name]!r}, not a number") from None
        return out

    def evaluate(self, definition: StepDefinition, args: dict[str, Any], state: ScenarioState | None = None,
                 region: str | None = None, account: AwsAccount | None = None) -> CheckResult:
        """Run one check and turn any exception into an ERROR result; never raises."""
        token = CURRENT_STEP.set(definition)
        bounded = DEADLINE.set(for_step(self.step_timeout_s, self.run_deadline))
        try:
            args = self.arguments(definition, args)
            if self.run_deadline is not None and self.run_deadline.passed():  # no time left to start it
                raise not_started(self.run_deadline)
            result = definition.func(self.context(state, region, account), **args)
        except Finding as exc:
            result = exc.result
        except Exception as exc:  # noqa: BLE001 - every failure to check becomes an ERROR record
            fault = classify(exc, self.aws.target_name)
            resource = "" if isinstance(exc, UnknownName) else args_resource(args)
            result = CheckResult.errored(resource, fault.reason, fault.hint)
        finally:
            DEADLINE.reset(bounded)
            CURRENT_STEP.reset(token)
        if not result.manual_command and definition.manual:
            result = result.with_manual(definition.manual_command(args))
        return result

    def record(self, record: StepRecord) -> StepRecord:
        if self.waivers is not None:
            record = self.waivers.apply(record)
        record = self.redactor.record(record)
        with self._lock:
            self.records.append(record)
        for sink in self.sinks:
            sink.on_record(self, record)
        return record

    def scenario_started(self, progress: ScenarioProgress) -> None:
        for sink in self.sinks:
            sink.on_scenario(self, progress)

    def scenario_ended(self, progress: ScenarioProgress) -> None:
        for sink in self.sinks:
            sink.on_scenario_end(self, progress)

    # outcome -----------------------------------------------------------------------------------
    def exit_code(self) -> int:
        """The one place that decides the exit code."""
        if self.aborted:
            return 2  # a guard stopped the run: the environment is not the one named
        if self.status is RunStatus.INTERRUPTED:
            return exit_status(self.interrupt_signal)  # 130 for Ctrl-C, 143 for SIGTERM
        if self.status is RunStatus.FAILED:
            return 3  # could not even start: nothing was verified
        return exit_code(self.records, self.fail_on)

    def metadata(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": self.status.value,
            "fail_on": self.fail_on,
            "exit_code": self.exit_code(),
            "environment": self.env.name,
            "target": self.env.aws.target,
            "region": self.env.aws.region,
            "started_at": self.started_at.isoformat(timespec="seconds"),
            "finished_at": (self.finished_at or datetime.now(UTC)).isoformat(timespec="seconds"),
            "git_commit": self.git_commit,
            "tool_version": __version__,
            "aws_api_calls": self.aws.calls,
            **({"shard": self.shard.to_json()} if self.shard is not None else {}),
        }


def _limit(option: float | None, configured: float | None) -> float | None:
    """The option when given, else the configuration; 0 means no limit (None)."""
    value = configured if option is None else option
    return value or None


def args_resource(args: dict[str, Any]) -> str:
    for key in ("bucket", "table", "service", "host", "container", "plan", "vault", "alarm"):
        if key in args:
            return f"{key} {args[key]}"
    return ""


def check_writable(directory: Path, option: str) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / ".runbooks-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"{option} {directory}: cannot write there ({exc.strerror})") from None


def check_history(path: Path) -> None:
    """The history opens as a runbooks history. A file that is not one (garbage, damaged, another program's
    database) is refused here, exit 2, with the command that moves it aside; it is never changed. One
    locked by another process is :class:`~runbooks.errors.StartError` (exit 3): the run could not start."""
    import sqlite3

    from .history import History

    try:
        History(path).close()
    except (OSError, sqlite3.Error) as exc:
        raise UsageError(f"--history {path}: cannot open the history database ({exc})") from None


def git_commit(root: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None
