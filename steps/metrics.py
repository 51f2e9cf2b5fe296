"""A service's Prometheus ``/metrics`` page, read without a Prometheus server: a metric's value, a ratio of
counters, their rate over a window between two scrapes, and a percentile estimated from histogram buckets.

The page is one process's view since it started. The cumulative steps (``the metric ...``, ``the ratio of
... is below``) read it once per run: 3000 good requests followed by a burst of errors still look fine
there, and an old burst still looks bad after it ended. The windowed steps (``... over N s ...``) read it
twice, N seconds apart, and judge only what happened in between, as PromQL's ``increase``/``rate`` do.
Behind a load balancer the page comes from one instance: judge a fleet with the Prometheus steps.
"""

from __future__ import annotations

import math
import shlex
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from runbooks.sdk import CheckContext, CheckResult, Finding, check, did_you_mean

from ._prometheus import (
    Increase,
    Matcher,
    Quantile,
    Sample,
    Selector,
    histogram_quantile,
    increases,
    label_number,
    never_matches,
    parse_exposition,
    parse_selector,
    validate_selector,
)
from ._shared import excerpt, more_doc
from .http import _get, curl_base

TITLE = "Service metrics (/metrics)"  # its heading in the step catalogue
CATALOG_ORDER = 81

KEPT_SCRAPES = 20  # per service and run: the scrapes later windowed steps may start from


@dataclass(frozen=True)
class MetricsPage:
    """One read of a service's ``/metrics``: the samples, or the ERROR that reading it gave."""

    url: str
    curl: str
    samples: tuple[Sample, ...] = ()
    error: CheckResult | None = None
    taken: float = 0.0  # time.monotonic() when it was read

    def grep(self, *names: str) -> str:
        """The command that shows these metrics of the page (URL quoted: '&' and '(' are shell syntax)."""
        unique = list(dict.fromkeys(names))  # a ratio of one metric's series names it once
        pattern = unique[0] if len(unique) == 1 else "(" + "|".join(unique) + ")"
        flag = "-E " if len(unique) > 1 else ""
        return f"{self.curl} {shlex.quote(self.url)} | grep {flag}{shlex.quote('^' + pattern)}"


def _fetch_metrics(ctx: CheckContext, service: str) -> MetricsPage:
    try:
        answer = _get(ctx, service, "/metrics")
    except Finding as exc:
        return MetricsPage(exc.result.resource, curl_base(ctx.service(service)), error=exc.result)
    url, curl, manual, response = answer.url, answer.curl, answer.manual, answer.response
    taken = time.monotonic()
    if response.status_code != 200:
        return MetricsPage(url, curl, error=CheckResult.errored(
            url, f"/metrics answered HTTP {response.status_code}: {excerpt(response.text)}",
            f"check that {service} exposes Prometheus metrics at /metrics", manual_command=manual))
    try:
        return MetricsPage(url, curl, tuple(parse_exposition(response.text)), taken=taken)
    except ValueError as exc:
        return MetricsPage(url, curl, error=CheckResult.errored(
            url, f"cannot read the Prometheus text format at {exc}",
            "check that /metrics serves the Prometheus text format", manual_command=manual))


def metrics_page(ctx: CheckContext, service: str) -> MetricsPage:
    """The service's metrics, fetched once per run (an unreachable page is remembered too, so that every
    metric step does not wait for the same timeout). ``When I GET "/metrics"`` still fetches afresh."""
    page: MetricsPage = ctx.resource(("http.metrics", service), lambda: _fetch_metrics(ctx, service))
    if page.error is not None:
        raise Finding(page.error)
    return page


