"""``runbooks lint``: check runbooks against the template without running anything.

Preflight's rules (undefined steps, duplicate scenario names, undefined variables, unknown service/host
names, unknown ``@requires:`` capabilities) plus the runbook template: the ``@owner:``, ``@severity:``,
``@reviewed:`` and class tags, the six description sections, references that exist (every path of
References, and every ``features/...`` a description, a scenario's paragraphs or a step mentions), and the
three troubleshooting paragraphs. One ``file:line: message`` per problem; a stale review is a warning
(an error with ``--strict``).
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from .config import Config, ConfigError, Environment, load_config
from .features import FeatureDoc, ScenarioDoc, discover, parse_feature, sections
from .preflight import check_feature, display_path
from .reports import SEVERITIES

CLASS_TAGS = ("operational", "integrity")
REQUIRED_SECTIONS = ("Purpose", "When to use", "Prerequisites", "Escalation", "Rollback", "References")
TROUBLESHOOTING_SECTIONS = ("Symptom", "Root cause", "Resolution")
DEFAULT_MAX_AGE = 180

# In References every path-like word is a reference; elsewhere (descriptions, scenario paragraphs, steps) only
# mentions of other runbooks are checked.
_WORD = re.compile(r"[^\s,;()<>`'\"]+")
_PATH = re.compile(r"^[\w.-]+(?:/[\w.-]*)+$|^[\w./-]+\.(?:feature|md)$")
_RUNBOOK_MENTION = re.compile(r"(?<![\w/])features/[\w./-]*")


@dataclass(frozen=True, order=True)
class Issue:
    path: str
    line: int
    message: str
    warning: bool = False

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {'warning: ' if self.warning else ''}{self.message}"


def register(sub: Any) -> None:
    parser = sub.add_parser("lint", help="check runbooks against the template and the step vocabulary (runs nothing)")
    parser.add_argument("paths", nargs="*", type=Path, help="feature files or folders (default: features/)")
    parser.add_argument("--env", help="environment whose variables and names steps must use (default: the config's)")
    parser.add_argument("--strict", action="store_true", help="a review older than --max-age is an error")
    parser.add_argument("--max-age", type=int, default=DEFAULT_MAX_AGE, metavar="DAYS",
                        help=f"days since @reviewed: before a runbook is stale (default: {DEFAULT_MAX_AGE})")
    parser.add_argument("--config", type=Path, help="path to runbooks.toml (default: search upwards)")
    parser.set_defaults(handler=cmd_lint)


def cmd_lint(args: argparse.Namespace) -> int:
    from .errors import UsageError

    if args.max_age < 0:
        raise UsageError("--max-age must be 0 or more days")
    config = load_config(args.config)
    env = config.environment(args.env)
    files = discover(args.paths or [config.features])
    if not files:
        raise UsageError(f"no .feature files under {', '.join(str(p) for p in args.paths or [config.features])}")
    issues = lint_files(config, env, files, today=date.today(), max_age=args.max_age, strict=args.strict)
    for issue in issues:
        print(issue)
    errors = sum(1 for i in issues if not i.warning)
    print(f"runbooks lint: {len(files)} runbook(s), {errors} error(s), {len(issues) - errors} warning(s)",
          file=sys.stderr)
    return 1 if errors else 0


def lint_files(config: Config, env: Environment | None, files: list[Path], *, today: date,
               max_age: int = DEFAULT_MAX_AGE, strict: bool = False) -> list[Issue]:
    from .registry import load_step_modules

    load_step_modules(config)
    issues: list[Issue] = []
    for path in files:
        display = display_path(path, config.root)
        try:
            feature = parse_feature(path)
        except ConfigError as exc:
            issues.append(Issue(display, exc.line or 1, exc.message))
            continue
        issues += [Issue(p.path, p.line, p.message) for p in check_feature(feature, env, display)]
        issues += lint_template(feature, display, config.root, today=today, max_age=max_age, strict=strict)
    return sorted(issues)


def lint_template(feature: FeatureDoc, display: str, root: Path, *, today: date, max_age: int,
                  strict: bool) -> list[Issue]:
    """The runbook template's rules for one parsed feature."""
    issues: list[Issue] = []

    def add(line: int, message: str, warning: bool = False) -> None:
        issues.append(Issue(display, line, message, warning))

    names = [t.name for t in feature.tags]
    for prefix, shape in (("owner", "<team>"), ("severity", "<" + "|".join(SEVERITIES) + ">"),
                          ("reviewed", "YYYY-MM-DD")):
        if not any(n.startswith(prefix + ":") for n in names):
            add(feature.line, f"missing tag @{prefix}:{shape}")
    if not any(n in CLASS_TAGS for n in names):
        add(feature.line, "missing class tag @operational or @integrity")

    for tag in feature.tags + [t for sc in feature.scenarios for t in sc.tags]:
        key, colon, value = tag.name.partition(":")
        if not colon:
            continue
        if key == "owner" and not value:
            add(tag.line, "empty @owner: tag; write @owner:<team>")
        elif key == "severity" and value not in SEVERITIES:
            add(tag.line, f"invalid severity {value!r}; use one of: {', '.join(SEVERITIES)}")
        elif key == "reviewed":
            issues.extend(_review_date(display, tag.line, value, today, max_age, strict))

    lines = _file_lines(feature.path)
    found = sections(feature.description)
    for name in REQUIRED_SECTIONS:
        entry = found.get(name.lower())
        if entry is None:
            add(feature.line, f"missing description section '{name}:'")
        elif not entry[0]:
            add(_line_of(lines, feature.line, feature.description, entry[1]), f"description section '{name}:' is empty")

    for line, reference in _references(feature, lines) + _mentions_in_scenarios(feature, lines):
        target = root / reference.split("#", 1)[0]
        if not target.exists():
            add(line, f"broken reference {reference!r}: no such file or folder (paths are relative to the repo root)")

    troubleshooting = "troubleshooting" in names
    for scenario in feature.scenarios:
        if troubleshooting or any(t.name == "troubleshooting" for t in scenario.tags):
            issues.extend(_troubleshooting(display, scenario))
    issues.extend(_missing_requires(feature, display))
    return issues


