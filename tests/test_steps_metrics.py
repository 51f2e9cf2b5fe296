"""The /metrics steps over a window and from histogram buckets, against real servers on 127.0.0.1: the
sandbox's reference API with controlled traffic, and a page a test changes between the two scrapes. No
Prometheus server needed (tests/test_steps_prometheus.py compares these steps with one)."""

from __future__ import annotations

import dataclasses
import textwrap
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from runbooks.context import ScenarioState
from runbooks.result import Outcome
from runbooks.sandbox.service import ReferenceService
from runbooks.sandbox.stack import ServiceSpec
from runbooks.session import Session
from runbooks.steps.metrics import (
    histogram_percentile_below,
    histogram_percentile_over_window_below,
    metric_above,
    metric_rate_above,
    metric_rate_below,
    metric_ratio_above,
    metric_ratio_over_window_above,
    metric_ratio_over_window_below,
    validate_histogram,
    validate_percentile,
    validate_window,
)
from tests.conftest import checked as check
from tests.conftest import evaluate
from tests.support.http_servers import HttpApp, Route

ERRORS, ALL = 'http_requests_total{status="5xx"}', "http_requests_total"
HISTORY = dict(requests_ok=3000, requests_error=3, p95_seconds=0.2)


@pytest.fixture
def api() -> Iterator[Callable[..., str]]:
    """Start reference APIs: ``api(error_ratio=..., live_p95_seconds=...)`` -> its URL."""
    started: list[ReferenceService] = []

    def start(**live: float) -> str:
        spec = ServiceSpec(**HISTORY, **{"requests_per_second": 200, "error_ratio": 0.0, **live})  # type: ignore[arg-type]
        service = ReferenceService(spec).start()
        started.append(service)
        return service.url

    yield start
    for service in started:
        service.stop()


@pytest.fixture
def run_with(run_factory: Callable[[str], Session]) -> Callable[..., Session]:
    def build(**services: str) -> Session:
        lines = "\n".join(f'{name} = "{url}"' for name, url in services.items())
        return run_factory('aws = { target = "endpoint", url = "http://127.0.0.1:9", region = "us-east-1" }\n'
                           f"[environments.test.services]\n{lines}\n")

    return build


# --- ratios and rates over a window ---------------------------------------------------------------------


def test_windowed_ratio_judges_only_the_traffic_between_the_scrapes(api, run_with):
    run = run_with(bad=api(error_ratio=0.2), good=api(error_ratio=0.0))
    failed = check(evaluate(run, metric_ratio_over_window_below, numerator=ERRORS, denominator=ALL, service="bad",
                            seconds=1, percent=5), Outcome.FAIL, "% (", " over the last 1.")
    assert 17 < failed.evidence["percent"] < 23 and 0.9 < failed.evidence["window_s"] < 2
    assert failed.expected == f"{ERRORS} / {ALL} over 1 s below 5%"
    assert "; sleep 1; " in failed.manual_command and "| grep '^http_requests_total'" in failed.manual_command
    assert "grep -E" not in failed.manual_command  # one metric: a plain pattern, named once
    check(evaluate(run, metric_ratio_over_window_below, numerator=ERRORS, denominator=ALL, service="good",
                   seconds=1, percent=5), Outcome.PASS, "0% (0 / ")
    above = evaluate(run, metric_ratio_over_window_above, numerator='http_request_duration_seconds_bucket{le="0.5"}',
                     denominator="http_request_duration_seconds_count", service="good", seconds=1, percent=95)
    check(above, Outcome.PASS)  # share of the requests answered within 0.5 s


def test_windowed_steps_of_a_run_wait_once(api, run_with):
    app = api(error_ratio=0.0)
    run = run_with(api=app)
    started = time.monotonic()
    for _ in range(3):
        check(evaluate(run, metric_ratio_over_window_below, numerator=ERRORS, denominator=ALL, service="api",
                       seconds=1, percent=5), Outcome.PASS)
    check(evaluate(run, histogram_percentile_over_window_below, percentile=95, histogram="http_request_duration_"
                   "highr_seconds", service="api", window=1, seconds=1), Outcome.PASS)
    assert time.monotonic() - started < 1.9  # one wait of 1 s; the later steps start from that first scrape


