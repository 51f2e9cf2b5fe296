"""``runbooks run``: a person follows one runbook step by step, and everything is recorded as it happens.

The runbook's Purpose, Prerequisites and Escalation come first; then every scenario in order (``--scenario``
picks one), Background steps first, as Gherkin runs them. An automated check runs through
:meth:`Session.evaluate` (variables resolved, the same read-only targets as ``verify``) and shows its
result; a FAIL or ERROR shows the evidence, the fix and the by-hand command and asks ``[r]etry``,
``[c]ontinue`` or ``[s]top`` (a failed account guard: retry or stop). A ``manual:`` step shows the action
(and the command in it) and waits: ``[d]one``, ``[s]kipped`` (a reason is asked) or ``[f]ailed`` (a note is
asked). The tool never performs a manual step. A check after a manual step is its checkpoint: retried until
it passes, or the operator moves on.

Each answer is committed to the history as it is given, in a run of kind ``procedure``: the operator
(``--operator``, else the login name), the time, the answer and its note, the duration, and every attempt
of a retried check. ``runbooks history --show RUN_ID --markdown`` writes it as a timeline.

Answers come from the terminal (``input()``), or, when ``--answers FILE`` is given or stdin is not a
terminal, one per line: ``d``, ``s: REASON``, ``f: NOTE``, ``r``, ``c``, ``s`` (a reason or note on the same
line; blank lines and ``#`` comments are ignored; an unknown answer in FILE is exit 2 before anything runs).
When the answers end (end of file, stdin closed) or one does not fit its question, the procedure stops as if
interrupted: the run is marked ``interrupted``, the answers so far are kept, exit 130.

Exit codes: 0 completed, every check passing (at its last attempt) and no manual step failed; 1 a check
still failing or a manual step failed at the end (also when the operator stopped at a failing check); 2
bad usage (nothing ran), or the account guard failed and the operator stopped; 3 a check could not be
made (and none failing), or the run could not start; 130 / 143 interrupted (Ctrl-C, end of the answers /
SIGTERM).
"""

from __future__ import annotations

import argparse
import getpass
import os
import re
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from .config import Config, load_config
from .context import ScenarioState
from .errors import StartError, UsageError, read_text
from .features import FeatureDoc, ScenarioDoc, StepDoc, discover, parse_feature, render_outline, sections
from .formatting import COLOURS, MARKS, RESET, step_details, step_line
from .history import DEFAULT_PATH as DEFAULT_HISTORY
from .names import did_you_mean
from .preflight import display_path
from .process import signal_of, terminate_as_interrupt
from .registry import MANUAL_PREFIX, find
from .result import CheckResult, Outcome, RunStatus, Severity, StepRecord
from .result import exit_code as records_exit_code
from .session import Options, Session
from .targets import missing_capability

KIND = "procedure"
INTRODUCTION = ("Purpose", "Prerequisites", "Escalation")  # the description sections shown before the steps


def register(sub: Any) -> None:
    run = sub.add_parser("run", help="follow one runbook step by step, recording every answer (a procedure run)")
    run.add_argument("runbook", help="the .feature file, or its name under features/ (rollback/emergency_rollback)")
    run.add_argument("--scenario", help="only this scenario (default: all, in order)")
    run.add_argument("--env", help="environment from runbooks.toml (default: its default)")
    run.add_argument("--operator", help="who follows the procedure (default: the login name)")
    run.add_argument("--answers", type=Path, metavar="FILE",
                     help="answers, one per line (d, s: REASON, f: NOTE, r, c, s), instead of the terminal")
    run.add_argument("--config", type=Path, help="path to runbooks.toml (default: search upwards)")
    run.add_argument("--history", type=Path, help="history database (default: .runbooks/history.sqlite)")
    run.set_defaults(handler=cmd_run)


# answers -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Choice:
    key: str  # what is typed: "d"
    word: str  # what is recorded: "done"
    needs: str = ""  # "reason" / "note": asked for when the answer has none
    aliases: tuple[str, ...] = ()


