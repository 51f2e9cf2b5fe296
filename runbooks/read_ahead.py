"""Read-ahead: the AWS reads of the steps and scenarios to come, started while the current step runs.

pytest runs scenarios one after another, and a fleet step waits for its last read before the next step
starts: between steps, and all along a run of many small scenarios (one per account x region), the run's AWS
pool would sit mostly idle. While a scenario runs, its own later steps (from the one after the step running
now) and the next ``aws.read_ahead`` scenarios are evaluated in the background, in order, and their results
thrown away: what stays is the AWS target's per-run memo, so that when pytest reaches them their reads are
answered or on their way. Records, reports and outcomes come only from each step's own turn, exactly as
without read-ahead, and no read is made twice.

Only what is safe to do twice is done ahead. Only checks that read through ``ctx`` alone are evaluated ahead
(``StepDefinition.read_ahead``: the built-in library, and a team's modules that declare ``READ_AHEAD = True``);
a check evaluated ahead may make memoised AWS reads and nothing else; the first thing it asks for that is not
one (another target, an un-memoised call) ends that scenario's read-ahead
(:class:`runbooks.context.NotReadAhead`). A scenario's read-ahead also stops where its turn would stop: at a
Given or When step that does not pass, and at a guard that does not pass. Nothing is read ahead while the
current scenario still has a guard step to pass, nor past a later scenario with a guard until that guard has
passed in its turn. A read-ahead has no step deadline (a step in its turn may be waiting for it, under its
own); :meth:`ReadAhead.close` ends it, and waits for it, before the run's targets close.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .context import AHEAD, CURRENT_STEP, Finding, NotReadAhead, ScenarioState
from .deadlines import DEADLINE, RUN, Deadline
from .registry import StepDefinition, find
from .result import Outcome
from .session import HARD_STEP_TYPES

if TYPE_CHECKING:
    from .session import Session
    from .targets.aws import AwsAccount


@dataclass(frozen=True)
class PlannedStep:
    definition: StepDefinition
    args: dict[str, Any]
    hard: bool  # a Given or When: one that does not pass stops the scenario


@dataclass(frozen=True)
class PlannedScenario:
    steps: tuple[PlannedStep, ...]  # the automated steps it may read ahead, in order
    region: str | None
    account: AwsAccount | None
    guards: int  # its guard steps, all of them: nothing is read ahead until each has passed in its turn


def plan_scenario(steps: Iterable[Any], region: str | None, account: AwsAccount | None,
                  known: dict[str, tuple[StepDefinition, dict[str, Any]] | None]) -> PlannedScenario:
    """A scenario's steps (pytest-bdd's, rendered) as read-ahead evaluates them; manual steps are left out.
    ``known``: the step texts matched so far in this plan (a scenario per account x region repeats them)."""
    automated = []
    for step in steps:
        if step.name not in known:
            known[step.name] = find(step.name)
        found = known[step.name]
        if found is not None:  # a manual step: a person does it, nothing to read
            automated.append((step, found))
    planned = []
    for step, (definition, args) in automated:
        if not definition.read_ahead:  # its check may read around ctx: it, and what follows, wait for their turn
            break
        planned.append(PlannedStep(definition, args, step.type in HARD_STEP_TYPES))
    guards = sum(1 for _, (definition, _) in automated if definition.guard)
    return PlannedScenario(tuple(planned), region, account, guards)


class ReadAhead:
    """The read-ahead of one run: ``scenarios`` (node id -> plan, in the run's order); ``window`` scenarios
    ahead of the current one, evaluated on their own threads (their reads go to the run's AWS pool)."""

    def __init__(self, session: Session, scenarios: dict[str, PlannedScenario], window: int) -> None:
        self.session = session
        self.order = list(scenarios.values())
        self.position = {node: n for n, node in enumerate(scenarios)}
        self.window = window
        self._passed_guards: dict[int, int] = {}  # scenario -> its guard steps that passed in their turn
        self._scheduled = 0  # scenarios before this one are read ahead (or running, or done)
        self._deadlines: dict[int, Deadline] = {}  # of the checks being read ahead now: ended by close()
        self._lock = threading.Lock()
        self._closed = False
        self._threads = ThreadPoolExecutor(min(window, 4), thread_name_prefix="runbooks-read-ahead")

    # the run's progress, from the runbooks plugin ---------------------------------------------
    def scenario_started(self, node: str) -> None:
        self._advance(node)

    def step_done(self, node: str, definition: StepDefinition, outcome: Outcome) -> None:
        if definition.guard and outcome is Outcome.PASS:
            position = self.position.get(node)
            if position is not None:
                with self._lock:
                    self._passed_guards[position] = self._passed_guards.get(position, 0) + 1
                self._advance(node)

    def close(self) -> None:
        """No more read-ahead, before the run's targets close: queued scenarios are dropped, the checks being
        read ahead run out of time (no further attempt; a request in flight ends within its read timeout) and
        are waited for, so that nothing is read once the run has ended."""
        with self._lock:
            self._closed = True
            for deadline in self._deadlines.values():
                deadline.end_now()
        self._threads.shutdown(wait=True, cancel_futures=True)

    # ------------------------------------------------------------------------------------------
    def _advance(self, node: str) -> None:
        """Read ahead from the current scenario: its own later steps and the next ``window`` scenarios."""
        current = self.position.get(node)
        if current is None:
            return
        scenario = self.order[current]
        with self._lock:
            if self._closed or self._passed_guards.get(current, 0) < scenario.guards:
                return  # the current scenario's guard has yet to pass: nothing is read before it holds
            jobs = []
            if current >= self._scheduled:  # its own steps from the one after the step running now
                guards = [n for n, step in enumerate(scenario.steps) if step.definition.guard]
                jobs.append((scenario, guards[-1] + 2 if guards else 1))
            ahead = range(max(self._scheduled, current + 1), min(current + 1 + self.window, len(self.order)))
            # a scenario with a guard is read ahead (its guard first), but none after it until the guard passed
            guarded = next((n for n in ahead if self.order[n].guards), None)
            if guarded is not None:
                ahead = range(ahead.start, guarded + 1)
            jobs += [(self.order[position], 0) for position in ahead]
            self._scheduled = max(self._scheduled, current + 1, ahead.stop)
        for planned, start in jobs:
            if start < len(planned.steps):
                self._threads.submit(self._read_ahead, planned, start)

    def _read_ahead(self, scenario: PlannedScenario, start: int) -> None:
        """Evaluate the scenario's checks from ``start`` in order, as its turn would, keeping nothing but the
        memo."""
        state = ScenarioState()
        for step in scenario.steps[start:]:
            if self._closed or self.session.out_of_time():
                return
            outcome = self._evaluate(step, state, scenario)
            if outcome is None:
                return
            if outcome is not Outcome.PASS and (step.hard or step.definition.guard):
                return

    def _evaluate(self, step: PlannedStep, state: ScenarioState, scenario: PlannedScenario) -> Outcome | None:
        """One check ahead of its turn: its outcome, or None when it could not be done ahead."""
        session = self.session
        # No step deadline of its own: a step in its turn may be waiting for this read, under its own deadline
        # (a read-ahead that gave up sooner would have made it wait for nothing). The run's end still holds.
        run = session.run_deadline
        deadline = Deadline(run.seconds, run.expires, RUN) if run is not None else Deadline.after(float("inf"))
        with self._lock:
            if self._closed:
                return None
            self._deadlines[id(deadline)] = deadline
        tokens = (AHEAD.set(True), CURRENT_STEP.set(step.definition), DEADLINE.set(deadline))
        try:
            args = session.arguments(step.definition, step.args)
            context = session.context(state, scenario.region, scenario.account)
            return step.definition.func(context, **args).outcome
        except Finding as exc:
            return exc.result.outcome
        except NotReadAhead:
            return None
        except Exception:  # noqa: BLE001 - whatever went wrong, the check's own turn meets it and says so
            return None
        finally:
            DEADLINE.reset(tokens[2])
            CURRENT_STEP.reset(tokens[1])
            AHEAD.reset(tokens[0])
            with self._lock:
                self._deadlines.pop(id(deadline), None)