@dataclass
class _Scrapes:
    """The successful scrapes of one service in this run, oldest first."""

    pages: list[MetricsPage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _scrape(ctx: CheckContext, service: str) -> MetricsPage:
    page = _fetch_metrics(ctx, service)
    if page.error is not None:
        raise Finding(page.error)
    return page


def scrape_window(ctx: CheckContext, service: str, seconds: int) -> tuple[MetricsPage, MetricsPage]:
    """Two scrapes of the service at least ``seconds`` apart, the later one fresh. A scrape this run took
    earlier is the start when it is between ``seconds`` and twice that old (several windowed steps then
    wait once); otherwise the step scrapes, waits ``seconds`` and scrapes again."""
    if seconds < 1:
        raise Finding(CheckResult.errored(f"{service} /metrics", f"a window of {seconds} s measures nothing",
                                          "give a window of at least 1 s (30 to 300 s against a real service)"))
    store: _Scrapes = ctx.resource(("metrics.scrapes", service), _Scrapes)
    end = _scrape(ctx, service)
    with store.lock:
        old_enough = [p for p in store.pages if end.taken - p.taken >= seconds]
    start = old_enough[-1] if old_enough and end.taken - old_enough[-1].taken <= 2 * seconds else None
    if start is None:
        start = end
        time.sleep(seconds)
        end = _scrape(ctx, service)
    with store.lock:
        store.pages = sorted({id(p): p for p in [*store.pages, start, end]}.values(),
                             key=lambda p: p.taken)[-KEPT_SCRAPES:]
    return start, end


def window_manual(page: MetricsPage, seconds: int, *names: str) -> str:
    command = page.grep(*names)
    return f"{command}; sleep {seconds}; {command}"


def number(value: float) -> str:
    if math.isfinite(value) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return format(value, ".6g")


def series(count: int) -> str:
    return "1 series" if count == 1 else f"sum of {count} series"


def _select(page: MetricsPage, text: str) -> tuple[Selector, list[Sample]]:
    selector = parse_selector(text)
    return selector, [s for s in page.samples if selector.matches(s)]


def _close_names(page: MetricsPage, name: str) -> str:
    suggestion = did_you_mean(name, {s.name for s in page.samples})
    return suggestion if suggestion.startswith("; did you mean") else ""


def _no_series(page: MetricsPage, selector: Selector, expected: str, manual: str, role: str = "") -> Finding:
    """No series matches: ERROR when the selector can never match as written (a label the metric lacks, a
    value of another form than the label's), else FAIL (the metric is missing, or no such series yet)."""
    reason = never_matches(selector, page.samples)
    if reason is not None and not reason.startswith("no metric named"):
        return Finding(CheckResult.errored(
            page.url, f"no series matches {role}{selector}: {reason}",
            "fix the selector against the page (the manual command): label names and values as the service "
            "writes them", expected=expected, manual_command=manual))
    present = (reason + _close_names(page, selector.name) if reason
               else f"{selector.name} exists, but no series has those labels")
    return Finding(CheckResult.failed(
        page.url, expected, f"no series matches {role}{selector} ({present})",
        "check the metric name and labels against the page (the manual command); a labelled series "
        "appears only once it has been observed", manual_command=manual))


_KIND_WORDS = {"bucket": "histogram bucket", "quantile": "summary quantile", "timestamp": "creation time"}
SHOWN_SERIES = 10


def _ambiguous(selector: Selector, matched: Sequence[Sample]) -> tuple[str, str] | None:
    """Why a sum of the matched series would mean nothing, and how to narrow the selector (None: it is a sum
    of counters, or of histogram buckets of one ``le``, or a single series)."""
    kinds = {s.kind for s in matched}
    if len(matched) < 2 or kinds == {"counter"}:
        return None
    if kinds == {"bucket"} and len({label_number(s.labels.get("le", "")) for s in matched}) == 1:
        return None
    keys = sorted({k for s in matched for k in s.labels if len({m.labels.get(k) for m in matched}) > 1})
    sets = ["{" + ",".join(str(Matcher(k, "=", s.labels[k])) for k in keys if k in s.labels) + "}" for s in matched]
    shown = ", ".join(sets[:SHOWN_SERIES]) + (f" and {len(sets) - SHOWN_SERIES} more" if len(sets) > SHOWN_SERIES
                                               else "")
    kind = " / ".join(sorted(_KIND_WORDS.get(k, k) for k in kinds))
    observed = (f"the selector {selector} is ambiguous: it matches {len(matched)} {kind} series ({shown}), "
                "and a sum of them means nothing")
    first = matched[0].labels
    narrowed = Selector(selector.name, tuple(m for m in selector.matchers if m.label not in keys)
                        + tuple(Matcher(k, "=", first[k]) for k in keys if k in first))
    return observed, f"narrow it with labels to one series, e.g. {narrowed}"


def _refuse_timestamps(page: MetricsPage, selector: Selector, matched: Sequence[Sample], expected: str,
                       manual: str) -> None:
    if any(s.kind == "timestamp" for s in matched):
        raise Finding(CheckResult.errored(
            page.url, f"{selector} is the time its series was created (a _created sample), not a measurement",
            f"select the series itself, e.g. {selector.name.removesuffix('_created')}_total",
            expected=expected, manual_command=manual))


def _compare(value: float, threshold: float, above: bool) -> bool:
    return value > threshold if above else value < threshold


# --- one value ----------------------------------------------------------------------------------------


def _metric(ctx: CheckContext, selector: str, service: str, threshold: float, above: bool) -> CheckResult:
    page = metrics_page(ctx, service)
    parsed, matched = _select(page, selector)
    expected = f"{parsed} {'above' if above else 'below'} {threshold:g}"
    manual = page.grep(parsed.name)
    if not matched:
        raise _no_series(page, parsed, expected, manual)
    _refuse_timestamps(page, parsed, matched, expected, manual)
    ambiguous = _ambiguous(parsed, matched)
    if ambiguous is not None:
        return CheckResult.errored(page.url, ambiguous[0], ambiguous[1], expected=expected, manual_command=manual)
    total = sum((s.value for s in matched), 0.0)
    observed = f"{number(total)} ({series(len(matched))})"
    evidence = {"value": total, "series": len(matched)}
    if math.isnan(total):
        return CheckResult.errored(page.url, f"{observed}: not a number", "the service reports NaN for it: check "
                                   "how it computes the value", expected=expected, manual_command=manual)
    if _compare(total, threshold, above):
        return CheckResult.passed(page.url, expected, observed, manual_command=manual, evidence=evidence)
    return CheckResult.failed(page.url, expected, observed,
                              f"{service} reports {parsed} at {number(total)}: find what drives it (dashboards, "
                              "logs, recent deployments); if the threshold is wrong, change the runbook",
                              manual_command=manual, evidence=evidence)


@check(
    'the metric "{selector}" of "{service}" is below {threshold:g}',
    manual="curl -sS <{service} URL>/metrics | grep '<name of {selector}>'",
    validators={"selector": validate_selector},
)
def metric_below(ctx: CheckContext, selector: str, service: str, threshold: float) -> CheckResult:
    """The value of a metric on the service's Prometheus ``/metrics`` page is strictly below the threshold.
    The selector is a sample name with optional label matchers, ``name{a="x",b!="y",c=~"5..",d!~"GET|HEAD"}``:
    ``=``/``!=`` compare the value (``le`` and ``quantile`` as numbers: ``le="1"`` is ``le="1.0"``),
    ``=~``/``!~`` match it against a regular expression that must match the whole value (Python ``re``),
    and a label a series lacks counts as "" (as in PromQL); series with further labels match too. Several
    matching series are summed only when that means something: counters (``# TYPE`` counter, or a name
    ending ``_total``/``_count``/``_sum``) and histogram ``_bucket`` series of one ``le``. For gauges,
    summary quantiles and untyped series a selector matching more than one series is an ERROR that lists
    the label sets to narrow it by; a ``_created`` sample (a creation time) is refused. FAIL when the
    metric or a series with those labels is missing; ERROR when the selector cannot match as written (a
    label the metric does not have, or a value of another form than the label takes: ``status="500"``
    where the service writes ``2xx``/``5xx``), or when ``/metrics`` cannot be read. The value is what this
    process counted since it started: for what is happening now, use a step ``... over N s``."""
    return _metric(ctx, selector, service, threshold, above=False)


@check(
    'the metric "{selector}" of "{service}" is above {threshold:g}',
    manual="curl -sS <{service} URL>/metrics | grep '<name of {selector}>'",
    validators={"selector": validate_selector},
)
def metric_above(ctx: CheckContext, selector: str, service: str, threshold: float) -> CheckResult:
    """The value of a metric on the service's ``/metrics`` page is strictly above the threshold (e.g. free
    workers, a cache's size). Selectors, sums and outcomes as for ``the metric ... is below``."""
    return _metric(ctx, selector, service, threshold, above=True)


# --- a ratio of counters since the process started -------------------------------------------------------


@dataclass(frozen=True)
class _Part:
    """One side of a ratio: its selector, the series it matched and their sum (increase, for a window)."""

    selector: Selector
    matched: tuple[Sample, ...]
    total: float
    note: str  # "1 series", "no series yet, counted as 0", ...
    resets: int = 0


def _part(page: MetricsPage, text: str, role: str, expected: str, manual: str, *, may_be_absent: bool,
          before: MetricsPage | None = None) -> _Part:
    """The series of one side of a ratio (or a rate) on the page, summed; with ``before``, their increase
    since that scrape. A side may be absent (counted as 0) only when its series may simply not have been
    observed yet (see :func:`never_matches`)."""
    selector, matched = _select(page, text)
    if not matched:
        reason = never_matches(selector, page.samples)
        if not may_be_absent or reason is not None:
            raise _no_series(page, selector, expected, manual, role)
        return _Part(selector, (), 0.0, f"no series of {selector} yet, counted as 0")
    _refuse_timestamps(page, selector, matched, expected, manual)
    ambiguous = _ambiguous(selector, matched)
    if ambiguous is not None:
        raise Finding(CheckResult.errored(page.url, f"{role}{ambiguous[0]}", ambiguous[1], expected=expected,
                                          manual_command=manual))
    if before is None:
        return _Part(selector, tuple(matched), sum((s.value for s in matched), 0.0), series(len(matched)))
    not_counters = sorted({s.kind for s in matched} - {"counter", "bucket"})
    if not_counters:
        raise Finding(CheckResult.errored(
            page.url, f"{role}{selector} matches {' / '.join(_KIND_WORDS.get(k, k) for k in not_counters)} "
            "series: their change over a window is not a count",
            "select counters (a name ending _total/_count/_sum or _bucket, or # TYPE counter)",
            expected=expected, manual_command=manual))
    grown: list[Increase] = increases(before.samples, matched)
    resets = sum(1 for g in grown if g.reset)
    note = series(len(matched)) + (f", {resets} reset (restarted?)" if resets else "")
    return _Part(selector, tuple(matched), sum((g.sample.value for g in grown), 0.0), note, resets)


def _ratio(ctx: CheckContext, numerator: str, denominator: str, service: str, percent: float, above: bool,
           seconds: int | None = None) -> CheckResult:
    if seconds is None:
        page, before, span = metrics_page(ctx, service), None, ""
    else:
        before, page = scrape_window(ctx, service, seconds)
        span = f" over the last {page.taken - before.taken:.1f} s"
    num_name, den_name = parse_selector(numerator).name, parse_selector(denominator).name
    manual = (page.grep(num_name, den_name) if seconds is None
              else window_manual(page, seconds, num_name, den_name))
    comparison = "above" if above else "below"
    expected = (f"{parse_selector(numerator)} / {parse_selector(denominator)}"
                f"{f' over {seconds} s' if seconds else ''} {comparison} {percent:g}%")
    den = _part(page, denominator, "denominator ", expected, manual, may_be_absent=False, before=before)
    num = _part(page, numerator, "numerator ", expected, manual, may_be_absent=True, before=before)
    counts = f"numerator {num.note}; denominator {den.note}"
    evidence = {"numerator": num.total, "denominator": den.total, "window_s": round(page.taken - before.taken, 3)
                if before else None}
    if den.total == 0:
        if num.total == 0 and not above:
            return CheckResult.passed(page.url, expected, f"no traffic{span} (denominator 0; {counts})",
                                      manual_command=manual, evidence=evidence)
        if num.total == 0:
            return CheckResult.errored(page.url, f"no traffic{span} (denominator 0; {counts}): the ratio is "
                                       "undefined", "check again when the service has traffic"
                                       + (", or widen the window" if seconds else ""),
                                       expected=expected, manual_command=manual, evidence=evidence)
        return CheckResult.failed(page.url, expected,
                                  f"numerator {number(num.total)} but denominator 0{span}: ratio undefined ({counts})",
                                  "the selectors do not count the same thing: check them against the page",
                                  manual_command=manual, evidence=evidence)
    ratio = num.total / den.total * 100
    observed = f"{ratio:.3g}% ({number(num.total)} / {number(den.total)}{span}; {counts})"
    evidence["percent"] = ratio
    if _compare(ratio, percent, above):
        return CheckResult.passed(page.url, expected, observed, manual_command=manual, evidence=evidence)
    hint = (f"{service} is over budget: check its logs, dependencies and recent deployments; roll back if it "
            "started with a release") if not above else (
            f"{service} is under its target: check what the numerator counts (logs, dashboards, recent changes)")
    return CheckResult.failed(page.url, expected, observed, hint, manual_command=manual, evidence=evidence)


_RATIO_DOC = """
    Every matching series of each selector is summed, which is meant for counters (e.g. 5xx responses to
    all responses); selectors matching gauges, summary quantiles or histogram buckets of several ``le``
    are an ERROR (a sum of them means nothing). A numerator with no matching series counts as 0 only when
    its series may simply not have been observed yet (its metric is on the page and the label values it
    asks for have the form of those the page has: ``status="5xx"`` beside ``2xx``, ``4xx``); a numerator
    that can never match as written (``status="500"`` where the service writes ``5xx``, a label the
    metric does not have) is an ERROR saying so, an unknown metric name or a denominator with no series
    a FAIL."""


@check(
    'the ratio of "{numerator}" to "{denominator}" on "{service}" is below {percent:g}%',
    manual="curl -sS <{service} URL>/metrics | grep -E '<names of {numerator} and {denominator}>'",
    validators={"numerator": validate_selector, "denominator": validate_selector},
)
@more_doc(_RATIO_DOC)
def metric_ratio_below(ctx: CheckContext, numerator: str, denominator: str, service: str, percent: float
                       ) -> CheckResult:
    """sum(numerator) / sum(denominator) * 100 on the service's ``/metrics`` page, since the process
    started, is strictly below the percentage. Hours of good traffic hide a burst of errors in these
    totals, and an old burst stays in them after it ended: to judge what is happening now use ``... over
    N s is below``. With a denominator of 0 the ratio is undefined: PASS, observed "no traffic", only when
    the numerator is 0 too; a numerator above 0 then is a FAIL (the counters contradict each other)."""
    return _ratio(ctx, numerator, denominator, service, percent, above=False)


@check(
    'the ratio of "{numerator}" to "{denominator}" on "{service}" is above {percent:g}%',
    manual="curl -sS <{service} URL>/metrics | grep -E '<names of {numerator} and {denominator}>'",
    validators={"numerator": validate_selector, "denominator": validate_selector},
)
@more_doc(_RATIO_DOC)
def metric_ratio_above(ctx: CheckContext, numerator: str, denominator: str, service: str, percent: float
                       ) -> CheckResult:
    """sum(numerator) / sum(denominator) * 100 on the service's ``/metrics`` page, since the process
    started, is strictly above the percentage (e.g. cache hits to lookups). With a denominator of 0 (no
    traffic) the ratio is undefined: ERROR."""
    return _ratio(ctx, numerator, denominator, service, percent, above=True)



# --- over a window: two scrapes N seconds apart ---------------------------------------------------------

_WINDOW_DOC = """
    The window is two scrapes of ``/metrics``: the step reads the page, waits N seconds and reads it again
    (a scrape an earlier windowed step of the run took between N and 2N seconds ago serves as the start,
    so several such steps wait once); observed names the real span. Each series counts its increase in
    between: a series that appeared counts whole, one that went down (the process restarted) counts its
    new value, as PromQL's ``increase`` without extrapolation. Only counters and histogram buckets have an
    increase: other series are an ERROR."""


def validate_window(text: str) -> None:
    """A window of at least 1 second."""
    if int(text) < 1:
        raise ValueError("a window must be at least 1 s")


@check(
    'the ratio of "{numerator}" to "{denominator}" on "{service}" over {seconds:d} s is below {percent:g}%',
    manual="curl -sS <{service} URL>/metrics | grep -E '<names of {numerator} and {denominator}>'; "
           "sleep {seconds}; (the same again, then compare the increases)",
    validators={"numerator": validate_selector, "denominator": validate_selector, "seconds": validate_window},
)
@more_doc(_WINDOW_DOC)
def metric_ratio_over_window_below(ctx: CheckContext, numerator: str, denominator: str, service: str,
                                   seconds: int, percent: float) -> CheckResult:
    """increase(numerator) / increase(denominator) * 100 between two scrapes of the service's ``/metrics``
    ``seconds`` apart is strictly below the percentage: the error ratio of the traffic in that window,
    whatever the process counted before. No traffic in the window (the denominator did not grow) is a
    PASS, observed "no traffic", when the numerator did not grow either. Selectors as for ``the ratio of
    ... is below``."""
    return _ratio(ctx, numerator, denominator, service, percent, above=False, seconds=seconds)


@check(
    'the ratio of "{numerator}" to "{denominator}" on "{service}" over {seconds:d} s is above {percent:g}%',
    manual="curl -sS <{service} URL>/metrics | grep -E '<names of {numerator} and {denominator}>'; "
           "sleep {seconds}; (the same again, then compare the increases)",
    validators={"numerator": validate_selector, "denominator": validate_selector, "seconds": validate_window},
)
@more_doc(_WINDOW_DOC)
def metric_ratio_over_window_above(ctx: CheckContext, numerator: str, denominator: str, service: str,
                                   seconds: int, percent: float) -> CheckResult:
    """increase(numerator) / increase(denominator) * 100 between two scrapes ``seconds`` apart is strictly
    above the percentage (e.g. requests answered within 0.5 s, ``..._bucket{le="0.5"}`` to ``..._count``).
    No traffic in the window is an ERROR: the ratio is undefined."""
    return _ratio(ctx, numerator, denominator, service, percent, above=True, seconds=seconds)




def _rate(ctx: CheckContext, selector: str, service: str, seconds: int, per_second: float, above: bool
          ) -> CheckResult:
    before, page = scrape_window(ctx, service, seconds)
    span = page.taken - before.taken
    name = parse_selector(selector).name
    manual = window_manual(page, seconds, name)
    expected = f"rate of {parse_selector(selector)} over {seconds} s {'above' if above else 'below'} " \
               f"{per_second:g} per second"
    part = _part(page, selector, "", expected, manual, may_be_absent=True, before=before)
    rate = part.total / span if span > 0 else 0.0
    observed = f"{rate:.3g} per second ({number(part.total)} in {span:.1f} s; {part.note})"
    evidence = {"increase": part.total, "window_s": round(span, 3), "per_second": rate}
    if _compare(rate, per_second, above):
        return CheckResult.passed(page.url, expected, observed, manual_command=manual, evidence=evidence)
    hint = (f"{service} counts {part.selector} faster than expected: find what drives it (logs, dashboards, "
            "recent deployments)") if not above else (
            f"{service} counts {part.selector} slower than expected: check that traffic reaches it (load balancer, "
            "DNS, upstream callers)")
    return CheckResult.failed(page.url, expected, observed, hint, manual_command=manual, evidence=evidence)


@check(
    'the rate of "{selector}" on "{service}" over {seconds:d} s is below {per_second:g} per second',
    manual="curl -sS <{service} URL>/metrics | grep '<name of {selector}>'; sleep {seconds}; (the same again)",
    validators={"selector": validate_selector, "seconds": validate_window},
)
@more_doc(_WINDOW_DOC)
def metric_rate_below(ctx: CheckContext, selector: str, service: str, seconds: int, per_second: float
                      ) -> CheckResult:
    """The increase of the matching counters between two scrapes ``seconds`` apart, per second, is strictly
    below the rate (e.g. errors per second). A counter with no series yet counts as 0 when its series may
    simply not have been observed yet (as the numerator of a ratio)."""
    return _rate(ctx, selector, service, seconds, per_second, above=False)


@check(
    'the rate of "{selector}" on "{service}" over {seconds:d} s is above {per_second:g} per second',
    manual="curl -sS <{service} URL>/metrics | grep '<name of {selector}>'; sleep {seconds}; (the same again)",
    validators={"selector": validate_selector, "seconds": validate_window},
)
@more_doc(_WINDOW_DOC)
def metric_rate_above(ctx: CheckContext, selector: str, service: str, seconds: int, per_second: float
                      ) -> CheckResult:
    """The increase of the matching counters between two scrapes ``seconds`` apart, per second, is strictly
    above the rate: traffic reaches the service (e.g. after a switch-over)."""
    return _rate(ctx, selector, service, seconds, per_second, above=True)



# --- a percentile from histogram buckets ---------------------------------------------------------------


def validate_percentile(text: str) -> None:
    """A percentile strictly between 0 and 100."""
    if not 0 < float(text) < 100:
        raise ValueError("a percentile is between 0 and 100 (exclusive), e.g. 95 or 99.9")


def validate_histogram(text: str) -> None:
    """A histogram's name with optional label matchers; no ``le`` (the percentile picks the buckets)."""
    selector = parse_selector(text)
    if any(m.label == "le" for m in selector.matchers):
        raise ValueError("leave le out: the percentile is estimated from all the buckets")


def _buckets(page: MetricsPage, histogram: str, expected: str, manual: str) -> tuple[Selector, list[Sample]]:
    """The ``_bucket`` series of the histogram that the selector's labels match (every ``le``)."""
    selector = parse_selector(histogram)
    family = selector.name.removesuffix("_bucket")
    wanted = Selector(family + "_bucket", selector.matchers)
    matched = [s for s in page.samples if wanted.matches(s) and s.kind == "bucket"]
    if matched:
        return wanted, matched
    if any(s.name == family and s.kind == "quantile" for s in page.samples):
        raise Finding(CheckResult.errored(
            page.url, f"{family} is a summary, not a histogram: its quantiles were computed by the service",
            f'read the quantile it reports with the metric step, e.g. the metric "{family}{{quantile="0.95"}}"',
            expected=expected, manual_command=manual))
    if not any(s.name == wanted.name for s in page.samples):
        suggestion = did_you_mean(family, {s.name.removesuffix("_bucket") for s in page.samples
                                           if s.kind == "bucket"})
        raise Finding(CheckResult.failed(
            page.url, expected, f"no histogram named {family} (no {wanted.name} series){suggestion}",
            "check the histogram's name against the page (the manual command)", manual_command=manual))
    raise _no_series(page, wanted, expected, manual)


def _bucket_counts(page: MetricsPage, samples: Sequence[Sample], expected: str, manual: str
                   ) -> list[tuple[float, float]]:
    counts: list[tuple[float, float]] = []
    for sample in samples:
        bound = label_number(sample.labels.get("le", ""))
        if bound is None:
            raise Finding(CheckResult.errored(
                page.url, f"a {sample.name} series has no numeric le label ({sample.labels})",
                "the page's histogram is malformed: check the service's instrumentation", expected=expected,
                manual_command=manual))
        counts.append((bound, sample.value))
    return counts


def _percentile(ctx: CheckContext, percentile: float, histogram: str, service: str, seconds: float,
                window_s: int | None) -> CheckResult:
    if window_s is None:
        page, before, span = metrics_page(ctx, service), None, ""
    else:
        before, page = scrape_window(ctx, service, window_s)
        span = f" in the last {page.taken - before.taken:.1f} s"
    name = f"p{percentile:g}"
    try:
        validate_histogram(histogram)
        validate_percentile(str(percentile))
    except ValueError as exc:
        raise Finding(CheckResult.errored(f"{service} /metrics", f"{histogram}: {exc}", "fix the step")) from None
    family = parse_selector(histogram).name.removesuffix("_bucket")
    manual = page.grep(family + "_bucket") if window_s is None else window_manual(page, window_s, family + "_bucket")
    expected = (f"{name} of {histogram}{f' over {window_s} s' if window_s else ''} below {seconds:g} s")
    selector, matched = _buckets(page, histogram, expected, manual)
    if before is not None:
        matched = [g.sample for g in increases(before.samples, matched)]
    counts = _bucket_counts(page, matched, expected, manual)
    groups = len({tuple(sorted((k, v) for k, v in s.labels.items() if k != "le")) for s in matched})
    try:
        estimate = histogram_quantile(percentile / 100, counts)
    except ValueError as exc:
        return CheckResult.errored(page.url, f"{selector} cannot give a percentile: {exc}",
                                   "the page's histogram is malformed: check the service's instrumentation",
                                   expected=expected, manual_command=manual)
    if estimate is None:
        return CheckResult.errored(page.url, f"no observations{span} ({groups} series of {selector}): nothing to "
                                   "estimate a percentile from", "check again when the service has traffic"
                                   + (", or widen the window" if window_s else ""),
                                   expected=expected, manual_command=manual)
    return _judge_percentile(page, name, estimate, counts, seconds, expected, manual, span, groups)


def _judge_percentile(page: MetricsPage, name: str, estimate: Quantile, counts: list[tuple[float, float]],
                      seconds: float, expected: str, manual: str, span: str, groups: int) -> CheckResult:
    merged: dict[float, float] = {}
    for bound, count in counts:
        merged[bound] = merged.get(bound, 0.0) + count
    within = merged.get(seconds)
    share = f"; {within / estimate.observations:.1%} within {seconds:g} s" if within is not None else ""
    basis = f"{number(estimate.observations)} observations{span}, {series(groups)}{share}"
    evidence = {"estimate_s": estimate.value, "observations": estimate.observations,
                "buckets": [[b if math.isfinite(b) else "+Inf", c] for b, c in sorted(merged.items())]}
    if estimate.beyond:
        observed = (f"{name} above {estimate.value:g} s, the highest finite bucket: more than "
                    f"{100 - float(name[1:]):g}% of the observations are slower ({basis})")
        if seconds <= estimate.value:
            return CheckResult.failed(page.url, expected, observed, _SLOW, manual_command=manual, evidence=evidence)
        return CheckResult.errored(page.url, observed, f"the buckets end at {estimate.value:g} s, so whether {name} "
                                   f"is below {seconds:g} s cannot be told: add buckets up to and above {seconds:g} s "
                                   "to the histogram", expected=expected, manual_command=manual, evidence=evidence)
    observed = (f"{name} ≈ {estimate.value:.3g} s (interpolated in the bucket {estimate.lower:g}-{estimate.upper:g} s; "
                f"{basis})")
    if estimate.value < seconds:
        return CheckResult.passed(page.url, expected, observed, manual_command=manual, evidence=evidence)
    return CheckResult.failed(page.url, expected, observed, _SLOW, manual_command=manual, evidence=evidence)


_SLOW = ("the service is slow: check its dependencies (database, caches, downstream calls), saturation (CPU, "
         "memory, workers) and recent deployments")
_PERCENTILE_DOC = """
    The estimate is PromQL's ``histogram_quantile``: the buckets (cumulative counts per ``le``) of every
    matching series are summed per bound (``sum by (le)``), and the value is interpolated linearly inside
    the bucket that holds the rank, so it is only as precise as the bucket bounds (observed names the
    bucket, and the share of observations within the threshold when it is a bound). The histogram is its
    family name (``http_request_duration_seconds``) with optional label matchers, without ``le``. When the
    percentile falls beyond the highest finite bucket, only "above that bound" is known: a FAIL when the
    threshold is at or below it, else an ERROR (the buckets cannot tell). No observations: ERROR. A
    summary (precomputed ``quantile`` series) is refused with the metric step to use instead."""


@check(
    'the {percentile:g}th percentile of "{histogram}" of "{service}" is below {seconds:g} s',
    manual="curl -sS <{service} URL>/metrics | grep '<name of {histogram}>_bucket'",
    validators={"percentile": validate_percentile, "histogram": validate_histogram},
)
@more_doc(_PERCENTILE_DOC)
def histogram_percentile_below(ctx: CheckContext, percentile: float, histogram: str, service: str,
                               seconds: float) -> CheckResult:
    """The percentile of a histogram on the service's ``/metrics`` page, estimated from its buckets since the
    process started, is strictly below the threshold (seconds, as Prometheus histograms measure), e.g.
    ``the 95th percentile of "http_request_duration_seconds{handler=~"/api/.*"}" of "api" is below 1 s``.
    For the latency of the traffic now, use ``... over N s is below``."""
    return _percentile(ctx, percentile, histogram, service, seconds, None)


@check(
    'the {percentile:g}th percentile of "{histogram}" of "{service}" over {window:d} s is below {seconds:g} s',
    manual="curl -sS <{service} URL>/metrics | grep '<name of {histogram}>_bucket'; sleep {window}; "
           "(the same again, then the percentile of the bucket increases)",
    validators={"percentile": validate_percentile, "histogram": validate_histogram, "window": validate_window},
)
@more_doc(_PERCENTILE_DOC)
def histogram_percentile_over_window_below(ctx: CheckContext, percentile: float, histogram: str, service: str,
                                           window: int, seconds: float) -> CheckResult:
    """The percentile of the observations a histogram on the service's ``/metrics`` page gained between two
    scrapes ``window`` seconds apart (the increase of each bucket; see the windowed ratio) is strictly below
    the threshold in seconds: the latency of the traffic in that window."""
    return _percentile(ctx, percentile, histogram, service, seconds, window)


