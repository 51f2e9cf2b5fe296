"""Helpers shared by more than one step domain."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from runbooks.sdk import CheckResult

F = TypeVar("F", bound=Callable[..., CheckResult])

EXCERPT_CHARS = 160  # how much of a body, a probe's output or an engine error a result quotes


def excerpt(text: str | None, limit: int = EXCERPT_CHARS) -> str:
    """``text`` on one line (whitespace runs collapsed), cut to ``limit`` characters with "..." when longer."""
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[:limit] + "..."


def tag_result(resource: str, tags: dict[str, str], key: str, value: str | None, hint: str) -> CheckResult:
    """Shared by every "has tag" check: PASS, or FAIL saying whether the tag is absent or different.

    ``value`` None means any value (the tag only has to be there)."""
    expected = f"tag {key!r}" if value is None else f"tag {key}={value}"
    if key in tags and (value is None or tags[key] == value):
        return CheckResult.passed(resource, expected, f"tag {key}={tags[key]}")
    if key in tags:
        observed = f"tag {key}={tags[key]}"
    else:
        observed = f"no tag {key!r} (tags: {', '.join(sorted(tags)) or 'none'})"
    return CheckResult.failed(resource, expected, observed, hint)


def more_doc(text: str) -> Callable[[F], F]:
    """Append ``text`` (indented as a docstring's body) to a check's docstring, below ``@check`` so that the
    catalogue reads the whole of it: the part several steps share is written once."""

    def add(func: F) -> F:
        func.__doc__ = (func.__doc__ or "").rstrip() + "\n" + text.rstrip()
        return func

    return add
