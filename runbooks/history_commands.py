"""``runbooks history`` and ``runbooks drift``: what was recorded, and what changed since last time."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from .config import ConfigError, load_config
from .drift import compare, summary_text
from .history import DEFAULT_PATH, History
from .redact import Redactor
from .reports import read_results_json
from .result import StepRecord


def register(sub: Any) -> None:
    history = sub.add_parser("history", help="list recorded runs with their counts")
    history.add_argument("--env", help="only runs of this environment")
    history.add_argument("--limit", type=int, default=20)
    history.add_argument("--history", type=Path, help="history database (default: .runbooks/history.sqlite)")
    history.add_argument("--config", type=Path, help="path to runbooks.toml (default: search upwards)")
    history.add_argument("--show", metavar="RUN_ID", help="one run's steps in order, with times, answers and notes "
                         "(a run id or its first characters)")
    history.add_argument("--markdown", action="store_true",
                         help="with --show: the run as a Markdown timeline, for the incident record")
    history.set_defaults(handler=cmd_history)

    drift = sub.add_parser("drift", help="compare the latest run with the previous one (or another)")
    drift.add_argument("--env", help="environment (default: the config's default)")
    drift.add_argument("--against", help="a run id (prefix) or a results.json to compare with")
    drift.add_argument("--history", type=Path, help="history database (default: .runbooks/history.sqlite)")
    drift.add_argument("--config", type=Path, help="path to runbooks.toml (default: search upwards)")
    drift.add_argument("--json", action="store_true", help="print the drift as JSON")
    drift.add_argument("--notify", metavar="URL", default=os.environ.get("RUNBOOKS_NOTIFY_URL"))
    drift.add_argument("--notify-always", action="store_true")
    drift.add_argument("--report-url")
    drift.set_defaults(handler=cmd_drift)


def _history_path(args: argparse.Namespace) -> tuple[Path, Any]:
    config = load_config(args.config)
    path = Path(args.history or config.root / DEFAULT_PATH)
    if not path.is_file():
        raise ConfigError("no history recorded yet (run `runbooks verify` first)", path)
    return path, config


def cmd_history(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise ConfigError(f"--limit must be 1 or more (got {args.limit})")
    if args.markdown and not args.show:
        raise ConfigError("--markdown needs --show RUN_ID (the run to write as a timeline)")
    path, _ = _history_path(args)
    if args.show:
        return show_run(path, args.show, args.env, args.markdown)
    history = History(path)
    runs = history.runs(args.env, args.limit)
    history.close()
    if not runs:
        print("no runs recorded" + (f" for environment {args.env!r}" if args.env else ""))
        return 0
    print(f"{'run':12}  {'kind':9} {'environment':18} {'started (UTC)':25} {'status':11} exit  counts")
    for r in runs:
        counts = ", ".join(f"{v} {k}" for k, v in sorted(r.counts.items()))
        code = "" if r.exit_code is None else str(r.exit_code)
        print(f"{r.id:12}  {r.kind:9} {r.environment:18} {r.started_at:25} {r.status:11} {code:4}  {counts}")
    return 0


def show_run(path: Path, run_id: str, environment: str | None, as_markdown: bool) -> int:
    """``runbooks history --show RUN_ID [--markdown]``: the run's steps in order (:mod:`runbooks.timeline`)."""
    from . import timeline

    history = History(path)
    try:
        try:
            run = history.find(run_id, environment)
        except ValueError as exc:
            raise ConfigError(f"--show {run_id!r}: {exc}; `runbooks history` lists the runs") from None
        metadata, records = history.run_metadata(run.id), history.records(run.id)
    finally:
        history.close()
    sys.stdout.write((timeline.markdown if as_markdown else timeline.text)(run, metadata, records))
    return 0


def _baseline(history: History, env: str, current_id: str | None, against: str | None
              ) -> tuple[str, list[StepRecord]] | None:
    if against:
        if Path(against).is_dir():
            raise ConfigError(f"--against {against}: a folder; give a run id or a results.json")
        if Path(against).is_file():
            try:
                _, records = read_results_json(Path(against))
            except OSError as exc:
                raise ConfigError(f"--against: cannot read it ({exc.strerror or exc})", against) from None
            except (ValueError, KeyError, TypeError) as exc:
                raise ConfigError(f"not a runbooks results.json ({type(exc).__name__}: {exc})", against) from None
            return against, records
        try:
            found = history.find(against, env)
        except ValueError as exc:
            raise ConfigError(f"--against {against!r}: {exc}; give a longer run id or a results.json") from None
        return f"run {found.id}", history.records(found.id)
    for candidate in history.runs(env, limit=50, kind="verify"):  # a procedure run is no baseline
        if candidate.id != current_id and candidate.status == "finished":
            return f"run {candidate.id} ({candidate.started_at})", history.records(candidate.id)
    return None


def report_drift(history_path: Path, env: str, current_id: str | None, against: str | None, redactor: Redactor,
                 notify: str | None, notify_always: bool, report_url: str | None, exit_code: int | None,
                 show: bool = True, as_json: bool = False) -> int:
    history = History(history_path)
    try:
        runs = history.runs(env, limit=50, kind="verify")
        if current_id:
            current = next((r for r in runs if r.id == current_id), None)
        else:  # `runbooks drift`: the latest complete run
            current = next((r for r in runs if r.status == "finished"), None)
        if current is None:
            raise ConfigError(f"no recorded run for environment {env!r}", history_path)
        # The first recorded run is compared with nothing: every check is new.
        label, before = _baseline(history, env, current.id, against) or ("nothing (first recorded run)", [])
        if exit_code is None:
            exit_code = current.exit_code or 0
        drift = compare(before, history.records(current.id))
    finally:
        history.close()
    if show and as_json:
        print(json.dumps({name: [r.to_json() for r in items] for name, items in drift.sections()}, indent=2))
    elif show:
        print()
        print(summary_text(drift, f"Drift for {env}: run {current.id} against {label}"))
    if notify and (drift.changed or notify_always):
        from .notify import payload, send  # requests: only when a notification is sent

        delivery = send(notify, payload(drift, env, exit_code, report_url, redactor))
        # The webhook URL is itself a secret (it carries a token): never print it.
        stream = sys.stdout if delivery.sent else sys.stderr
        print(f"notification: {delivery.reason}" if delivery.sent
              else f"runbooks: warning: notification not delivered: {delivery.reason}", file=stream)
    return 0


def cmd_drift(args: argparse.Namespace) -> int:
    path, config = _history_path(args)
    env = config.environment(args.env)
    return report_drift(Path(path), env.name, None, args.against, Redactor.for_environment(env), args.notify,
                        args.notify_always, args.report_url, exit_code=None, as_json=args.json)
