"""The site as HTML: plain pages with the stylesheet inlined (``templates/render.css``); the index alone has a
script, the search (``templates/search.js`` over an inline JSON index: no CDN, works from ``file://``)."""

from __future__ import annotations

import functools
import json
import re
from html import escape
from importlib.resources import files as package_files
from typing import Any
from urllib.parse import quote

from ..formatting import severity_rank
from ..result import Outcome
from .model import Block, Problem, Runbook, Section, Site, Step, code_spans, outcome_word, percent
from .trends import ProcedureRun, TrendPoint

TREND_WORDS = {"pass": "passed", "fail": "failed", "error": "could not be checked", "waived": "waived",
               "none": "nothing automated ran"}

_RUNBOOK_PATH = re.compile(r"(?<![\w/])features/[\w./-]*[\w/]")


def esc(value: Any) -> str:
    return escape(str(value), quote=True)


def url(page: str) -> str:
    """A relative link to a generated page, safe in an attribute."""
    return esc(quote(page))


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def badge(outcome: Outcome | None) -> str:
    return f'<span class="badge {outcome.value if outcome else "none"}">{outcome_word(outcome)}</span>'


def tags(names: list[str]) -> str:
    return "".join(f'<span class="tag">@{esc(t)}</span>' for t in names)


@functools.cache
def template(name: str) -> str:
    return package_files("runbooks").joinpath(f"templates/{name}").read_text(encoding="utf-8")


def stylesheet() -> str:
    return template("render.css")


def document(title: str, body: str, script: str = "") -> str:
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>\n{stylesheet()}</style>\n</head>\n<body>\n<main>\n{body}\n</main>\n"
        f"{script}</body>\n</html>\n"
    )


def script_json(value: Any) -> str:
    """JSON safe inside <script>: no '<', '>' or '&' that could end the element or start a comment."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


# History: trends, last verification, review age, procedure runs ---------------------------------------------
def trend_svg(points: list[TrendPoint]) -> str:
    """The last runs as small coloured bars, oldest first, each with its date and outcome as a tooltip."""
    if not points:
        return '<span class="trend none">no runs</span>'
    label = f"last {len(points)} run(s), oldest first: " + ", ".join(p.outcome for p in points)
    bars = "".join(
        f'<rect class="t-{esc(p.outcome)}" x="{i * 9}" y="{2 if p.outcome == "pass" else 0}" width="7" '
        f'height="{14 if p.outcome == "pass" else 16}" rx="1"><title>{esc(p.when)} · {esc(p.environment)} · '
        f"{esc(TREND_WORDS.get(p.outcome, p.outcome))}</title></rect>" for i, p in enumerate(points))
    return (f'<svg class="trend" role="img" aria-label="{esc(label)}" width="{len(points) * 9}" height="16" '
            f'viewBox="0 0 {len(points) * 9} 16">{bars}</svg>')


def verified_text(rb: Runbook) -> str:
    found = rb.last_verified
    return f"{found.when[:10]}" if found else "never"


def review(rb: Runbook, below: bool = False) -> str:
    """The review date, flagged when it is older than the site's --max-age (lint's rule)."""
    flag = f'{"<br>" if below else " "}<span class="flag" title="{esc(rb.stale)}">review overdue</span>'
    return esc(rb.reviewed) + (flag if rb.stale else "")


def history_box(site: Site, rb: Runbook) -> str:
    if site.history is None:
        return ""
    where = f" in {esc(site.history.environment)}" if site.history.environment else ""
    found = rb.last_verified
    verified = (f"Last fully verified{where}: <b>{esc(found.when)}</b>"
                + ("" if site.history.environment else f" ({esc(found.environment)})") + "."
                if found else f"Not fully verified{where} in the {site.history.runs} run(s) of the history.")
    trend = (f" Last {len(rb.trend)} run(s), oldest first: {trend_svg(rb.trend)}" if rb.trend
             else " No run of it in the history.")
    return f'<p class="history" id="history">{verified}{trend}</p>'


def procedure_list(runs: list[ProcedureRun], up: str, with_runbook: bool, links: dict[str, str]) -> str:
    items = []
    for p in runs:
        runbook = f" · {inline(p.runbook, links)}" if with_runbook and p.runbook else ""
        operator = f" · by {esc(p.operator)}" if p.operator else ""
        items.append(f'<li><a href="{up}{url(p.page)}.md">{esc(p.when)}</a> · {esc(p.run.environment)}{runbook}'
                     f"{operator} · {esc(p.run.status)}</li>")
    return '<ul class="procedures">' + "".join(items) + "</ul>"


# Prose -------------------------------------------------------------------------------------------------------
def link_targets(site: Site, up: str) -> dict[str, str]:
    """Paths prose may name -> a link to where the site shows them, relative to a page ``up`` from the root."""
    return {path: up + (f"{quote(m.page)}.html" if m.page else f"index.html#category-{m.category}")
            for path, m in site.mentions.items()}


def inline(text: str, links: dict[str, str]) -> str:
    """Escaped text with `code` spans and links to the pages of runbooks it names."""
    out = "".join(f"<code>{esc(part)}</code>" if code else esc(part) for part, code in code_spans(text))

    def link(match: re.Match[str]) -> str:
        path = match.group(0)
        target = links.get(path.rstrip("/")) or links.get(path.rstrip("/") + "/")
        return f'<a href="{esc(target)}">{path}</a>' if target else path

    return _RUNBOOK_PATH.sub(link, out)


def body(blocks: list[Block], links: dict[str, str]) -> str:
    out = []
    for block in blocks:
        if block.kind == "p":
            out.append(f"<p>{inline(block.items[0], links)}</p>")
        else:
            out.append(f"<{block.kind}>" + "".join(f"<li>{inline(i, links)}</li>" for i in block.items)
                       + f"</{block.kind}>")
    return "".join(out)


def description(found: list[Section], links: dict[str, str]) -> str:
    out = []
    for section in found:
        if section.heading:
            out += [f'<section class="section" id="{slug(section.heading)}">', f"<h2>{esc(section.heading)}</h2>"]
        else:
            out.append('<section class="section">')
        out += [body(section.blocks, links), "</section>"]
    return "\n".join(out)


def troubleshooting(found: list[Section], links: dict[str, str]) -> str:
    """A scenario's description: Symptom / Root cause / Resolution as a compact definition list."""
    rows = "".join(f"<dt>{esc(s.heading or 'Note')}</dt><dd>{body(s.blocks, links)}</dd>" for s in found)
    return f'<dl class="troubleshooting">{rows}</dl>' if rows else ""


