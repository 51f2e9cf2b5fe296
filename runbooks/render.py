"""``runbooks render``: the runbooks as a static site to read during an incident.

Plain HTML with the stylesheet inlined (``templates/render.css``; no JavaScript, no build step) and the
same pages as Markdown: an index by category, severity and owner, and one page per runbook with its
description, every step as a checklist item with the command to check it by hand and, given a
``results.json``, each step's last outcome with the evidence and a summary of the failures at the top.
"""

from __future__ import annotations

import argparse
import functools
import html
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.resources import files as package_files
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .config import VARIABLE, Config, Environment, load_config
from .features import FeatureDoc, ScenarioDoc, StepDoc, discover, parse_feature, render_outline, sections
from .formatting import coverage
from .preflight import display_path
from .reports import read_results_json
from .result import Outcome, StepRecord

SEVERITY_ORDER = ("critical", "high", "medium", "low", "info")
# Which outcome a step or scenario shows when it ran several times (background, outline rows).
_RANK = {Outcome.FAIL: 0, Outcome.ERROR: 1, Outcome.WAIVED: 2, Outcome.PASS: 3, Outcome.SKIPPED: 4, Outcome.MANUAL: 5}
_CODE = re.compile(r"`([^`]+)`")
_LIST_ITEM = re.compile(r"^([-*]|\d+[.)])\s+")
_RUNBOOK_PATH = re.compile(r"(?<![\w/])features/[\w./-]*[\w/]")


# The model: a runbook with its steps and their records ---------------------------------------------------
@dataclass
class StepView:
    keyword: str
    text: str  # as it runs: variables resolved when the environment is known
    line: int
    manual_command: str
    human: bool  # a `manual:` step, performed by a person
    defined: bool
    records: list[StepRecord] = field(default_factory=list)

    @property
    def outcome(self) -> Outcome | None:
        return worst(self.records)


@dataclass
class ScenarioView:
    name: str
    line: int
    tags: list[str]
    description: str
    steps: list[StepView]
    records: list[StepRecord]


@dataclass
class RunbookView:
    doc: FeatureDoc
    source: str  # features/deployment/post_deploy_validation.feature
    page: str  # deployment/post_deploy_validation (without .html / .md)
    category: str
    background: list[StepView]
    scenarios: list[ScenarioView]
    records: list[StepRecord]
    static_steps: tuple[int, int]  # (automated, all) counted from the feature when there are no records
    anchors: dict[int, int]  # id(record) -> line of the step it is shown under

    @property
    def title(self) -> str:
        return self.doc.name or self.source

    @property
    def severity(self) -> str:
        return self.doc.tag_value("severity") or "unrated"

    @property
    def owner(self) -> str:
        return self.doc.tag_value("owner") or "unowned"

    @property
    def reviewed(self) -> str:
        return self.doc.tag_value("reviewed") or "never"

    @property
    def coverage(self) -> tuple[int, int]:
        return coverage(self.records) if self.records else self.static_steps

    @property
    def problems(self) -> list[StepRecord]:
        return [r for r in self.records if r.outcome in (Outcome.FAIL, Outcome.ERROR)]

    def depth_prefix(self) -> str:
        return "../" * self.page.count("/")


@dataclass
class Results:
    path: Path
    run: dict[str, Any]
    records: list[StepRecord]

    @property
    def environment(self) -> str:
        return str(self.run.get("environment") or "?")

    def when(self) -> str:
        stamp = self.run.get("finished_at") or self.run.get("started_at")
        try:
            return datetime.fromisoformat(str(stamp)).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        except ValueError:
            return str(stamp or "an unknown time")

    def where(self) -> str:
        target = ", ".join(str(self.run[k]) for k in ("target", "region") if self.run.get(k))
        return f"{self.environment}" + (f" ({target})" if target else "")

    def commit(self) -> str:
        commit = str(self.run.get("git_commit") or "")[:10]
        return f" (commit {commit})" if commit else ""


def worst(records: list[StepRecord]) -> Outcome | None:
    return min((r.outcome for r in records), key=_RANK.__getitem__, default=None)


