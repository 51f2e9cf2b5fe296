"""``runbooks init [DIR]``: a working runbook project — configuration with an embedded sandbox, the
runbook template and an example runbook, one custom step with its test, and CI workflows.

It never overwrites: when a file it would write exists, it lists them and writes nothing (exit 2),
unless ``--skip-existing`` asks it to write only the others.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path
from typing import Any

from . import __version__
from .errors import UsageError

SCAFFOLD = Path(__file__).with_name("scaffold")
RENAMED = {"gitignore": ".gitignore"}  # a packaged .gitignore would be read as the package's own
PLACEHOLDERS = {"__RUNBOOKS_VERSION__": __version__, "__TODAY__": date.today().isoformat()}


def register(sub: Any) -> None:
    parser = sub.add_parser("init", help="start a runbook project: config, sandbox, example runbook, step, CI")
    parser.add_argument("directory", nargs="?", type=Path, default=Path("."), help="where (default: here)")
    parser.add_argument("--skip-existing", action="store_true", help="write only the files that do not exist yet")
    parser.set_defaults(handler=cmd_init)


def scaffold() -> dict[Path, Path]:
    """Where each packaged file goes, relative to the project: {target: source}."""
    files = {}
    for source in sorted(SCAFFOLD.rglob("*")):
        if source.is_file() and "__pycache__" not in source.parts:
            relative = source.relative_to(SCAFFOLD)
            files[relative.with_name(RENAMED.get(relative.name, relative.name))] = source
    return files


def render(source: Path) -> str:
    text = source.read_text(encoding="utf-8")
    for placeholder, value in PLACEHOLDERS.items():
        text = text.replace(placeholder, value)
    return text


def cmd_init(args: argparse.Namespace) -> int:
    root: Path = args.directory
    if root.exists() and not root.is_dir():
        raise UsageError(f"{root}: not a directory")
    files = scaffold()
    existing = [target for target in files if (root / target).exists()]
    if existing and not args.skip_existing:
        for target in existing:
            print(f"runbooks init: {root / target} already exists", file=sys.stderr)
        raise UsageError(f"{len(existing)} file(s) already exist in {root}; nothing was written "
                         "(--skip-existing writes only the others)")
    written = [target for target in files if target not in existing]
    for target in written:
        path = root / target
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(files[target]), encoding="utf-8")
    for target in existing:
        print(f"  kept      {target}")
    for target in written:
        print(f"  created   {target}")
    where = "" if root.resolve() == Path.cwd().resolve() else f"cd {root} && "
    print(f"""
runbooks init: {len(written)} file(s) written in {root}. Next:
  pip install 'runbooks[sandbox]=={__version__}'
  {where}runbooks verify                          # the embedded sandbox: every check passes (exit 0)
  runbooks verify --env sandbox-drifted   # the same stack with drift: exit 1, and why
  pytest steps/                           # the tests of your own steps
Then describe your environments in runbooks.toml and copy features/TEMPLATE.feature for each procedure.""")
    return 0