MANUAL_CHOICES = (Choice("d", "done"), Choice("s", "skipped", "reason", ("skip",)),
                  Choice("f", "failed", "note", ("fail",)))
CHECK_CHOICES = (Choice("r", "retry"), Choice("c", "continue"), Choice("s", "stop"))
GUARD_CHOICES = (Choice("r", "retry"), Choice("s", "stop"))  # a failed account guard: nothing else may run
ANSWER_WORDS = {name for c in MANUAL_CHOICES + CHECK_CHOICES for name in (c.key, c.word, *c.aliases)}


class EndOfAnswers(Exception):
    """The answers ended (end of file, stdin closed) or one did not fit its question: the run is interrupted."""


def menu(choices: tuple[Choice, ...]) -> str:
    return ", ".join(f"[{c.key}]{c.word[1:]}" for c in choices)


class Answers:
    """Where answers come from: the terminal (asked with ``input()``, a wrong answer asked again), or lines
    (``--answers FILE``, a stdin that is not a terminal), each echoed after its question."""

    def __init__(self, out: TextIO, lines: Iterator[tuple[str, str]] | None = None) -> None:
        self.out = out
        self.lines = lines
        self.interactive = lines is None
        self.source = "terminal" if lines is None else "lines"

    @classmethod
    def from_file(cls, path: Path, out: TextIO) -> Answers:
        """Every line is checked before anything runs: an unknown answer is exit 2, naming file:line."""
        given: list[tuple[str, str]] = []
        for number, line in enumerate(read_text(path, "answers file").splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            word = line.partition(":")[0].strip().lower()
            if word not in ANSWER_WORDS:
                raise UsageError(f"{path}:{number}: unknown answer {word!r}; answers are d, s: REASON, f: NOTE "
                                 "(a manual step) and r, c, s (a failing check)")
            given.append((line.strip(), f"{path}:{number}"))
        answers = cls(out, iter(given))
        answers.source = f"file {path}"
        return answers

    @classmethod
    def from_stdin(cls, out: TextIO) -> Answers:
        if sys.stdin.isatty():
            return cls(out)

        def lines() -> Iterator[tuple[str, str]]:
            for number, line in enumerate(sys.stdin, 1):
                if line.strip() and not line.lstrip().startswith("#"):
                    yield line.strip(), f"stdin line {number}"

        answers = cls(out, lines())
        answers.source = "stdin"
        return answers

    def line(self, prompt: str) -> tuple[str, str]:
        """One answer, and where it came from ("answers.txt:3"; "" from the terminal)."""
        if self.lines is None:
            try:
                return input(prompt), ""
            except EOFError:  # Ctrl-D: the operator closed the input
                self.out.write("\n")
                raise EndOfAnswers("the terminal's input ended (Ctrl-D)") from None
        try:
            text, where = next(self.lines)
        except StopIteration:
            self.out.write(prompt + "\n")
            raise EndOfAnswers(f"the answers ({self.source}) ended before the procedure did") from None
        self.out.write(prompt + text + "\n")
        self.out.flush()
        return text, where

    def choose(self, question: str, choices: tuple[Choice, ...]) -> tuple[Choice, str]:
        """The operator's choice and its note ("" when none)."""
        while True:
            text, where = self.line(f"    {question} {menu(choices)}? ")
            word, _, note = text.partition(":")
            chosen = next((c for c in choices if word.strip().lower() in (c.key, c.word, *c.aliases)), None)
            if chosen is None:
                problem = f"{word.strip()!r} does not answer this; type " + ", ".join(c.key for c in choices)
                if not self.interactive:
                    raise EndOfAnswers(f"{where}: {problem}")
                self.out.write(f"    {problem}\n")
                continue
            note = note.strip()
            while chosen.needs and not note:
                if not self.interactive:
                    raise EndOfAnswers(f"{where}: {chosen.word} needs a {chosen.needs} on the same line: "
                                       f"`{chosen.key}: {chosen.needs.upper()}`")
                note = self.line(f"    {chosen.needs}: ")[0].strip()
            return chosen, note


# the procedure -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PlannedStep:
    scenario: ScenarioDoc
    scenario_name: str  # as recorded: the name, numbered per example row of an outline
    doc: StepDoc
    text: str  # as written ({variables} not resolved), outline placeholders filled
    background: bool

    @property
    def manual(self) -> bool:
        return self.text.startswith(MANUAL_PREFIX)


def plan(feature: FeatureDoc, scenarios: list[ScenarioDoc]) -> list[list[PlannedStep]]:
    """The steps of each scenario in the order Gherkin runs them: the Background's first."""
    runs = []
    for scenario in scenarios:
        rows = scenario.examples or [{}]
        for number, row in enumerate(rows, 1):
            name = f"{scenario.name} (example {number})" if len(rows) > 1 else scenario.name
            steps = [PlannedStep(scenario, name, s, render_outline(s.text, row), True) for s in feature.background]
            steps += [PlannedStep(scenario, name, s, render_outline(s.text, row), False) for s in scenario.steps]
            runs.append(steps)
    return runs


class Stopped(Exception):
    """The operator stopped the procedure at a failing check."""


class ProcedureSession(Session):
    """A session whose run is a procedure: recorded as kind ``procedure``; a retried check counts by its last
    attempt."""

    procedure: dict[str, Any]

    def metadata(self) -> dict[str, Any]:
        return {**super().metadata(), "kind": KIND, **getattr(self, "procedure", {})}

    def exit_code(self) -> int:
        if self.aborted or self.status in (RunStatus.INTERRUPTED, RunStatus.FAILED):
            return super().exit_code()
        return records_exit_code(final_records(self.records))


def final_records(records: list[StepRecord]) -> list[StepRecord]:
    """The last attempt of every step (a retried check is judged by its last run)."""
    last: dict[tuple[str, str, int], StepRecord] = {}
    for record in records:
        key = (record.runbook, record.scenario, record.line)
        last.pop(key, None)  # keep the step's place at its last attempt
        last[key] = record
    return list(last.values())


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


_COMMAND_WORDS = ("aws", "terraform", "git", "kubectl", "docker", "curl", "alembic", "amtool", "pgbackrest",
                  "pg_dump", "pg_amcheck", "pg_verifybackup", "psql", "redis-cli", "ss", "openssl", "df", "free",
                  "helm", "ssh", "systemctl", "gh", "make", "jq")
_COMMAND = re.compile(r"(?:^|:\s+|\()((?:" + "|".join(map(re.escape, _COMMAND_WORDS)) + r")\s.*)$")


def command_of(action: str) -> str:
    """The shell command written in a manual step, if any: the action itself (``terraform apply x``) or what
    follows its colon (``check out the code: git fetch --tags && git checkout v1``), without a trailing
    ``(remark)`` or a ``; prose`` part."""
    match = _COMMAND.search(action)
    if not match:
        return ""
    command = match.group(1)
    kept: list[str] = []
    for part in command.split("; "):
        if kept and part.split(" ", 1)[0] not in _COMMAND_WORDS:
            break
        kept.append(part)
    command = "; ".join(kept)
    if action[match.start(1) - 1:match.start(1)] == "(":  # "(pg_dump -Fc -f x app) and record its id"
        command = command.split(")", 1)[0]
    return re.sub(r"\s+\([^()]*\)\s*$", "", command).strip()


class Procedure:
    """Walks the planned steps with the operator; every step's record goes to the session as it is known."""

    def __init__(self, session: Session, feature: FeatureDoc, runbook: str, runs: list[list[PlannedStep]],
                 answers: Answers, operator: str, out: TextIO, colour: bool) -> None:
        self.session = session
        self.feature = feature
        self.runbook = runbook
        self.runs = runs
        self.answers = answers
        self.operator = operator
        self.out = out
        self.colour = colour
        self.total = sum(len(steps) for steps in runs)
        self.number = 0
        self.stopped: str | None = None
        # The step in progress (for an interruption): the step, when it started (UTC, perf counter), and a
        # failed check's result waiting for the operator's answer.
        self.current: tuple[PlannedStep, str, float] | None = None
        self.waiting: tuple[CheckResult, float, int] | None = None

    def write(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def paint(self, text: str, outcome: Outcome) -> str:
        return f"{COLOURS[outcome]}{text}{RESET}" if self.colour else text

    def show(self, text: str) -> str:
        """Text as a person may see it: secrets of the environment masked."""
        return str(self.session.redactor.text(text))

    # the walk --------------------------------------------------------------------------------------------
    def introduce(self) -> None:
        self.write(f"Procedure: {self.feature.name}  ({self.runbook})")
        self.write(f"Environment {self.session.env.name} · operator {self.operator} · "
                   f"run {self.session.run_id or '(not recorded)'} · answers from {self.answers.source}")
        found = sections(self.feature.description)
        lines = self.feature.description.splitlines()
        starts = sorted(offset for _, offset in found.values()) + [len(lines)]
        for name in INTRODUCTION:
            if name.lower() not in found:
                continue
            start = found[name.lower()][1]
            end = next(s for s in starts if s > start)
            self.write()
            self.write(f"{name}:")
            first = lines[start].split(":", 1)[1].strip()
            for line in ([first] if first else []) + [line.strip() for line in lines[start + 1:end] if line.strip()]:
                self.write("  " + self.show(self.session.resolve(line)))
        self.write()
        self.write(f"{self.total} steps in {len(self.runs)} scenario(s). Manual steps are yours: this tool never "
                   "performs them. Answer each one as you go; Ctrl-C stops and keeps every answer.")

    def run(self) -> None:
        self.introduce()
        try:
            for index, steps in enumerate(self.runs, 1):
                self.write()
                self.write(f"Scenario {index}/{len(self.runs)}: {steps[0].scenario_name if steps else ''}")
                state = ScenarioState()
                tags = {t.name for t in self.feature.tags + (steps[0].scenario.tags if steps else [])}
                skip_reason = missing_capability(self.session.env, tags)
                for position, step in enumerate(steps):
                    self.number += 1
                    after_manual = position > 0 and steps[position - 1].manual
                    if step.manual:
                        self.manual(step)
                    else:
                        for region in self.regions(tags):
                            self.check(step, state, skip_reason, after_manual, region)
        except Stopped:
            self.not_run(f"not run: {self.operator} stopped the procedure at a failing check")

    def regions(self, tags: set[str]) -> list[str | None]:
        """Where a check of the scenario runs: each region of the environment for ``@all-regions`` (recorded
        as ``Scenario [region]``, as verify does), else the ``@region:`` one, else the environment's."""
        if "all-regions" in tags:
            return list(self.session.env.aws.all_regions)
        return [next((t.split(":", 1)[1] for t in sorted(tags) if t.startswith("region:")), None)]

    def heading(self, step: PlannedStep) -> None:
        where = "Background, " if step.background else ""
        self.write(f"  [{self.number}/{self.total}] ({where}line {step.doc.line})")

    def manual(self, step: PlannedStep) -> None:
        self.heading(step)
        action = self.session.resolve(step.text[len(MANUAL_PREFIX):].strip())
        self.write(f"    {self.paint(MARKS[Outcome.MANUAL], Outcome.MANUAL)}  {step.doc.keyword} {self.show(action)}")
        command = command_of(action)
        if command:
            self.write(f"    command: {self.show(command)}")
        started, clock = now(), time.perf_counter()
        self.current = (step, started, clock)
        choice, note = self.answers.choose("when it is done:", MANUAL_CHOICES)
        outcome = {"done": Outcome.MANUAL, "skipped": Outcome.SKIPPED, "failed": Outcome.FAIL}[choice.word]
        observed = choice.word + (f": {note}" if note else "")
        if choice.word == "skipped":
            observed = f"skipped by {self.operator}: {note}"
        self.current = None
        record = self.record(step, outcome, clock, started, {"type": "manual", "answer": choice.word, "note": note,
                                                               "by": self.operator})
        record_fields(record, expected="done" if outcome is Outcome.FAIL else "", observed=observed,
                      hint=action if outcome is Outcome.MANUAL else "")
        self.session.record(record)

    def check(self, step: PlannedStep, state: ScenarioState, skip_reason: str | None, after_manual: bool,
              region: str | None) -> None:
        self.heading(step)
        if region and "all-regions" in {t.name for t in self.feature.tags + step.scenario.tags}:
            step = replace(step, scenario_name=f"{step.scenario_name} [{region}]")
            self.write(f"    in {region}")
        found = find(step.text)
        assert found is not None, step.text  # preflight refused undefined steps
        definition, args = found
        if after_manual:
            self.write("    checkpoint: this check verifies the manual step above")
        if skip_reason:
            record = self.record(step, Outcome.SKIPPED, time.perf_counter(), now(), {"type": "check", "by": "runbooks"})
            record.observed = skip_reason
            self.write("    " + step_line(self.session.record(record), self.colour) + f"\n          {skip_reason}")
            return
        attempt = 0
        while True:
            attempt += 1
            started, clock = now(), time.perf_counter()
            self.current = (step, started, clock)
            result = self.session.evaluate(definition, args, state, region)
            elapsed = time.perf_counter() - clock
            facts: dict[str, Any] = {"type": "check", "attempt": attempt, "by": "runbooks"}
            if result.outcome not in (Outcome.FAIL, Outcome.ERROR):
                self.current = None
                self.show_check(self.session.record(self.finished_record(step, result, elapsed, started, facts)))
                return
            # shown before the answer, recorded with it (secrets masked as the record will be)
            self.show_check(self.session.redactor.record(self.finished_record(step, result, elapsed, started, facts)))
            resolution = sections(step.scenario.description).get("resolution")
            if resolution:
                self.write(f"          Resolution (from the runbook): {self.show(resolution[0])}")
            guard = definition.guard and result.outcome is Outcome.FAIL
            if guard:
                self.write("    the checks point at the wrong account: nothing else may run until this passes")
            self.waiting = (result, elapsed, attempt)
            choice, note = self.answers.choose("check not passing:", GUARD_CHOICES if guard else CHECK_CHOICES)
            self.waiting = None
            self.current = None
            facts.update(answer=choice.word, note=note, by=self.operator, answered_at=now())
            record = self.finished_record(step, result, elapsed, started, facts)
            self.session.record(record)
            if choice.word == "continue":
                return
            if choice.word == "stop":
                if guard:
                    self.session.abort(f"guard failed: {record.step}: {result.observed}")
                self.stopped = f"at line {step.doc.line}"
                raise Stopped
            self.write(f"    retrying (attempt {attempt + 1})")

    def show_check(self, record: StepRecord) -> None:
        self.write("    " + step_line(record, self.colour))
        for line in step_details(record):
            self.write("          " + line)

    def finished_record(self, step: PlannedStep, result: CheckResult, elapsed: float, started: str,
                        facts: dict[str, Any]) -> StepRecord:
        record = self.record(step, result.outcome, time.perf_counter() - elapsed, started, facts)
        record_fields(record, resource=result.resource, expected=result.expected, observed=result.observed,
                      hint=result.hint, manual_command=result.manual_command)
        record.evidence = {**result.evidence, "procedure": record.evidence["procedure"]}
        return record

    def record(self, step: PlannedStep, outcome: Outcome, clock: float, started: str,
               facts: dict[str, Any]) -> StepRecord:
        """A record of ``step``; ``facts`` (answer, note, by, attempt) go to ``evidence["procedure"]``."""
        tags = sorted(t.name for t in self.feature.tags + step.scenario.tags)
        severity = Severity.of_tags([t.name for t in step.scenario.tags]) or Severity.of_tags(
            [t.name for t in self.feature.tags]) or "unrated"
        return StepRecord(
            runbook=self.runbook, scenario=step.scenario_name, step=self.session.resolve(step.text),
            written=step.text, outcome=outcome, duration_ms=round((time.perf_counter() - clock) * 1000, 1),
            severity=severity, tags=tags, keyword=step.doc.keyword, line=step.doc.line,
            environment=self.session.env.name,
            evidence={"procedure": {"at": now(), "started_at": started, **facts}},
        )

    def not_run(self, reason: str) -> None:
        """The steps after a stop, recorded as skipped: the timeline shows what was never done."""
        steps = [s for run in self.runs for s in run]
        for step in steps[self.number:]:
            record = self.record(step, Outcome.SKIPPED, time.perf_counter(), now(), {
                "type": "manual" if step.manual else "check", "by": self.operator})
            record.observed = reason
            self.session.record(record)

    def interrupted(self, why: str) -> None:
        """Keep what the interruption cut short: a failing check waiting for its answer, or the step in progress."""
        if self.current is None:
            return
        step, started, clock = self.current
        self.current = None
        if self.waiting is not None:
            result, elapsed, attempt = self.waiting
            self.waiting = None
            facts = {"type": "check", "attempt": attempt, "by": "runbooks", "note": f"no answer: {why}"}
            self.session.record(self.finished_record(step, result, elapsed, started, facts))
            return
        record = self.record(step, Outcome.SKIPPED, clock, started, {
            "type": "manual" if step.manual else "check", "by": self.operator, "note": why})
        record.observed = f"not finished: {why}"
        self.session.record(record)

    # the end ---------------------------------------------------------------------------------------------
    def summary(self, history: Path | None) -> None:
        session = self.session
        final = final_records(session.records)
        answers = [(r.evidence.get("procedure") or {}).get("answer") for r in final]
        manual = {word: answers.count(word) for word in ("done", "skipped", "failed")}
        checks = [r for r in final if (r.evidence.get("procedure") or {}).get("type") == "check"]
        counts = {o: sum(1 for r in checks if r.outcome is o) for o in (Outcome.PASS, Outcome.FAIL, Outcome.ERROR)}
        how = {RunStatus.FINISHED: "completed", RunStatus.ABORTED: f"stopped by {self.operator} {self.stopped or ''}",
               RunStatus.INTERRUPTED: "interrupted"}.get(session.status, session.status.value)
        self.write()
        self.write(f"Procedure {how.strip()}: manual steps {manual['done']} done, {manual['skipped']} skipped, "
                   f"{manual['failed']} failed; checks {counts[Outcome.PASS]} passed, {counts[Outcome.FAIL]} "
                   f"failing, {counts[Outcome.ERROR]} could not check -> exit {session.exit_code()}")
        escalation = sections(self.feature.description).get("escalation")
        if escalation and (manual["failed"] or counts[Outcome.FAIL] or counts[Outcome.ERROR]):
            self.write(f"Escalation (from the runbook): {self.show(escalation[0])}")
        if session.run_id:
            self.write(f"Recorded in {history} as run {session.run_id} ({KIND}); the timeline for the incident "
                       f"record: runbooks history --show {session.run_id} --markdown")


def record_fields(record: StepRecord, **values: str) -> None:
    for name, value in values.items():
        setattr(record, name, value)


# the command -----------------------------------------------------------------------------------------------
def find_runbook(config: Config, name: str) -> Path:
    """The .feature file ``name`` names: a path, or a runbook under the features folder (with or without
    ``.feature``); an unknown name offers the close ones."""
    path = Path(name)
    candidates = [path, config.root / path, config.features / path, config.features / f"{name}.feature"]
    for candidate in candidates:
        if candidate.is_file():
            if candidate.suffix != ".feature":
                raise UsageError(f"{name}: not a .feature file")
            return candidate
    if path.is_dir() or (config.features / path).is_dir():
        raise UsageError(f"{name}: a folder; `runbooks run` follows one runbook (a .feature file)")
    known = discover([config.features]) if config.features.is_dir() else []
    same_stem = [p for p in known if p.stem == path.stem]
    if len(same_stem) == 1:
        return same_stem[0]
    names = [str(p.relative_to(config.features.resolve()).with_suffix("")) for p in known]
    raise UsageError(f"no runbook {name!r} (a .feature file, or its name under {config.features})"
                     + did_you_mean(name, names, known="runbooks"))


def select(feature: FeatureDoc, name: str | None, where: str) -> list[ScenarioDoc]:
    if name is None:
        if not feature.scenarios:
            raise UsageError(f"{where}: no scenarios to follow")
        return feature.scenarios
    chosen = [s for s in feature.scenarios if s.name == name]
    if not chosen:
        raise UsageError(f"{where}: no scenario {name!r}" + did_you_mean(name, [s.name for s in feature.scenarios],
                                                                          known="scenarios"))
    return chosen


def login_name() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in the environment, no passwd entry
        return "unknown"


def colour_wanted(stream: TextIO) -> bool:
    """Colours only on a terminal, and never with NO_COLOR set (https://no-color.org)."""
    return bool(getattr(stream, "isatty", lambda: False)()) and not os.environ.get("NO_COLOR")


def cmd_run(args: argparse.Namespace) -> int:
    from .cli import preflight, role_actions

    out = sys.stdout
    config = load_config(args.config)
    env = config.environment(args.env)
    path = find_runbook(config, args.runbook)
    files, _ = preflight(config, env, [path])  # the checks verify makes: exit 2 before anything runs
    runbook = display_path(path, config.root)
    feature = parse_feature(path)
    runs = plan(feature, select(feature, args.scenario, runbook))
    answers = Answers.from_file(args.answers, out) if args.answers else Answers.from_stdin(out)
    operator = (args.operator or login_name()).strip()
    if not operator:
        raise UsageError("--operator: give the name of the person following the procedure")
    history = args.history or config.root / DEFAULT_HISTORY
    options = Options(history=history, read_only_actions=role_actions(config, env, files))
    session = ProcedureSession.from_options(config, env, options)
    assert isinstance(session, ProcedureSession)
    session.procedure = {"operator": operator, "runbook": runbook, "title": feature.name,
                         "scenario": args.scenario, "answers": answers.source}
    procedure = Procedure(session, feature, runbook, runs, answers, operator, out, colour_wanted(out))
    with terminate_as_interrupt():
        try:
            session.start()
        except KeyboardInterrupt as exc:
            session.interrupt_signal = signal_of(exc)
            session.stop(RunStatus.INTERRUPTED)
            raise
        except Exception as exc:  # noqa: BLE001 - nothing can be followed; one line, exit 3
            session.stop(RunStatus.FAILED)
            raise StartError(f"could not start the run for {env.name!r}: {exc}") from None
        status = RunStatus.FINISHED
        try:
            procedure.run()
            if procedure.stopped:
                status = RunStatus.ABORTED
        except KeyboardInterrupt as exc:
            session.interrupt_signal = signal_of(exc)
            status = RunStatus.INTERRUPTED
            why = "interrupted (Ctrl-C)" if signal_of(exc) == signal.SIGINT else "terminated (SIGTERM)"
            out.write("\n")
            procedure.interrupted(why)
            print(f"runbooks: {why}; the answers so far are kept in the history", file=sys.stderr)
        except EndOfAnswers as exc:
            status = RunStatus.INTERRUPTED
            procedure.interrupted(f"no answer: {exc}")
            print(f"runbooks: {exc}; the procedure stops here, marked interrupted (the answers so far are kept)",
                  file=sys.stderr)
        session.stop(status)
    procedure.summary(history)
    return session.exit_code()