# A runbook's page ----------------------------------------------------------------------------------------------
def runbook_page(site: Site, rb: Runbook) -> str:
    up, known = rb.up, link_targets(site, rb.up)
    toc = [f'<a href="#{slug(s.heading)}">{esc(s.heading)}</a>' for s in rb.description if s.heading]
    toc.append('<a href="#procedure">Procedure</a>')
    out = [
        f'<nav class="crumbs"><a href="{up}index.html">All runbooks</a> › '
        f'<a href="{up}index.html#category-{esc(rb.category)}">{esc(rb.category)}</a></nav>',
        f"<h1>{esc(rb.title)}</h1>",
        f'<p class="meta"><span class="sev sev-{esc(rb.severity)}">{esc(rb.severity)}</span> '
        f"owner <b>{esc(rb.owner)}</b> · reviewed {review(rb)} · <code>{esc(rb.source)}</code></p>",
        f'<p class="tags">{tags(rb.tags)}</p>',
        ('<p class="note template">The runbook template: copy it for a new runbook. <code>runbooks verify</code> '
         "runs it only when it is named.</p>") if rb.template else "",
        summary(site, rb),
        history_box(site, rb),
        f'<nav class="toc">{" ".join(toc)}</nav>',
        description(rb.description, known),
        '<h2 id="procedure">Procedure</h2>',
    ]
    verified = site.run is not None
    if rb.background:
        out.append('<h3 id="background">Background: the first steps of every scenario</h3>')
        out.append(checklist(rb.background, verified, in_background=True))
    for sc in rb.scenarios:
        head = (badge(sc.outcome) + " ") if verified else ""
        out.append(f'<h3 id="scenario-{sc.line}">{head}Scenario: {esc(sc.name)}</h3>')
        shown = [t for t in sc.tags if t != "troubleshooting"]  # the description list already says so
        if shown:
            out.append(f'<p class="tags">{tags(shown)}</p>')
        out.append(troubleshooting(sc.description, known))
        out.append(checklist(sc.steps, verified, in_background=False))
    if rb.procedures:  # guided runs of it (`runbooks run`), each with its timeline
        out.append('<h2 id="procedure-runs">Procedure runs</h2>')
        out.append(procedure_list(rb.procedures, up, with_runbook=False, links=known))
    out.append(f"<footer>Rendered by <code>runbooks render</code> from <code>{esc(rb.source)}</code>"
               + (f" and <code>{esc(site.run.file)}</code>" if site.run else "") + ".</footer>")
    return document(rb.title, "\n".join(out))


