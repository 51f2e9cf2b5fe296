"""``runbooks``: the command line. ``verify`` runs runbooks through pytest and maps the outcome to an exit code.

Exit codes: 0 every automated check passed; 1 at least one FAIL (at or above ``--fail-on``); 2 bad
usage, configuration or feature file (one line naming it), or a guard step (wrong AWS account)
stopped the run; 3 no FAIL but at least one ERROR (could not verify); 130 interrupted (Ctrl-C), 143
terminated (SIGTERM: handled like Ctrl-C, the reports and the history are written).
A report that cannot be written at the end (its folder went away or became read-only during the run) is
also exit 2, in one line naming it and the run's own exit code; the summary, the history and the reports
that could be written are kept.
A history file that is not a runbooks history (garbage, damaged, another program's database) is exit 2
before anything runs, in one line with the command that moves it aside; a run that could not start
(the history locked by another process, the sandbox failed to start, any other failure while starting)
is exit 3 in one line — never "interrupted". A stdout closed by its reader (``runbooks steps | head``)
only discards the rest of the output: the command ends with its own exit code, quietly.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import NoReturn

from . import __version__
from .config import Config, ConfigError, Environment, load_config, load_optional_config
from .deadlines import seconds_option
from .errors import StartError, UsageError
from .features import parse_feature, runbook_files
from .history import DEFAULT_PATH as DEFAULT_HISTORY
from .preflight import check_paths, display_path
from .process import exit_status, signal_of, terminate_as_interrupt, tolerate_closed_stdout
from .reports import SEVERITIES
from .shards import Sharding, shard_option
from .tags import tag_filter
from .targets.aws import with_workers, workers_option

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_ERROR = 0, 1, 2, 3
SUBCOMMANDS = ("runbooks.history_commands", "runbooks.lint", "runbooks.render", "runbooks.iam_policy",
               "runbooks.init_project", "runbooks.guided", "runbooks.merge")
BUILTIN = ("verify", "steps")  # defined here: running one of them imports no other sub-command's module


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2 - argparse's own convention
        self.exit(EXIT_USAGE, f"runbooks: error: {message}\n")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Every sub-command; only the built-in ones when ``command`` is one of them (a faster start)."""
    parser = _Parser(prog="runbooks", description="Executable operational runbooks.")
    parser.add_argument("--version", action="version", version=f"runbooks {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    verify = sub.add_parser("verify", help="run runbooks against an environment")
    verify.add_argument("paths", nargs="*", type=Path, help="feature files or folders (default: features/)")
    verify.add_argument("--env", dest="env", help="environment from runbooks.toml (default: its default)")
    verify.add_argument("--tags", help="tag expression, e.g. '@severity:critical and not @manual'")
    verify.add_argument("--report-dir", type=Path, default=Path("reports"),
                        help="where results.json and junit.xml go (default: reports/)")
    verify.add_argument("--cucumber-json", type=Path, metavar="PATH", help="also write a Cucumber JSON report")
    verify.add_argument("--config", type=Path, help="path to runbooks.toml (default: search upwards)")
    verify.add_argument("--fail-on", choices=SEVERITIES, default="info",
                        help="lowest severity whose failures fail the run (default: info = any failure)")
    verify.add_argument("--waivers", type=Path, help="accepted exceptions (default: waivers.toml beside the config)")
    verify.add_argument("--history", type=Path, help="history database (default: .runbooks/history.sqlite); "
                        "a --shard run only reads it, to balance the shards by the previous run's durations")
    verify.add_argument("--no-history", action="store_true",
                        help="do not record this run (with --shard: do not read it either; balance by count)")
    verify.add_argument("--shard", type=shard_option, metavar="K/N",
                        help="run only the K-th of N parts (e.g. 2/3); records no history: `runbooks merge` "
                        "joins the shards' report folders into one run and records it")
    verify.add_argument("--drift", action="store_true", help="print what changed since the previous run")
    verify.add_argument("--notify", metavar="URL", default=os.environ.get("RUNBOOKS_NOTIFY_URL"),
                        help="post the drift summary to this webhook (default: $RUNBOOKS_NOTIFY_URL)")
    verify.add_argument("--notify-always", action="store_true", help="notify even when nothing changed")
    verify.add_argument("--report-url", help="link to the rendered report, included in notifications")
    verify.add_argument("--timeout", type=seconds_option, metavar="SECONDS",
                        help="run deadline: steps not run by then are ERROR, exit 3 (default: run_timeout_s; 0: none)")
    verify.add_argument("--step-timeout", type=seconds_option, metavar="SECONDS",
                        help="deadline of each step, retries included (default: step_timeout_s, else 300; 0: none)")
    verify.add_argument("--workers", type=workers_option, metavar="N",
                        help="AWS requests in flight at once (default: aws.max_workers, else 16; moto: 4)")
    verify.add_argument("-v", "--verbose", action="store_true", help="also show pytest's own output")
    shown = verify.add_mutually_exclusive_group()
    shown.add_argument("-q", "--quiet", dest="console", action="store_const", const="quiet", default="full",
                       help="print only what is broken (each distinct failure once) and the summary")
    shown.add_argument("--failures-only", dest="console", action="store_const", const="failures",
                       help="print only the FAIL and ERROR steps under their scenarios, then what is broken")
    verify.set_defaults(handler=cmd_verify)

    steps = sub.add_parser("steps", help="list the step vocabulary and what each step checks")
    steps.add_argument("--search", help="only steps whose phrase or description contain all these words")
    steps.add_argument("--markdown", action="store_true", help="print the Markdown catalogue (docs/steps.md)")
    steps.add_argument("--config", type=Path, help="path to runbooks.toml, whose project steps are listed too "
                       "(default: search upwards; none found: built-in and installed steps only)")
    steps.set_defaults(handler=cmd_steps)

    for name in () if command in BUILTIN else SUBCOMMANDS:  # each module adds its sub-command with register(sub)
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    args = build_parser(next((w for w in words if not w.startswith("-")), None)).parse_args(argv)
    try:
        with tolerate_closed_stdout(), fewer_collections(own_process=argv is None):
            return int(args.handler(args))
    except (ConfigError, UsageError) as exc:
        print(f"runbooks: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except StartError as exc:
        print(f"runbooks: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt as exc:
        print("runbooks: interrupted" + (" (SIGTERM)" if signal_of(exc) != signal.SIGINT else ""), file=sys.stderr)
        return exit_status(signal_of(exc))
    except BrokenPipeError:  # stdout closed where output is not guarded: the shell's code for it, quietly
        return exit_status(signal.SIGPIPE)
    except Exception as exc:  # noqa: BLE001 - a defect must still end in one line and "could not verify"
        print(f"runbooks: internal error: {type(exc).__name__}: {exc} (please report it)", file=sys.stderr)
        return EXIT_ERROR


@contextmanager
def fewer_collections(own_process: bool) -> Iterator[None]:
    """The garbage collector kept off what start-up built (modules, steps, configuration: it lives until the
    end) and its youngest generation collected less often: a one-step run spent ~60 ms in collections that
    found next to nothing, and ~80 ms more in the collection at interpreter exit. In the process's own
    command (``runbooks ...``: no ``argv``) everything stays frozen, so that exit collects nothing either;
    an in-process caller gets its collector back as it was."""
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(threshold[0], 20_000), *threshold[1:])
    try:
        yield
    finally:
        if own_process:
            gc.freeze()
        else:
            gc.set_threshold(*threshold)
            gc.unfreeze()


def preflight(config: Config, env: Environment, paths: list[Path]) -> tuple[list[Path], list[ModuleType]]:
    """The feature files to run and the step modules they run with; any problem is exit 2 before a check runs."""
    from .registry import load_step_modules

    modules = load_step_modules(config)
    if env.sandbox is not None:
        from .sandbox.stack import load_stack

        load_stack(env.sandbox.stack, env.sandbox.variant)  # a broken stack file: exit 2 before anything runs
    files = runbook_files(paths or [config.features])  # TEMPLATE.feature only when named
    if not files:
        raise UsageError(f"no .feature files under {', '.join(str(p) for p in paths or [config.features])}")
    docs = [(parse_feature(f), display_path(f, config.root)) for f in files]
    problems = check_paths(docs, env)
    if len(problems) == 1:  # one line, like any other mistake
        raise UsageError(f"{problems[0]} (nothing was run)")
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        raise UsageError(f"{len(problems)} problem(s) in feature files; nothing was run")
    return files, modules


def cmd_verify(args: argparse.Namespace) -> int:
    import pytest

    from .pytest_plugin import RunbooksPlugin
    from .result import RunStatus
    from .session import Options, Session
    from .sinks.console import ConsoleSink

    config = load_config(args.config)
    env = with_workers(config.environment(args.env), args.workers)
    files, step_modules = preflight(config, env, args.paths)
    tags = tag_filter(args.tags)
    if args.no_history and (args.drift or args.notify):
        raise UsageError("--drift and --notify compare with the history: they cannot be used with --no-history")
    if args.shard and (args.drift or args.notify):
        raise UsageError("--drift and --notify compare a whole run: give them to `runbooks merge`, "
                         "not to a --shard run")
    history = None if args.no_history else (args.history or config.root / DEFAULT_HISTORY)
    # A shard records nothing (`runbooks merge` records the whole run); it reads the history to balance.
    sharding = Sharding(args.shard, history, announce=True) if args.shard else None
    if sharding is not None:
        history = None
    options = Options(fail_on=args.fail_on, report_dir=args.report_dir, waivers=args.waivers, history=history,
                      cucumber_json=args.cucumber_json, sinks=[ConsoleSink(summary=True, mode=args.console)],
                      read_only_actions=role_actions(config, env, files),
                      run_timeout_s=args.timeout, step_timeout_s=args.step_timeout)
    if history and (args.drift or args.notify):
        from .sinks.drift import DriftSink

        options.sinks.append(DriftSink(history, show=args.drift, notify=args.notify,
                                       notify_always=args.notify_always, report_url=args.report_url))
    session = Session.from_options(config, env, options)
    print(f"runbooks verify: environment {session.env.name} ({session.env.aws.summary}), {len(files)} runbook(s)")

    plugin = RunbooksPlugin(session, step_modules=step_modules, preflight_done=True, tags=tags, shard=sharding)
    with isolated_from_host(), terminate_as_interrupt():
        code = pytest.main([*(str(f) for f in files), *verify_arguments(config.root, args.verbose)], plugins=[plugin])
    for error in plugin.collect_errors:
        print(error, file=sys.stderr)
    if plugin.interrupted and not session.records:
        print("runbooks: interrupted before any check ran", file=sys.stderr)
        return exit_status(plugin.interrupt_signal)
    if session.status is RunStatus.FAILED:  # could not start: the plugin said why, in one line
        return session.exit_code()
    if plugin.shard_log is not None and plugin.shard_log.empty and not plugin.collect_errors:
        return EXIT_USAGE if session.unwritten else EXIT_OK  # nothing to run here: its empty reports say so
    if not session.records:
        if code == pytest.ExitCode.NO_TESTS_COLLECTED or (tags and code == pytest.ExitCode.OK):
            raise UsageError(f"no scenario matches --tags {args.tags!r}" if tags else "no scenarios to run")
        if code in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.USAGE_ERROR) or plugin.collect_errors:
            return EXIT_USAGE
        return EXIT_ERROR
    if session.unwritten:  # the plugin said which report, in one line; the summary, history and others are kept
        return EXIT_USAGE
    return session.exit_code()


def role_actions(config: Config, env: Environment, files: list[Path]) -> tuple[str, ...] | None:
    """What the session policy of the environment's role allows: the actions these runbooks need (None
    when no role is assumed: neither aws.role_arn nor a role in each of aws.accounts / aws.organization)."""
    if not env.aws.role_arn and not env.aws.has_accounts:
        return None
    from .iam_policy import actions_for_files

    return actions_for_files(files, config.root)


def verify_arguments(root: Path, verbose: bool) -> list[str]:
    """pytest as ``runbooks verify`` runs it: its own (empty) configuration file, no conftest.py, no plugin
    the host repository installed — so its pytest.ini addopts, conftest imports and plugins cannot break
    or change a verification. Only pytest-bdd is loaded; the runbooks plugin is passed in."""
    args = [
        "-c", str(Path(__file__).with_name("pytest.ini")),
        "--rootdir", str(root),
        "--noconftest",
        "--disable-plugin-autoload",
        "-p", "pytest_bdd.plugin",
        "-p", "no:cacheprovider",
        "-p", "no:unraisableexception",  # its exit-time gc.collect() costs a one-step run ~50 ms; nothing shows it
        "--capture=no",  # the procedure is printed live
    ]  # fmt: skip
    return args if verbose else [*args, "-p", "no:terminal"]


@contextmanager
def isolated_from_host() -> Iterator[None]:
    """Without the host's PYTEST_ADDOPTS and PYTEST_PLUGINS for the length of the run."""
    saved = {name: os.environ.pop(name) for name in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS") if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def cmd_steps(args: argparse.Namespace) -> int:
    from .catalog import markdown_catalog, text_catalog

    config = load_optional_config(args.config)
    if args.markdown:
        sys.stdout.write(markdown_catalog(config))
        return EXIT_OK
    text = text_catalog(args.search, config)
    if not text.strip():
        print(f"no step matches {args.search!r}", file=sys.stderr)
        return EXIT_FAIL
    sys.stdout.write(text)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
