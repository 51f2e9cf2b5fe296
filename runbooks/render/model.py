"""The site ``runbooks render`` writes, as data: built once from the feature files and a run's results, then
walked by the HTML and the Markdown writers. Text here is raw; each writer escapes it for its own format."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from ..config import VARIABLE, Config, Environment
from ..features import ScenarioDoc, StepDoc, discover, is_template, parse_feature, render_outline, sections
from ..formatting import coverage, severity_rank
from ..lint import DEFAULT_MAX_AGE
from ..preflight import display_path
from ..redact import Redactor
from ..result import Outcome, StepRecord
from .trends import HistoryView, ProcedureRun, TrendPoint

SEVERITY_ORDER = ("critical", "high", "medium", "low", "info")
# The seeds' taxonomy of the library (docs/runbook-library.md): the group of each folder of features/.
TAXONOMY = {
    "onboarding": "onboarding", "release": "development", "deployment": "deployment", "promotion": "deployment",
    "operations": "operations", "monitoring": "operations", "scaling": "operations", "database": "operations",
    "incident_response": "incident response", "troubleshooting": "incident response", "rollback": "recovery",
    "backup_recovery": "recovery",
}
TAXONOMY_ORDER = ("onboarding", "development", "deployment", "operations", "incident response", "recovery")


def taxonomy_group(category: str) -> str:
    """The taxonomy group of a folder of features/ ("other" for a folder the taxonomy does not name)."""
    return TAXONOMY.get(category, "other")

# Which outcome a step or scenario shows when it ran several times (background, outline rows).
_RANK = {Outcome.FAIL: 0, Outcome.ERROR: 1, Outcome.WAIVED: 2, Outcome.PASS: 3, Outcome.SKIPPED: 4, Outcome.MANUAL: 5}
_CODE = re.compile(r"`([^`]+)`")
_LIST_ITEM = re.compile(r"^([-*]|\d+[.)])\s+")
# Evidence of a failure worth repeating in the summary at the top of a page.
_SUMMARY_LABELS = ("observed", "fix", "could not check", "what to do")


@dataclass
class Results:
    """A ``results.json`` as read: the input the outcomes come from."""

    path: Path
    run: dict[str, Any]
    records: list[StepRecord]

    @property
    def environment(self) -> str:
        return str(self.run.get("environment") or "?")


@dataclass(frozen=True)
class Run:
    """The verification run the outcomes come from, as the pages describe it."""

    file: str  # results.json
    environment: str
    where: str  # sandbox-drifted (moto, eu-west-1)
    when: str  # 2026-03-01 10:00 UTC
    commit: str  # its first 10 characters, or ''


@dataclass
class Block:
    kind: str  # "p", "ul" or "ol"
    items: list[str]  # one paragraph, or the list's items; prose with the author's `code` spans


@dataclass(frozen=True)
class Section:
    heading: str  # as written; '' for the text before the first ``Heading:``
    blocks: list[Block]


@dataclass(frozen=True)
class Evidence:
    """What one run of a step found."""

    scenario: str
    step: str  # the text as it ran
    rows: list[tuple[str, str]]  # (label, value), never empty


@dataclass(frozen=True)
class Step:
    keyword: str  # '' for '*'
    text: str  # as it runs; a human step's without its 'manual:' prefix
    line: int
    human: bool  # a `manual:` step, performed by a person
    manual_command: str
    defined: bool
    outcome: Outcome | None  # the worst of its runs; None when it did not run
    runs: int
    runs_note: str  # 'error in 1 of 2 runs' when its runs disagree
    evidence: list[Evidence]


@dataclass(frozen=True)
class Scenario:
    name: str
    line: int
    tags: list[str]
    description: list[Section]
    steps: list[Step]
    outcome: Outcome | None


@dataclass(frozen=True)
class Problem:
    """A step that failed or could not be checked, for the summary at the top of a page."""

    outcome: Outcome
    keyword: str
    step: str
    scenario: str
    observed: str
    line: int | None  # of the checklist item it is shown under
    why: list[tuple[str, str]]  # (label, value): evidence, then the scenario's resolution
    severity: str = "unrated"  # of its scenario (or runbook)


@dataclass(frozen=True)
class Runbook:
    title: str
    source: str  # features/deployment/post_deploy_validation.feature
    page: str  # deployment/post_deploy_validation (without .html / .md)
    category: str
    severity: str
    owner: str
    reviewed: str
    tags: list[str]
    description: list[Section]
    background: list[Step]
    scenarios: list[Scenario]
    coverage: tuple[int, int]  # (automated steps, all steps)
    ran: bool  # the run has results for it
    outcome: Outcome | None
    counts: list[tuple[Outcome, int]]  # steps per outcome, worst first
    problems: list[Problem]
    template: bool = False  # TEMPLATE.feature: shown apart, never run by `runbooks verify` unless named
    stale: str = ""  # why its review is overdue ('' when it is not)
    trend: list[TrendPoint] = field(default_factory=list)  # its last runs in the history, oldest first
    last_verified: TrendPoint | None = None  # the latest run that verified all of it
    procedures: list[ProcedureRun] = field(default_factory=list)  # guided runs of it (`runbooks run`)
    search: list[tuple[int, str]] = field(default_factory=list)  # (line, keyword and text) of every step

    @property
    def up(self) -> str:
        """The relative path from its page back to the site's root."""
        return "../" * self.page.count("/")


