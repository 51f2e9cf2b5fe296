"""Placeholder: being written (replace this whole module). Exposes register(sub) for runbooks/cli.py."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    parser = sub.add_parser("render", help="(not yet available)")
    parser.set_defaults(handler=_handler)


def _handler(args: argparse.Namespace) -> int:
    raise NotImplementedError