def build(config: Config, paths: list[Path], results: Results | None) -> list[RunbookView]:
    from .registry import load_step_modules

    load_step_modules()
    env = config.environments.get(results.environment) if results else None
    by_runbook: dict[str, list[StepRecord]] = defaultdict(list)
    for record in results.records if results else []:
        by_runbook[record.runbook].append(record)
    return [_runbook(config, path, env, by_runbook) for path in discover(paths)]


def _runbook(config: Config, path: Path, env: Environment | None, by_runbook: dict[str, list[StepRecord]]
             ) -> RunbookView:
    doc = parse_feature(path)
    source = display_path(path, config.root)
    try:
        relative = path.resolve().relative_to(config.features.resolve())
    except ValueError:
        relative = Path(source)
    category = relative.parts[0] if len(relative.parts) > 1 else "general"
    page = str(relative.with_suffix("")) if len(relative.parts) > 1 else f"general/{relative.stem}"
    records = by_runbook.get(source, [])
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

    background = [_step(s, env, [r for sc in doc.scenarios for r in matching(sc, s)]) for s in doc.background]
    scenarios = []
    automated = total = 0  # counted like a run: the background once per scenario, outlines once per row
    for sc in doc.scenarios:
        steps = [_step(s, env, matching(sc, s)) for s in sc.steps]
        rows = max(len(sc.examples), 1)
        total += rows * (len(background) + len(steps))
        automated += rows * sum(not v.human for v in background + steps)
        scenario_records = [r for r in records if r.scenario == sc.name]
        scenarios.append(ScenarioView(sc.name, sc.line, [t.name for t in sc.tags], sc.description, steps,
                                      scenario_records))
    anchors = {id(r): v.line for v in background + [v for sc in scenarios for v in sc.steps] for r in v.records}
    return RunbookView(doc, source, page, category, background, scenarios, records, (automated, total), anchors)


def _step(step: StepDoc, env: Environment | None, records: list[StepRecord]) -> StepView:
    from .registry import MANUAL_PREFIX, find

    text = resolve(step.text, env)
    found = find(render_outline(step.text, {}))
    command = ""
    if found:
        definition, args = found
        command = definition.manual_command({k: resolve(v, env) for k, v in args.items()})
    human = text.startswith(MANUAL_PREFIX)
    return StepView(step_keyword(step.keyword), text, step.line, command, human, found is not None, records)


def step_keyword(keyword: str) -> str:
    return "" if keyword == "*" else keyword  # '*' is a bullet, not a word to read


def resolve(value: Any, env: Environment | None) -> Any:
    """Fill ``{variables}`` from the environment; without one they stay ``{name}`` for the reader to fill.
    Variables the environment declares secret always stay ``{name}``: the site is published."""
    if env is None or not isinstance(value, str):
        return value
    public = {k: v for k, v in env.vars.items() if k not in env.secrets}
    return VARIABLE.sub(lambda m: public.get(m.group(1), m.group(0)), value)


# Shared text helpers (both formats) ---------------------------------------------------------------------------
def description_blocks(description: str) -> list[tuple[str, list[str]]]:
    """``Heading:`` paragraphs as (heading as written, body lines); text before the first heading has heading ''."""
    lines = description.splitlines()
    starts = sorted(offset for _, offset in sections(description).values())
    blocks: list[tuple[str, list[str]]] = []
    if lines and (not starts or starts[0] > 0):
        blocks.append(("", lines[: starts[0] if starts else len(lines)]))
    for i, start in enumerate(starts):
        heading, _, rest = lines[start].partition(":")
        end = starts[i + 1] if i + 1 < len(starts) else len(lines)
        blocks.append((heading.strip(), [rest.strip()] + lines[start + 1 : end]))
    return blocks


def paragraphs(lines: list[str]) -> list[tuple[str, list[str]]]:
    """Body lines as ("p", [text]) paragraphs and ("ul"/"ol", [items]) lists ('- ', '* ' or '1. ' items)."""
    out: list[tuple[str, list[str]]] = []
    kind = None
    for raw in lines:
        text = raw.strip()
        item = _LIST_ITEM.match(text)
        if not text:
            kind = None
        elif item:
            new_kind = "ol" if item.group(1)[0].isdigit() else "ul"
            if kind != new_kind:
                out.append((new_kind, []))
            kind = new_kind
            out[-1][1].append(text[item.end():].strip())
        elif kind is not None:  # continuation of the paragraph or of the last list item
            out[-1][1][-1] += " " + text
        else:
            out.append(("p", [text]))
            kind = "p"
    return out


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


