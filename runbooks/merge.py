"""``runbooks merge``: the shards of one verification (``runbooks verify --shard K/N``) as one run.

It reads each shard's results.json, refuses parts that do not belong together (:func:`runbooks.shards.merge`:
another environment, commit, shard count or plan, a shard missing or given twice: one line, exit 2) and
writes what one process would have written: results.json and JUnit, Cucumber JSON, the history, the drift and
its notification. The exit code is decided from the merged records at ``--fail-on`` (default: the shards').
The pytest-xdist controller writes a ``pytest -n`` run's reports with :func:`publish` too.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import ConfigError, load_optional_config
from .errors import UsageError
from .history import DEFAULT_PATH as DEFAULT_HISTORY
from .result import SEVERITIES
from .shards import MergedRun, merge, read_part

if TYPE_CHECKING:
    from .session import Options


def register(sub: Any) -> None:
    merge_parser = sub.add_parser("merge", help="combine the shards of one sharded verification into one run")
    merge_parser.add_argument("shards", nargs="+", type=Path, metavar="SHARD_DIR",
                              help="each shard's report folder (its --report-dir) or its results.json")
    merge_parser.add_argument("--report-dir", type=Path, default=Path("reports"),
                              help="where the merged results.json and junit.xml go (default: reports/)")
    merge_parser.add_argument("--cucumber-json", type=Path, metavar="PATH", help="also write a Cucumber JSON report")
    merge_parser.add_argument("--config", type=Path, help="path to runbooks.toml (default: search upwards)")
    merge_parser.add_argument("--fail-on", choices=SEVERITIES, default=None,
                              help="lowest severity whose failures fail the run (default: the shards' own)")
    merge_parser.add_argument("--history", type=Path,
                              help="history database the merged run is recorded in (default: .runbooks/history.sqlite)")
    merge_parser.add_argument("--no-history", action="store_true", help="do not record the merged run")
    merge_parser.add_argument("--drift", action="store_true", help="print what changed since the previous run")
    merge_parser.add_argument("--notify", metavar="URL", default=os.environ.get("RUNBOOKS_NOTIFY_URL"),
                              help="post the drift summary to this webhook (default: $RUNBOOKS_NOTIFY_URL)")
    merge_parser.add_argument("--notify-always", action="store_true", help="notify even when nothing changed")
    merge_parser.add_argument("--report-url", help="link to the rendered report, included in notifications")
    merge_parser.set_defaults(handler=cmd_merge)


@dataclass
class Published:
    run_id: str | None = None
    paths: list[Path] = field(default_factory=list)
    unwritten: list[str] = field(default_factory=list)  # "path (why)"


def publish(run: MergedRun, options: Options) -> Published:
    """Record the merged run in the history (when ``options.history``), then write its reports - in the order
    a run's sinks write them. A report that cannot be written is listed, the others are still written."""
    from .reports import junit_xml, results_document, write_atomic
    from .sinks.cucumber import cucumber_json

    published = Published()
    if options.history is not None:
        published.run_id = record(options.history, run)
    run.metadata["run_id"] = published.run_id
    files: list[tuple[Path, str]] = []
    if options.report_dir is not None:
        files.append((options.report_dir / "junit.xml", junit_xml(run.metadata, run.records)))
        files.append((options.report_dir / "results.json",
                      json.dumps(results_document(run.metadata, run.records), indent=2) + "\n"))
    if options.cucumber_json is not None:
        files.append((options.cucumber_json, cucumber_json(run.records, run.sources)))
    for path, text in files:
        try:
            write_atomic(path, text)
        except OSError as exc:
            published.unwritten.append(f"{path} ({exc.strerror or exc})")
        else:
            published.paths.append(path)
    return published


def record(path: Path, run: MergedRun) -> str:
    """The merged run in the history, as a run of its own (its records in one transaction)."""
    from .history import History, history_error

    history = History(path)
    try:
        history.mark_abandoned()
        run_id = history.start_run(run.metadata)
        run.metadata["run_id"] = run_id
        history.add_many(run_id, run.records)
        history.finish_run(run_id, run.metadata, run.exit_code, str(run.metadata["status"]))
    except sqlite3.Error as exc:
        raise history_error(path, exc) from None
    finally:
        history.close()
    return run_id


def cmd_merge(args: argparse.Namespace) -> int:
    from .formatting import coverage_line, summary_line
    from .redact import Redactor
    from .session import Options, check_history, check_writable

    if args.no_history and (args.drift or args.notify):
        raise UsageError("--drift and --notify compare with the history: they cannot be used with --no-history")
    run = merge([read_part(path) for path in args.shards], args.fail_on)
    config = load_optional_config(args.config)
    if config is None and (args.drift or args.notify or not (args.no_history or args.history)):
        raise ConfigError("no runbooks.toml found (searched upwards): give --config, or --history PATH "
                          "(--no-history: record nothing)")
    history: Path | None = None
    if not args.no_history:
        history = args.history or (config.root / DEFAULT_HISTORY if config is not None else None)
    # Refused up front, as `runbooks verify` does: nothing is written when one of them cannot be.
    if history is not None:
        check_history(history)
    check_writable(args.report_dir, "--report-dir")
    if args.cucumber_json is not None:
        check_writable(args.cucumber_json.parent, "--cucumber-json")
    options = Options(fail_on=run.metadata["fail_on"], report_dir=args.report_dir, history=history,
                      cucumber_json=args.cucumber_json)
    published = publish(run, options)

    shard = run.metadata.get("shard") or {}
    print(f"runbooks merge: {shard.get('merged')} shard(s) of environment {run.metadata.get('environment')} "
          f"(plan {shard.get('plan')}), {len(run.records)} step record(s)")
    threshold = f" (failing on {run.metadata['fail_on']} and above)" if run.metadata["fail_on"] != "info" else ""
    if run.records:
        print(coverage_line(run.records))
    print(f"Summary: {summary_line(run.records)}{threshold} -> exit {run.exit_code}")
    print("Reports: " + ", ".join(str(p) for p in published.paths))
    if history is not None and published.run_id and (args.drift or args.notify) and config is not None:
        from .history_commands import report_drift

        env = config.environment(str(run.metadata["environment"]))
        report_drift(history, env.name, published.run_id, None, Redactor.for_environment(env), args.notify,
                     args.notify_always, args.report_url, run.exit_code, show=args.drift)
    if published.unwritten:
        print(f"runbooks: error: could not write {', '.join(published.unwritten)}; the merged run ended with exit "
              f"{run.exit_code}", file=sys.stderr)
        return 2
    return run.exit_code
