"""HTTP steps against real servers on 127.0.0.1: plain HTTP, HTTPS with trustme certificates, hung and
refused ports, the sandbox's reference API; plus preflight and end-to-end CLI runs."""

from __future__ import annotations

import dataclasses
import json
import textwrap
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import trustme

from runbooks.cli import main
from runbooks.context import ScenarioState
from runbooks.reports import read_results_json
from runbooks.result import CheckResult, Outcome
from runbooks.sandbox.service import ReferenceService, metrics_text
from runbooks.sandbox.stack import load_stack
from runbooks.session import Session
from runbooks.steps._prometheus import parse_exposition, parse_selector
from runbooks.steps.http import (
    NO_RESPONSE,
    RESPONSE_KEY,
    StoredResponse,
    http_get,
    jq_path,
    resolve_pointer,
    response_body_contains,
    response_json_at,
    response_status,
    response_within,
    service_answers,
    tls_certificate_valid_for,
    validate_pointer,
)
from runbooks.steps.metrics import metric_below, metric_ratio_below
from tests.conftest import REPO, evaluate
from tests.support.http_servers import (
    HttpApp,
    Route,
    expired_intermediate_context,
    refused_port,
    server_context,
    silent_listener,
)

HEALTH = json.dumps({
    "status": "ok", "ready": True, "version": 1.50, "items": ["a", "b"],
    "checks": {"dynamodb": "ok", "s3": None}, "a/b": {"c~d": "escaped"},
}).replace("1.5", "1.50")  # a number written with a trailing zero must be compared as written
METRICS = textwrap.dedent("""\
    # HELP http_requests_total Requests.
    # TYPE http_requests_total counter
    http_requests_total{method="GET",status="200"} 900
    http_requests_total{method="POST",status="200"} 90
    http_requests_total{method="GET",status="500"} 6
    http_requests_total{method="POST",status="500"} 4
    queue_depth 12
    idle_requests_total{status="200"} 0
    # TYPE worker_busy gauge
    worker_busy{pool="a",region="eu"} 3
    worker_busy{pool="b",region="eu"} 5
    jobs_done_total{queue="a"} 2
    jobs_done_total{queue="b"} 3
    # TYPE rpc_latency_seconds summary
    rpc_latency_seconds{quantile="0.5"} 0.02
    rpc_latency_seconds{quantile="0.9"} 0.08
    rpc_latency_seconds_sum 4.5
    rpc_latency_seconds_count 100
    """)
ROUTES = {
    "/health": Route(200, HEALTH, "application/json"),
    "/down": Route(503, '{"status": "not ready", "checks": {"s3": "timeout"}}', "application/json"),
    "/page": Route(200, "<html><body>Welcome to ACME</body></html>", "text/html"),
    "/slow": Route(200, "late", delay_s=0.3),
    "/hang": Route(200, "never in time", delay_s=30),
    "/metrics": Route(200, METRICS, "text/plain; version=0.0.4"),
}


# --- fixtures -------------------------------------------------------------------------------------------