def test_no_traffic_in_the_window(api, run_with):
    run = run_with(idle=api(requests_per_second=0))
    check(evaluate(run, metric_ratio_over_window_below, numerator=ERRORS, denominator=ALL, service="idle",
                   seconds=1, percent=5), Outcome.PASS, "no traffic over the last 1.")
    check(evaluate(run, metric_ratio_over_window_above, numerator=ERRORS, denominator=ALL, service="idle",
                   seconds=1, percent=5), Outcome.ERROR, "the ratio is undefined")
    check(evaluate(run, histogram_percentile_over_window_below, percentile=95,
                   histogram="http_request_duration_seconds", service="idle", window=1, seconds=1),
          Outcome.ERROR, "no observations in the last 1.")
    check(evaluate(run, metric_rate_above, selector=ALL, service="idle", seconds=1, per_second=1), Outcome.FAIL,
          "0 per second (0 in 1.")


def test_rates(api, run_with):
    run = run_with(api=api(error_ratio=0.1))
    rate = check(evaluate(run, metric_rate_below, selector=ERRORS, service="api", seconds=1, per_second=5),
                 Outcome.FAIL, " per second (")
    assert 14 < rate.evidence["per_second"] < 27  # 200 requests/s, 10% of them 5xx
    check(evaluate(run, metric_rate_above, selector=ALL, service="api", seconds=1, per_second=100), Outcome.PASS)
    check(evaluate(run, metric_rate_below, selector='http_requests_total{status="500"}', service="api", seconds=1,
                   per_second=5), Outcome.ERROR, 'status="500" never matches')
    check(evaluate(run, metric_rate_below, selector="process_resident_memory_bytes", service="api", seconds=1,
                   per_second=5), Outcome.ERROR, "matches gauge series: their change over a window is not a count")


PAGE = textwrap.dedent("""\
    # TYPE jobs_total counter
    jobs_total{queue="a"} {a}
    jobs_total{queue="b"} {b}
    """)


def test_a_restart_between_the_scrapes_counts_the_new_values(run_with):
    app = HttpApp({"/metrics": Route(200, PAGE.replace("{a}", "1000").replace("{b}", "50"))})
    with app:
        run = run_with(jobs=app.url)
        # the process restarts during the window: its counters start again from 0 (queue b appears new)
        restarted = '# TYPE jobs_total counter\njobs_total{queue="a"} 7\njobs_total{queue="c"} 3\n'
        restart = threading.Timer(0.4, lambda: app.routes.__setitem__("/metrics", Route(200, restarted)))
        restart.start()
        result = evaluate(run, metric_rate_above, selector="jobs_total", service="jobs", seconds=1, per_second=1)
        restart.join()
    check(result, Outcome.PASS, "(10 in 1.", "1 reset (restarted?)")


# --- percentiles from histogram buckets -----------------------------------------------------------------------


def test_percentile_since_the_start(api, run_with):
    run = run_with(api=api(live_p95_seconds=1.7))
    passed = check(evaluate(run, histogram_percentile_below, percentile=95, histogram="http_request_duration_highr_"
                            "seconds", service="api", seconds=1), Outcome.PASS, "p95 ≈ 0.", "observations, 1 series")
    assert passed.expected == "p95 of http_request_duration_highr_seconds below 1 s"
    assert passed.manual_command.endswith("| grep '^http_request_duration_highr_seconds_bucket'")
    check(evaluate(run, histogram_percentile_below, percentile=50, histogram="http_request_duration_seconds",
                   service="api", seconds=0.05), Outcome.FAIL, "p50 ≈ 0.0", "interpolated in the bucket 0-0.1 s")
    # the label filter: only the API's handlers; le is the percentile's to choose
    filtered = evaluate(run, histogram_percentile_below, percentile=95,
                        histogram='http_request_duration_seconds{handler=~"/api/.*"}', service="api", seconds=1)
    check(filtered, Outcome.PASS, "sum of 3 series", "within 1 s")
    check(evaluate(run, histogram_percentile_below, percentile=95,
                   histogram='http_request_duration_seconds{le="1"}', service="api", seconds=1),
          Outcome.ERROR, "leave le out")