@dataclass(frozen=True)
class Mention:
    """Where a path that prose may name is shown: a runbook's page or a category of the index."""

    page: str = ""
    category: str = ""


@dataclass(frozen=True)
class Group:
    name: str
    runbooks: list[Runbook]  # by title


@dataclass(frozen=True)
class Site:
    runbooks: list[Runbook]  # in the order of the feature files, the template included
    run: Run | None  # None when rendered without results
    categories: list[Group]  # without the template
    views: list[tuple[str, list[Group]]]  # ("By taxonomy", groups), ("By severity", groups), ("By owner", ...)
    mentions: dict[str, Mention]  # features/ops/other.feature, features/ops/ -> where it is shown
    history: HistoryView | None = None  # None when rendered without a history
    max_age: int = DEFAULT_MAX_AGE  # days before a review is overdue (lint's --max-age)

    @property
    def failing(self) -> list[Runbook]:
        """Runbooks with failing steps: the most severe failure first, then the most failures."""
        failing = [rb for rb in self.runbooks if rb.problems and not rb.template]
        return sorted(failing, key=lambda rb: (min(severity_rank(p.severity) for p in rb.problems), -len(rb.problems),
                                               rb.title))

    @property
    def templates(self) -> list[Runbook]:
        return [rb for rb in self.runbooks if rb.template]

    @property
    def procedures(self) -> list[ProcedureRun]:
        return self.history.procedures if self.history else []


# Building ----------------------------------------------------------------------------------------------------
def build(config: Config, paths: list[Path], results: Results | None, history: HistoryView | None = None, *,
          max_age: int = DEFAULT_MAX_AGE, today: date | None = None) -> Site:
    from ..registry import load_step_modules

    load_step_modules(config)
    env = config.environments.get(results.environment) if results else None
    by_runbook: dict[str, list[StepRecord]] = defaultdict(list)
    for record in results.records if results else []:
        by_runbook[record.runbook].append(record)
    today = today or date.today()
    runbooks = [_runbook(config, path, env, by_runbook, history, max_age, today) for path in discover(paths)]
    features = display_path(config.features, config.root)
    mentions = {rb.source: Mention(page=rb.page) for rb in runbooks}
    mentions |= {f"{features}/{rb.category}/": Mention(category=rb.category) for rb in runbooks if not rb.template}
    listed = [rb for rb in runbooks if not rb.template]
    views = [("By taxonomy", groups(listed, lambda rb: taxonomy_group(rb.category), TAXONOMY_ORDER)),
             ("By severity", groups(listed, lambda rb: rb.severity, SEVERITY_ORDER)),
             ("By owner", groups(listed, lambda rb: rb.owner))]
    return Site(runbooks, _run(results) if results else None, groups(listed, lambda rb: rb.category), views,
                mentions, history, max_age)


