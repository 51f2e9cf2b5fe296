"""``runbooks render``: the runbooks as a static site to read during an incident.

Plain HTML with the stylesheet inlined (``templates/render.css``; no build step, no CDN, works from
``file://``) and the same pages as Markdown: an index by category, severity and owner with a search over
runbooks and steps (a small inline script over an inline index, ``templates/search.js``), and one page
per runbook with its description, every step as a checklist item with the command to check it by hand and,
given a ``results.json``, each step's last outcome with the evidence and a summary of the failures at the
top. Given the history, each runbook shows when it was last fully verified and a trend of its last runs,
and the guided procedure runs (``runbooks run``) are listed, each with its Markdown timeline. A runbook
whose ``@reviewed:`` date is older than lint's ``--max-age`` is flagged; the template is shown apart.

By default ``reports/results.json`` and the history (``.runbooks/history.sqlite``) beside ``runbooks.toml``
are read when they exist; ``--results``/``--history`` name others, ``--no-results``/
``--no-history`` leave them out.

:mod:`.model` builds the site once as data; :mod:`.html` and :mod:`.markdown` write it, each escaping for its format.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..config import Config, load_config
from ..features import discover
from ..history import DEFAULT_PATH as DEFAULT_HISTORY
from ..lint import DEFAULT_MAX_AGE
from ..reports import read_results_json
from . import html, markdown
from .model import Results, Site, build, resolve
from .trends import HistoryUnreadable, HistoryView, read_history

DEFAULT_RESULTS = Path("reports") / "results.json"  # where `runbooks verify` writes it by default

__all__ = ["Results", "Site", "build", "cmd_render", "load_results", "register", "render_site", "resolve"]

# (suffix, the index, a runbook's page) for each format written.
WRITERS = (("html", html.index_page, html.runbook_page), ("md", markdown.index_page, markdown.runbook_page))


def register(sub: Any) -> None:
    parser = sub.add_parser("render", help="write the runbooks as a static site (HTML and Markdown)")
    parser.add_argument("paths", nargs="*", type=Path, help="feature files or folders (default: features/)")
    results = parser.add_mutually_exclusive_group()
    results.add_argument("--results", type=Path, help="a results.json from `runbooks verify` to show outcomes "
                         "(default: reports/results.json beside runbooks.toml, when there is one)")
    results.add_argument("--no-results", action="store_true", help="show no outcomes, even if a results.json exists")
    history = parser.add_mutually_exclusive_group()
    history.add_argument("--history", type=Path, help="history database for last-verified dates, trends and "
                         "procedure runs (default: .runbooks/history.sqlite beside runbooks.toml, when there is one)")
    history.add_argument("--no-history", action="store_true", help="do not read the history")
    parser.add_argument("--max-age", type=int, default=DEFAULT_MAX_AGE, metavar="DAYS",
                        help=f"days since @reviewed: before a runbook is flagged (default: {DEFAULT_MAX_AGE}, as lint)")
    parser.add_argument("--out", type=Path, required=True, help="output folder (created if needed)")
    parser.add_argument("--config", type=Path, help="path to runbooks.toml (default: search upwards)")
    parser.set_defaults(handler=cmd_render)


def load_results(path: Path) -> Results:
    from ..cli import UsageError

    try:
        run, records = read_results_json(path)
    except FileNotFoundError:
        raise UsageError(f"results file not found: {path} (run `runbooks verify` first)") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{path}: not a runbooks results.json ({type(exc).__name__}: {exc})") from None
    return Results(path, run, records)


def render_site(config: Config, paths: list[Path], out: Path, results: Results | None,
                history: HistoryView | None = None, max_age: int = DEFAULT_MAX_AGE) -> list[Path]:
    """Write index.html/.md, one page per runbook and one timeline per procedure run under ``out``; returns the
    files written."""
    site = build(config, paths, results, history, max_age=max_age)
    written = []
    for suffix, index_page, runbook_page in WRITERS:
        written.append(_write(out / f"index.{suffix}", index_page(site)))
        written += [_write(out / f"{rb.page}.{suffix}", runbook_page(site, rb)) for rb in site.runbooks]
    written += [_write(out / f"{p.page}.md", p.timeline) for p in site.procedures]
    return written


def default_results(config: Config) -> Path | None:
    """reports/results.json beside runbooks.toml (where `runbooks verify` run there writes it); None: none."""
    path = config.root / DEFAULT_RESULTS
    return path if path.is_file() else None


def load_history(path: Path, environment: str | None, named: bool) -> HistoryView | None:
    """The history for the site; one named with --history must be readable (exit 2), the default one may not be
    (a line says why, the site is rendered without it)."""
    from ..cli import UsageError

    try:
        return read_history(path, environment)
    except HistoryUnreadable as exc:
        if named:
            raise UsageError(f"--history {exc}") from None
        print(f"runbooks render: the history is left out: {exc}")
        return None


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def cmd_render(args: argparse.Namespace) -> int:
    from ..cli import UsageError

    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out}: exists and is not a folder")
    if args.max_age < 0:
        raise UsageError("--max-age must be 0 or more days")
    config = load_config(args.config)
    results_path = None if args.no_results else args.results or default_results(config)
    results = load_results(results_path) if results_path else None
    if results and results.environment not in config.environments:
        print(f"runbooks render: environment {results.environment!r} of {results_path} is not in {config.path.name}; "
              "{variables} are left as written")
    history_path = None if args.no_history else args.history or config.root / DEFAULT_HISTORY
    history = None
    if history_path is not None and (args.history or history_path.is_file()):
        history = load_history(history_path, results.environment if results else None, named=bool(args.history))
    if not discover(args.paths or [config.features]):
        raise UsageError(f"no .feature files under {', '.join(str(p) for p in args.paths or [config.features])}")
    try:
        written = render_site(config, args.paths or [config.features], args.out, results, history, args.max_age)
    except OSError as exc:  # a folder that cannot be created or written (read-only, under a file, no space)
        where = exc.filename or args.out
        raise UsageError(f"--out {args.out}: cannot write {where} ({exc.strerror or exc})") from None
    pages = sum(1 for p in written if p.suffix == ".html") - 1
    print(f"runbooks render: {pages} runbook page(s) in {args.out} (index.html, index.md)")
    used = [f"results {results_path}" if results else "", f"history {history.path} ({history.runs} run(s))"
            if history else ""]
    if any(used):
        print(f"runbooks render: from {' and '.join(u for u in used if u)}")
    return 0
