"""One verification over several processes: `runbooks verify --shard K/N` parts merged by `runbooks merge`, and
`pytest -n` (pytest-xdist) through the plugin, tell the same story as one process — record by record, in the
same order, with the same JUnit, Cucumber JSON, history and drift. Parts that do not belong together are
refused in one line (exit 2)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from runbooks import shards
from runbooks.cli import main
from runbooks.history import History
from runbooks.result import Outcome, StepRecord
from runbooks.sinks import history as history_sink
from tests.support.status_service import StatusService
from tests.test_pipeline import project

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "runbooks.toml"

# What differs from run to run: generated ids and keys, ports, counts, times.
_VARIES = re.compile(r"(?:AKIA|ASIA)[0-9A-Z]{16}|[0-9a-f]{8}-[0-9a-f-]{27}|\d+(?:\.\d+)*")


def stable(value: Any) -> Any:
    if isinstance(value, str):
        return _VARIES.sub("N", value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return "N"
    if isinstance(value, dict):
        return {stable(k): stable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [stable(v) for v in value]
    return value


def stable_record(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v if k == "line" else stable(v) for k, v in record.items() if k != "duration_ms"}


def records(report_dir: Path) -> list[dict[str, Any]]:
    """results.json's records, in their order, without what differs from run to run."""
    return [stable_record(r) for r in json.loads((report_dir / "results.json").read_text())["results"]]


def junit(report_dir: Path) -> list[tuple[str, str, str]]:
    cases = []
    for case in ET.parse(report_dir / "junit.xml").getroot().iter("testcase"):
        status = next((child.tag for child in case if child.tag in ("failure", "error", "skipped")), "passed")
        cases.append((case.get("file", ""), case.get("name", ""), status))
    return cases


def cucumber(path: Path) -> Any:
    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k != "duration"}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return stable(node) if isinstance(node, str) else node

    return strip(json.loads(path.read_text()))


def one_line(err: str) -> str:
    assert len(err.strip().splitlines()) == 1, err
    return err.strip()


def drift_json(history: Path, capsys: pytest.CaptureFixture[str]) -> Any:
    capsys.readouterr()
    assert main(["drift", "--config", str(CONFIG), "--env", "sandbox-drifted", "--history", str(history),
                 "--json"]) == 0
    drift = json.loads(capsys.readouterr().out)
    return {name: [stable_record(r) for r in items] for name, items in drift.items()}


def copy_history(source: Path, target: Path) -> Path:
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{source}{suffix}").exists():
            shutil.copy(f"{source}{suffix}", f"{target}{suffix}")
    return target