def _run(results: Results) -> Run:
    run = results.run
    stamp = run.get("finished_at") or run.get("started_at")
    try:
        when = datetime.fromisoformat(str(stamp)).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        when = str(stamp or "an unknown time")
    target = ", ".join(str(run[k]) for k in ("target", "region") if run.get(k))
    where = results.environment + (f" ({target})" if target else "")
    return Run(results.path.name, results.environment, where, when, str(run.get("git_commit") or "")[:10])


def groups(runbooks: list[Runbook], key: Callable[[Runbook], str], order: tuple[str, ...] = ()) -> list[Group]:
    """Runbooks grouped by ``key``: the groups named in ``order`` first, then the rest by name."""
    found: dict[str, list[Runbook]] = defaultdict(list)
    for rb in runbooks:
        found[key(rb)].append(rb)
    rank = {name: i for i, name in enumerate(order)}
    return [Group(name, sorted(found[name], key=lambda rb: rb.title))
            for name in sorted(found, key=lambda n: (rank.get(n, len(rank)), n))]


def _runbook(config: Config, path: Path, env: Environment | None, by_runbook: dict[str, list[StepRecord]],
             history: HistoryView | None, max_age: int, today: date) -> Runbook:
    doc = parse_feature(path)
    source = display_path(path, config.root)
    try:
        relative = path.resolve().relative_to(config.features.resolve())
    except ValueError:
        relative = Path(source)
    category = relative.parts[0] if len(relative.parts) > 1 else "general"
    page = str(relative.with_suffix("")) if len(relative.parts) > 1 else f"general/{relative.stem}"
    records = by_runbook.get(source, [])
    matching = _matcher(records, env)
    background_matched = [(s, [r for sc in doc.scenarios for r in matching(sc, s)]) for s in doc.background]
    matched = [[(s, matching(sc, s)) for s in sc.steps] for sc in doc.scenarios]
    background = [_step(s, env, rs) for s, rs in background_matched]
    scenarios = []
    automated = total = 0  # counted like a run: the background once per scenario, outlines once per row
    for sc, pairs in zip(doc.scenarios, matched, strict=True):
        steps = [_step(s, env, rs) for s, rs in pairs]
        rows = max(len(sc.examples), 1)
        total += rows * (len(background) + len(steps))
        automated += rows * sum(not v.human for v in background + steps)
        scenarios.append(Scenario(sc.name, sc.line, [t.name for t in sc.tags], description_sections(sc.description),
                                  steps, worst([r for r in records if r.scenario == sc.name])))
    anchors = {id(r): s.line for s, rs in background_matched + [p for ps in matched for p in ps] for r in rs}
    template = is_template(path)
    reviewed = doc.tag_value("reviewed") or "never"
    severity = doc.tag_value("severity") or "unrated"
    search = [(s.line, f"{s.keyword} {s.text}".strip()) for s in background + [s for sc in scenarios for s in sc.steps]]
    return Runbook(
        title=doc.name or source, source=source, page=page, category=category,
        severity=severity, owner=doc.tag_value("owner") or "unowned",
        reviewed=reviewed, tags=[t.name for t in doc.tags],
        description=description_sections(doc.description), background=background, scenarios=scenarios,
        coverage=coverage(records) if records else (automated, total), ran=bool(records), outcome=worst(records),
        counts=outcome_counts(records), problems=_problems(records, doc.scenarios, anchors, severity),
        template=template, stale="" if template else review_overdue(reviewed, max_age, today),
        trend=history.trend(source) if history else [],
        last_verified=history.last_verified(source, {sc.name for sc in doc.scenarios}) if history else None,
        procedures=history.procedures_of(source) if history else [], search=search,
    )


