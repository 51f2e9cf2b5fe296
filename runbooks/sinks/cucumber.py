"""Cucumber JSON: the report cucumber-ruby, cucumber-js and pytest-bdd's ``--cucumberjson`` write, and
Jenkins' cucumber-reports plugin reads. One feature per runbook, one element per scenario.

Step records do not carry what the feature file says about a feature or scenario (its name, line,
description, tags), so the sink captures that as each scenario begins. Records without it — read back
from ``results.json`` — still render, named by their runbook path.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..formatting import step_details
from ..result import CUCUMBER_STATUS, Outcome, StepRecord
from . import FileSink

if TYPE_CHECKING:
    from ..session import ScenarioProgress, Session


@dataclass(frozen=True)
class ScenarioSource:
    """What the feature file says about one scenario and its feature."""

    feature: str
    feature_line: int
    feature_description: str
    feature_tags: tuple[str, ...]  # without the "@", as pytest-bdd gives them
    line: int
    description: str
    tags: tuple[str, ...]
    feature_keyword: str = "Feature"
    keyword: str = "Scenario"

    @classmethod
    def of(cls, progress: ScenarioProgress) -> ScenarioSource:
        feature, scenario = progress.feature, progress.scenario
        return cls(
            feature=feature.name,
            feature_line=feature.line_number,
            feature_description=feature.description or "",
            feature_tags=tuple(sorted(feature.tags)),
            line=scenario.line_number,
            description=scenario.description or "",
            tags=tuple(sorted(scenario.tags)),
            feature_keyword=feature.keyword or "Feature",
            keyword=scenario.keyword or "Scenario",
        )


Key = tuple[str, str]  # (runbook, scenario name): exactly StepRecord.runbook and StepRecord.scenario


def cucumber_json(records: list[StepRecord], sources: Mapping[Key, ScenarioSource] | None = None) -> str:
    return json.dumps(cucumber_document(records, sources), indent=2) + "\n"


def cucumber_document(
    records: list[StepRecord], sources: Mapping[Key, ScenarioSource] | None = None
) -> list[dict[str, Any]]:
    """Features in the order their runbooks first appear, scenarios in the order they first appear."""
    sources = sources or {}
    by_runbook: dict[str, dict[str, list[StepRecord]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        by_runbook[record.runbook][record.scenario].append(record)
    return [_feature(runbook, scenarios, sources) for runbook, scenarios in by_runbook.items()]


def _feature(
    runbook: str, scenarios: dict[str, list[StepRecord]], sources: Mapping[Key, ScenarioSource]
) -> dict[str, Any]:
    # Any scenario of the runbook knows its feature; none does when the records came from results.json.
    known = next((sources[runbook, name] for name in scenarios if (runbook, name) in sources), None)
    feature_id = _slug(runbook)
    return {
        "uri": runbook,
        "id": feature_id,
        "keyword": known.feature_keyword if known else "Feature",
        "name": (known.feature if known else "") or runbook,
        "line": known.feature_line if known else 1,
        "description": known.feature_description if known else "",
        "tags": _tags(known.feature_tags, known.feature_line) if known else [],
        "elements": [
            _element(feature_id, runbook, name, items, sources.get((runbook, name)))
            for name, items in scenarios.items()
        ],
    }


def _element(feature_id: str, runbook: str, name: str, items: list[StepRecord],
             source: ScenarioSource | None) -> dict[str, Any]:
    if source is not None:
        line, description = source.line, source.description
        # Cucumber gives a scenario its feature's tags too, each at the line it is written on.
        tags = _tags(source.feature_tags, source.feature_line) + _tags(source.tags, source.line)
    else:
        line, description = items[0].line, ""  # the first step's line: the nearest known
        tags = _tags(tuple(items[0].tags), line)
    return {
        "id": f"{feature_id};{_slug(name)}",
        "keyword": source.keyword if source else "Scenario",
        "type": "scenario",
        "name": name,
        "line": line,
        "description": description,
        "tags": tags,
        "steps": [_step(runbook, record) for record in items],
    }


def _step(runbook: str, record: StepRecord) -> dict[str, Any]:
    result: dict[str, Any] = {
        "status": CUCUMBER_STATUS[record.outcome],
        "duration": round(record.duration_ms * 1_000_000),  # nanoseconds
    }
    message = step_message(record)
    if message:
        result["error_message"] = message
    return {
        "keyword": f"{record.keyword or '*'} ",
        "name": record.step,
        "line": record.line,
        "match": {"location": f"{runbook}:{record.line}"},
        "result": result,
    }


def step_message(record: StepRecord) -> str | None:
    """Why a step did not pass; None when it did. Cucumber knows no "could not check", so an ERROR
    says so in its first words (its status is "failed")."""
    if record.outcome is Outcome.PASS:
        return None
    if record.outcome is Outcome.ERROR:
        rest = step_details(replace(record, observed=""))  # resource, what to do, by hand
        return "\n".join([f"ERROR (could not check): {record.observed}", *rest])
    if record.outcome is Outcome.MANUAL:
        return "manual step: done by a person, never run"
    # FAIL: resource, expected, observed, fix; WAIVED: the waiver; SKIPPED: why it did not run.
    return "\n".join(step_details(record)) or record.observed or record.outcome.value


def _tags(names: tuple[str, ...], line: int) -> list[dict[str, Any]]:
    # pytest-bdd keeps no tag lines; tags are written on the line above what they tag.
    return [{"name": f"@{name}", "line": max(line - 1, 1)} for name in names]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_./-]+", "-", text.lower()).strip("-")


class CucumberJsonSink(FileSink):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.sources: dict[Key, ScenarioSource] = {}

    def on_scenario(self, session: Session, scenario: ScenarioProgress) -> None:
        self.sources[scenario.runbook, scenario.name] = ScenarioSource.of(scenario)

    def render(self, metadata: dict[str, Any], records: list[StepRecord]) -> str:
        return cucumber_json(records, self.sources)