def runs(history: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(history) as con:
        return con.execute("select id, status from runs order by started_at, rowid").fetchall()


def run_shards(verify: list[str], history: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
               baseline_id: str, scenarios: str = r"\d+") -> list[str]:
    """``verify --shard 1/3 .. 3/3`` against ``history`` into tmp_path/shard-K, each balanced by the durations of
    run ``baseline_id`` (of ``scenarios`` in all, a regex); the three report folders."""
    parts = []
    for k in (1, 2, 3):
        part = tmp_path / f"shard-{k}"
        assert main([*verify, "--shard", f"{k}/3", "--history", str(history), "--report-dir", str(part)]) in (0, 1)
        out = capsys.readouterr().out
        assert re.search(rf"^shard {k}/3: \d+ of {scenarios} scenario\(s\), balanced by the durations of run "
                         rf"{baseline_id} ", out, re.MULTILINE), out
        parts.append(str(part))
    return parts


# the drifted sandbox, three shards --------------------------------------------------------------------------
@pytest.mark.e2e
@pytest.mark.timeout(600)
def test_three_shards_merge_into_the_unsharded_run_with_its_reports_history_and_drift(tmp_path, capsys):
    verify = ["verify", "--config", str(CONFIG), "--env", "sandbox-drifted"]
    # A previous (partial) run in both histories: something to compare with, and durations to balance by.
    base = tmp_path / "base.sqlite"
    assert main([*verify, "--tags", "@severity:critical", "--history", str(base),
                 "--report-dir", str(tmp_path / "base")]) == 1
    single, sharded = copy_history(base, tmp_path / "single.sqlite"), copy_history(base, tmp_path / "sharded.sqlite")
    (baseline_id, _), = runs(base)

    one = tmp_path / "single"
    code = main([*verify, "--history", str(single), "--report-dir", str(one), "--cucumber-json",
                 str(one / "cucumber.json"), "--drift"])
    assert code == 1
    single_out = capsys.readouterr().out

    parts = run_shards(verify, sharded, tmp_path, capsys, baseline_id)
    assert [status for _, status in runs(sharded)] == ["finished"]  # a shard records nothing
    plans = {json.loads((Path(p) / "results.json").read_text())["run"]["shard"]["plan"] for p in parts}
    assert len(plans) == 1

    merged = tmp_path / "merged"
    assert main(["merge", *parts, "--config", str(CONFIG), "--history", str(sharded), "--report-dir", str(merged),
                 "--cucumber-json", str(merged / "cucumber.json"), "--drift"]) == code
    merge_out = capsys.readouterr().out
    assert merge_out.startswith("runbooks merge: 3 shard(s) of environment sandbox-drifted")

    # the same records, in the same order; the same JUnit and Cucumber JSON
    assert records(merged) == records(one)
    assert len(records(one)) > 300
    assert junit(merged) == junit(one)
    assert cucumber(merged / "cucumber.json") == cucumber(one / "cucumber.json")
    doc = json.loads((merged / "results.json").read_text())
    assert doc["run"]["exit_code"] == 1 and doc["run"]["status"] == "finished"
    assert doc["run"]["shard"] == {"merged": 3, "plan": plans.pop()}
    assert doc["runbooks"] == json.loads((one / "results.json").read_text())["runbooks"]

    # the history holds the merged run as one run, and the drift is the same
    assert [status for _, status in runs(sharded)] == ["finished", "finished"]
    assert doc["run"]["run_id"] == runs(sharded)[-1][0]
    history = History(sharded)
    assert [stable_record(r.to_json()) for r in history.records(doc["run"]["run_id"])] == records(one)
    history.close()
    assert drift_json(sharded, capsys) == drift_json(single, capsys)
    def drift_lines(out: str) -> list[str]:
        return [stable(line) for line in out[out.index("Drift for sandbox-drifted"):].splitlines()[1:]]

    assert drift_lines(merge_out) == drift_lines(single_out) and "checks added" in merge_out


# bad specs and parts that do not belong together ------------------------------------------------------------
@pytest.mark.parametrize("spec", ["0/3", "4/3", "x", "3/0", "1/", "-1/3"])
def test_a_bad_shard_spec_is_one_line_and_exit_2(spec, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["verify", "--config", str(CONFIG), "--env", "sandbox", f"--shard={spec}", "--report-dir",
              str(tmp_path)])
    assert exit_info.value.code == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith("runbooks: error: argument --shard: "), line
    assert not (tmp_path / "results.json").exists()


def test_shard_specs():
    assert shards.parse_shard("2/3") == shards.ShardSpec(2, 3)
    assert str(shards.parse_shard(" 1/1 ")) == "1/1"
    for bad, why in (("0/3", "between 1 and 3"), ("4/3", "between 1 and 3"), ("x", "not K/N"), ("2/0", "1 or more")):
        with pytest.raises(ValueError, match=why):
            shards.parse_shard(bad)


SCENARIOS = {f"check {n}": ("high", "/ok" if n % 3 else "/bad") for n in range(1, 8)}


@pytest.fixture
def small(tmp_path: Path, status_service: StatusService) -> Path:
    """A project of seven scenarios against a local HTTP service: every third one FAILs."""
    status_service.set("/ok")
    status_service.set("/bad", status=500)
    return project(tmp_path, status_service, SCENARIOS)


def _verify(config: Path, out: Path, *extra: str) -> int:
    return main(["verify", "--config", str(config), "--report-dir", str(out), "--no-history", *extra])


@pytest.mark.e2e
def test_mismatched_shards_are_refused_in_one_line(small, tmp_path, capsys):
    whole, s1, s2, t1 = (tmp_path / name for name in ("whole", "s1", "s2", "t1"))
    assert _verify(small, whole) == 1
    assert _verify(small, s1, "--shard", "1/2") in (0, 1)
    assert _verify(small, s2, "--shard", "2/2") in (0, 1)
    assert _verify(small, t1, "--shard", "1/3") in (0, 1)

    def altered(source: Path, name: str, **changes: Any) -> Path:
        doc = json.loads((source / "results.json").read_text())
        for key, value in changes.items():
            if key == "plan":
                doc["run"]["shard"]["plan"] = value
            else:
                doc["run"][key] = value
        target = tmp_path / name
        target.mkdir()
        (target / "results.json").write_text(json.dumps(doc))
        return target

    garbage = tmp_path / "garbage.json"
    garbage.write_text("[1, 2]")
    cases = {
        "missing shard 2/2": [s1],
        "shard 1/2 given twice": [s1, s1, s2],
        "shards from different environments": [s1, altered(s2, "env", environment="prod")],
        "shards from different commits": [s1, altered(s2, "commit", git_commit="0" * 40)],
        "shards of different shard counts": [s1, t1],
        "the shards planned different partitions": [s1, altered(s2, "plan", plan="000000000000")],
        "not the results of a shard": [whole, s1, s2],
        "not a runbooks results.json": [s1, garbage],
        "no results.json there": [s1, tmp_path / "nowhere"],
    }
    capsys.readouterr()
    for problem, dirs in cases.items():
        code = main(["merge", *map(str, dirs), "--config", str(small), "--no-history",
                     "--report-dir", str(tmp_path / "merged")])
        captured = capsys.readouterr()
        assert code == 2, (problem, captured)
        line = one_line(captured.err)
        assert line.startswith("runbooks: error: ") and problem in line, (problem, line)
        assert not (tmp_path / "merged" / "results.json").exists(), problem

    # the two that belong together merge into the whole run, exit code and all
    assert main(["merge", str(s2), str(s1), "--config", str(small), "--no-history",
                 "--report-dir", str(tmp_path / "merged")]) == 1
    assert records(tmp_path / "merged") == records(whole)
    assert junit(tmp_path / "merged") == junit(whole)
    # --fail-on decides the merged exit code from the merged records
    assert main(["merge", str(s1), str(s2), "--config", str(small), "--no-history", "--fail-on", "critical",
                 "--report-dir", str(tmp_path / "lenient")]) == 0


@pytest.mark.e2e
def test_more_shards_than_scenarios_leave_empty_shards_that_still_report(small, tmp_path, capsys):
    dirs = []
    for k in range(1, 10):
        out = tmp_path / f"s{k}"
        assert _verify(small, out, "--shard", f"{k}/9") in (0, 1)
        dirs.append(str(out))
    empty = json.loads((tmp_path / "s9" / "results.json").read_text())
    assert empty["results"] == [] and empty["run"]["exit_code"] == 0 and empty["run"]["shard"]["index"] == 9
    assert _verify(small, tmp_path / "whole") == 1
    assert main(["merge", *dirs, "--config", str(small), "--no-history", "--report-dir", str(tmp_path / "m")]) == 1
    assert records(tmp_path / "m") == records(tmp_path / "whole")


@pytest.mark.e2e
def test_drift_on_a_shard_is_refused(small, tmp_path, capsys):
    assert main(["verify", "--config", str(small), "--shard", "1/2", "--drift", "--report-dir", str(tmp_path)]) == 2
    assert "runbooks merge" in one_line(capsys.readouterr().err)


@pytest.mark.e2e
def test_plain_pytest_shards_merge_too(small, tmp_path):
    root = small.parent
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    dirs = []
    for k in (1, 2):
        out = tmp_path / f"p{k}"
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "features", "-p", "no:cacheprovider", "-q", "--runbooks-env", "ci",
             "--runbooks-shard", f"{k}/2", "--runbooks-report-dir", str(out)],
            cwd=root, env=environ, capture_output=True, text=True, timeout=240, check=False)
        assert proc.returncode in (0, 1), proc.stdout + proc.stderr
        dirs.append(str(out))
    assert not (root / ".runbooks").exists()  # a shard records no history
    assert _verify(small, tmp_path / "whole") == 1
    assert main(["merge", *dirs, "--config", str(small), "--no-history", "--report-dir", str(tmp_path / "m")]) == 1
    assert records(tmp_path / "m") == records(tmp_path / "whole")


