"""Helpers shared by more than one step domain."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from runbooks.sdk import CheckResult, CouldNotCheck, Finding

F = TypeVar("F", bound=Callable[..., CheckResult])
R = TypeVar("R")

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


def read_or_error(resource: str, manual: str, read: Callable[[], R]) -> R:
    """``read()``; when the server cannot answer, the check ends as an ERROR naming it, with the manual command."""
    try:
        return read()
    except CouldNotCheck as exc:
        raise Finding(CheckResult.errored(resource, exc.fault.reason, exc.fault.hint, manual_command=manual)) \
            from None


def target_settings(get: Callable[[], Any], resource: str) -> Any:
    """A target's settings for this environment; an environment without that target ends the check as an ERROR."""
    try:
        return get()
    except CouldNotCheck as exc:
        raise Finding(CheckResult.errored(resource, exc.fault.reason, exc.fault.hint)) from None