@pytest.fixture
def app() -> Iterator[HttpApp]:
    with HttpApp(ROUTES) as server:
        yield server


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_pem(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def tls_app(ca: trustme.CA, not_after: timedelta, not_before: timedelta = timedelta(days=-1)) -> HttpApp:
    now = datetime.now(UTC)
    cert = ca.issue_cert("127.0.0.1", not_before=now + not_before, not_after=now + not_after)
    return HttpApp(ROUTES, tls=server_context(cert))


@pytest.fixture
def year_app(ca: trustme.CA) -> Iterator[HttpApp]:
    # One hour past the day, so that "365 days" is what the check reads however long the test takes.
    with tls_app(ca, timedelta(days=365, hours=1)) as server:
        yield server


@pytest.fixture
def expiring_app(ca: trustme.CA) -> Iterator[HttpApp]:
    with tls_app(ca, timedelta(days=3, hours=1)) as server:
        yield server


@pytest.fixture
def reference_api() -> Iterator[ReferenceService]:
    """The sandbox's reference API with the stock stack's history (12840 answered, 37 x 5xx) and no live
    traffic, so that its counters stand still."""
    spec = load_stack(REPO / "infra" / "sandbox_stack.toml").service
    service = ReferenceService(dataclasses.replace(spec, requests_per_second=0)).start()
    yield service
    service.stop()


Services = dict[str, Any]


@pytest.fixture
def run_with(run_factory: Callable[[str], Session]) -> Callable[[Services], Session]:
    """A started run whose environment declares ``services`` (name -> URL or settings table)."""

    def build(services: Services) -> Session:
        lines = ["[environments.test.services]"]
        for name, value in services.items():
            if isinstance(value, str):
                value = {"url": value}
            fields = ", ".join(f"{k} = {json.dumps(v)}" for k, v in value.items())
            lines.append(f"{name} = {{ {fields} }}")
        # An endpoint target starts nothing: these runs never call AWS.
        aws = 'aws = { target = "endpoint", url = "http://127.0.0.1:9", region = "us-east-1" }\n'
        return run_factory(aws + "\n".join(lines) + "\n")

    return build


def get(run: Session, state: ScenarioState, path: str, service: str = "web") -> CheckResult:
    return evaluate(run, http_get, state, path=path, service=service)


def assert_result(result: CheckResult, outcome: Outcome, *observed: str) -> None:
    assert result.outcome is outcome, result
    for text in observed:
        assert text in result.observed, (text, result)
    assert result.manual_command, result
    if outcome is Outcome.FAIL:
        assert result.expected and result.hint, result


# --- the existing one-line step -----------------------------------------------------------------------


def test_service_answers_pass_fail_and_error(app, run_with):
    run = run_with({"web": app.url})
    assert_result(evaluate(run, service_answers, service="web", path="/health", status=200, ms=2000),
                  Outcome.PASS, "HTTP 200 in")
    failed = evaluate(run, service_answers, service="web", path="/down", status=200, ms=2000)
    assert_result(failed, Outcome.FAIL, "HTTP 503", "not ready")
    assert failed.expected == "HTTP 200 within 2000 ms"
    with refused_port() as port:
        run = run_with({"web": f"http://127.0.0.1:{port}"})
        assert_result(evaluate(run, service_answers, service="web", path="/", status=200, ms=2000),
                      Outcome.ERROR, "connection refused")


# --- When I GET -----------------------------------------------------------------------------------------


def test_get_stores_the_response_and_passes_on_any_status(app, run_with):
    run, state = run_with({"web": app.url}), ScenarioState()
    result = get(run, state, "/health")
    assert_result(result, Outcome.PASS, "HTTP 200 in", f"({len(HEALTH)} bytes)")
    assert result.resource == f"{app.url}/health"
    assert result.manual_command == f"curl -sS -i {app.url}/health"
    stored = state.values[RESPONSE_KEY]
    assert isinstance(stored, StoredResponse)
    assert (stored.status, stored.text, stored.content_type) == (200, HEALTH, "application/json")
    assert 0 < stored.elapsed_ms < 2000
    # A 503 is an answer: the GET passes, the status step judges it.
    assert_result(get(run, state, "/down"), Outcome.PASS, "HTTP 503")
    assert state.values[RESPONSE_KEY].status == 503
    assert app.hits["/health"] == 1 and app.hits["/down"] == 1


def test_get_errors_when_refused_and_forgets_the_earlier_response(app, run_with):
    with refused_port() as port:
        run = run_with({"web": app.url, "gone": f"http://127.0.0.1:{port}"})
        state = ScenarioState()
        assert get(run, state, "/health").outcome is Outcome.PASS
        result = get(run, state, "/health", service="gone")
    assert_result(result, Outcome.ERROR, "connection refused")
    assert "running" in result.hint
    assert state.values[RESPONSE_KEY] is None
    # The status step must not judge the earlier 200 now.
    after = evaluate(run, response_status, state, status=200)
    assert_result(after, Outcome.ERROR, f"no response: GET http://127.0.0.1:{port}/health got no answer "
                                        "(connection refused)")


def test_get_errors_on_timeout(app, run_with):
    run = run_with({"web": {"url": app.url, "timeout_s": 0.5}})
    started = time.perf_counter()
    result = get(run, ScenarioState(), "/hang")
    took = time.perf_counter() - started
    assert_result(result, Outcome.ERROR, "no answer within 0.5 s (timeout)")
    assert 0.4 < took < 5, took  # the service timeout bounded the wait, the server's 30 s delay did not


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_get_over_https_verifies_against_the_configured_ca(year_app, ca_pem, run_with):
    run = run_with({"trusted": {"url": year_app.url, "verify_tls": ca_pem},
                    "system": year_app.url,
                    "unchecked": {"url": year_app.url, "verify_tls": False}})
    ok = get(run, ScenarioState(), "/health", service="trusted")
    assert_result(ok, Outcome.PASS, "HTTP 200")
    assert f"--cacert {ca_pem}" in ok.manual_command
    bad = get(run, ScenarioState(), "/health", service="system")
    assert_result(bad, Outcome.ERROR, "TLS error: certificate verify failed", "verified against the system CAs")
    assert "verify_tls" in bad.hint
    assert "-k" in get(run, ScenarioState(), "/health", service="unchecked").manual_command


def test_manual_commands_name_the_headers_sent_but_never_their_values(app, run_factory):
    run = run_factory(f"""\
        [environments.test.services.web]
        url = "{app.url}"
        verify_tls = false
        headers = {{ Authorization = "Bearer s3cret-token", X-Tenant = "acme" }}
        """)
    got = get(run, ScenarioState(), "/health")
    assert got.manual_command == f"curl -sS -k -H 'Authorization: ***' -H 'X-Tenant: ***' -i {app.url}/health"
    metric = evaluate(run, metric_below, selector="queue_depth", service="web", threshold=20)
    assert metric.manual_command.startswith("curl -sS -k -H 'Authorization: ***' -H 'X-Tenant: ***' ")
    for result in (got, metric):
        assert "s3cret" not in result.manual_command and "acme" not in result.manual_command


# --- the response steps -------------------------------------------------------------------------------


@pytest.mark.parametrize("func, args", [
    (response_status, {"status": 200}),
    (response_within, {"ms": 1000}),
    (response_json_at, {"pointer": "/status", "value": "ok"}),
    (response_body_contains, {"text": "ok"}),
])
def test_response_steps_error_without_a_get(run_with, func, args):
    result = evaluate(run_with({}), func, ScenarioState(), **args)
    assert result.outcome is Outcome.ERROR, result
    assert result.observed == NO_RESPONSE
    assert "When I GET" in result.hint


def test_response_status(app, run_with):
    run, state = run_with({"web": app.url}), ScenarioState()
    get(run, state, "/health")
    passed = evaluate(run, response_status, state, status=200)
    assert_result(passed, Outcome.PASS, "HTTP 200")
    assert passed.manual_command == f"curl -sS -o /dev/null -w '%{{http_code}}\\n' {app.url}/health"
    get(run, state, "/down")
    failed = evaluate(run, response_status, state, status=200)
    assert_result(failed, Outcome.FAIL, 'HTTP 503: {"status": "not ready"')
    assert failed.expected == "HTTP 200" and failed.resource == f"{app.url}/down"


def test_response_arrives_within(app, run_with):
    run, state = run_with({"web": app.url}), ScenarioState()
    get(run, state, "/health")
    assert_result(evaluate(run, response_within, state, ms=2000), Outcome.PASS, " ms")
    get(run, state, "/slow")  # the server answers after 0.3 s
    assert state.values[RESPONSE_KEY].elapsed_ms >= 300
    failed = evaluate(run, response_within, state, ms=100)
    assert_result(failed, Outcome.FAIL, " ms")
    assert int(failed.observed.split()[0]) >= 300 and failed.expected == "within 100 ms"
    assert "slow" in failed.hint


@pytest.mark.parametrize("pointer, value, kind", [
    ("/status", "ok", "string"),
    ("/ready", "true", "boolean"),
    ("/version", "1.50", "number"),
    ("/items/1", "b", "string"),
    ("/checks/s3", "null", "null"),
    ("/a~1b/c~0d", "escaped", "string"),
    ("/items", '["a","b"]', "array"),
])
def test_response_json_at_passes(app, run_with, pointer, value, kind):
    run, state = run_with({"web": app.url}), ScenarioState()
    get(run, state, "/health")
    result = evaluate(run, response_json_at, state, pointer=pointer, value=value)
    assert_result(result, Outcome.PASS, f'{pointer} is "{value}" ({kind})')
    assert result.manual_command.startswith(f"curl -sS {app.url}/health | jq '.[")


def test_jq_path_for_the_manual_command():
    assert jq_path("") == "."
    assert jq_path("/checks/dynamodb") == '.["checks"]["dynamodb"]'
    assert jq_path("/items/0/a~1b~0c") == '.["items"][0]["a/b~c"]'


@pytest.mark.parametrize("path, pointer, value, observed", [
    ("/down", "/status", "ready", '/status is "not ready" (string)'),
    ("/health", "/version", "1.5", '/version is "1.50" (number)'),
    ("/health", "/checks/postgres", "ok", "nothing at /checks/postgres: /checks has no member 'postgres' "
                                          "(members: dynamodb, s3)"),
    ("/health", "/items/2", "c", "/items is an array of 2 element(s), no index '2'"),
    ("/health", "/status/x", "c", "/status is a string, it has no 'x'"),
    ("/page", "/status", "ok", "the body is not JSON (Content-Type text/html): '<html><body>Welcome"),
])
def test_response_json_at_fails(app, run_with, path, pointer, value, observed):
    run, state = run_with({"web": app.url}), ScenarioState()
    get(run, state, path)
    assert_result(evaluate(run, response_json_at, state, pointer=pointer, value=value), Outcome.FAIL, observed)


def test_json_pointer_resolution_follows_rfc_6901():
    doc = {"foo": ["bar", "baz"], "": 0, "a/b": 1, "m~n": 8, "~1": "tilde-one", " ": 7}
    assert resolve_pointer(doc, "") is doc
    assert resolve_pointer(doc, "/foo/0") == "bar"
    assert resolve_pointer(doc, "/") == 0
    assert resolve_pointer(doc, "/a~1b") == 1
    assert resolve_pointer(doc, "/m~0n") == 8
    assert resolve_pointer(doc, "/~01") == "tilde-one"  # '~01' unescapes to '~1', never to '/'
    assert resolve_pointer(doc, "/ ") == 7
    for missing in ("/foo/01", "/foo/-", "/foo/2", "/nope"):
        with pytest.raises(LookupError):
            resolve_pointer(doc, missing)
    for bad in ("foo", "/a~2", "/a~"):
        with pytest.raises(ValueError):
            validate_pointer(bad)


def test_response_body_contains(app, run_with):
    run, state = run_with({"web": app.url}), ScenarioState()
    get(run, state, "/page")
    passed = evaluate(run, response_body_contains, state, text="Welcome to ACME")
    assert_result(passed, Outcome.PASS, "found in")
    assert passed.manual_command == f"curl -sS {app.url}/page | grep -F 'Welcome to ACME'"
    failed = evaluate(run, response_body_contains, state, text="welcome to acme")  # case matters
    assert_result(failed, Outcome.FAIL, "not found in: '<html><body>Welcome to ACME</body></html>'")


# --- metrics ------------------------------------------------------------------------------------------


def test_sandbox_metrics_parse_with_the_selector_logic():
    samples = parse_exposition(metrics_text(load_stack(REPO / "infra" / "sandbox_stack.toml").service))
    errors = parse_selector('http_requests_total{status="5xx"}')
    assert sum(s.value for s in samples if errors.matches(s)) == 37
    everything = parse_selector("http_requests_total")
    assert sum(s.value for s in samples if everything.matches(s)) == 12877
    inf = parse_selector('http_request_duration_seconds_bucket{le="+Inf"}')
    assert sum(s.value for s in samples if inf.matches(s)) == 12877
    one = parse_selector('http_request_duration_highr_seconds_bucket{le="1"}')  # written le="1.0"
    assert [s.labels["le"] for s in samples if one.matches(s)] == ["1.0"]
    assert {s.kind for s in samples if s.name.endswith("_created")} == {"timestamp"}
    assert not [s for s in samples if s.kind == "quantile"]  # histograms only, as an instrumented service


def test_exposition_parser_handles_escapes_timestamps_and_special_values():
    text = textwrap.dedent(r"""
        # a comment, then a blank line

        weird{path="/a\"b\\c",note="line\nbreak",} 1.5e3 1700000000000
        up 1
        gauge_inf +Inf
        gauge_nan NaN
        om_total{a="x"} 3 # {trace_id="abc"} 1.0
        # EOF
        """)
    samples = parse_exposition(text)
    assert samples[0].labels == {"path": '/a"b\\c', "note": "line\nbreak"} and samples[0].value == 1500
    assert [s.name for s in samples] == ["weird", "up", "gauge_inf", "gauge_nan", "om_total"]
    assert samples[2].value == float("inf") and samples[3].value != samples[3].value
    assert samples[4].value == 3
    with pytest.raises(ValueError, match=r"line 2: .*'up 1 2 3'"):
        parse_exposition("ok 1\nup 1 2 3\n")
    with pytest.raises(ValueError, match="line 1: unterminated"):
        parse_exposition('up{a="x} 1\n')


@pytest.mark.parametrize("text, reason", [
    ("5xx_total", "starts with a metric name"),
    ('http_requests_total{status=~"5(.."}', "label 'status': '5(..' is not a valid regular expression"),
    ('http_requests_total{status=~"*"}', "is not a valid regular expression (nothing to repeat"),
    ('http_requests_total{status~="5"}', "expected =, !=, =~ or !~ and a \"value\" after label 'status'"),
    ('http_requests_total{status="500"', "missing '}' after the labels"),
    ('http_requests_total{status="500}', "unterminated value of label 'status'"),
    ("http_requests_total{status=500}", "expected =, !=, =~ or !~ and a \"value\""),
    ('m{a="1",a="2"}', "given twice"),
    ('m{a="1"} extra', "unexpected ' extra' after the labels"),
    ("rate(m[5m])", "after the metric name"),
])
def test_malformed_selectors_are_refused_with_a_reason(text, reason):
    with pytest.raises(ValueError) as info:
        parse_selector(text)
    assert reason in str(info.value)
    assert "\n" not in str(info.value)


def test_selectors_match_exact_labels_and_allow_extra_ones():
    sel = parse_selector(' m { a = "1" , b="x\\"y" } ')
    assert sel.name == "m"
    assert [(m.label, m.op, m.value) for m in sel.matchers] == [("a", "=", "1"), ("b", "=", 'x"y')]
    assert parse_selector("m{}").matchers == ()
    samples = parse_exposition(METRICS)
    assert sum(s.value for s in samples if parse_selector('http_requests_total{status="500"}').matches(s)) == 10


@pytest.mark.parametrize("selector, total", [
    ('http_requests_total{status=~"5.."}', 10),
    ('http_requests_total{status=~"5"}', None),  # the regex must match the whole value, as in PromQL
    ('http_requests_total{status=~"2.*|5.*"}', 1000),
    ('http_requests_total{status!~"5.."}', 990),
    ('http_requests_total{status!="200"}', 10),
    ('http_requests_total{method=~"P.+",status=~"[25]00"}', 94),
    ('http_requests_total{status=~"5..",status!="500"}', None),  # one label matched twice: both must hold
    ('http_requests_total{absent=""}', 1000),  # a label a series lacks has the value ""
    ('http_requests_total{absent!=""}', None),
    ('http_requests_total{absent=~"x?"}', 1000),
])
def test_selectors_with_regex_and_negative_matchers(selector, total):
    samples = [s for s in parse_exposition(METRICS) if parse_selector(selector).matches(s)]
    assert (sum(s.value for s in samples) if samples else None) == total
    assert str(parse_selector(selector)) == selector  # printed as written


def test_exposition_types_tell_which_series_add_up():
    samples = parse_exposition(textwrap.dedent("""        # TYPE req counter
        req_total{a="1"} 1
        req_created{a="1"} 1700000000
        # TYPE lat histogram
        lat_bucket{le="1"} 1
        lat_sum 2
        lat_count 3
        # TYPE q summary
        q{quantile="0.5"} 1
        q_count 3
        # TYPE temp gauge
        temp 20
        plain_total 1
        plain_bucket{le="1"} 1
        plain 1
        """))
    assert [(s.name, s.kind) for s in samples] == [
        ("req_total", "counter"), ("req_created", "timestamp"), ("lat_bucket", "bucket"), ("lat_sum", "counter"),
        ("lat_count", "counter"), ("q", "quantile"), ("q_count", "counter"), ("temp", "gauge"),
        ("plain_total", "counter"), ("plain_bucket", "bucket"), ("plain", "untyped"),
    ]


def test_metric_below_on_the_reference_api(reference_api, run_with):
    run = run_with({"api": reference_api.url})
    errors = 'http_requests_total{status="5xx"}'
    passed = evaluate(run, metric_below, selector=errors, service="api", threshold=50)
    assert_result(passed, Outcome.PASS, "37 (sum of 4 series)")
    assert passed.expected == f"{errors} below 50" and passed.resource == f"{reference_api.url}/metrics"
    assert passed.manual_command == f"curl -sS {reference_api.url}/metrics | grep '^http_requests_total'"
    failed = evaluate(run, metric_below, selector=errors, service="api", threshold=37)  # strictly below
    assert_result(failed, Outcome.FAIL, "37 (sum of 4 series)")
    assert_result(evaluate(run, metric_below, selector="http_requests_total", service="api", threshold=1e6),
                  Outcome.PASS, "12877 (sum of 12 series)")


def test_metric_below_sums_counters_only(app, reference_api, run_with):
    run = run_with({"web": app.url, "api": reference_api.url})
    # counters add up: by # TYPE, or by a name ending in _total without one
    assert_result(evaluate(run, metric_below, selector='http_requests_total{status="500"}', service="web",
                           threshold=11), Outcome.PASS, "10 (sum of 2 series)")
    assert_result(evaluate(run, metric_below, selector="jobs_done_total", service="web", threshold=6),
                  Outcome.PASS, "5 (sum of 2 series)")
    gauge = evaluate(run, metric_below, selector='worker_busy{region="eu"}', service="web", threshold=100)
    assert_result(gauge, Outcome.ERROR)
    assert gauge.observed == ('the selector worker_busy{region="eu"} is ambiguous: it matches 2 gauge series '
                              '({pool="a"}, {pool="b"}), and a sum of them means nothing')
    assert gauge.hint == 'narrow it with labels to one series, e.g. worker_busy{region="eu",pool="a"}'
    assert gauge.expected == 'worker_busy{region="eu"} below 100'
    assert_result(evaluate(run, metric_below, selector='worker_busy{pool="b"}', service="web", threshold=6),
                  Outcome.PASS, "5 (1 series)")
    quantiles = evaluate(run, metric_below, selector="rpc_latency_seconds", service="web", threshold=9)
    assert_result(quantiles, Outcome.ERROR, "it matches 2 summary quantile series (", '{quantile="0.9"}')
    assert 'rpc_latency_seconds{quantile="0.5"}' in quantiles.hint
    buckets = evaluate(run, metric_below, selector="http_request_duration_highr_seconds_bucket", service="api",
                       threshold=1e9)
    assert_result(buckets, Outcome.ERROR, "22 histogram bucket series", '{le="0.01"}', "and 12 more")  # across le
    one_le = evaluate(run, metric_below, selector='http_request_duration_seconds_bucket{le="1"}', service="api",
                      threshold=1e9)
    assert_result(one_le, Outcome.PASS, "(sum of 4 series)")  # one le, every handler: that adds up
    created = evaluate(run, metric_below, selector="http_requests_created", service="api", threshold=1e12)
    assert_result(created, Outcome.ERROR, "is the time its series was created (a _created sample)")


def test_metric_below_fails_when_no_series_matches(app, run_with):
    run = run_with({"web": app.url})
    absent = evaluate(run, metric_below, selector='http_requests_total{status="404"}', service="web", threshold=1)
    assert_result(absent, Outcome.FAIL, 'no series matches http_requests_total{status="404"} '
                                        "(http_requests_total exists, but no series has those labels)")
    unknown = evaluate(run, metric_below, selector="http_requests", service="web", threshold=1)
    assert_result(unknown, Outcome.FAIL, "no series matches http_requests (no metric named http_requests; "
                                         "did you mean 'http_requests_total'")
    # a value of another form than the label's, or a label the metric lacks: the selector is wrong
    assert_result(evaluate(run, metric_below, selector='http_requests_total{status="5xx"}', service="web",
                           threshold=1), Outcome.ERROR,
                  'status="5xx" never matches: the values of \'status\' on the page are 200, 500')
    assert_result(evaluate(run, metric_below, selector='http_requests_total{code="500"}', service="web",
                           threshold=1), Outcome.ERROR,
                  "no series of http_requests_total has a label 'code' (its labels: method, status)")
    assert_result(evaluate(run, metric_below, selector="queue_depth", service="web", threshold=20),
                  Outcome.PASS, "12 (1 series)")


@pytest.mark.parametrize("kind", ["refused", "timeout", "not found", "not prometheus"])
def test_metrics_errors_when_the_page_cannot_be_read(run_with, kind):
    routes = {"/metrics": {"timeout": Route(200, METRICS, delay_s=30), "not found": Route(404, "no metrics"),
                           "not prometheus": Route(200, "<html>login</html>")}.get(kind, Route())}
    with HttpApp(routes) as server, refused_port() as port:
        url = f"http://127.0.0.1:{port}" if kind == "refused" else server.url
        run = run_with({"web": {"url": url, "timeout_s": 0.5}})
        result = evaluate(run, metric_below, selector="up", service="web", threshold=1)
        ratio = evaluate(run, metric_ratio_below, numerator="a", denominator="b", service="web", percent=1)
    expected = {"refused": "connection refused", "timeout": "no answer within 0.5 s (timeout)",
                "not found": "/metrics answered HTTP 404: no metrics",
                "not prometheus": "cannot read the Prometheus text format at line 1"}[kind]
    assert_result(result, Outcome.ERROR, expected)
    assert_result(ratio, Outcome.ERROR, expected)
    assert result.resource == f"{url}/metrics"


def test_metrics_over_https_use_the_service_trust(year_app, ca_pem, run_with):
    run = run_with({"trusted": {"url": year_app.url, "verify_tls": ca_pem}, "system": year_app.url})
    passed = evaluate(run, metric_below, selector="queue_depth", service="trusted", threshold=20)
    assert_result(passed, Outcome.PASS, "12 (1 series)")
    assert passed.manual_command == f"curl -sS --cacert {ca_pem} {year_app.url}/metrics | grep '^queue_depth'"
    untrusted = evaluate(run, metric_below, selector="queue_depth", service="system", threshold=20)
    assert_result(untrusted, Outcome.ERROR, "TLS error: certificate verify failed")


def test_metrics_page_is_read_once_per_run_but_a_get_always_fetches(app, run_with):
    run, state = run_with({"web": app.url}), ScenarioState()
    evaluate(run, metric_below, selector="queue_depth", service="web", threshold=20)
    evaluate(run, metric_below, selector="http_requests_total", service="web", threshold=2000)
    evaluate(run, metric_ratio_below, numerator='http_requests_total{status="500"}',
             denominator="http_requests_total", service="web", percent=5)
    assert app.hits["/metrics"] == 1
    assert get(run, state, "/metrics").outcome is Outcome.PASS
    assert get(run, state, "/metrics").outcome is Outcome.PASS
    assert app.hits["/metrics"] == 3


def test_ratio_on_the_reference_api(reference_api, run_with):
    run = run_with({"api": reference_api.url})
    args = {"numerator": 'http_requests_total{status="5xx"}', "denominator": "http_requests_total",
            "service": "api"}
    passed = evaluate(run, metric_ratio_below, **args, percent=5)
    assert_result(passed, Outcome.PASS, "0.287% (37 / 12877; numerator sum of 4 series; denominator sum of 12 series)")
    assert passed.expected == 'http_requests_total{status="5xx"} / http_requests_total below 5%'
    # the issue's selector: status="500" where the instrumentation writes "5xx" is never 0%
    wrong = evaluate(run, metric_ratio_below, **{**args, "numerator": 'http_requests_total{status="500"}'},
                     percent=5)
    assert_result(wrong, Outcome.ERROR, 'no series matches numerator http_requests_total{status="500"}: '
                                        "status=\"500\" never matches: the values of 'status' on the page are 2xx, "
                                        "4xx, 5xx")
    failed = evaluate(run, metric_ratio_below, **args, percent=0.1)
    assert_result(failed, Outcome.FAIL, "0.287% (37 / 12877")
    assert "roll back" in failed.hint


@pytest.mark.parametrize("numerator, denominator, outcome, observed", [
    ('http_requests_total{status="500"}', "http_requests_total", Outcome.FAIL, "1% (10 / 1000;"),
    ('http_requests_total{status="500",method="POST"}', "http_requests_total", Outcome.PASS, "0.4% (4 / 1000;"),
    # no 404 has happened yet: the counter's name is there, so the missing series counts as 0
    ('http_requests_total{status="404"}', "http_requests_total", Outcome.PASS,
     '0% (0 / 1000; numerator no series of http_requests_total{status="404"} yet, counted as 0'),
    ('http_requests_total{status=~"4.."}', "http_requests_total", Outcome.PASS, "0% (0 / 1000; numerator no series"),
    ('http_requests_total{status="4xx"}', "http_requests_total", Outcome.ERROR, 'status="4xx" never matches'),
    ('http_requests_total{status=~"[a-z]+"}', "http_requests_total", Outcome.ERROR, "never matches"),
    ('http_requests_total{code="500"}', "http_requests_total", Outcome.ERROR, "has a label 'code'"),
    ("http_requests_total", "http_requests_total", Outcome.FAIL, "100% (1000 / 1000"),
    ("worker_busy", "http_requests_total", Outcome.ERROR, "numerator the selector worker_busy is ambiguous"),
    ("idle_requests_total", 'idle_requests_total{status="200"}', Outcome.PASS, "no traffic (denominator 0;"),
    ("queue_depth", "idle_requests_total", Outcome.FAIL, "numerator 12 but denominator 0: ratio undefined"),
    ("errors_typo_total", "http_requests_total", Outcome.FAIL,
     "no series matches numerator errors_typo_total (no metric named errors_typo_total"),
    ("queue_depth", 'http_requests_total{status="404"}', Outcome.FAIL,
     'no series matches denominator http_requests_total{status="404"}'),
])
def test_ratio_edge_cases(app, run_with, numerator, denominator, outcome, observed):
    run = run_with({"web": app.url})
    result = evaluate(run, metric_ratio_below, numerator=numerator, denominator=denominator, service="web",
                      percent=1)
    assert_result(result, outcome, observed)


# --- TLS certificates ---------------------------------------------------------------------------------


def tls_check(run: Session, service: str, days: int) -> CheckResult:
    return evaluate(run, tls_certificate_valid_for, service=service, days=days)


def test_tls_certificate_valid_for_a_year(year_app, ca_pem, run_with):
    run = run_with({"web": {"url": year_app.url, "verify_tls": ca_pem}})
    until = (datetime.now(UTC) + timedelta(days=365, hours=1)).strftime("%Y-%m-%d")
    passed = tls_check(run, "web", 30)
    assert_result(passed, Outcome.PASS, f"expires {until} (365 days)")
    assert passed.resource == f"127.0.0.1:{year_app.port}"
    assert passed.manual_command.startswith(f"openssl s_client -connect 127.0.0.1:{year_app.port} ")
    assert f"-CAfile {ca_pem}" in passed.manual_command
    assert_result(tls_check(run, "web", 365), Outcome.PASS, "(365 days)")
    assert_result(tls_check(run, "web", 366), Outcome.FAIL, "(365 days)")


def test_tls_certificate_expiring_in_three_days_fails(expiring_app, ca_pem, run_with):
    run = run_with({"web": {"url": expiring_app.url, "verify_tls": ca_pem},
                    "unverified": {"url": expiring_app.url, "verify_tls": False}})
    until = (datetime.now(UTC) + timedelta(days=3, hours=1)).strftime("%Y-%m-%d")
    failed = tls_check(run, "web", 30)
    assert_result(failed, Outcome.FAIL, f"expires {until} (3 days)")
    assert failed.expected == "certificate valid for at least 30 more days"
    assert "renew the certificate of 127.0.0.1" in failed.hint
    # verify_tls = false still reads the date (decoded without the stdlib's verified view)
    assert_result(tls_check(run, "unverified", 3), Outcome.PASS, f"expires {until} (3 days)")
    assert_result(tls_check(run, "unverified", 4), Outcome.FAIL, "(3 days)")


def test_tls_expired_certificate_is_a_failure_not_an_error(ca, ca_pem, run_with):
    with tls_app(ca, timedelta(days=-2, hours=-1), not_before=timedelta(days=-30)) as server:
        run = run_with({"web": {"url": server.url, "verify_tls": ca_pem}})
        result = tls_check(run, "web", 1)
    expired = (datetime.now(UTC) - timedelta(days=2, hours=1)).strftime("%Y-%m-%d")
    assert_result(result, Outcome.FAIL, f"expired {expired} (2 days ago)")


def test_tls_expired_intermediate_is_an_expired_chain_not_an_expired_leaf(run_with, tmp_path):
    context, root = expired_intermediate_context(tmp_path, leaf_days=200)
    with HttpApp(ROUTES, tls=context) as server:
        run = run_with({"web": {"url": server.url, "verify_tls": root}})
        result = tls_check(run, "web", 30)
    until = (datetime.now(UTC) + timedelta(days=200, hours=1)).strftime("%Y-%m-%d")
    assert_result(result, Outcome.FAIL,
                  f"the chain contains an expired certificate (the server's own expires {until})")
    assert "expired " + until not in result.observed  # not "expired <a date in the future>"
    assert "intermediate" in result.hint and "-showcerts" in result.manual_command


def test_tls_untrusted_certificate_is_an_error(year_app, run_with, tmp_path):
    path = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    run = run_with({"other": {"url": year_app.url, "verify_tls": str(path)}, "system": year_app.url})
    wrong_ca = tls_check(run, "other", 1)
    system = tls_check(run, "system", 1)
    for result in (wrong_ca, system):
        assert_result(result, Outcome.ERROR, "TLS verification failed: unable to get local issuer certificate")
        assert "verify_tls" in result.hint
    assert f"verified against the CA bundle {path}" in wrong_ca.observed
    assert "verified against the system CAs" in system.observed


def test_tls_on_plain_http_fails_and_unreachable_errors(app, run_with):
    with refused_port() as refused, silent_listener() as hung:
        run = run_with({
            "plain": app.url,
            "refused": f"https://127.0.0.1:{refused}",
            "hung": {"url": f"https://127.0.0.1:{hung}", "timeout_s": 0.5},
            "not_tls": app.url.replace("http://", "https://"),  # an https URL on a plain-HTTP port
        })
        assert_result(tls_check(run, "plain", 1), Outcome.FAIL, f"service is not served over TLS ({app.url})")
        assert_result(tls_check(run, "refused", 1), Outcome.ERROR, "connection refused")
        started = time.perf_counter()
        assert_result(tls_check(run, "hung", 1), Outcome.ERROR, "no TLS handshake within 0.5 s (timeout)")
        assert time.perf_counter() - started < 5
        assert_result(tls_check(run, "not_tls", 1), Outcome.ERROR, "TLS handshake failed")


# --- preflight and end to end through the CLI ---------------------------------------------------------


def write_project(root: Path, services: str, feature: str) -> tuple[Path, Path]:
    config = root / "runbooks.toml"
    config.write_text(textwrap.dedent(f"""\
        default_environment = "local"
        [environments.local]
        aws = {{ target = "endpoint", url = "http://127.0.0.1:9", region = "us-east-1" }}
        [environments.local.services]
        {services}
        """), encoding="utf-8")
    (root / "features").mkdir(exist_ok=True)
    path = root / "features" / "api.feature"
    path.write_text(textwrap.dedent(feature), encoding="utf-8")
    return config, path


def test_preflight_rejects_a_malformed_selector(tmp_path, capsys):
    config, feature = write_project(tmp_path, 'web = "http://127.0.0.1:9"', """\
        Feature: Metrics
          Scenario: Error budget
            Then the metric "http_requests_total" of "web" is below 10
            And the metric "http_requests_total{status=~"5(.."}" of "web" is below 10
            And the ratio of "errors{" to "http_requests_total" on "web" is below 1%
            And the response JSON at "status" is "ok"
            And the metric "http_requests_total{status=~"5..",method!~"GET|HEAD"}" of "web" is below 10
        """)
    assert main(["verify", "--config", str(config), "--report-dir", str(tmp_path / "r"), str(feature)]) == 2
    err = capsys.readouterr().err
    assert ("features/api.feature:4: selector 'http_requests_total{status=~\"5(..\"}': "
            "label 'status': '5(..' is not a valid regular expression (missing ), unterminated subpattern") in err
    assert "features/api.feature:5: numerator 'errors{': expected a label name or '}' at column 8" in err
    assert "features/api.feature:6: pointer 'status': a JSON Pointer is empty or starts with '/'" in err
    assert "api.feature:3" not in err and "api.feature:7" not in err
    assert "nothing was run" in err


def test_cli_end_to_end_get_then_checks(app, tmp_path, capsys):
    config, feature = write_project(tmp_path, f'web = "{app.url}"', """\
        Feature: API health
          Scenario: Healthy
            When I GET "/health" from "web"
            Then the response status is 200
            And the response arrives within 2000 ms
            And the response JSON at "/checks/dynamodb" is "ok"
            And the response body contains "dynamodb"
            And the metric "http_requests_total{status="500"}" of "web" is below 20
            And the ratio of "http_requests_total{status="500"}" to "http_requests_total" on "web" is below 5%

          Scenario: Not ready
            When I GET "/down" from "web"
            Then the response status is 200
            And the response JSON at "/checks/s3" is "ok"
            And the response body contains "not ready"
        """)
    reports = tmp_path / "reports"
    code = main(["verify", "--config", str(config), "--report-dir", str(reports), str(feature)])
    out = capsys.readouterr().out
    assert code == 1, out
    _, records = read_results_json(reports / "results.json")
    healthy = [r.outcome for r in records if r.scenario == "Healthy"]
    assert healthy == [Outcome.PASS] * 7, records
    not_ready = {r.step: r for r in records if r.scenario == "Not ready"}
    assert not_ready['I GET "/down" from "web"'].outcome is Outcome.PASS
    status = not_ready["the response status is 200"]
    assert status.outcome is Outcome.FAIL and status.observed.startswith("HTTP 503")
    json_at = not_ready['the response JSON at "/checks/s3" is "ok"']
    assert json_at.outcome is Outcome.FAIL and json_at.observed == '/checks/s3 is "timeout" (string)'
    # Then-steps are soft: the one after two failures is still checked
    assert not_ready['the response body contains "not ready"'].outcome is Outcome.PASS
    assert app.hits["/health"] == 1 and app.hits["/down"] == 1 and app.hits["/metrics"] == 1


def test_cli_response_step_without_a_get_is_an_error(app, tmp_path, capsys):
    config, feature = write_project(tmp_path, f'web = "{app.url}"', """\
        Feature: Forgotten request
          Scenario: No GET
            Then the response status is 200
        """)
    reports = tmp_path / "reports"
    assert main(["verify", "--config", str(config), "--report-dir", str(reports), str(feature)]) == 3
    capsys.readouterr()
    _, records = read_results_json(reports / "results.json")
    assert [(r.outcome, r.observed) for r in records] == [(Outcome.ERROR, NO_RESPONSE)]
    assert sum(app.hits.values()) == 0
