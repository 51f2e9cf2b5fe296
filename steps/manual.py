"""Human-only steps: shown in the procedure and the reports, never run, never failed."""

from __future__ import annotations

from pytest_bdd import parsers

from runbooks.sdk import CheckContext, CheckResult, Outcome, check

TITLE = "Manual steps"  # its heading in the step catalogue
CATALOG_ORDER = 110


@check("manual: {action}", parser=parsers.re(r"manual:\s*(?P<action>.+)"))
def manual_step(ctx: CheckContext, action: str) -> CheckResult:
    """A step a person performs (paging, approvals, judgement calls). Recorded as MANUAL; counts
    against automation coverage."""
    return CheckResult(Outcome.MANUAL, resource="", observed="performed by a person", hint=action)
