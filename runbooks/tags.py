"""Cucumber tag expressions (``--tags '@integrity and not @slow'``), parsed by the cucumber library."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cucumber_tag_expressions import TagExpressionError, parse

from .errors import UsageError


class TagFilter:
    """Selects scenarios by their tags (feature's and scenario's, written with or without ``@``)."""

    def __init__(self, text: str) -> None:
        self.text = text
        try:
            self._expression: Any = parse(text.replace("@", ""))
        except TagExpressionError as exc:
            reason = str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__  # one line, no caret art
            raise UsageError(f"--tags: invalid tag expression {text!r}: {reason}") from None

    def selects(self, tags: Iterable[str]) -> bool:
        return bool(self._expression.evaluate([t.lstrip("@") for t in tags]))


def tag_filter(text: str | None) -> TagFilter | None:
    return TagFilter(text) if text and text.strip() else None