def outcome_counts(records: list[StepRecord]) -> list[tuple[Outcome, int]]:
    """How many steps ended in each outcome, worst first."""
    return [(o, n) for o in sorted(_RANK, key=_RANK.__getitem__) if (n := sum(r.outcome is o for r in records))]


def percent(done: int, total: int) -> str:
    return f"{done} of {total} steps automated ({round(100 * done / total) if total else 0}%)"


def runs_note(step: StepView) -> str:
    """'failed in 1 of 6 runs' when a background or outline step ran several times with mixed outcomes."""
    outcomes = {r.outcome for r in step.records}
    if len(step.records) < 2 or len(outcomes) < 2:
        return ""
    bad = sum(1 for r in step.records if r.outcome is step.outcome)
    return f"{outcome_word(step.outcome).lower()} in {bad} of {len(step.records)} runs"


def by_key(views: list[RunbookView], key: str, order: tuple[str, ...] = ()) -> list[tuple[str, list[RunbookView]]]:
    groups: dict[str, list[RunbookView]] = defaultdict(list)
    for view in views:
        groups[getattr(view, key)].append(view)
    rank = {name: i for i, name in enumerate(order)}
    return [(name, sorted(groups[name], key=lambda v: v.title))
            for name in sorted(groups, key=lambda n: (rank.get(n, len(rank)), n))]


def scenario_resolution(view: RunbookView, scenario: str) -> str:
    for sc in view.scenarios:
        if sc.name == scenario:
            return (sections(sc.description).get("resolution") or ("",))[0]
    return ""


# HTML --------------------------------------------------------------------------------------------------------
def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def url(path: str) -> str:
    """A relative link to a generated page, safe in an attribute and in a Markdown link."""
    return esc(quote(path))


def inline_html(text: str, links: dict[str, str]) -> str:
    """Escaped text with `code` spans and links to the pages of runbooks it names."""
    out = _CODE.sub(lambda m: f"<code>{m.group(1)}</code>", esc(text))

    def link(match: re.Match[str]) -> str:
        path = match.group(0)
        target = links.get(path.rstrip("/")) or links.get(path.rstrip("/") + "/")
        return f'<a href="{esc(target)}">{path}</a>' if target else path

    return _RUNBOOK_PATH.sub(link, out)


def badge(outcome: Outcome | None) -> str:
    return f'<span class="badge {outcome.value if outcome else "none"}">{outcome_word(outcome)}</span>'


@functools.cache
def stylesheet() -> str:
    return package_files("runbooks").joinpath("templates/render.css").read_text(encoding="utf-8")


def page_html(title: str, body: str) -> str:
    css = stylesheet()
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>\n{css}</style>\n</head>\n<body>\n<main>\n{body}\n</main>\n"
        "</body>\n</html>\n"
    )


def blocks_html(description: str, links: dict[str, str], heading: str = "h2") -> str:
    out = []
    for name, lines in description_blocks(description):
        out.append(f'<section class="section" id="{slug(name)}">' if name else '<section class="section">')
        if name:
            out.append(f"<{heading}>{esc(name)}</{heading}>")
        out.append(body_html(lines, links))
        out.append("</section>")
    return "\n".join(out)


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def body_html(lines: list[str], links: dict[str, str]) -> str:
    out = []
    for kind, items in paragraphs(lines):
        if kind == "p":
            out.append(f"<p>{inline_html(items[0], links)}</p>")
        else:
            out.append(f"<{kind}>" + "".join(f"<li>{inline_html(i, links)}</li>" for i in items) + f"</{kind}>")
    return "".join(out)


