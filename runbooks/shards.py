"""One verification split over several processes, and put back together as one run.

``runbooks verify --shard K/N`` (``pytest --runbooks-shard K/N``) runs the K-th of N parts. The unit of work
is a scenario as pytest runs it: its test identity (node id), so a scenario run per region (``@all-regions``)
is one unit per region. Every shard plans the same partition from the same inputs (the collected scenarios in
collection order and, when there is a history, the durations of the environment's previous run; else one unit
counts one), so the shards need not talk to each other. The plan's digest travels in each shard's
``results.json`` (``run.shard``) with what merging needs: each scenario's place in the whole run and what its
feature file says (for Cucumber JSON). :func:`merge` checks that the parts belong together and gives the run
as one process would have recorded it: the records in the order of an unsharded run, the exit code decided
from them. pytest-xdist workers send their part the same way (:mod:`runbooks.pytest_plugin`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import UsageError
from .result import RunStatus, StepRecord, exit_code
from .sinks.cucumber import Key, ScenarioSource

if TYPE_CHECKING:
    from .session import ScenarioProgress

_SPEC = re.compile(r"(\d+)/(\d+)")
_FEATURE_FIELDS = ("feature", "feature_line", "feature_description", "feature_tags", "feature_keyword")


@dataclass(frozen=True)
class ShardSpec:
    """The K-th of N shards (1 <= K <= N)."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> ShardSpec:
    """``"2/3"`` -> ShardSpec(2, 3); ValueError in one line for anything else (``0/3``, ``4/3``, ``x``)."""
    match = _SPEC.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not K/N (e.g. 2/3: the second of three shards)")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1:
        raise ValueError(f"{text!r}: N (the number of shards) must be 1 or more")
    if not 1 <= index <= count:
        raise ValueError(f"{text!r}: K must be between 1 and {count} (shards are numbered from 1)")
    return ShardSpec(index, count)


