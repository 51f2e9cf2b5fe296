"""Helpers shared by more than one step domain."""

from __future__ import annotations

from runbooks.result import CheckResult


def tag_result(resource: str, tags: dict[str, str], key: str, value: str, hint: str) -> CheckResult:
    """Shared by every "has tag" check: PASS, or FAIL saying whether the tag is absent or different."""
    expected = f"tag {key}={value}"
    if tags.get(key) == value:
        return CheckResult.passed(resource, expected, f"tag {key}={value}")
    if key in tags:
        observed = f"tag {key}={tags[key]}"
    else:
        observed = f"no tag {key!r} (tags: {', '.join(sorted(tags)) or 'none'})"
    return CheckResult.failed(resource, expected, observed, hint)