def step_html(step: StepView, results: Results | None, show_scenario: bool) -> str:
    classes = ["step"] + ([step.outcome.value] if step.outcome else []) + (["human"] if step.human else [])
    text = esc(step.text)
    if step.human:
        text = '<span class="human-label">HUMAN STEP</span>' + esc(step.text.split(":", 1)[1].strip())
    parts = [
        f'<li class="{" ".join(classes)}" id="line-{step.line}">',
        '<span class="box" role="checkbox" aria-checked="false"></span>',
        badge(step.outcome) if results else "<span></span>",
        f'<div><span class="kw">{esc(step.keyword)}</span> {text}</div>',
    ]
    if step.manual_command:
        parts.append(f'<div class="cmd">by hand: <code>{esc(step.manual_command)}</code></div>')
    elif not step.defined:
        parts.append('<div class="cmd undefined">undefined step: no step definition matches '
                     "(see <code>runbooks steps</code>)</div>")
    note = runs_note(step)
    if note:
        parts.append(f'<div class="runs">{esc(note)}</div>')
    for record in step.records:
        rows = evidence(record) if record.outcome is not Outcome.SKIPPED or len(step.records) == 1 else []
        if not rows:
            continue
        parts.append('<dl class="evidence">')
        if show_scenario or len(step.records) > 1:
            parts.append(f'<dt class="in">in “{esc(record.scenario)}”: {esc(record.step)}</dt>')
        parts += [f"<dt>{esc(label)}</dt><dd>{esc(value)}</dd>" for label, value in rows]
        parts.append("</dl>")
    parts.append("</li>")
    return "\n".join(parts)


def summary_html(view: RunbookView, results: Results | None) -> str:
    done, total = view.coverage
    if results is None:
        return ('<p class="note">Not verified here (render with <code>--results</code>). '
                f"{esc(percent(done, total))}.</p>")
    if not view.records:
        return (f'<section class="summary none"><h2>Not part of this verification run</h2>'
                f"<p>{esc(results.path.name)} has no results for this runbook ({esc(results.environment)}).</p>"
                "</section>")
    verified = (f"<p>Verified in <b>{esc(results.where())}</b> at {esc(results.when())}{esc(results.commit())}. "
                f"{esc(percent(done, total))}.</p><p>{counts_html(view.records)}</p>")
    problems = view.problems
    if not problems:
        return f'<section class="summary"><h2>All automated checks passed</h2>{verified}</section>'
    fails = sum(1 for r in problems if r.outcome is Outcome.FAIL)
    errors = len(problems) - fails
    title = ", ".join(t for t in (f"{fails} failed" if fails else "", f"{errors} could not be checked" if errors
                                  else "") if t)
    kind = "fail" if fails else "error"
    items = []
    for record in problems:
        rows = [(k, v) for k, v in evidence(record) if k in ("observed", "fix", "could not check", "what to do")]
        resolution = scenario_resolution(view, record.scenario)
        if resolution:
            rows.append(("resolution (from the runbook)", resolution))
        text = f"{esc(step_keyword(record.keyword))} {esc(record.step)}"
        line = view.anchors.get(id(record))
        items.append(
            f"<li>{badge(record.outcome)} " + (f'<a href="#line-{line}">{text}</a>' if line else text)
            + f' <span class="in">in “{esc(record.scenario)}”</span>'
            + "".join(f'<span class="why"><b>{esc(label)}:</b> {esc(value)}</span>' for label, value in rows)
            + "</li>"
        )
    return (f'<section class="summary {kind}"><h2>{len(problems)} step(s) need attention: {esc(title)}</h2>'
            f"{verified}<ol>{''.join(items)}</ol></section>")


def counts_html(records: list[StepRecord]) -> str:
    return " ".join(f'<span class="badge {o.value}">{n} {outcome_word(o)}</span>' for o, n in outcome_counts(records))


