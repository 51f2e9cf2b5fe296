"""How long a step, and the whole run, may take: one deadline per step, the targets keep to it.

:class:`~runbooks.session.Session` sets :data:`DEADLINE` around every check: the step's deadline
(``step_timeout_s``), never later than the run's (``run_timeout_s``). The AWS and HTTP targets call
:meth:`Deadline.attempt` before each request they send (each retry included) and bound that request's
timeouts by :meth:`Deadline.bound`; once it has passed, the next attempt raises :class:`DeadlineReached`,
a :class:`~runbooks.faults.CouldNotCheck` that always becomes an ERROR:
``deadline of 60 s reached after 3 attempts``. Fleet steps copy the context into their worker threads,
so every worker shares its step's deadline and attempt count.
"""

from __future__ import annotations

import contextvars
import threading
import time
from dataclasses import dataclass, field

from .faults import CouldNotCheck, Fault, FaultKind

STEP = "deadline"
RUN = "run deadline"
HINTS = {
    STEP: "raise step_timeout_s in runbooks.toml (or --step-timeout) if the step needs longer; otherwise find "
    "out why the endpoint is slow (throttling, a hung service, the network)",
    RUN: "raise run_timeout_s in runbooks.toml (or --timeout), or run fewer runbooks at once (--tags)",
}


@dataclass
class Deadline:
    """A point in time (``time.monotonic``) by which the work must stop, and the attempts made under it."""

    seconds: float  # as configured: named in the reason
    expires: float  # time.monotonic() value
    label: str = STEP  # "deadline" (a step's) or "run deadline"
    attempts: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @classmethod
    def after(cls, seconds: float, label: str = STEP) -> Deadline:
        return cls(seconds, time.monotonic() + seconds, label)

    def remaining(self) -> float:
        return self.expires - time.monotonic()

    def passed(self) -> bool:
        return self.remaining() <= 0

    def bound(self, timeout: float | None) -> float:
        """``timeout`` (None: none) cut to the time left, and never 0 (which would mean "no wait at all")."""
        left = max(self.remaining(), 0.001)
        return left if timeout is None else min(timeout, left)

    def attempt(self) -> None:
        """Count one request about to be sent; :class:`DeadlineReached` instead when no time is left."""
        if self.passed():
            raise self.reached()
        with self._lock:
            self.attempts += 1

    def end_now(self) -> None:
        """No time left from now on: every later attempt under this deadline is refused (the run is ending)."""
        self.expires = time.monotonic()

    def reached(self) -> DeadlineReached:
        return DeadlineReached(self)

    def reason(self) -> str:
        """``run deadline of 1800 s reached``: why the remaining steps of a run are not run."""
        return f"{self.label} of {self.seconds:g} s reached"


class DeadlineReached(CouldNotCheck):
    """The step (or the run) ran out of time; what it had not read by then stays unchecked."""

    def __init__(self, deadline: Deadline) -> None:
        self.deadline = deadline
        attempts = deadline.attempts
        reason = f"{deadline.reason()} after {attempts} attempt{'' if attempts == 1 else 's'}"
        super().__init__(Fault.of(FaultKind.TIMEOUT, reason, HINTS.get(deadline.label, HINTS[STEP])))


def seconds_option(text: str) -> float:
    """``--timeout``/``--step-timeout`` (and their ``--runbooks-*`` forms): seconds, 0 or more (0: no limit)."""
    import argparse
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"{text!r}: seconds must be 0 or more (0: no limit)")
    return value


def not_started(deadline: Deadline) -> CouldNotCheck:
    """What a step that the run's deadline left no time to start is: ``run deadline of 1800 s reached``."""
    return CouldNotCheck(Fault.of(FaultKind.TIMEOUT, deadline.reason(), HINTS.get(deadline.label, HINTS[RUN])))


# The deadline of the check running in this context (None: unbounded, e.g. a check called directly).
DEADLINE: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar("runbooks_deadline", default=None)


def current() -> Deadline | None:
    return DEADLINE.get()


def for_step(step_timeout_s: float | None, run: Deadline | None) -> Deadline | None:
    """A fresh deadline for one step: ``step_timeout_s`` from now, or the run's if that comes first
    (then the reason names the run deadline). None when neither is set."""
    step = Deadline.after(step_timeout_s) if step_timeout_s else None
    if run is None:
        return step
    if step is None or run.expires < step.expires:
        return Deadline(run.seconds, run.expires, RUN)  # the run's end, with this step's own attempt count
    return step
