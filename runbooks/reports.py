"""Machine-readable reports of a run: ``results.json`` and JUnit XML, both from the step records."""

from __future__ import annotations

import json
import os
import tempfile
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path
from typing import Any

from .formatting import counts, coverage, failure_message, step_line
from .result import SEVERITIES, Outcome, ScenarioOutcome, StepRecord, at_or_above, exit_code, scenario_outcome

__all__ = ["SEVERITIES", "at_or_above", "exit_code"]

SCHEMA_VERSION = 1


def results_document(metadata: dict[str, Any], records: list[StepRecord]) -> dict[str, Any]:
    by_runbook: dict[str, list[StepRecord]] = defaultdict(list)
    for record in records:
        by_runbook[record.runbook].append(record)
    runbooks = []
    for runbook, items in by_runbook.items():
        automated, total = coverage(items)
        runbooks.append(
            {
                "runbook": runbook,
                "steps": total,
                "automated_steps": automated,
                "automation_coverage": round(automated / total, 3) if total else 0.0,
                "counts": dict(counts(items)),
            }
        )
    return {
        "schema_version": SCHEMA_VERSION,
        "run": {
            **metadata,
            "exit_code": metadata.get("exit_code", exit_code(records, metadata.get("fail_on", "info"))),
            "counts": dict(counts(records)),
        },
        "runbooks": runbooks,
        "results": [r.to_json() for r in records],
    }


def write_atomic(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a reader never sees half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_results_json(path: Path, metadata: dict[str, Any], records: list[StepRecord]) -> None:
    write_atomic(path, json.dumps(results_document(metadata, records), indent=2) + "\n")


def read_results_json(path: Path) -> tuple[dict[str, Any], list[StepRecord]]:
    """The run and records of a results.json; ValueError saying what is wrong with any other JSON file."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("run"), dict) or not isinstance(data.get("results"), list):
        raise ValueError("expected an object with a \"run\" object and a \"results\" list")
    records = []
    for number, raw in enumerate(data["results"]):
        texts = ("runbook", "scenario", "step", "outcome")
        if not isinstance(raw, dict) or not all(isinstance(raw.get(key), str) for key in texts):
            raise ValueError(f"results[{number}] is not a step record ({', '.join(texts)} as strings)")
        try:
            records.append(StepRecord.from_json(raw))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"results[{number}] is not a step record: {exc}") from None
    return data["run"], records


def junit_xml(metadata: dict[str, Any], records: list[StepRecord]) -> str:
    """One <testsuite> per runbook, one <testcase> per scenario: FAIL -> <failure>, ERROR only -> <error>."""
    suites = ET.Element("testsuites", name=f"runbooks verify --env {metadata.get('environment')}")
    by_runbook: dict[str, dict[str, list[StepRecord]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        by_runbook[record.runbook][record.scenario].append(record)
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    total_time = 0.0
    for runbook, scenarios in by_runbook.items():
        suite = ET.SubElement(suites, "testsuite", name=runbook)
        if metadata.get("started_at"):
            suite.set("timestamp", str(metadata["started_at"]))
        properties = ET.SubElement(suite, "properties")
        for key in ("environment", "target", "git_commit", "tool_version"):
            ET.SubElement(properties, "property", name=key, value=str(metadata.get(key) or ""))
        stats = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        suite_time = 0.0
        for scenario, items in scenarios.items():
            seconds = sum(r.duration_ms for r in items) / 1000
            suite_time += seconds
            # Records carry step lines only: the first step's line is the nearest to the scenario's own.
            case = ET.SubElement(
                suite, "testcase", classname=junit_classname(runbook), name=scenario, file=runbook,
                line=str(items[0].line), time=f"{seconds:.3f}",
            )
            stats["tests"] += 1
            outcome = scenario_outcome(items)
            if outcome is ScenarioOutcome.FAILED:
                stats["failures"] += 1
                bad = [r for r in items if r.outcome is Outcome.FAIL]
                node = ET.SubElement(case, "failure", message=_first_line(bad), type="fail")
                node.text = failure_message(items)
            elif outcome is ScenarioOutcome.ERROR:
                stats["errors"] += 1
                bad = [r for r in items if r.outcome is Outcome.ERROR]
                node = ET.SubElement(case, "error", message=_first_line(bad), type="error")
                node.text = failure_message(items)
            elif outcome is ScenarioOutcome.SKIPPED:
                stats["skipped"] += 1
                ET.SubElement(case, "skipped", message="no automated step ran")
            ET.SubElement(case, "system-out").text = "\n".join(step_line(r) for r in items)
        for key, value in stats.items():
            suite.set(key, str(value))
            totals[key] += value
        suite.set("time", f"{suite_time:.3f}")
        total_time += suite_time
    for key, value in totals.items():
        suites.set(key, str(value))
    suites.set("time", f"{total_time:.3f}")
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def junit_classname(runbook: str) -> str:
    """``features/deployment/post_deploy.feature`` -> ``features.deployment.post_deploy``.

    CI servers (Jenkins, GitLab) split a classname at its dots into package and class, so a dot may
    only separate path components.
    """
    parts = runbook.removesuffix(".feature").replace("\\", "/").split("/")
    return ".".join(part.replace(".", "_") for part in parts if part)


def _first_line(records: list[StepRecord]) -> str:
    r = records[0]
    text = f"{r.step}: expected {r.expected}, observed {r.observed}" if r.expected else f"{r.step}: {r.observed}"
    return text if len(records) == 1 else f"{text} (+{len(records) - 1} more)"


def write_reports(report_dir: Path, metadata: dict[str, Any], records: list[StepRecord]) -> list[Path]:
    results = report_dir / "results.json"
    junit = report_dir / "junit.xml"
    write_results_json(results, metadata, records)
    write_atomic(junit, junit_xml(metadata, records))
    return [junit, results]
