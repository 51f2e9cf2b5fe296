"""Feature files as data (via the official Gherkin parser), with line numbers for every part.

Preflight, lint and rendering read runbooks through this model, without running anything.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gherkin.errors import CompositeParserException, ParserError
from gherkin.parser import Parser

from .config import ConfigError
from .errors import read_text

OUTLINE_PARAM = re.compile(r"<([^<>]+)>")


@dataclass(frozen=True)
class Tag:
    name: str  # without the leading "@"
    line: int


@dataclass(frozen=True)
class StepDoc:
    keyword: str  # as written: "Given", "And", "*", ...
    keyword_type: str  # "given" | "when" | "then" after resolving And/But/*
    text: str
    line: int
    explicit: bool = True  # False for And/But/*: its type comes from the step before it


@dataclass
class ScenarioDoc:
    name: str
    line: int
    keyword: str
    tags: list[Tag]
    description: str
    steps: list[StepDoc]
    examples: list[dict[str, str]] = field(default_factory=list)
    rule: str | None = None

    def concrete_steps(self) -> Iterator[tuple[StepDoc, str]]:
        """Each step with its text as it will run (one per example row for an outline)."""
        for row in self.examples or [{}]:
            for s in self.steps:
                yield s, render_outline(s.text, row)


@dataclass
class FeatureDoc:
    path: Path
    name: str
    line: int
    tags: list[Tag]
    description: str
    background: list[StepDoc]
    scenarios: list[ScenarioDoc]
    # Lines of the Feature's or a Rule's description that start with a step keyword: Gherkin reads them as
    # prose, so a step written before the first Scenario would never run (preflight refuses real steps).
    prose_steps: list[StepDoc] = field(default_factory=list)

    def tag_value(self, prefix: str, scenario: ScenarioDoc | None = None) -> str | None:
        """The value of a ``@prefix:value`` tag; the scenario's wins over the feature's."""
        for tags in ([scenario.tags] if scenario else []) + [self.tags]:
            for tag in tags:
                if tag.name.startswith(prefix + ":"):
                    return tag.name.split(":", 1)[1]
        return None


def render_outline(text: str, row: dict[str, str]) -> str:
    return OUTLINE_PARAM.sub(lambda m: row.get(m.group(1), m.group(0)), text)


_TYPES = {"Context": "given", "Action": "when", "Outcome": "then"}


def _steps(raw_steps: list[dict[str, Any]], previous: str = "given") -> list[StepDoc]:
    out = []
    for raw in raw_steps:
        kind = _TYPES.get(raw["keywordType"], previous)  # And / But / * continue the previous type
        previous = kind
        explicit = raw["keywordType"] in _TYPES
        out.append(StepDoc(raw["keyword"].strip(), kind, raw["text"], raw["location"]["line"], explicit))
    return out


def _tags(raw: list[dict[str, Any]]) -> list[Tag]:
    return [Tag(t["name"].lstrip("@"), t["location"]["line"]) for t in raw]


def _scenario(raw: dict[str, Any], rule: str | None) -> ScenarioDoc:
    examples: list[dict[str, str]] = []
    for block in raw.get("examples", []):
        header = [c["value"] for c in block.get("tableHeader", {}).get("cells", [])]
        for row in block.get("tableBody", []):
            examples.append(dict(zip(header, (c["value"] for c in row["cells"]), strict=False)))
    return ScenarioDoc(
        name=raw["name"],
        line=raw["location"]["line"],
        keyword=raw["keyword"],
        tags=_tags(raw.get("tags", [])),
        description=_dedent(raw.get("description", "")),
        steps=_steps(raw["steps"]),
        examples=examples,
        rule=rule,
    )


_SECTION = re.compile(r"^\s*([A-Z][A-Za-z /-]{2,40}):\s*(.*)$")


def sections(description: str) -> dict[str, tuple[str, int]]:
    """``Heading:`` paragraphs of a description -> (text, line offset within the description)."""
    found: dict[str, tuple[str, int]] = {}
    current: str | None = None
    lines: list[str] = []
    start = 0

    def close() -> None:
        if current is not None:
            found[current.lower()] = (" ".join(" ".join(lines).split()), start)

    for offset, line in enumerate(_dedent(description).splitlines()):
        match = _SECTION.match(line)
        if match and not line[:1].isspace():  # headings start at the margin; indented lines continue
            close()
            current, lines, start = match.group(1), [match.group(2)], offset
        elif current is not None:
            lines.append(line.strip())
    close()
    return found


def section(description: str, name: str) -> str | None:
    """The text of one ``Name:`` paragraph of a description, joined into one line."""
    entry = sections(description).get(name.lower())
    return entry[0] if entry else None


def _dedent(text: str) -> str:
    lines = text.splitlines()
    indent = min((len(line) - len(line.lstrip()) for line in lines if line.strip()), default=0)
    return "\n".join(line[indent:] for line in lines).strip("\n")


def parse_feature(path: Path) -> FeatureDoc:
    text = read_text(path, "feature file", bom=False)
    try:
        doc = Parser().parse(text)
    except CompositeParserException as exc:
        first = exc.errors[0]
        raise _gherkin_error(path, first) from None
    except ParserError as exc:
        raise _gherkin_error(path, exc) from None
    feature: dict[str, Any] | None = doc.get("feature")  # type: ignore[assignment]  # TypedDicts, read as dicts
    if not feature:
        raise ConfigError("no Feature: in this file", path, 1)
    _check_tags(feature, path)
    lines = text.splitlines()
    background: list[StepDoc] = []
    scenarios: list[ScenarioDoc] = []
    prose_steps = _prose_steps(lines, feature)

    def walk(children: list[dict[str, Any]], rule: str | None) -> None:
        for child in children:
            if "background" in child:
                background.extend(_steps(child["background"]["steps"]))
            elif "scenario" in child:
                scenarios.append(_scenario(child["scenario"], rule))
            elif "rule" in child:
                prose_steps.extend(_prose_steps(lines, child["rule"]))
                walk(child["rule"]["children"], child["rule"]["name"])

    walk(feature.get("children", []), None)
    return FeatureDoc(
        path=path,
        name=feature["name"],
        line=feature["location"]["line"],
        tags=_tags(feature.get("tags", [])),
        description=_dedent(feature.get("description", "")),
        background=background,
        scenarios=scenarios,
        prose_steps=prose_steps,
    )


_STEP_LINE = re.compile(r"^\s*(Given|When|Then|And|But|\*)\s+(\S.*?)\s*$")


def _prose_steps(lines: list[str], node: dict[str, Any]) -> list[StepDoc]:
    """Step-like lines between a Feature's (or Rule's) own line and its first Background, Scenario or Rule."""
    def start(child: dict[str, Any]) -> int:
        inner = next(iter(child.values()))
        return min([inner["location"]["line"], *(t["location"]["line"] for t in inner.get("tags", []))])

    end = min((start(child) for child in node.get("children", [])), default=len(lines) + 1)
    found = []
    for number in range(node["location"]["line"] + 1, end):
        match = _STEP_LINE.match(lines[number - 1])
        if match:
            keyword = match.group(1)
            kind = keyword.lower() if keyword in ("Given", "When", "Then") else "given"
            found.append(StepDoc(keyword, kind, match.group(2), number, kind == keyword.lower()))
    return found


def _check_tags(node: Any, path: Path) -> None:
    """Tags pytest cannot turn into a marker: ``@`` alone, ``@:value``, ``@_name`` (pytest would crash)."""
    if isinstance(node, list):
        for item in node:
            _check_tags(item, path)
        return
    if not isinstance(node, dict):
        return
    for tag in node.get("tags", []):
        name = tag["name"].lstrip("@").split(":", 1)[0]
        if not name or name.startswith("_"):
            problem = "a tag needs a name" if not name else "a tag name cannot start with '_'"
            raise ConfigError(f"tag {tag['name']!r}: {problem}, e.g. @smoke or @severity:critical",
                              path, tag["location"]["line"])
    for key in ("children", "scenario", "rule", "background", "examples"):
        if key in node:
            _check_tags(node[key], path)


def _gherkin_error(path: Path, exc: Exception) -> ConfigError:
    location = getattr(exc, "location", None) or {}
    message = str(exc)
    message = re.sub(r"^\(\d+:\d+\):\s*", "", message)
    if re.search(r"got '\s*Feature:", message):
        return ConfigError("a second Feature: line; a feature file holds one Feature (move this one to a file "
                           "of its own)", path, location.get("line"))
    return ConfigError(f"Gherkin syntax error: {message}", path, location.get("line"))


def discover(paths: list[Path]) -> list[Path]:
    """Feature files named by ``paths`` (files, or folders searched recursively), sorted, unique."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(path.rglob("*.feature")))
        elif path.is_file() and path.suffix == ".feature":
            found.append(path)
        elif path.exists():
            raise ConfigError("not a .feature file or a folder", path)
        else:
            raise ConfigError("no such file or folder", path)
    unique = list(dict.fromkeys(p.resolve() for p in found))
    return unique


TEMPLATE_NAME = "TEMPLATE.feature"  # the runbook template: copied for a new runbook, not itself a procedure


def is_template(path: Path) -> bool:
    return path.name == TEMPLATE_NAME


def runbook_files(paths: list[Path]) -> list[Path]:
    """:func:`discover` without a template found in a folder: it runs only when named as a file."""
    named = {p.resolve() for p in paths if p.is_file()}
    return [f for f in discover(paths) if not is_template(f) or f in named]