# planning ------------------------------------------------------------------------------------------------
def test_the_plan_is_balanced_by_the_previous_durations_else_by_count():
    units = [shards.Unit(f"f::{n}", ("f", f"s{n}")) for n in range(6)]
    by_count = shards.plan(units, 3)
    assert by_count.shards == (1, 2, 3, 1, 2, 3) and by_count.balance == "scenario count"
    assert shards.plan(units, 3).digest == by_count.digest  # the same inputs, the same plan, anywhere

    # one long scenario gets a shard of its own; the others share the rest
    durations = shards.Durations("abc", {("f", "s0"): 9000.0, **{("f", f"s{n}"): 1000.0 for n in range(1, 6)}})
    timed = shards.plan(units, 3, durations)
    assert timed.balance == "the durations of run abc"
    assert timed.shards[0] == 1 and timed.shards.count(1) == 1
    assert sorted(timed.shards[1:].count(s) for s in (2, 3)) == [2, 3]
    assert timed.digest != by_count.digest

    # a scenario the previous run did not have counts as a typical one
    new = [*units, shards.Unit("f::new", ("f", "new"))]
    assert len(shards.plan(new, 3, durations).shards) == 7
    # more shards than scenarios: the last ones are empty, and say so
    log = shards.ShardLog(shards.ShardSpec(9, 9), shards.plan(units, 9))
    assert log.empty