def test_percentile_over_a_window_sees_the_slow_traffic_the_totals_hide(api, run_with):
    run = run_with(api=api(live_p95_seconds=1.7))
    check(evaluate(run, histogram_percentile_over_window_below, percentile=95,
                   histogram="http_request_duration_highr_seconds", service="api", window=1, seconds=1),
          Outcome.FAIL, "p95 ≈ 1.", "in the last 1.")
    beyond = evaluate(run, histogram_percentile_over_window_below, percentile=95,
                      histogram="http_request_duration_seconds", service="api", window=1, seconds=1)
    check(beyond, Outcome.FAIL, "p95 above 1 s, the highest finite bucket: more than 5% of the observations are "
                                "slower")
    unknowable = evaluate(run, histogram_percentile_over_window_below, percentile=95,
                          histogram="http_request_duration_seconds", service="api", window=1, seconds=2)
    check(unknowable, Outcome.ERROR, "p95 above 1 s")
    assert "the buckets end at 1 s, so whether p95 is below 2 s cannot be told" in unknowable.hint


SUMMARY_PAGE = textwrap.dedent("""\
    # TYPE rpc_seconds summary
    rpc_seconds{quantile="0.95"} 0.3
    rpc_seconds_count 10
    rpc_seconds_sum 1
    # TYPE lat_seconds histogram
    lat_seconds_bucket{le="0.5"} 3
    lat_seconds_count 3
    lat_seconds_sum 1
    """)


def test_what_cannot_give_a_percentile(run_with):
    with HttpApp({"/metrics": Route(200, SUMMARY_PAGE)}) as app:
        run = run_with(web=app.url)
        summary = check(evaluate(run, histogram_percentile_below, percentile=95, histogram="rpc_seconds",
                                 service="web", seconds=1), Outcome.ERROR, "rpc_seconds is a summary, not a histogram")
        assert 'the metric "rpc_seconds{quantile="0.95"}"' in summary.hint
        check(evaluate(run, histogram_percentile_below, percentile=95, histogram="lat_second", service="web",
                       seconds=1), Outcome.FAIL, "no histogram named lat_second (no lat_second_bucket series); "
                                                 "did you mean 'lat_seconds'?")
        check(evaluate(run, histogram_percentile_below, percentile=95, histogram="lat_seconds", service="web",
                       seconds=1), Outcome.ERROR, 'cannot give a percentile: no le="+Inf" bucket')
        check(evaluate(run, metric_ratio_over_window_below, numerator="rpc_seconds_count",
                       denominator="rpc_seconds_count", service="web", seconds=0, percent=1),
              Outcome.ERROR, "a window of 0 s measures nothing")


@pytest.mark.parametrize("validate, text, message", [
    (validate_window, "0", "at least 1 s"),
    (validate_percentile, "100", "between 0 and 100"),
    (validate_percentile, "0", "between 0 and 100"),
    (validate_histogram, 'lat_seconds{le="0.5"}', "leave le out"),
])
def test_preflight_validators(validate, text, message):
    with pytest.raises(ValueError, match=message):
        validate(text)


# --- above, and the cumulative ratio's new refusals ------------------------------------------------------------


def test_metric_and_ratio_above(api, run_with):
    run = run_with(api=api())
    check(evaluate(run, metric_above, selector="http_requests_total", service="api", threshold=1000), Outcome.PASS,
          "300", "(sum of 10 series)")  # a series appears once counted: 3 errors touched two handlers
    check(evaluate(run, metric_above, selector='http_requests_total{status="5xx"}', service="api", threshold=100),
          Outcome.FAIL, "3 (sum of 2 series)")
    check(evaluate(run, metric_ratio_above, numerator='http_requests_total{status="2xx"}', denominator=ALL,
                   service="api", percent=90), Outcome.PASS, "% (")
    # a sum over every le of a histogram is not a count of anything, in a ratio as in a value
    check(evaluate(run, metric_ratio_above, numerator="http_request_duration_seconds_bucket", denominator=ALL,
                   service="api", percent=90), Outcome.ERROR, "numerator the selector http_request_duration_seconds_"
                                                              "bucket is ambiguous")


def test_scenario_state_is_not_needed_for_windows(api, run_with):
    # windows belong to the run (its scrapes), not to a scenario: a new scenario state reuses them
    run = run_with(api=api())
    evaluate(run, metric_rate_above, ScenarioState(), selector=ALL, service="api", seconds=1, per_second=1)
    started = time.monotonic()
    evaluate(run, metric_rate_above, ScenarioState(), selector=ALL, service="api", seconds=1, per_second=1)
    assert time.monotonic() - started < 0.9


def test_spec_fields_are_the_stack_keys():
    assert {f.name for f in dataclasses.fields(ServiceSpec)} >= {
        "requests_ok", "requests_error", "p95_seconds", "requests_per_second", "error_ratio", "live_p95_seconds"}
