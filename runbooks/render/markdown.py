"""The site as Markdown: the same pages as the HTML, to read in a repository browser or a terminal."""

from __future__ import annotations

from urllib.parse import quote

from ..formatting import severity_rank
from ..result import Outcome
from .model import Block, Runbook, Section, Site, Step, code_spans, outcome_word, percent
from .trends import ProcedureRun, TrendPoint

SPARK = {"pass": "✓", "fail": "✗", "error": "!", "waived": "w", "none": "·"}  # a trend, one character per run


def md(text: str) -> str:
    """Text for Markdown outside code spans: no raw HTML, no accidental emphasis from '*'."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("*", r"\*")


def link(page: str) -> str:
    return f"{quote(page)}.md"


def cell(text: str) -> str:
    return md(text).replace("|", "&#124;")


def inline(text: str) -> str:
    """Like :func:`md` but keeps the author's `code` spans as they are."""
    return "".join(f"`{part}`" if code else md(part) for part, code in code_spans(text))


def code(text: str) -> str:
    return f"`{text}`" if "`" not in text else f"`` {text} ``"


def outcome(o: Outcome | None) -> str:
    return f"**{outcome_word(o)}**"


def sparkline(points: list[TrendPoint]) -> str:
    """'✓✓✗✗✓' oldest first (✓ passed, ✗ failed, ! could not check, w waived, · nothing automated ran)."""
    return "".join(SPARK.get(p.outcome, "?") for p in points) or "no runs"


def reviewed(rb: Runbook) -> str:
    return md(rb.reviewed) + (f" (**{md(rb.stale)}**)" if rb.stale else "")


def history(site: Site, rb: Runbook) -> list[str]:
    if site.history is None:
        return []
    where = f" in {md(site.history.environment)}" if site.history.environment else ""
    found = rb.last_verified
    line = (f"Last fully verified{where}: **{md(found.when)}**" + ("" if where else f" ({md(found.environment)})")
            if found else f"Not fully verified{where} in the {site.history.runs} run(s) of the history")
    if rb.trend:
        line += f" · last {len(rb.trend)} run(s), oldest first: `{sparkline(rb.trend)}`"
    return [line + ".", ""]


def procedures(runs: list[ProcedureRun], up: str, with_runbook: bool) -> list[str]:
    return [f"- [{md(p.when)}]({up}{quote(p.page)}.md) · {md(p.run.environment)}"
            + (f" · {code(p.runbook)}" if with_runbook and p.runbook else "")
            + (f" · by {md(p.operator)}" if p.operator else "") + f" · {md(p.run.status)}" for p in runs]


def text(lines: list[str]) -> str:
    return "\n".join(lines).rstrip("\n") + "\n"


def body(blocks: list[Block]) -> list[str]:
    out = []
    for block in blocks:
        if block.kind == "p":
            out.append(inline(block.items[0]))
        else:
            out += [f"{f'{n}.' if block.kind == 'ol' else '-'} {inline(i)}" for n, i in enumerate(block.items, 1)]
        out.append("")
    return out


def troubleshooting(found: list[Section]) -> list[str]:
    """A scenario's description with each heading in bold: before its first paragraph or above its list."""
    out = []
    for section in found:
        lines = body(section.blocks)
        if section.heading and section.blocks and section.blocks[0].kind == "p":
            lines[0] = f"**{md(section.heading)}:** {lines[0]}"
        elif section.heading:
            lines = [f"**{md(section.heading)}:**", ""] + lines
        out += lines
    return out


# A runbook's page ----------------------------------------------------------------------------------------------
def runbook_page(site: Site, rb: Runbook) -> str:
    verified = site.run is not None
    out = [
        f"[All runbooks]({rb.up}index.md) › {md(rb.category)}",
        "",
        f"# {md(rb.title)}",
        "",
        f"Severity **{md(rb.severity)}** · owner **{md(rb.owner)}** · reviewed {reviewed(rb)} · "
        f"{code(rb.source)}",
        "",
        "Tags: " + " ".join(code("@" + t) for t in rb.tags),
        "",
        *(["_The runbook template: copy it for a new runbook. `runbooks verify` runs it only when it is named._",
           ""] if rb.template else []),
        *summary(site, rb),
        *history(site, rb),
    ]
    for section in rb.description:
        if section.heading:
            out += [f"## {md(section.heading)}", ""]
        out += body(section.blocks)
    out += ["## Procedure", ""]
    if rb.background:
        out += ["### Background: the first steps of every scenario", ""]
        out += [line for s in rb.background for line in step(s, verified)] + [""]
    for sc in rb.scenarios:
        out += [f"### Scenario: {md(sc.name)}" + (f" — {outcome(sc.outcome)}" if verified else ""), ""]
        if sc.tags:
            out += ["Tags: " + " ".join(code("@" + t) for t in sc.tags), ""]
        out += troubleshooting(sc.description)
        out += [line for s in sc.steps for line in step(s, verified)] + [""]
    if rb.procedures:
        out += ["## Procedure runs", "", *procedures(rb.procedures, rb.up, with_runbook=False), ""]
    return text(out)