def test_merge_orders_records_as_one_process_ran_them():
    def part(index: int, names: list[tuple[str, int]]) -> shards.Part:
        recs = [StepRecord("f.feature", name, "step", Outcome.PASS, line=line) for name, line in names]
        log = {"index": index, "count": 2, "plan": "p", "features": {},
               "scenarios": [{"runbook": "f.feature", "scenario": n, "position": {"a": 0, "b": 1, "c": 2}[n]}
                             for n in dict.fromkeys(n for n, _ in names)]}
        run = {"environment": "e", "git_commit": None, "status": "finished", "fail_on": "info", "exit_code": 0,
               "started_at": f"2024-01-01T00:00:0{index}+00:00", "finished_at": "2024-01-01T00:01:00+00:00",
               "aws_api_calls": index, "shard": log}
        return shards.Part(f"s{index}", run, recs)

    merged = shards.merge([part(2, [("b", 5), ("b", 6)]), part(1, [("a", 3), ("c", 9), ("c", 10)])])
    assert [(r.scenario, r.line) for r in merged.records] == [("a", 3), ("b", 5), ("b", 6), ("c", 9), ("c", 10)]
    assert merged.metadata["aws_api_calls"] == 3 and merged.metadata["started_at"].endswith("01+00:00")
    assert merged.exit_code == 0


# history: one commit per scenario, nothing left behind --------------------------------------------------------
def test_the_history_commits_each_scenario_at_once_and_a_long_one_soon(tmp_path, monkeypatch):
    monkeypatch.setattr(history_sink, "FLUSH_AFTER_S", 0.05)
    path = tmp_path / "h.sqlite"
    metadata = {"environment": "ci", "started_at": "2024-01-01T00:00:00+00:00"}
    session = SimpleNamespace(run_id=None, metadata=lambda: metadata, exit_code=lambda: 0, status="finished")
    sink = history_sink.HistorySink(path)
    sink.on_start(session)  # type: ignore[arg-type]

    def committed() -> int:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as con:
            return int(con.execute("select count(*) from results").fetchone()[0])

    record = StepRecord("f.feature", "s", "step", Outcome.PASS)
    monkeypatch.setattr(history_sink, "FLUSH_AFTER_S", 60)  # a scenario of quick steps: one commit at its end
    sink.on_record(session, record)  # type: ignore[arg-type]
    sink.on_record(session, record)  # type: ignore[arg-type]
    assert committed() == 0
    sink.on_scenario_end(session, None)  # type: ignore[arg-type]
    assert committed() == 2

    monkeypatch.setattr(history_sink, "FLUSH_AFTER_S", 0.05)  # a step that takes long: what came before is kept
    sink.on_record(session, record)  # type: ignore[arg-type]
    deadline = time.monotonic() + 10
    while committed() < 3:
        assert time.monotonic() < deadline, "the pending record was never committed"
        time.sleep(0.02)
    sink.on_record(session, record)  # type: ignore[arg-type]
    sink.on_finish(session)  # type: ignore[arg-type]
    assert committed() == 4
    assert [s for _, s in runs(path)] == ["finished"]


# pytest-xdist ------------------------------------------------------------------------------------------------
def _pytest(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "features", "-p", "no:cacheprovider", "-q", "--runbooks-env",
         "sandbox-drifted", "--runbooks-report-dir", str(out), "--runbooks-no-history",
         "--cucumberjson", str(out / "cucumber.json"), *extra],
        cwd=REPO, env=environ, capture_output=True, text=True, timeout=400, check=False,
    )


@pytest.mark.e2e
@pytest.mark.timeout(600)
@pytest.mark.skipif(importlib.util.find_spec("xdist") is None,
                    reason="pytest-xdist is not installed (pip install pytest-xdist)")
def test_pytest_n_writes_the_reports_of_a_serial_run(tmp_path):
    serial, parallel = _pytest(tmp_path / "serial"), _pytest(tmp_path / "parallel", "-n", "2")
    assert serial.returncode == parallel.returncode == 1, parallel.stdout[-3000:] + parallel.stderr[-3000:]
    assert records(tmp_path / "parallel") == records(tmp_path / "serial")
    assert junit(tmp_path / "parallel") == junit(tmp_path / "serial")
    assert cucumber(tmp_path / "parallel" / "cucumber.json") == cucumber(tmp_path / "serial" / "cucumber.json")
    summary = re.compile(r"\d+ failed, \d+ passed, \d+ skipped")
    assert summary.search(serial.stdout).group() == summary.search(parallel.stdout).group()  # type: ignore[union-attr]
    assert "shard" not in json.loads((tmp_path / "parallel" / "results.json").read_text())["run"]