def shard_option(text: str) -> ShardSpec:
    """``--shard`` / ``--runbooks-shard``: a bad value is argparse's one-line usage error (exit 2)."""
    import argparse

    try:
        return parse_shard(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


@dataclass(frozen=True)
class Sharding:
    """This process runs one shard: which, and where the previous run's durations are read (None: by count)."""

    spec: ShardSpec
    history: Path | None = None
    announce: bool = False  # say the shard's share on stdout (`runbooks verify`)


# planning ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Unit:
    """One scenario as pytest runs it."""

    test_id: str  # its pytest node id: the identity every shard sees the same
    key: Key | None  # (runbook, scenario) as its records name them: how the history knows its duration


@dataclass(frozen=True)
class Durations:
    """How long each scenario of a previous run took (ms), by (runbook, scenario)."""

    run_id: str
    by_scenario: dict[Key, float]


@dataclass(frozen=True)
class Plan:
    count: int
    shards: tuple[int, ...]  # per unit, in collection order: the shard (1..count) that runs it
    balance: str  # how it was balanced, said to the operator
    digest: str  # the same on every shard of one run: merge refuses parts planned differently

    def selects(self, index: int) -> list[bool]:
        return [shard == index for shard in self.shards]


PER_SCENARIO_MS = 5.0  # what a scenario costs beyond its steps (pytest, pytest-bdd): no unit is free


def plan(units: Sequence[Unit], count: int, durations: Durations | None = None) -> Plan:
    """Longest first, each to the least loaded shard (ties: the lower shard, then collection order) - with
    every unit counted as one when there are no durations. Deterministic: the same units and durations give
    the same plan on every machine."""
    known = durations.by_scenario if durations is not None else {}
    measured = sorted(known[u.key] for u in units if u.key in known)
    cost = [1.0] * len(units)
    balance = "scenario count"
    if durations is not None and measured:
        typical = measured[len(measured) // 2]  # a scenario the previous run did not have: the median
        cost = [known.get(u.key, typical) if u.key is not None else typical for u in units]
        cost = [c + PER_SCENARIO_MS for c in cost]
        balance = f"the durations of run {durations.run_id}"
    loads = [0.0] * count
    shards = [0] * len(units)
    for position in sorted(range(len(units)), key=lambda n: (-cost[n], n)):
        lightest = min(range(count), key=lambda s: (loads[s], s))
        loads[lightest] += cost[position]
        shards[position] = lightest + 1
    text = "\n".join(f"{u.test_id}\t{s}" for u, s in zip(units, shards, strict=True))
    digest = hashlib.sha256(f"{count}\n{text}".encode()).hexdigest()[:12]
    return Plan(count, tuple(shards), balance, digest)


def load_durations(history: Path | None, environment: str) -> Durations | None:
    """The durations of the environment's latest finished run in ``history``; None without one."""
    if history is None:
        return None
    from .history import previous_durations

    found = previous_durations(history, environment)
    return Durations(found[0], durations_of(found[1])) if found else None


def durations_of(records: Iterable[StepRecord]) -> dict[Key, float]:
    """Each scenario's time: the sum of its steps' durations."""
    out: dict[Key, float] = {}
    for record in records:
        key = (record.runbook, record.scenario)
        out[key] = out.get(key, 0.0) + record.duration_ms
    return out


# what a part carries for merging ----------------------------------------------------------------------
@dataclass
class ShardLog:
    """What a shard (or an xdist worker) records beside its step records so that its part can be merged:
    each scenario's place in the whole run and what its feature file says. ``run.shard`` in results.json."""

    spec: ShardSpec | None = None
    plan: Plan | None = None
    worker: str | None = None  # an xdist worker's id (gw0, ...)
    scenarios: dict[Key, tuple[int | None, ScenarioSource]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """A shard the plan gave nothing (more shards than scenarios): it still reports, so merge sees it ran."""
        return bool(self.plan and self.spec and self.plan.shards and self.spec.index not in self.plan.shards)

    def started(self, progress: ScenarioProgress, position: int | None) -> None:
        self.scenarios[progress.runbook, progress.name] = (position, ScenarioSource.of(progress))

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.spec is not None:
            data |= {"index": self.spec.index, "count": self.spec.count}
        if self.plan is not None:
            data |= {"plan": self.plan.digest, "balance": self.plan.balance}
        if self.worker is not None:
            data["worker"] = self.worker
        features: dict[str, dict[str, Any]] = {}
        scenarios = []
        for (runbook, name), (position, source) in self.scenarios.items():
            fields = asdict(source)
            features.setdefault(runbook, {k: fields[k] for k in _FEATURE_FIELDS})
            own = {k: v for k, v in fields.items() if k not in _FEATURE_FIELDS}
            scenarios.append({"runbook": runbook, "scenario": name, "position": position, **own})
        return data | {"features": features, "scenarios": scenarios}


def scenarios_of(shard: dict[str, Any]) -> tuple[dict[Key, int], dict[Key, ScenarioSource]]:
    """A part's ``run.shard``: each scenario's place in the whole run, and its feature file's words."""
    positions: dict[Key, int] = {}
    sources: dict[Key, ScenarioSource] = {}
    features = shard.get("features") or {}
    for entry in shard.get("scenarios") or []:
        key = (entry["runbook"], entry["scenario"])
        if isinstance(entry.get("position"), int):
            positions[key] = entry["position"]
        feature = features.get(entry["runbook"])
        if feature is not None:
            own = {k: v for k, v in entry.items() if k in ScenarioSource.__dataclass_fields__}
            both: dict[str, Any] = {**feature, **own}
            fields: dict[str, Any] = {k: tuple(v) if k.endswith("tags") else v for k, v in both.items()}
            sources[key] = ScenarioSource(**fields)
    return positions, sources


# merging ---------------------------------------------------------------------------------------------
@dataclass
class Part:
    """One shard's (or worker's) run metadata and records, and where they came from."""

    origin: str
    run: dict[str, Any]
    records: list[StepRecord]

    @property
    def shard(self) -> dict[str, Any]:
        value = self.run.get("shard")
        return value if isinstance(value, dict) else {}


@dataclass
class MergedRun:
    metadata: dict[str, Any]
    records: list[StepRecord]
    sources: dict[Key, ScenarioSource]

    @property
    def exit_code(self) -> int:
        return int(self.metadata["exit_code"])


def check_shards(parts: list[Part]) -> None:
    """The parts are every shard of one planned run: same environment, commit, shard count and plan, each
    shard once. Anything else is a :class:`UsageError` in one line (exit 2)."""
    if not parts:
        raise UsageError("no shard results to merge")
    for part in parts:
        if not isinstance(part.shard.get("index"), int) or not isinstance(part.shard.get("count"), int):
            raise UsageError(f"{part.origin}: not the results of a shard (its run has no shard K/N; "
                             "run `runbooks verify --shard K/N`)")
    first = parts[0]
    for name, label in (("environment", "environments"), ("git_commit", "commits")):
        values = {part.run.get(name) for part in parts}
        if len(values) > 1:
            seen = ", ".join(f"{p.origin}: {p.run.get(name) or 'none'}" for p in parts)
            raise UsageError(f"shards from different {label} cannot be merged ({seen})")
    counts = {part.shard["count"] for part in parts}
    if len(counts) > 1:
        raise UsageError("shards of different shard counts cannot be merged ("
                         + ", ".join(f"{p.origin}: {p.shard['index']}/{p.shard['count']}" for p in parts) + ")")
    count = first.shard["count"]
    by_index: dict[int, Part] = {}
    for part in parts:
        index = part.shard["index"]
        if index in by_index:
            raise UsageError(f"shard {index}/{count} given twice ({by_index[index].origin} and {part.origin})")
        by_index[index] = part
    missing = [f"{n}/{count}" for n in range(1, count + 1) if n not in by_index]
    if missing:
        raise UsageError(f"missing shard{'s' if len(missing) > 1 else ''} {', '.join(missing)}: "
                         f"a merged run needs all {count}")
    plans = {part.shard.get("plan") for part in parts}
    if len(plans) > 1:
        raise UsageError("the shards planned different partitions (" + ", ".join(
            f"{p.shard['index']}/{count}: {p.shard.get('plan')} by {p.shard.get('balance')}" for p in parts)
            + "): give every shard the same history, or none (--no-history)")


STATUS_PRECEDENCE = (RunStatus.ABORTED, RunStatus.INTERRUPTED, RunStatus.FAILED)


def merge(parts: list[Part], fail_on: str | None = None, shards: bool = True) -> MergedRun:
    """The parts as one run. The records in the order one process would have run them (each scenario's place
    in the whole run, then its steps in order; a scenario without a place after the others, by runbook,
    scenario and line); the status the worst of theirs; the exit code decided once, from the merged records
    at ``fail_on`` (default: the parts' own, which must agree)."""
    if shards:
        check_shards(parts)
        parts = sorted(parts, key=lambda p: int(p.shard["index"]))
    levels = {part.run.get("fail_on", "info") for part in parts}
    if fail_on is None:
        if len(levels) > 1:
            raise UsageError(f"the parts ran with different --fail-on ({', '.join(sorted(levels))}): "
                             "give the merged run's own --fail-on")
        fail_on = levels.pop() if levels else "info"
    positions: dict[Key, int] = {}
    sources: dict[Key, ScenarioSource] = {}
    for part in parts:
        placed, known = scenarios_of(part.shard)
        positions |= placed
        sources |= known
    unplaced = 1 + max(positions.values(), default=0)
    tagged = [(positions.get((r.runbook, r.scenario), unplaced), n, p, r)
              for p, part in enumerate(parts) for n, r in enumerate(part.records)]
    tagged.sort(key=lambda t: (t[0], (t[3].runbook, t[3].scenario, t[3].line) if t[0] == unplaced else (), t[2], t[1]))
    records = [r for *_, r in tagged]

    statuses = {part.run.get("status") for part in parts}
    status = next((s for s in STATUS_PRECEDENCE if s.value in statuses), RunStatus.FINISHED)
    if status is RunStatus.ABORTED:
        code = 2
    elif status is RunStatus.INTERRUPTED:
        code = next(int(p.run["exit_code"]) for p in parts if p.run.get("status") == status.value)
    elif status is RunStatus.FAILED:
        code = 3
    else:
        code = exit_code(records, fail_on)
    first = parts[0]
    started = [str(p.run["started_at"]) for p in parts if p.run.get("started_at")]
    finished = [str(p.run["finished_at"]) for p in parts if p.run.get("finished_at")]
    metadata = {key: value for key, value in first.run.items() if key not in ("counts", "shard")}
    metadata |= {
        "run_id": None,
        "status": status.value,
        "fail_on": fail_on,
        "exit_code": code,
        "started_at": min(started) if started else first.run.get("started_at"),
        "finished_at": max(finished) if finished else first.run.get("finished_at"),
        "aws_api_calls": sum(int(p.run.get("aws_api_calls") or 0) for p in parts),
    }
    if shards:
        metadata["shard"] = {"merged": len(parts), "plan": first.shard.get("plan")}
    elif "index" in first.shard:  # xdist workers of one shard: together they are that shard's part
        metadata["shard"] = {k: v for k, v in first.shard.items() if k not in ("worker", "features", "scenarios")}
        metadata["shard"]["features"] = {k: v for p in parts for k, v in (p.shard.get("features") or {}).items()}
        metadata["shard"]["scenarios"] = [entry for p in parts for entry in p.shard.get("scenarios") or []]
    return MergedRun(metadata, records, sources)


def read_part(path: Path) -> Part:
    """A shard's results.json (or the report folder holding it); UsageError in one line when it is not one."""
    from .reports import read_results_json

    file = path / "results.json" if path.is_dir() else path
    try:
        run, records = read_results_json(file)
    except FileNotFoundError:
        raise UsageError(f"{path}: no results.json there (did that shard run?)") from None
    except OSError as exc:
        raise UsageError(f"{file}: cannot read it ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise UsageError(f"{file}: not a runbooks results.json ({exc})") from None
    return Part(str(path), run, records)
