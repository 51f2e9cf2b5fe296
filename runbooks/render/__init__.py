"""``runbooks render``: the runbooks as a static site to read during an incident.

Plain HTML with the stylesheet inlined (``templates/render.css``; no JavaScript, no build step) and the
same pages as Markdown: an index by category, severity and owner, and one page per runbook with its
description, every step as a checklist item with the command to check it by hand and, given a
``results.json``, each step's last outcome with the evidence and a summary of the failures at the top.

:mod:`.model` builds the site once as data; :mod:`.html` and :mod:`.markdown` write it, each escaping for its format.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..config import Config, load_config
from ..features import discover
from ..reports import read_results_json
from . import html, markdown
from .model import Results, Site, build, resolve

__all__ = ["Results", "Site", "build", "cmd_render", "load_results", "register", "render_site", "resolve"]

# (suffix, the index, a runbook's page) for each format written.
WRITERS = (("html", html.index_page, html.runbook_page), ("md", markdown.index_page, markdown.runbook_page))


def register(sub: Any) -> None:
    parser = sub.add_parser("render", help="write the runbooks as a static site (HTML and Markdown)")
    parser.add_argument("paths", nargs="*", type=Path, help="feature files or folders (default: features/)")
    parser.add_argument("--results", type=Path, help="a results.json from `runbooks verify` to show outcomes")
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


def render_site(config: Config, paths: list[Path], out: Path, results: Results | None) -> list[Path]:
    """Write index.html/.md and one page per runbook under ``out``; returns the files written."""
    site = build(config, paths, results)
    written = []
    for suffix, index_page, runbook_page in WRITERS:
        written.append(_write(out / f"index.{suffix}", index_page(site)))
        written += [_write(out / f"{rb.page}.{suffix}", runbook_page(site, rb)) for rb in site.runbooks]
    return written


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def cmd_render(args: argparse.Namespace) -> int:
    from ..cli import UsageError

    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out}: exists and is not a folder")
    config = load_config(args.config)
    results = load_results(args.results) if args.results else None
    if results and results.environment not in config.environments:
        print(f"runbooks render: environment {results.environment!r} of {args.results} is not in {config.path.name}; "
              "{variables} are left as written")
    if not discover(args.paths or [config.features]):
        raise UsageError(f"no .feature files under {', '.join(str(p) for p in args.paths or [config.features])}")
    try:
        written = render_site(config, args.paths or [config.features], args.out, results)
    except OSError as exc:  # a folder that cannot be created or written (read-only, under a file, no space)
        where = exc.filename or args.out
        raise UsageError(f"--out {args.out}: cannot write {where} ({exc.strerror or exc})") from None
    print(f"runbooks render: {(len(written) - 2) // 2} runbook page(s) in {args.out} (index.html, index.md)")
    return 0
