"""The one "did you mean" for every unknown name: environments, keys, services, hosts, steps."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(name: str, choices: Iterable[str], *, known: str = "known") -> str:
    """``; did you mean 'x'?`` for close matches, else ``; known: a, b`` (empty when nothing is known)."""
    options = sorted(set(choices))
    close = difflib.get_close_matches(name, options, n=3, cutoff=0.5)
    if close:
        return "; did you mean " + " or ".join(repr(c) for c in close) + "?"
    if known == "defined":  # names an environment declares: say so even when there are none
        return "; defined: " + (", ".join(options) or "none")
    return f"; {known}: " + ", ".join(options) if options else ""