def runbook_html(view: RunbookView, results: Results | None, links: dict[str, str]) -> str:
    up = view.depth_prefix()
    links = {path: up + target for path, target in links.items()}
    doc = view.doc
    tags = "".join(f'<span class="tag">@{esc(t.name)}</span>' for t in doc.tags)
    toc = [f'<a href="#{slug(name)}">{esc(name)}</a>'
           for name, _ in description_blocks(doc.description) if name] + ['<a href="#procedure">Procedure</a>']
    out = [
        f'<nav class="crumbs"><a href="{up}index.html">All runbooks</a> › '
        f'<a href="{up}index.html#category-{esc(view.category)}">{esc(view.category)}</a></nav>',
        f"<h1>{esc(view.title)}</h1>",
        f'<p class="meta"><span class="sev sev-{esc(view.severity)}">{esc(view.severity)}</span> '
        f"owner <b>{esc(view.owner)}</b> · reviewed {esc(view.reviewed)} · <code>{esc(view.source)}</code></p>",
        f'<p class="tags">{tags}</p>',
        summary_html(view, results),
        f'<nav class="toc">{" ".join(toc)}</nav>',
        blocks_html(doc.description, links),
        '<h2 id="procedure">Procedure</h2>',
    ]
    if view.background:
        out.append('<h3 id="background">Background: the first steps of every scenario</h3>')
        out.append('<ul class="checklist">' + "".join(step_html(s, results, True) for s in view.background) + "</ul>")
    for sc in view.scenarios:
        head = (badge(worst(sc.records)) + " ") if results else ""
        out.append(f'<h3 id="scenario-{sc.line}">{head}Scenario: {esc(sc.name)}</h3>')
        scenario_tags = [t for t in sc.tags if t != "troubleshooting"]
        if scenario_tags:
            out.append('<p class="tags">' + "".join(f'<span class="tag">@{esc(t)}</span>' for t in scenario_tags)
                       + "</p>")
        out.append(troubleshooting_html(sc.description, links))
        out.append('<ul class="checklist">' + "".join(step_html(s, results, False) for s in sc.steps) + "</ul>")
    out.append(f"<footer>Rendered by <code>runbooks render</code> from <code>{esc(view.source)}</code>"
               + (f" and <code>{esc(results.path.name)}</code>" if results else "") + ".</footer>")
    return page_html(view.title, "\n".join(out))


def troubleshooting_html(description: str, links: dict[str, str]) -> str:
    """A scenario's description: Symptom / Root cause / Resolution as a compact definition list."""
    rows = []
    for name, lines in description_blocks(description):
        rows.append(f"<dt>{esc(name or 'Note')}</dt><dd>{body_html(lines, links)}</dd>")
    return f'<dl class="troubleshooting">{"".join(rows)}</dl>' if rows else ""


def index_html(views: list[RunbookView], results: Results | None) -> str:
    out = ["<h1>Runbooks</h1>"]
    note = f"{len(views)} runbook(s)."
    if results:
        failing = [v for v in views if v.problems]
        note += f" Last verification: <b>{esc(results.where())}</b> at {esc(results.when())}."
        if failing:
            out.append('<section class="summary fail"><h2>Runbooks with failing steps</h2><ol>' + "".join(
                f'<li><a href="{url(v.page)}.html">{esc(v.title)}</a> — {len(v.problems)} step(s): '
                + ", ".join(sorted({outcome_word(r.outcome) for r in v.problems})) + "</li>" for v in failing
            ) + "</ol></section>")
    out.append(f'<p class="note">{note}</p>')
    categories = by_key(views, "category")
    out.append('<nav class="toc">' + " ".join(
        f'<a href="#category-{esc(c)}">{esc(c)}</a>' for c, _ in categories
    ) + ' <a href="#by-severity">By severity</a> <a href="#by-owner">By owner</a></nav>')
    for category, items in categories:
        out.append(f'<h2 id="category-{esc(category)}">{esc(category)}</h2>')
        head = "<tr><th>Runbook</th><th>Severity</th><th>Owner</th><th>Reviewed</th><th>Coverage</th>"
        out.append("<table>" + head + ("<th>Last result</th>" if results else "") + "</tr>")
        for v in items:
            done, total = v.coverage
            out.append(
                f'<tr><td><a href="{url(v.page)}.html">{esc(v.title)}</a></td>'
                f'<td><span class="sev sev-{esc(v.severity)}">{esc(v.severity)}</span></td>'
                f"<td>{esc(v.owner)}</td><td>{esc(v.reviewed)}</td><td>{done}/{total}</td>"
                + (f"<td>{badge(worst(v.records)) if v.records else badge(None)}</td>" if results else "")
                + "</tr>"
            )
        out.append("</table>")
    out.append('<div class="views">')
    for anchor, title, key, order in (("by-severity", "By severity", "severity", SEVERITY_ORDER),
                                      ("by-owner", "By owner", "owner", ())):
        out.append(f'<section><h2 id="{anchor}">{title}</h2>')
        for name, items in by_key(views, key, order):
            out.append(f"<h3>{esc(name)}</h3><ul>" + "".join(
                f'<li><a href="{url(v.page)}.html">{esc(v.title)}</a></li>' for v in items) + "</ul>")
        out.append("</section>")
    out.append("</div>")
    return page_html("Runbooks", "\n".join(out))