def review_overdue(reviewed: str, max_age: int, today: date) -> str:
    """Why a runbook's ``@reviewed:`` date is overdue (lint's rule and age), or '' when it is not."""
    try:
        when = date.fromisoformat(reviewed)
    except ValueError:
        return "never reviewed (no valid @reviewed: date)"
    age = (today - when).days
    return f"review overdue: last reviewed {age} days ago (more than {max_age})" if age > max_age else ""


def _matcher(records: list[StepRecord], env: Environment | None) -> Callable[[ScenarioDoc, StepDoc], list[StepRecord]]:
    at_line: dict[tuple[str, int], list[StepRecord]] = defaultdict(list)
    by_text: dict[tuple[str, str], list[StepRecord]] = defaultdict(list)
    for record in records:
        at_line[(record.scenario, record.line)].append(record)
        by_text[(record.scenario, record.step)].append(record)

    def matching(scenario: ScenarioDoc, step: StepDoc) -> list[StepRecord]:
        """The step's records: by line, unless the feature changed since the run (then by text)."""
        here = at_line[(scenario.name, step.line)]
        if scenario.examples or env is None:  # outline rows / unresolved variables: the text cannot be compared
            return here
        text = resolve(step.text, env)
        return [r for r in here if r.step == text] or by_text[(scenario.name, text)]

    return matching


def _step(step: StepDoc, env: Environment | None, records: list[StepRecord]) -> Step:
    from ..registry import MANUAL_PREFIX, find

    text = resolve(step.text, env)
    found = find(render_outline(step.text, {}))
    command = ""
    if found:
        definition, args = found
        command = definition.manual_command({k: resolve(v, env) for k, v in args.items()})
    human = text.startswith(MANUAL_PREFIX)
    outcome = worst(records)
    return Step(
        keyword=step_keyword(step.keyword), text=text.split(":", 1)[1].strip() if human else text, line=step.line,
        human=human, manual_command=command, defined=found is not None, outcome=outcome, runs=len(records),
        runs_note=_runs_note(records, outcome), evidence=_evidence(records),
    )


def _evidence(records: list[StepRecord]) -> list[Evidence]:
    # A step skipped in one of several runs says nothing the other runs do not.
    shown = [r for r in records if r.outcome is not Outcome.SKIPPED or len(records) == 1]
    return [Evidence(r.scenario, r.step, rows) for r in shown if (rows := evidence(r))]


def _runs_note(records: list[StepRecord], outcome: Outcome | None) -> str:
    """'failed in 1 of 6 runs' when a background or outline step ran several times with mixed outcomes."""
    if len(records) < 2 or len({r.outcome for r in records}) < 2:
        return ""
    bad = sum(1 for r in records if r.outcome is outcome)
    return f"{outcome_word(outcome).lower()} in {bad} of {len(records)} runs"


def _problems(records: list[StepRecord], scenarios: list[ScenarioDoc], anchors: dict[int, int],
              severity: str = "unrated") -> list[Problem]:
    resolutions: dict[str, str] = {}
    for sc in scenarios:  # the first scenario of a name, as a record names its scenario
        resolutions.setdefault(sc.name, (sections(sc.description).get("resolution") or ("",))[0])
    problems = []
    for r in records:
        if r.outcome not in (Outcome.FAIL, Outcome.ERROR):
            continue
        why = [(k, v) for k, v in evidence(r) if k in _SUMMARY_LABELS]
        if resolutions.get(r.scenario):
            why.append(("resolution (from the runbook)", resolutions[r.scenario]))
        problems.append(Problem(r.outcome, step_keyword(r.keyword), r.step, r.scenario, r.observed,
                                anchors.get(id(r)), why, r.severity if r.severity != "unrated" else severity))
    return problems