def summary(site: Site, rb: Runbook) -> list[str]:
    done, total = rb.coverage
    run = site.run
    if run is None:
        return [f"Not verified here (render with `--results`). {percent(done, total)}.", ""]
    if not rb.ran:
        return [f"> Not part of the verification run in {md(run.environment)}.", ""]
    head = f"{len(rb.problems)} step(s) need attention" if rb.problems else "all automated checks passed"
    out = [f"> **Last verification: {head}** in {md(run.where)} at {md(run.when)}. {percent(done, total)}.", ">",
           "> " + " · ".join(f"{n} {outcome(o)}" for o, n in rb.counts), ">"]
    out += [f"> - {outcome(p.outcome)} {md(p.scenario)} › {md(p.keyword)} {md(p.step)}: observed {md(p.observed)}"
            for p in rb.problems]
    return out + [""]


def step(s: Step, verified: bool) -> list[str]:
    shown = f"**HUMAN STEP** {md(s.text)}" if s.human else md(s.text)
    keyword = f"**{md(s.keyword)}** " if s.keyword else ""
    lines = [f"- [ ] {keyword}{shown}" + (f" — {outcome(s.outcome)}" if verified else "")]
    if s.manual_command:
        lines.append(f"  - by hand: {code(s.manual_command)}")
    elif not s.defined:
        lines.append("  - undefined step: no step definition matches (see `runbooks steps`)")
    if s.runs_note:
        lines.append(f"  - {s.runs_note}")
    for found in s.evidence:
        prefix = f"in “{md(found.scenario)}”: " if s.runs > 1 else ""
        lines += [f"  - {prefix}{label}: {md(value)}" for label, value in found.rows]
    return lines


# The index -----------------------------------------------------------------------------------------------------
def index_page(site: Site) -> str:
    listed = [rb for rb in site.runbooks if not rb.template]
    out = ["# Runbooks", "", f"{len(listed)} runbook(s)."]
    if site.run:
        out[-1] += f" Last verification: {md(site.run.where)} at {md(site.run.when)}."
        if site.failing:
            out += ["", "**Runbooks with failing steps** (most severe failure first, then the most failures):", ""]
            out += [f"- {md(min((p.severity for p in rb.problems), key=severity_rank))}: "
                    f"[{md(rb.title)}]({link(rb.page)}): {len(rb.problems)} step(s)" for rb in site.failing]
    if site.history:
        where = f" of {md(site.history.environment)}" if site.history.environment else ""
        out[2] += (f" History: {site.history.runs} verification run(s){where}; a trend reads oldest first: "
                   "✓ passed, ✗ failed, ! could not check, w waived, · nothing automated ran.")
    out.append("")
    last, trend = site.run is not None, site.history is not None
    for group in site.categories:
        out += [f"## {md(group.name)}", "",
                "| Runbook | Severity | Owner | Reviewed | Coverage |" + (" Last result |" if last else "")
                + (" Last fully verified | Trend |" if trend else ""),
                "| --- | --- | --- | --- | --- |" + (" --- |" if last else "") + (" --- | --- |" if trend else "")]
        out += [index_row(rb, last, trend) for rb in group.runbooks] + [""]
    for title, found in site.views:
        out += [f"## {title}", ""]
        for g in found:
            out += [f"### {md(g.name)}", ""] + [f"- [{md(rb.title)}]({link(rb.page)})" for rb in g.runbooks] + [""]
    if site.procedures:
        out += ["## Procedure runs", "", *procedures(site.procedures, "", with_runbook=True), ""]
    if site.templates:
        out += ["## Template", "", "Copied for a new runbook; `runbooks verify` runs it only when it is named.", ""]
        out += [f"- [{md(rb.title)}]({link(rb.page)}) {code(rb.source)}" for rb in site.templates] + [""]
    return text(out)


def index_row(rb: Runbook, last: bool, trend: bool = False) -> str:
    done, total = rb.coverage
    cells = [f"[{cell(rb.title)}]({link(rb.page)})", cell(rb.severity), cell(rb.owner),
             cell(rb.reviewed) + (" (review overdue)" if rb.stale else ""), f"{done}/{total}"]
    if last:
        cells.append(outcome(rb.outcome))
    if trend:
        cells += [cell(rb.last_verified.when[:10]) if rb.last_verified else "never", f"`{sparkline(rb.trend)}`"]
    return "| " + " | ".join(cells) + " |"