# Markdown ------------------------------------------------------------------------------------------------------
def md(text: str) -> str:
    """Text for Markdown outside code spans: no raw HTML, no accidental emphasis from '*'."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("*", r"\*")


def md_cell(text: str) -> str:
    return md(text).replace("|", "&#124;")


def md_inline(text: str) -> str:
    """Like :func:`md` but keeps the author's `code` spans as they are."""
    parts = _CODE.split(text)
    return "".join(f"`{p}`" if i % 2 else md(p) for i, p in enumerate(parts))


def md_code(text: str) -> str:
    fence = "``" if "`" in text else "`"
    return f"{fence}{text}{fence}" if fence == "`" else f"{fence} {text} {fence}"


def md_outcome(outcome: Outcome | None) -> str:
    return f"**{outcome_word(outcome)}**"


def runbook_md(view: RunbookView, results: Results | None) -> str:
    done, total = view.coverage
    out = [
        f"[All runbooks]({view.depth_prefix()}index.md) › {md(view.category)}",
        "",
        f"# {md(view.title)}",
        "",
        f"Severity **{md(view.severity)}** · owner **{md(view.owner)}** · reviewed {md(view.reviewed)} · "
        f"{md_code(view.source)}",
        "",
        "Tags: " + " ".join(md_code("@" + t.name) for t in view.doc.tags),
        "",
    ]
    if results and view.records:
        problems = view.problems
        head = f"{len(problems)} step(s) need attention" if problems else "all automated checks passed"
        out += [f"> **Last verification: {head}** in {md(results.where())} at {md(results.when())}. "
                f"{percent(done, total)}.", ">",
                "> " + " · ".join(f"{n} {md_outcome(o)}" for o, n in outcome_counts(view.records)), ">"]
        for r in problems:
            out.append(f"> - {md_outcome(r.outcome)} {md(r.scenario)} › {md(step_keyword(r.keyword))} {md(r.step)}: "
                       f"observed {md(r.observed)}")
        out.append("")
    elif results:
        out += [f"> Not part of the verification run in {md(results.environment)}.", ""]
    else:
        out += [f"Not verified here (render with `--results`). {percent(done, total)}.", ""]
    for name, lines in description_blocks(view.doc.description):
        if name:
            out += [f"## {md(name)}", ""]
        out += body_md(lines)
    out += ["## Procedure", ""]
    if view.background:
        out += ["### Background: the first steps of every scenario", ""]
        out += [line for s in view.background for line in step_md(s, results)] + [""]
    for sc in view.scenarios:
        out += [f"### Scenario: {md(sc.name)}" + (f" — {md_outcome(worst(sc.records))}" if results else ""), ""]
        if sc.tags:
            out += ["Tags: " + " ".join(md_code("@" + t) for t in sc.tags), ""]
        for name, lines in description_blocks(sc.description):
            body = body_md(lines)
            if name and body and not body[0].startswith(("- ", "1. ")):
                body[0] = f"**{md(name)}:** {body[0]}"
            elif name:
                body = [f"**{md(name)}:**", ""] + body
            out += body
        out += [line for s in sc.steps for line in step_md(s, results)] + [""]
    return "\n".join(out).rstrip("\n") + "\n"


def body_md(lines: list[str]) -> list[str]:
    out = []
    for kind, items in paragraphs(lines):
        if kind == "p":
            out.append(md_inline(items[0]))
        else:
            out += [f"{f'{n}.' if kind == 'ol' else '-'} {md_inline(i)}" for n, i in enumerate(items, 1)]
        out.append("")
    return out


def step_md(step: StepView, results: Results | None) -> list[str]:
    text = f"**HUMAN STEP** {md(step.text.split(':', 1)[1].strip())}" if step.human else md(step.text)
    outcome = f" — {md_outcome(step.outcome)}" if results else ""
    keyword = f"**{md(step.keyword)}** " if step.keyword else ""
    lines = [f"- [ ] {keyword}{text}{outcome}"]
    if step.manual_command:
        lines.append(f"  - by hand: {md_code(step.manual_command)}")
    elif not step.defined:
        lines.append("  - undefined step: no step definition matches (see `runbooks steps`)")
    note = runs_note(step)
    if note:
        lines.append(f"  - {note}")
    for record in step.records:
        rows = evidence(record) if record.outcome is not Outcome.SKIPPED or len(step.records) == 1 else []
        prefix = f"in “{md(record.scenario)}”: " if rows and len(step.records) > 1 else ""
        lines += [f"  - {prefix}{label}: {md(value)}" for label, value in rows]
    return lines


