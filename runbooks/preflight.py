"""Refuse runbooks that pytest-bdd would run wrongly, before any check runs.

pytest-bdd silently keeps only the last of two same-named scenarios in a feature, and an undefined
step only shows up when its scenario runs (its cucumber JSON leaves it out). Both are refused here,
together with variables and names the environment does not define.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path

from . import registry
from .config import VARIABLE, Environment
from .features import OUTLINE_PARAM, FeatureDoc, ScenarioDoc, StepDoc
from .names import did_you_mean

# Step fields whose values must name something the environment declares.
NAMED_FIELDS = {"service": "services", "host": "hosts", "container": "containers"}


@dataclass(frozen=True, order=True)
class Problem:
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


def closest_phrases(text: str, n: int = 3) -> list[str]:
    phrases = list(registry.REGISTRY)
    # Compare against phrases with their fields blanked, so quoted values do not dominate.
    blank = re.sub(r'"[^"]*"', '""', text)
    keyed = {re.sub(r'"\{[^}]*\}"', '""', p): p for p in phrases}
    return [keyed[m] for m in difflib.get_close_matches(blank, list(keyed), n=n, cutoff=0.5)]


def check_feature(feature: FeatureDoc, env: Environment | None, display: str) -> list[Problem]:
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for scenario in feature.scenarios:
        if scenario.name in seen:
            problems.append(
                Problem(
                    display,
                    scenario.line,
                    f"scenario {scenario.name!r} has the same name as the one at line {seen[scenario.name]}; "
                    "pytest-bdd would silently run only the last one - rename one of them",
                )
            )
        else:
            seen[scenario.name] = scenario.line

    from .targets import known_capabilities

    capabilities = known_capabilities()

    for tag in feature.tags + [t for sc in feature.scenarios for t in sc.tags]:
        if tag.name.startswith("requires:") and tag.name.split(":", 1)[1] not in capabilities:
            problems.append(
                Problem(display, tag.line, f"unknown capability @{tag.name}; known: "
                        + ", ".join(f"@requires:{c}" for c in capabilities))
            )

    blocks = [feature.background] + [sc.steps for sc in feature.scenarios]
    for block in blocks:
        if block and not block[0].explicit:
            problems.append(
                Problem(display, block[0].line,
                        f"the first step of a scenario or background must start with Given, When or Then, "
                        f"not {block[0].keyword!r} (pytest-bdd refuses it); e.g. `Given {block[0].text}`")
            )

    for step in feature.prose_steps:  # Gherkin keeps them as description: they would never run
        if registry.find(step.text) is not None or closest_phrases(step.text):
            problems.append(Problem(display, step.line, f"step `{step.keyword} {step.text}` is outside any "
                                    "Scenario or Background, so it would never run; move it into one"))

    checked: set[tuple[int, str]] = set()
    steps: list[tuple[StepDoc, str]] = [(s, s.text) for s in feature.background]
    for scenario in feature.scenarios:
        unfilled = _unfilled_placeholders(scenario)
        problems.extend(Problem(display, line, message) for line, message in unfilled.items())
        steps.extend((step, text) for step, text in scenario.concrete_steps() if step.line not in unfilled)
    for step, text in steps:
        if (step.line, text) in checked:
            continue
        checked.add((step.line, text))
        problems.extend(_check_step(step, text, env, display))
    return problems


def _unfilled_placeholders(scenario: ScenarioDoc) -> dict[int, str]:
    """Step line -> why an outline's ``<placeholder>`` would run as written: no Examples column gives it a value."""
    if not scenario.examples and "Outline" not in scenario.keyword and "Template" not in scenario.keyword:
        return {}  # a plain Scenario: "<" and ">" are just text
    columns = sorted({column for row in scenario.examples for column in row})
    found = {}
    for step in scenario.steps:
        missing = [name for name in OUTLINE_PARAM.findall(step.text) if name not in columns]
        if missing:
            where = f"the Examples columns are {', '.join(columns)}" if columns else "it has no Examples rows"
            found[step.line] = (f"placeholder <{missing[0]}> has no Examples column, so it would run as written "
                                f"({where})")
    return found


def _check_step(step: StepDoc, text: str, env: Environment | None, display: str) -> list[Problem]:
    found = registry.find(text)
    if found is None:
        suggestions = closest_phrases(text)
        hint = "; closest known: " + " | ".join(suggestions) if suggestions else ""
        return [Problem(display, step.line, f"undefined step: {step.keyword} {text}{hint}")]
    definition, args = found
    problems = []
    for field_name, allowed in definition.choices.items():
        value = args.get(field_name)
        if isinstance(value, str) and not VARIABLE.search(value) and value not in allowed:
            problems.append(
                Problem(display, step.line, f"{field_name} {value!r} is not one of: {', '.join(allowed)}")
            )
    for field_name, validate in definition.validators.items():
        value = args.get(field_name)
        if isinstance(value, int | float):  # numeric fields are validated by their written form
            value = str(value)
        if isinstance(value, str) and not VARIABLE.search(value):
            try:
                validate(value)
            except ValueError as exc:
                problems.append(Problem(display, step.line, f"{field_name} {value!r}: {exc}"))
    if env is None:
        return problems
    for name in VARIABLE.findall(text):
        if name not in env.vars and name not in env.provided_vars:
            problems.append(
                Problem(
                    display,
                    step.line,
                    f"variable {{{name}}} is not defined by environment {env.name!r} "
                    f"(add it under [environments.{env.name}.vars])",
                )
            )
    for field_name, convert in definition.numeric.items():
        value = args.get(field_name)
        match = VARIABLE.fullmatch(value) if isinstance(value, str) else None
        if match and match.group(1) in env.vars:
            try:
                convert(env.vars[match.group(1)])
            except ValueError:
                problems.append(Problem(display, step.line, f"{field_name} {value}: variable {match.group(1)!r} is "
                                        f"{env.vars[match.group(1)]!r}, not a number"))
    for field_name, table in NAMED_FIELDS.items():
        value = args.get(field_name)
        if not isinstance(value, str) or VARIABLE.search(value):
            continue
        known = declared_names(env, table)
        if value not in known:
            problems.append(
                Problem(
                    display,
                    step.line,
                    f"{field_name} {value!r} is not defined by environment {env.name!r}"
                    + did_you_mean(value, known, known="defined"),
                )
            )
    return problems


def declared_names(env: Environment, table: str) -> list[str]:
    names = list(getattr(env, table))
    if table == "services" and env.sandbox and env.sandbox.service:
        names.append(env.sandbox.service)
    return names


def check_paths(features: list[tuple[FeatureDoc, str]], env: Environment | None) -> list[Problem]:
    problems: list[Problem] = []
    for feature, display in features:
        problems.extend(check_feature(feature, env, display))
    return sorted(problems)


def display_path(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)