def summary(site: Site, rb: Runbook) -> str:
    done, total = rb.coverage
    run = site.run
    if run is None:
        return ('<p class="note">Not verified here (render with <code>--results</code>). '
                f"{esc(percent(done, total))}.</p>")
    if not rb.ran:
        return (f'<section class="summary none"><h2>Not part of this verification run</h2>'
                f"<p>{esc(run.file)} has no results for this runbook ({esc(run.environment)}).</p></section>")
    commit = f" (commit {run.commit})" if run.commit else ""
    counts = " ".join(f'<span class="badge {o.value}">{n} {outcome_word(o)}</span>' for o, n in rb.counts)
    verified = (f"<p>Verified in <b>{esc(run.where)}</b> at {esc(run.when)}{esc(commit)}. "
                f"{esc(percent(done, total))}.</p><p>{counts}</p>")
    if not rb.problems:
        return f'<section class="summary"><h2>All automated checks passed</h2>{verified}</section>'
    fails = sum(1 for p in rb.problems if p.outcome is Outcome.FAIL)
    errors = len(rb.problems) - fails
    title = ", ".join(t for t in (f"{fails} failed" if fails else "",
                                  f"{errors} could not be checked" if errors else "") if t)
    return (f'<section class="summary {"fail" if fails else "error"}"><h2>{len(rb.problems)} step(s) need attention: '
            f"{esc(title)}</h2>{verified}<ol>{''.join(problem(p) for p in rb.problems)}</ol></section>")


def problem(p: Problem) -> str:
    text = f"{esc(p.keyword)} {esc(p.step)}"
    return (f"<li>{badge(p.outcome)} " + (f'<a href="#line-{p.line}">{text}</a>' if p.line else text)
            + f' <span class="in">in “{esc(p.scenario)}”</span>'
            + "".join(f'<span class="why"><b>{esc(label)}:</b> {esc(value)}</span>' for label, value in p.why)
            + "</li>")


def checklist(steps: list[Step], verified: bool, in_background: bool) -> str:
    return '<ul class="checklist">' + "".join(step(s, verified, in_background) for s in steps) + "</ul>"


def step(s: Step, verified: bool, in_background: bool) -> str:
    classes = ["step"] + ([s.outcome.value] if s.outcome else []) + (["human"] if s.human else [])
    text = f'<span class="human-label">HUMAN STEP</span>{esc(s.text)}' if s.human else esc(s.text)
    parts = [
        f'<li class="{" ".join(classes)}" id="line-{s.line}">',
        '<span class="box" role="checkbox" aria-checked="false"></span>',
        badge(s.outcome) if verified else "<span></span>",
        f'<div><span class="kw">{esc(s.keyword)}</span> {text}</div>',
    ]
    if s.manual_command:
        parts.append(f'<div class="cmd">by hand: <code>{esc(s.manual_command)}</code></div>')
    elif not s.defined:
        parts.append('<div class="cmd undefined">undefined step: no step definition matches '
                     "(see <code>runbooks steps</code>)</div>")
    if s.runs_note:
        parts.append(f'<div class="runs">{esc(s.runs_note)}</div>')
    for found in s.evidence:
        parts.append('<dl class="evidence">')
        if in_background or s.runs > 1:  # which scenario's run this was
            parts.append(f'<dt class="in">in “{esc(found.scenario)}”: {esc(found.step)}</dt>')
        parts += [f"<dt>{esc(label)}</dt><dd>{esc(value)}</dd>" for label, value in found.rows]
        parts.append("</dl>")
    parts.append("</li>")
    return "\n".join(parts)