def index_md(views: list[RunbookView], results: Results | None) -> str:
    out = ["# Runbooks", "", f"{len(views)} runbook(s)."]
    if results:
        out[-1] += f" Last verification: {md(results.where())} at {md(results.when())}."
        failing = [v for v in views if v.problems]
        if failing:
            out += ["", "**Runbooks with failing steps:**", ""]
            out += [f"- [{md(v.title)}]({url(v.page)}.md): {len(v.problems)} step(s)" for v in failing]
    out.append("")
    for category, items in by_key(views, "category"):
        out += [f"## {md(category)}", "", "| Runbook | Severity | Owner | Reviewed | Coverage |"
                + (" Last result |" if results else ""), "| --- | --- | --- | --- | --- |" + (" --- |" if results
                                                                                           else "")]
        for v in items:
            done, total = v.coverage
            last = f" {md_outcome(worst(v.records))} |" if results else ""
            cells = [f"[{md_cell(v.title)}]({url(v.page)}.md)", md_cell(v.severity), md_cell(v.owner),
                     md_cell(v.reviewed), f"{done}/{total}"]
            out.append("| " + " | ".join(cells) + f" |{last}")
        out.append("")
    for title, key, order in (("By severity", "severity", SEVERITY_ORDER), ("By owner", "owner", ())):
        out += [f"## {title}", ""]
        for name, items in by_key(views, key, order):
            out += [f"### {md(name)}", ""] + [f"- [{md(v.title)}]({url(v.page)}.md)" for v in items] + [""]
    return "\n".join(out).rstrip("\n") + "\n"


# The command ---------------------------------------------------------------------------------------------------
def register(sub: Any) -> None:
    parser = sub.add_parser("render", help="write the runbooks as a static site (HTML and Markdown)")
    parser.add_argument("paths", nargs="*", type=Path, help="feature files or folders (default: features/)")
    parser.add_argument("--results", type=Path, help="a results.json from `runbooks verify` to show outcomes")
    parser.add_argument("--out", type=Path, required=True, help="output folder (created if needed)")
    parser.add_argument("--config", type=Path, help="path to runbooks.toml (default: search upwards)")
    parser.set_defaults(handler=cmd_render)


def load_results(path: Path) -> Results:
    from .cli import UsageError

    try:
        run, records = read_results_json(path)
    except FileNotFoundError:
        raise UsageError(f"results file not found: {path} (run `runbooks verify` first)") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{path}: not a runbooks results.json ({type(exc).__name__}: {exc})") from None
    return Results(path, run, records)


def render_site(config: Config, paths: list[Path], out: Path, results: Results | None) -> list[Path]:
    """Write index.html/.md and one page per runbook under ``out``; returns the files written."""
    views = build(config, paths, results)
    links = {v.source: f"{quote(v.page)}.html" for v in views}
    features = display_path(config.features, config.root)
    links |= {f"{features}/{v.category}/": f"index.html#category-{v.category}" for v in views}
    written = []
    for name, text in (("index.html", index_html(views, results)), ("index.md", index_md(views, results))):
        written.append(_write(out / name, text))
    for view in views:
        written.append(_write(out / f"{view.page}.html", runbook_html(view, results, links)))
        written.append(_write(out / f"{view.page}.md", runbook_md(view, results)))
    return written


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def cmd_render(args: argparse.Namespace) -> int:
    from .cli import UsageError

    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out}: exists and is not a folder")
    config = load_config(args.config)
    results = load_results(args.results) if args.results else None
    if results and results.environment not in config.environments:
        print(f"runbooks render: environment {results.environment!r} of {args.results} is not in {config.path.name}; "
              "{variables} are left as written")
    if not discover(args.paths or [config.features]):
        raise UsageError(f"no .feature files under {', '.join(str(p) for p in args.paths or [config.features])}")
    written = render_site(config, args.paths or [config.features], args.out, results)
    print(f"runbooks render: {(len(written) - 2) // 2} runbook page(s) in {args.out} (index.html, index.md)")
    return 0

