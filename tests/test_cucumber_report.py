"""Cucumber JSON: the format Jenkins' cucumber-reports plugin reads, from records built by hand."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any, cast

import pytest
from pytest_bdd.parser import Feature, FeatureParser

from runbooks.config import load_config
from runbooks.errors import UsageError
from runbooks.result import Outcome, StepRecord
from runbooks.session import Options, ScenarioProgress, Session
from runbooks.sinks.cucumber import CucumberJsonSink, ScenarioSource, cucumber_document, cucumber_json
from tests.conftest import write_config

RUNBOOK = "features/deployment/post_deploy.feature"
FEATURE = """\
    @owner:platform-team @severity:high
    Feature: Post-deploy validation
      What to check after every deploy.

      @integrity
      Scenario: Health
        Given the service "api" answers GET "{live_path}" with status 200 within 5000 ms
        Then the service "api" answers GET "{ready_path}" with status 200 within 5000 ms

      Scenario: Storage
        Then the bucket "logs" has versioning enabled
        And the bucket "audit" has versioning enabled
        * manual: tell the team in #deployments
    """
LIVE = 'the service "api" answers GET "/health/live" with status 200 within 5000 ms'
READY = 'the service "api" answers GET "/health/ready" with status 200 within 5000 ms'

FEATURE_KEYS = {"uri", "id", "keyword", "name", "line", "description", "tags", "elements"}
ELEMENT_KEYS = {"id", "keyword", "type", "name", "line", "description", "tags", "steps"}
STEP_KEYS = {"keyword", "name", "line", "match", "result"}
ENVIRONMENT = '[environments.test]\naws = { target = "moto", region = "eu-west-1" }\n'


@pytest.fixture
def feature(tmp_path: Path) -> Feature:
    (tmp_path / "features" / "deployment").mkdir(parents=True)
    (tmp_path / RUNBOOK).write_text(textwrap.dedent(FEATURE), encoding="utf-8")
    return FeatureParser(str(tmp_path), RUNBOOK).parse()


def progress(feature: Feature, name: str) -> ScenarioProgress:
    return ScenarioProgress(feature, feature.scenarios[name].render({}), RUNBOOK)


def record(scenario: str, step: str, outcome: Outcome, line: int, **kw: Any) -> StepRecord:
    return StepRecord(RUNBOOK, scenario, step, outcome, line=line, **kw)


def health_and_storage() -> list[StepRecord]:
    return [
        record("Health", LIVE, Outcome.PASS, 7, keyword="Given", duration_ms=12.5,
               written='the service "api" answers GET "{live_path}" with status 200 within 5000 ms'),
        record("Health", READY, Outcome.FAIL, 8, keyword="Then", duration_ms=3.25, resource="http://api/health/ready",
               expected="HTTP 200 within 5000 ms", observed="HTTP 503 in 4 ms", hint="look at the readiness probe"),
        record("Storage", 'the bucket "logs" has versioning enabled', Outcome.ERROR, 11, keyword="Then",
               resource="bucket logs", observed="AccessDenied (s3:GetBucketVersioning)", hint="grant the read role"),
        record("Storage", 'the bucket "audit" has versioning enabled', Outcome.SKIPPED, 12, keyword="And",
               observed="not run: an earlier step of this scenario did not pass"),
        record("Storage", "manual: tell the team in #deployments", Outcome.MANUAL, 13, keyword="*"),
    ]


def captured(feature: Feature) -> dict[tuple[str, str], ScenarioSource]:
    sink = CucumberJsonSink(Path("unused.json"))
    for name in ("Health", "Storage"):
        sink.on_scenario(cast(Session, None), progress(feature, name))
    return sink.sources


def test_the_document_is_json_with_every_mandatory_key(feature: Feature) -> None:
    document = json.loads(cucumber_json(health_and_storage(), captured(feature)))
    assert isinstance(document, list) and len(document) == 1
    for item in document:
        assert set(item) >= FEATURE_KEYS, item
        assert item["elements"]
        for element in item["elements"]:
            assert set(element) >= ELEMENT_KEYS, element
            assert element["steps"]
            for step in element["steps"]:
                assert set(step) >= STEP_KEYS, step
                assert {"status", "duration"} <= set(step["result"])
                assert isinstance(step["result"]["duration"], int)
                assert isinstance(step["line"], int) and step["line"] > 0


def test_feature_and_scenarios_as_written(feature: Feature) -> None:
    (doc,) = cucumber_document(health_and_storage(), captured(feature))
    assert (doc["uri"], doc["keyword"], doc["name"], doc["line"]) == (RUNBOOK, "Feature", "Post-deploy validation", 2)
    assert "What to check after every deploy." in doc["description"]
    assert doc["tags"] == [{"name": "@owner:platform-team", "line": 1}, {"name": "@severity:high", "line": 1}]
    health, storage = doc["elements"]
    assert (health["name"], health["line"], health["keyword"], health["type"]) == ("Health", 6, "Scenario", "scenario")
    assert (storage["name"], storage["line"]) == ("Storage", 10)
    assert health["id"] != storage["id"] and health["id"].startswith(doc["id"] + ";")
    # a scenario carries its feature's tags too, as Cucumber's own formatter writes them
    assert [t["name"] for t in health["tags"]] == ["@owner:platform-team", "@severity:high", "@integrity"]
    assert {"name": "@integrity", "line": 5} in health["tags"]
    assert "@integrity" not in [t["name"] for t in storage["tags"]]


def test_steps_have_resolved_names_keywords_and_locations(feature: Feature) -> None:
    (doc,) = cucumber_document(health_and_storage(), captured(feature))
    steps = [s for e in doc["elements"] for s in e["steps"]]
    assert [s["name"] for s in steps[:2]] == [LIVE, READY]  # the text that ran, not "{live_path}"
    assert [s["keyword"] for s in steps] == ["Given ", "Then ", "Then ", "And ", "* "]
    assert [s["line"] for s in steps] == [7, 8, 11, 12, 13]
    assert steps[0]["match"] == {"location": f"{RUNBOOK}:7"}


@pytest.mark.parametrize(
    ("outcome", "status"),
    [
        (Outcome.PASS, "passed"),
        (Outcome.FAIL, "failed"),
        (Outcome.ERROR, "failed"),
        (Outcome.MANUAL, "pending"),
        (Outcome.SKIPPED, "skipped"),
        (Outcome.WAIVED, "skipped"),
    ],
)
def test_every_outcome_has_a_cucumber_status(outcome: Outcome, status: str) -> None:
    (doc,) = cucumber_document([record("S", "a step", outcome, 3, observed="something")])
    (result,) = [s["result"] for s in doc["elements"][0]["steps"]]
    assert result["status"] == status
    assert ("error_message" in result) is (outcome is not Outcome.PASS)
    assert result.get("error_message", "x")  # never an empty message


def test_durations_are_whole_nanoseconds(feature: Feature) -> None:
    (doc,) = cucumber_document(health_and_storage(), captured(feature))
    assert [s["result"]["duration"] for s in doc["elements"][0]["steps"]] == [12_500_000, 3_250_000]


def test_failure_and_error_messages(feature: Feature) -> None:
    (doc,) = cucumber_document(health_and_storage(), captured(feature))
    failed = doc["elements"][0]["steps"][1]["result"]["error_message"]
    assert "expected: HTTP 200 within 5000 ms" in failed
    assert "observed: HTTP 503 in 4 ms" in failed
    assert "look at the readiness probe" in failed
    assert not failed.startswith("ERROR")
    error = doc["elements"][1]["steps"][0]["result"]["error_message"]
    assert error.startswith("ERROR (could not check): AccessDenied (s3:GetBucketVersioning)")
    assert "grant the read role" in error and "bucket logs" in error
    assert error.count("AccessDenied") == 1
    skipped = doc["elements"][1]["steps"][1]["result"]["error_message"]
    assert skipped == "not run: an earlier step of this scenario did not pass"


def test_one_element_per_scenario_in_order_of_first_appearance() -> None:
    records = [
        record("B", "b1", Outcome.PASS, 10),
        record("A", "a1", Outcome.PASS, 4),
        StepRecord("features/other.feature", "C", "c1", Outcome.PASS, line=2),
        record("B", "b2", Outcome.PASS, 11),
    ]
    first, second = cucumber_document(records)
    assert [e["name"] for e in first["elements"]] == ["B", "A"]
    assert [s["name"] for s in first["elements"][0]["steps"]] == ["b1", "b2"]
    assert second["uri"] == "features/other.feature"


def test_records_without_captured_scenarios_still_render() -> None:
    records = [record("From results.json", "a step", Outcome.PASS, 9, tags=["severity:low"], keyword="Then")]
    (doc,) = json.loads(cucumber_json(records))
    assert (doc["name"], doc["uri"], doc["keyword"]) == (RUNBOOK, RUNBOOK, "Feature")
    (element,) = doc["elements"]
    assert (element["name"], element["line"], element["type"]) == ("From results.json", 9, "scenario")
    assert element["tags"] == [{"name": "@severity:low", "line": 8}]


def test_a_region_run_is_its_own_scenario(feature: Feature) -> None:
    feature.tags.add("all-regions")
    sink = CucumberJsonSink(Path("unused.json"))
    for region in ("eu-west-1", "us-east-1"):
        p = ScenarioProgress(feature, feature.scenarios["Health"].render({}), RUNBOOK, region)
        sink.on_scenario(cast(Session, None), p)
    records = [record(f"Health [{r}]", LIVE, Outcome.PASS, 7) for r in ("eu-west-1", "us-east-1")]
    (doc,) = cucumber_document(records, sink.sources)
    assert [(e["name"], e["line"]) for e in doc["elements"]] == [("Health [eu-west-1]", 6), ("Health [us-east-1]", 6)]
    assert len({e["id"] for e in doc["elements"]}) == 2


def test_the_session_writes_it_through_the_sink(tmp_path: Path, feature: Feature) -> None:
    config = load_config(write_config(tmp_path, ENVIRONMENT))
    path = tmp_path / "out" / "cucumber.json"
    session = Session.from_options(config, config.environment("test"), Options(cucumber_json=path))
    assert any(isinstance(sink, CucumberJsonSink) for sink in session.sinks)
    session.start()
    for name in ("Health", "Storage"):
        session.scenario_started(progress(feature, name))
    for item in health_and_storage():
        session.record(item)
    session.stop()
    assert path in session.report_paths
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temporary file left behind
    (doc,) = json.loads(path.read_text(encoding="utf-8"))
    assert doc["name"] == "Post-deploy validation"
    assert [len(e["steps"]) for e in doc["elements"]] == [2, 3]
    assert doc["elements"][0]["steps"][1]["result"]["status"] == "failed"


def test_an_unwritable_destination_is_refused_up_front(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, ENVIRONMENT))
    (tmp_path / "a-file").write_text("")
    with pytest.raises(UsageError, match="--cucumber-json"):
        Session.from_options(config, config.environment("test"), Options(cucumber_json=tmp_path / "a-file" / "c.json"))