# The index -----------------------------------------------------------------------------------------------------
def index_page(site: Site) -> str:
    out = ["<h1>Runbooks</h1>", search_box()]
    listed = [rb for rb in site.runbooks if not rb.template]
    note = f"{len(listed)} runbook(s)."
    if site.run:
        note += f" Last verification: <b>{esc(site.run.where)}</b> at {esc(site.run.when)}."
        if site.failing:
            out.append('<section class="summary fail"><h2>Runbooks with failing steps</h2>'
                       "<p>Most severe failure first, then the most failures.</p><ol>"
                       + "".join(failing_item(rb) for rb in site.failing) + "</ol></section>")
    if site.history:
        where = f" of {esc(site.history.environment)}" if site.history.environment else ""
        note += f" History: {site.history.runs} verification run(s){where}."
    stale = [rb for rb in listed if rb.stale]
    if stale:
        note += f" {len(stale)} runbook(s) with a review older than {site.max_age} days."
    out.append(f'<p class="note">{note}</p>')
    sections = [(f"category-{g.name}", g.name) for g in site.categories]
    sections += [(slug(title), title) for title, _ in site.views]
    sections += [("procedure-runs", "Procedure runs")] if site.procedures else []
    sections += [("template", "Template")] if site.templates else []
    out.append('<nav class="toc">' + " ".join(f'<a href="#{esc(anchor)}">{esc(name)}</a>' for anchor, name in sections)
               + "</nav>")
    for group in site.categories:
        out.append(f'<h2 id="category-{esc(group.name)}">{esc(group.name)}</h2>')
        out.append(table(group.runbooks, site))
    out.append('<div class="views">')
    for title, found in site.views:
        out.append(f'<section><h2 id="{slug(title)}">{esc(title)}</h2>')
        out += [f"<h3>{esc(g.name)}</h3><ul>" + "".join(
            f'<li><a href="{url(rb.page)}.html">{esc(rb.title)}</a></li>' for rb in g.runbooks) + "</ul>"
            for g in found]
        out.append("</section>")
    out.append("</div>")
    if site.procedures:  # guided runs (`runbooks run`, kind 'procedure' in the history), newest first
        out.append('<h2 id="procedure-runs">Procedure runs</h2>')
        out.append(procedure_list(site.procedures, "", with_runbook=True, links=link_targets(site, "")))
    if site.templates:
        out.append('<h2 id="template">Template</h2><p class="note">Copied for a new runbook; not a procedure: '
                   "<code>runbooks verify</code> runs it only when it is named.</p>")
        out.append("<ul>" + "".join(f'<li><a href="{url(rb.page)}.html">{esc(rb.title)}</a> '
                                    f"<code>{esc(rb.source)}</code></li>" for rb in site.templates) + "</ul>")
    return document("Runbooks", "\n".join(out), search_script(site))


def failing_item(rb: Runbook) -> str:
    severity = min((p.severity for p in rb.problems), key=severity_rank)
    return (f'<li><span class="sev sev-{esc(severity)}">{esc(severity)}</span> '
            f'<a href="{url(rb.page)}.html">{esc(rb.title)}</a> — {len(rb.problems)} step(s): '
            + ", ".join(sorted({outcome_word(p.outcome) for p in rb.problems})) + "</li>")


def table(runbooks: list[Runbook], site: Site) -> str:
    verified, history = site.run is not None, site.history is not None
    head = ("<table><tr><th>Runbook</th><th>Severity</th><th>Owner</th><th>Reviewed</th><th>Coverage</th>"
            + ("<th>Last result</th>" if verified else "") + ("<th>Verified · trend</th>" if history else "") + "</tr>")
    return head + "".join(index_row(rb, verified, history) for rb in runbooks) + "</table>"


def index_row(rb: Runbook, verified: bool, history: bool = False) -> str:
    done, total = rb.coverage
    return (f'<tr><td><a href="{url(rb.page)}.html">{esc(rb.title)}</a></td>'
            f'<td><span class="sev sev-{esc(rb.severity)}">{esc(rb.severity)}</span></td>'
            f"<td>{esc(rb.owner)}</td><td>{review(rb, below=True)}</td><td>{done}/{total}</td>"
            + (f"<td>{badge(rb.outcome)}</td>" if verified else "")
            + (f'<td class="verified">{verified_text(rb)}<br>{trend_svg(rb.trend)}</td>' if history else "") + "</tr>")


# The search ----------------------------------------------------------------------------------------------------
def search_box() -> str:
    return ('<form class="search" role="search" onsubmit="return false">'
            '<label for="search">Search runbooks and steps</label> '
            '<input type="search" id="search" name="q" autocomplete="off" '
            'placeholder="e.g. versioning, stale lock, health/ready">'
            '<ol id="search-results" aria-live="polite"></ol></form>')


def search_index(site: Site) -> list[dict[str, Any]]:
    """What the search looks in: per runbook its title, page, severity, category, tags and every step."""
    return [{"t": rb.title, "u": f"{quote(rb.page)}.html", "s": rb.severity, "c": rb.category,
             "g": " ".join(rb.tags), "st": [[line, text] for line, text in rb.search]} for rb in site.runbooks]


def search_script(site: Site) -> str:
    return (f'<script type="application/json" id="search-index">{script_json(search_index(site))}</script>\n'
            f"<script>\n{template('search.js')}</script>\n")