def _missing_requires(feature: FeatureDoc, display: str) -> list[Issue]:
    """A step that reads a target only some environments have (its ``requires``), in a scenario without that
    ``@requires:`` tag: an environment without the target would report an ERROR instead of skipping it."""
    from .registry import find

    on_feature = {t.name for t in feature.tags}
    blocks = [(on_feature, [(s, s.text) for s in feature.background])]
    blocks += [(on_feature | {t.name for t in sc.tags}, list(sc.concrete_steps())) for sc in feature.scenarios]
    issues: list[Issue] = []
    seen: set[int] = set()
    for tags, steps in blocks:
        for step, text in steps:
            found = find(text)
            needed = found[0].requires if found else ""
            if needed and f"requires:{needed}" not in tags and step.line not in seen:
                seen.add(step.line)
                issues.append(Issue(display, step.line, f"this step reads {needed}: tag its scenario (or the "
                                    f"feature) @requires:{needed}, so that environments without one skip it"))
    return issues


def _review_date(display: str, line: int, value: str, today: date, max_age: int, strict: bool) -> list[Issue]:
    try:
        reviewed = date.fromisoformat(value)
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise ValueError
    except ValueError:
        return [Issue(display, line, f"invalid review date {value!r}; write @reviewed:YYYY-MM-DD")]
    if reviewed > today:
        return [Issue(display, line, f"review date {value} is in the future (today is {today.isoformat()})")]
    age = (today - reviewed).days
    if age > max_age:
        return [Issue(display, line, f"last reviewed {value}, {age} days ago (more than {max_age}): "
                      "review the runbook and update @reviewed:", warning=not strict)]
    return []


def _troubleshooting(display: str, scenario: ScenarioDoc) -> list[Issue]:
    found = sections(scenario.description)
    missing = [name for name in TROUBLESHOOTING_SECTIONS if not (found.get(name.lower()) or ("",))[0]]
    if not missing:
        return []
    return [Issue(display, scenario.line,
                  f"troubleshooting scenario {scenario.name!r} is missing "
                  + ", ".join(f"'{name}:'" for name in missing)
                  + " in its description (needs Symptom:, Root cause:, Resolution:)")]


def _references(feature: FeatureDoc, lines: list[str]) -> list[tuple[int, str]]:
    """(file line, path) for each path in References: and each features/... mention elsewhere."""
    description = feature.description.splitlines()
    starts = sorted((offset, name) for name, (_, offset) in sections(feature.description).items())
    found: list[tuple[int, str]] = []
    for offset, text in enumerate(description):
        current = next((name for start, name in reversed(starts) if start <= offset), None)
        if current == "references":
            body = text.split(":", 1)[1] if offset in {s for s, _ in starts} else text
            words = [w.rstrip(".:") for w in _WORD.findall(body) if "://" not in w]
            paths = [w for w in words if _PATH.match(w.split("#")[0]) and re.search("[A-Za-z]", w)]
        else:
            paths = [m.rstrip(".:") for m in _RUNBOOK_MENTION.findall(text)]
        line = _line_of(lines, feature.line, feature.description, offset)
        found.extend((line, p) for p in dict.fromkeys(paths))
    return found


def _mentions_in_scenarios(feature: FeatureDoc, lines: list[str]) -> list[tuple[int, str]]:
    """(file line, path) for each features/... mention in a scenario's description (a Resolution naming the
    runbook to follow) and in a step (``manual: ... (features/rollback/emergency_rollback.feature)``)."""
    found: list[tuple[int, str]] = []
    for step in feature.background:
        found.extend((step.line, m.rstrip(".:")) for m in _RUNBOOK_MENTION.findall(step.text))
    for scenario in feature.scenarios:
        for offset, text in enumerate(scenario.description.splitlines()):
            line = _line_of(lines, scenario.line, scenario.description, offset)
            found.extend((line, m.rstrip(".:")) for m in dict.fromkeys(_RUNBOOK_MENTION.findall(text)))
        for step in scenario.steps:
            found.extend((step.line, m.rstrip(".:")) for m in dict.fromkeys(_RUNBOOK_MENTION.findall(step.text)))
    return found


def _file_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []


def _line_of(lines: list[str], keyword_line: int, description: str, offset: int) -> int:
    """The file line of line ``offset`` of a description (the parser drops comments, so match the text)."""
    number = keyword_line
    for text in description.splitlines()[: offset + 1]:
        number += 1
        while number <= len(lines) and lines[number - 1].strip() != text.strip():
            number += 1
    return min(number, len(lines)) if lines else keyword_line