def step_keyword(keyword: str) -> str:
    return "" if keyword == "*" else keyword  # '*' is a bullet, not a word to read


def resolve(value: Any, env: Environment | None) -> Any:
    """Fill ``{variables}`` from the environment; without one they stay ``{name}`` for the reader to fill.
    Variables the environment declares secret always stay ``{name}``: the site is published, so credentials
    written in a step (``?token=...``, ``https://user:password@``) are masked as in the run's records."""
    if not isinstance(value, str):
        return value
    if env is not None:
        public = {k: v for k, v in env.vars.items() if k not in env.secrets}
        value = VARIABLE.sub(lambda m: public.get(m.group(1), m.group(0)), value)
    return Redactor().text(value)


# Outcomes and the words for them (both formats) ---------------------------------------------------------------
def worst(records: list[StepRecord]) -> Outcome | None:
    return min((r.outcome for r in records), key=_RANK.__getitem__, default=None)


def outcome_counts(records: list[StepRecord]) -> list[tuple[Outcome, int]]:
    return [(o, n) for o in sorted(_RANK, key=_RANK.__getitem__) if (n := sum(r.outcome is o for r in records))]


def evidence(record: StepRecord) -> list[tuple[str, str]]:
    if record.outcome is Outcome.FAIL:
        rows = [("expected", record.expected), ("observed", record.observed), ("fix", record.hint),
                ("resource", record.resource)]
    elif record.outcome is Outcome.ERROR:
        rows = [("could not check", record.observed), ("what to do", record.hint), ("resource", record.resource)]
    elif record.outcome is Outcome.WAIVED:
        rows = [("observed", record.observed), ("waiver", record.hint)]
    elif record.outcome is Outcome.SKIPPED:
        rows = [("why", record.observed)]
    else:
        return []
    return [(label, value) for label, value in rows if value]


def outcome_word(outcome: Outcome | None) -> str:
    return outcome.value.upper() if outcome else "NOT RUN"


def percent(done: int, total: int) -> str:
    return f"{done} of {total} steps automated ({round(100 * done / total) if total else 0}%)"


# Descriptions ------------------------------------------------------------------------------------------------
def description_sections(description: str) -> list[Section]:
    """``Heading:`` paragraphs, each as paragraphs and lists; text before the first heading has heading ''."""
    lines = description.splitlines()
    starts = sorted(offset for _, offset in sections(description).values())
    found: list[Section] = []
    if lines and (not starts or starts[0] > 0):
        found.append(Section("", blocks(lines[: starts[0] if starts else len(lines)])))
    for i, start in enumerate(starts):
        heading, _, rest = lines[start].partition(":")
        end = starts[i + 1] if i + 1 < len(starts) else len(lines)
        found.append(Section(heading.strip(), blocks([rest.strip()] + lines[start + 1 : end])))
    return found


def blocks(lines: list[str]) -> list[Block]:
    """Body lines as paragraphs and lists ('- ', '* ' or '1. ' items); a blank line ends either."""
    out: list[Block] = []
    kind = None
    for raw in lines:
        text = raw.strip()
        item = _LIST_ITEM.match(text)
        if not text:
            kind = None
        elif item:
            new_kind = "ol" if item.group(1)[0].isdigit() else "ul"
            if kind != new_kind:
                out.append(Block(new_kind, []))
            kind = new_kind
            out[-1].items.append(text[item.end():].strip())
        elif kind is not None:  # continuation of the paragraph or of the last list item
            out[-1].items[-1] += " " + text
        else:
            out.append(Block("p", [text]))
            kind = "p"
    return out


def code_spans(text: str) -> list[tuple[str, bool]]:
    """Prose as (text, is code) pieces: the author's `code` spans, without their backquotes."""
    return [(part, i % 2 == 1) for i, part in enumerate(_CODE.split(text))]
