"""The step vocabulary: every phrase a runbook may use, with what it needs and how to check it by hand.

A check is a plain function ``(ctx, **args) -> CheckResult`` decorated with :func:`check`. The
decorator records it here (for preflight, lint, the catalogue and the IAM policy) and binds it as a
pytest-bdd step in the module that defines it, for every keyword (Given/When/Then/And/But/*).
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest
from parse import with_pattern
from pytest_bdd import parsers, step

from .discovery import BUILTIN_PACKAGE
from .errors import UsageError
from .result import CheckResult

if TYPE_CHECKING:
    from .config import Config

CheckFunc = Callable[..., CheckResult]
MANUAL_PREFIX = "manual:"
_FIELD = re.compile(r"\{(\w+)(?::[^}]*)?\}")
_NUMERIC_FIELD = re.compile(r"\{(\w+):([dg])\}")
_PLACEHOLDER = r"\{[A-Za-z_][A-Za-z0-9_]*\}"


@with_pattern(rf"[-+]?\d+|{_PLACEHOLDER}")
def _int_or_variable(text: str) -> int | str:
    return text if text.startswith("{") else int(text)


@with_pattern(rf"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|{_PLACEHOLDER}")
def _number_or_variable(text: str) -> float | str:
    return text if text.startswith("{") else float(text)


NUMBER_TYPES = {"d": ("IntOrVariable", _int_or_variable, int), "g": ("NumberOrVariable", _number_or_variable, float)}


class PhraseParser(parsers.parse):
    """pytest-bdd's ``parse`` parser that first compares a step with the phrase's literal start. pytest-bdd
    asks every definition whether it matches each step, and parse compiles a definition's regular expression
    when first asked (~0.5 ms each, ~45 ms for the library): a step that cannot match is told so without it."""

    def __init__(self, name: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(name, *args, **kwargs)
        start = name.split("{", 1)[0]
        self.start = start.lower() if start.isascii() else ""

    def is_matching(self, name: str) -> bool:
        head = name[: len(self.start)]
        if head.isascii() and head.lower() != self.start:  # parse ignores case; beyond ASCII it decides
            return False
        return bool(super().is_matching(name))


def numeric_parser(phrase: str) -> tuple[Any, dict[str, Callable[[str], Any]]]:
    """A parser in which ``{n:d}``/``{x:g}`` also take a ``{variable}``, and the fields to convert after
    the variable is resolved (``port {api_port} is listening`` with api_port = "18080")."""
    numeric: dict[str, Callable[[str], Any]] = {}

    def swap(match: re.Match[str]) -> str:
        name, kind = match.groups()
        type_name, _, convert = NUMBER_TYPES[kind]
        numeric[name] = convert
        return "{" + f"{name}:{type_name}" + "}"

    pattern = _NUMERIC_FIELD.sub(swap, phrase)
    extra = {type_name: func for type_name, func, _ in NUMBER_TYPES.values()}
    return PhraseParser(pattern, extra_types=extra), numeric


@dataclass(frozen=True)
class StepDefinition:
    phrase: str
    func: CheckFunc
    domain: str
    permissions: tuple[str, ...]
    manual: str
    summary: str
    parser: Any
    choices: dict[str, tuple[str, ...]]
    validators: dict[str, Callable[[str], None]]
    guard: bool = False  # a FAIL stops the whole run (exit 2): e.g. the wrong AWS account
    title: str = ""  # the catalogue heading of its module (TITLE), else the module's name
    order: int = 1000  # where that heading goes in the catalogue (the module's CATALOG_ORDER)
    numeric: dict[str, Callable[[str], Any]] = field(default_factory=dict)  # fields converted after resolving
    requires: str = ""  # the @requires: capability its scenarios need (e.g. "prometheus"), "" when none
    # whether runbooks.read_ahead may evaluate it ahead of its turn: it reads only through ctx (see check())
    read_ahead: bool = False

    @property
    def name(self) -> str:
        return self.func.__name__

    @property
    def fields(self) -> list[str]:
        return _FIELD.findall(self.phrase)

    def matches(self, text: str) -> dict[str, Any] | None:
        if not self.parser.is_matching(text):
            return None
        return dict(self.parser.parse_arguments(text) or {})

    def manual_command(self, args: dict[str, Any]) -> str:
        try:
            return self.manual.format(**args)
        except (KeyError, IndexError):
            return self.manual


REGISTRY: dict[str, StepDefinition] = {}
# What runs the steps of the current pytest session: the runbooks plugin (typed loosely: no import cycle).
STEP_RUNNER: pytest.StashKey[Any] = pytest.StashKey()


def check(
    phrase: str,
    *,
    permissions: tuple[str, ...] | list[str] = (),
    manual: str = "",
    parser: Any = None,
    choices: dict[str, tuple[str, ...]] | None = None,
    validators: dict[str, Callable[[str], None]] | None = None,
    guard: bool = False,
    requires: str = "",
    read_ahead: bool | None = None,
) -> Callable[[CheckFunc], CheckFunc]:
    """Register ``func`` as the check behind ``phrase``, a ``parse`` format: ``the S3 bucket "{bucket}" exists``.

    ``permissions``: the IAM actions the check needs. ``manual``: the command an operator would run,
    a format string over the phrase's fields. ``choices``/``validators``: argument checks that
    preflight applies before anything runs (a validator raises ``ValueError`` with a one-line reason).
    ``requires``: the ``@requires:`` capability of the target the check reads (``prometheus``): lint asks
    every scenario that uses the step to carry it, so that environments without that target skip it.
    ``read_ahead``: the check reads only through ``ctx`` (no client, session or HTTP call of its own), so
    ``runbooks.read_ahead`` may evaluate it before its turn to start its AWS reads (memoised: they are not
    made again in its turn). Default: the module's ``READ_AHEAD`` (a team's step module declares it, above its
    checks: it is read as each one is registered), else true for the built-in library only.
    """

    def decorate(func: CheckFunc) -> CheckFunc:
        numeric: dict[str, Callable[[str], Any]] = {}
        step_parser = parser
        if step_parser is None:
            step_parser, numeric = numeric_parser(phrase)
        module = sys.modules.get(func.__module__)
        domain = func.__module__.rpartition(".")[2]
        definition = StepDefinition(
            title=str(getattr(module, "TITLE", domain)),
            order=int(getattr(module, "CATALOG_ORDER", 1000)),
            phrase=phrase,
            func=func,
            domain=domain,
            permissions=tuple(permissions),
            manual=manual,
            summary=inspect.getdoc(func) or "",
            parser=step_parser,
            choices=dict(choices or {}),
            validators=dict(validators or {}),
            guard=guard,
            numeric=numeric,
            requires=requires,
            read_ahead=bool(getattr(module, "READ_AHEAD", func.__module__.startswith(f"{BUILTIN_PACKAGE}.")))
            if read_ahead is None else read_ahead,
        )
        previous = REGISTRY.get(phrase)
        if previous is not None and defined_at(previous.func) != defined_at(func):
            raise DuplicateStep(f"step {phrase!r} is defined twice: at {defined_at(previous.func)} "
                                f"and at {defined_at(func)}")
        REGISTRY[phrase] = definition
        # stacklevel=2: pytest-bdd puts the step fixture into the module that applied @check.
        step(step_parser, stacklevel=2)(_bdd_binding(definition))
        return func

    return decorate


def _bdd_binding(definition: StepDefinition) -> Callable[..., None]:
    """The function pytest-bdd calls; it hands the step to the run, which records the result."""
    arg_names = [name for name in inspect.signature(definition.func).parameters if name != "ctx"]

    def run_step(request: Any, **args: Any) -> None:
        request.config.stash[STEP_RUNNER].execute_step(request, definition, args)

    params = [inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD)] + [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY) for name in arg_names
    ]
    run_step.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    run_step.__name__ = f"step_{definition.name}"
    return run_step


def find(text: str) -> tuple[StepDefinition, dict[str, Any]] | None:
    for definition in REGISTRY.values():
        args = definition.matches(text)
        if args is not None:
            return definition, args
    return None


def load_step_modules(config: Config | None = None) -> list[ModuleType]:
    """Import every step module — built-in, installed packs, and the project's of ``config`` — so that
    the registry is complete (see :mod:`runbooks.discovery`)."""
    from .discovery import load_steps

    return load_steps(config)


def defined_at(func: Callable[..., Any]) -> str:
    """``file:line`` of a function, relative to the working directory when it is below it."""
    code = getattr(func, "__code__", None)
    if code is None:
        return func.__qualname__
    path = Path(code.co_filename).resolve()
    cwd = Path.cwd().resolve()
    shown = path.relative_to(cwd) if path.is_relative_to(cwd) else path
    return f"{shown}:{code.co_firstlineno}"


class DuplicateStep(UsageError):
    """Two step modules define the same phrase."""
