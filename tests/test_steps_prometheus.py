"""Prometheus steps against a real Prometheus (tests/support/prometheus.py) scraping the sandbox's reference
API with controlled traffic, and the /metrics steps on the same apps: the burst after a long healthy run and
the 1.7 s p95 that one instance's totals miss, caught by PromQL and by the windowed steps; misspelled names
and unreachable servers are ERRORs."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from runbooks.cli import main
from runbooks.config import ConfigError
from runbooks.reports import read_results_json
from runbooks.result import CheckResult, Outcome
from runbooks.session import Session
from runbooks.steps.metrics import (
    histogram_percentile_over_window_below,
    metric_ratio_below,
    metric_ratio_over_window_below,
)
from runbooks.steps.prometheus import (
    alert_firing,
    alert_not_firing,
    alerting_rule_loaded,
    no_alert_of_severity_firing,
    prometheus_query_above,
    prometheus_query_below,
    prometheus_query_between,
    prometheus_query_empty,
    rules_healthy,
    sends_to_alertmanager,
    targets_up,
)
from tests.conftest import checked as check
from tests.conftest import evaluate
from tests.support.http_servers import refused_port
from tests.support.prometheus import Monitoring  # the `monitoring` fixture is in tests/conftest.py's plugins

ERROR_RATIO = ('sum(rate(http_requests_total{{job="{job}",status="5xx"}}[5s])) '
               '/ sum(rate(http_requests_total{{job="{job}"}}[5s]))')
P95 = 'histogram_quantile(0.95, sum by (le) (rate(http_request_duration_highr_seconds_bucket{{job="{job}"}}[5s])))'
WINDOW = 2  # seconds between the two scrapes of the windowed /metrics steps


@pytest.fixture
def run(monitoring: Monitoring, run_factory: Callable[[str], Session]) -> Session:
    return run_factory(monitoring.env(prometheus=monitoring.prometheus, alertmanager=monitoring.alertmanager))


def query(run: Session, func: Callable[..., CheckResult], **args: object) -> CheckResult:
    return evaluate(run, func, **args)


# --- PromQL compared with thresholds ---------------------------------------------------------------------


def test_query_below_passes_fails_and_names_the_series(run, monitoring):
    passed = check(query(run, prometheus_query_below, query=ERROR_RATIO.format(job="healthy"), threshold=0.05),
                   Outcome.PASS)
    assert passed.resource == monitoring.prometheus
    assert passed.manual_command.startswith("curl -sS -G --data-urlencode 'query=sum(rate(http_requests_total{job=")
    assert passed.manual_command.endswith(f"{monitoring.prometheus}/api/v1/query | jq .data.result")
    by_job = query(run, prometheus_query_below, query='sum by (job) (up{job=~"healthy|down"})', threshold=0.5)
    check(by_job, Outcome.FAIL, '1 of 2 series not below 0.5: 1 {job="healthy"}')
    assert {tuple(s["labels"].items()) for s in by_job.evidence["series"]} == {(("job", "healthy"),),
                                                                              (("job", "down"),)}
    check(query(run, prometheus_query_above, query='sum(up{job=~"healthy|slow"})', threshold=1), Outcome.PASS,
          "2")
    check(query(run, prometheus_query_above, query='up{job="down"}', threshold=0), Outcome.FAIL,
          '0 up{instance="127.0.0.1:')
    check(query(run, prometheus_query_between, query="scalar(count(up))", low=5, high=5), Outcome.PASS, "5")
    check(query(run, prometheus_query_between, query="scalar(count(up))", low=0, high=3), Outcome.FAIL, "5")


def test_an_empty_result_is_an_error_never_a_pass(run):
    typo = query(run, prometheus_query_below, query='sum(rate(http_request_total{job="healthy"}[5s]))', threshold=1)
    check(typo, Outcome.ERROR, "no series: Prometheus has no metric named http_request_total; did you mean "
                               "'http_requests_total'")
    assert "returns no series" in typo.hint
    labels = query(run, prometheus_query_below, query='up{job="nosuchjob"}', threshold=1)
    check(labels, Outcome.ERROR, "no series: no series matches the query's label matchers, or the expression "
                                 "filters every series out")
    # a comparison inside the query drops the healthy series: the step says why there is nothing to compare
    check(query(run, prometheus_query_below, query=ERROR_RATIO.format(job="healthy") + " > 0.05", threshold=1),
          Outcome.ERROR, "filters every series out")


def test_returns_no_series(run):
    check(query(run, prometheus_query_empty, query='up{job="healthy"} == 0'), Outcome.PASS, "no series")
    failed = check(query(run, prometheus_query_empty, query="up == 0"), Outcome.FAIL, '1 series: up{instance=')
    assert 'job="down"' in failed.observed
    check(query(run, prometheus_query_empty, query="upp == 0"), Outcome.ERROR,
          "Prometheus has no metric named upp; did you mean 'up'")
    check(query(run, prometheus_query_empty, query='ALERTS{alertname="NeverFires"}'), Outcome.PASS)  # always known


def test_queries_prometheus_refuses_or_cannot_compare_are_errors(run):
    refused = query(run, prometheus_query_below, query="rate(http_requests_total)", threshold=1)
    check(refused, Outcome.ERROR, "refused the request: bad_data: invalid parameter \"query\"",
          "expected type range vector in call to function \"rate\"")
    check(query(run, prometheus_query_below, query="up[5s]", threshold=1), Outcome.ERROR, "returns a range vector")
    check(query(run, prometheus_query_below, query="vector(0) / vector(0)", threshold=1), Outcome.ERROR,
          "1 of 1 series NaN")
    check(query(run, prometheus_query_between, query="vector(1)", low=2, high=1), Outcome.ERROR,
          "the bounds are reversed")


# --- the cases: one instance's totals against what is happening now ---------------------------------


def test_a_burst_after_a_long_healthy_run_is_caught_by_the_window_and_promql_not_by_the_totals(run):
    numerator, denominator = 'http_requests_total{status="5xx"}', "http_requests_total"
    totals = query(run, metric_ratio_below, numerator=numerator, denominator=denominator, service="burst",
                   percent=5)
    check(totals, Outcome.PASS)  # a long healthy history dilutes the 10% burst: what the issue reported
    assert totals.evidence["percent"] < 5
    window = query(run, metric_ratio_over_window_below, numerator=numerator, denominator=denominator,
                   service="burst", seconds=WINDOW, percent=5)
    check(window, Outcome.FAIL, f"over the last {WINDOW}.")
    assert 7 < window.evidence["percent"] < 14, window
    promql = check(query(run, prometheus_query_below, query=ERROR_RATIO.format(job="burst"), threshold=0.05),
                   Outcome.FAIL)
    assert 0.07 < promql.evidence["series"][0]["value"] < 0.14, promql


def test_an_old_burst_no_longer_fails_the_window_or_promql_but_still_the_totals(run):
    numerator, denominator = 'http_requests_total{status="5xx"}', "http_requests_total"
    totals = query(run, metric_ratio_below, numerator=numerator, denominator=denominator, service="recovered",
                   percent=5)
    check(totals, Outcome.FAIL, "% (3300 / ")  # the old burst, still in the totals
    assert totals.evidence["percent"] > 5
    check(query(run, metric_ratio_over_window_below, numerator=numerator, denominator=denominator,
                service="recovered", seconds=WINDOW, percent=5), Outcome.PASS, "0% (0 / ")
    check(query(run, prometheus_query_below, query=ERROR_RATIO.format(job="recovered"), threshold=0.05),
          Outcome.PASS, "0")


def test_a_p95_of_1_7_s_is_caught_by_histogram_quantile_and_by_the_percentile_step(run):
    promql = check(query(run, prometheus_query_below, query=P95.format(job="slow"), threshold=1), Outcome.FAIL)
    from_prometheus = promql.evidence["series"][0]["value"]
    step = query(run, histogram_percentile_over_window_below, percentile=95,
                 histogram="http_request_duration_highr_seconds", service="slow", window=WINDOW, seconds=1)
    check(step, Outcome.FAIL, "p95 ≈ 1.", "interpolated in the bucket 1.5-2 s")
    assert 1.6 < step.evidence["estimate_s"] < 1.95 and 1.6 < from_prometheus < 1.95
    assert step.evidence["estimate_s"] == pytest.approx(from_prometheus, rel=0.08)  # the same algorithm
    per_handler = query(run, histogram_percentile_over_window_below, percentile=95,
                        histogram='http_request_duration_seconds{handler=~"/api/.*"}', service="slow",
                        window=WINDOW, seconds=1)
    check(per_handler, Outcome.FAIL, "p95 above 1 s, the highest finite bucket")
    check(query(run, prometheus_query_below, query=P95.format(job="healthy"), threshold=1), Outcome.PASS)


# --- alerts and rules ------------------------------------------------------------------------------------


def test_alert_not_firing(run):
    check(query(run, alert_not_firing, alert="DiskSpaceLow"), Outcome.PASS, "not firing; inactive (1 rule)")
    firing = check(query(run, alert_not_firing, alert="HighErrorRate"), Outcome.FAIL,
                   '1 firing: HighErrorRate{job="burst",service="api",severity="critical"} since ')
    assert "More than 5% of the requests of" in firing.hint and "features/troubleshooting/api.feature" in firing.hint
    assert firing.evidence["firing"] == [{"alertname": "HighErrorRate", "job": "burst", "service": "api",
                                          "severity": "critical"}]
    check(query(run, alert_not_firing, alert='HighErrorRate{job="healthy"}'), Outcome.PASS, "not firing")
    check(query(run, alert_not_firing, alert='{service="api"}'), Outcome.FAIL, "2 firing")
    typo = check(query(run, alert_not_firing, alert="HighErrorRat"), Outcome.ERROR,
                 "Prometheus has no alerting rule named HighErrorRat (7 alerting rules loaded; did you mean "
                 "'HighErrorRate'", "): whether it fires cannot be told")
    assert "/api/v1/alerts" in typo.manual_command


def test_alert_firing(run):
    check(query(run, alert_firing, alert='HighLatency{job="slow"}'), Outcome.PASS, '1 firing: HighLatency{job="slow"')
    check(query(run, alert_firing, alert="NeverFires"), Outcome.FAIL, "not firing: inactive (1 rule)")
    check(query(run, alert_firing, alert="NoSuchAlert"), Outcome.ERROR, "no alerting rule named NoSuchAlert")


def test_no_alert_of_severity_firing(run):
    critical = check(query(run, no_alert_of_severity_firing, severity="critical"), Outcome.FAIL, "2 firing: ")
    assert {labels["alertname"] for labels in critical.evidence["firing"]} == {"HighErrorRate", "TargetDown"}
    check(query(run, no_alert_of_severity_firing, severity="info"), Outcome.PASS,
          "none firing (1 rules of severity info;")
    check(query(run, no_alert_of_severity_firing, severity="crtical"), Outcome.ERROR,
          "no alerting rule has severity 'crtical' (7 alerting rules; did you mean 'critical'?)")


def test_alerting_rule_loaded_and_rules_healthy(run, monitoring, run_factory):
    check(query(run, alerting_rule_loaded, alert="HighErrorRate"), Outcome.PASS,
          "loaded and healthy (group api, for 1 s, severity critical, state firing): sum by (job)")
    check(query(run, alerting_rule_loaded, alert="HighErorRate"), Outcome.FAIL,
          "no alerting rule named HighErorRate (7 loaded; did you mean 'HighErrorRate'")
    check(query(run, rules_healthy), Outcome.PASS, "4 groups, 7 rules (7 alerting, 0 recording), all healthy")
    broken = run_factory(monitoring.env(prometheus=monitoring.broken_prometheus, name="broken"), "broken")
    failed = check(query(broken, rules_healthy), Outcome.FAIL, "1 of 1 rules fail to evaluate: ManyToMany in broken: ",
                   "many-to-many matching not allowed")
    assert failed.evidence["failing"] == ["ManyToMany"]
    check(query(broken, alerting_rule_loaded, alert="ManyToMany"), Outcome.FAIL, "group broken: evaluation fails: ")


def test_targets_up(run):
    check(query(run, targets_up, job="healthy"), Outcome.PASS, "1 target up")
    down = check(query(run, targets_up, job="down"), Outcome.FAIL, "1 of 1 down: http://127.0.0.1:",
                 "connection refused")
    assert list(down.evidence["targets"].values()) == ["down"]
    check(query(run, targets_up, job="empty"), Outcome.FAIL, "job empty is configured, but service discovery found "
                                                              "no target")
    check(query(run, targets_up, job="helthy"), Outcome.ERROR, "Prometheus scrapes no job named helthy; did you mean "
                                                               "'healthy'")


def test_sends_to_alertmanager(run, monitoring, run_factory):
    check(query(run, sends_to_alertmanager), Outcome.PASS, f"sends to {monitoring.alertmanager}/api/v2/alerts")
    broken = run_factory(monitoring.env(prometheus=monitoring.broken_prometheus, name="broken"), "broken")
    check(query(broken, sends_to_alertmanager), Outcome.FAIL, "no active Alertmanager")


# --- a server that cannot be read, a section that is missing or wrong ----------------------------------------


@pytest.mark.parametrize("func, args", [
    (prometheus_query_below, {"query": "up", "threshold": 1}),
    (prometheus_query_empty, {"query": "up == 0"}),
    (alert_not_firing, {"alert": "HighErrorRate"}),
    (alert_firing, {"alert": "HighErrorRate"}),
    (no_alert_of_severity_firing, {"severity": "critical"}),
    (alerting_rule_loaded, {"alert": "HighErrorRate"}),
    (rules_healthy, {}),
    (targets_up, {"job": "api"}),
    (sends_to_alertmanager, {}),
], ids=lambda v: getattr(v, "__name__", ""))
def test_every_step_errors_when_prometheus_is_down_or_not_declared(func, args, run_factory):
    with refused_port() as port:
        url = f"http://127.0.0.1:{port}"
        down = run_factory(f'aws = {{ target = "endpoint", url = "http://127.0.0.1:9", region = "us-east-1" }}\n'
                           f'[environments.test.prometheus]\nurl = "{url}"\ntimeout_s = 2\n')
        result = check(evaluate(down, func, **args), Outcome.ERROR,
                       f"cannot reach Prometheus at {url}: connection refused")
    assert result.resource == url and "is running" in result.hint
    bare = run_factory('aws = { target = "endpoint", url = "http://127.0.0.1:9", region = "us-east-1" }\n', "bare")
    missing = evaluate(bare, func, **args)
    assert missing.outcome is Outcome.ERROR
    assert missing.observed == ("environment 'bare' declares no Prometheus ([environments.bare.prometheus] url)")
    assert "@requires:prometheus" in missing.hint


def test_a_wrong_url_or_a_page_that_is_not_the_api_is_an_error(run_factory, monitoring):
    apps = monitoring.apps
    wrong = run_factory(monitoring.env(prometheus=apps["healthy"], services=False))  # the app, not Prometheus
    check(evaluate(wrong, rules_healthy), Outcome.ERROR, f"Prometheus at {apps['healthy']} has no /api/v1/rules "
                                                         "(HTTP 404)")


@pytest.mark.parametrize("body, message", [
    ('prometheus = { url = "prometheus:9090" }', "prometheus.url must be the Prometheus URL, starting with http://"),
    ('prometheus = { url = "http://p", timeout = 3 }', "unknown prometheus key 'timeout'; did you mean 'timeout_s'?"),
    ('prometheus = { url = "http://p", timeout_s = 0 }', "prometheus.timeout_s must be a number of seconds above 0"),
    ('alertmanager = { url = "http://a", headers = { X = "${RUNBOOKS_TEST_UNSET_TOKEN}" } }',
     "alertmanager header uses ${RUNBOOKS_TEST_UNSET_TOKEN}, which is not set"),
    ('prometheus = "http://p"', "prometheus must be a table"),
])
def test_the_sections_are_checked_when_the_file_loads(body, message, run_factory):
    with pytest.raises(ConfigError) as info:
        run_factory('aws = { target = "endpoint", url = "http://127.0.0.1:9", region = "us-east-1" }\n' + body + "\n")
    assert message in str(info.value)


def test_header_tokens_are_sent_and_masked(monitoring, run_factory, monkeypatch):
    monkeypatch.setenv("RUNBOOKS_TEST_PROM_TOKEN", "s3cr3t-prometheus-token")
    run = run_factory(monitoring.env() + "[environments.test.prometheus]\n"
                      f'url = "{monitoring.prometheus}"\nheaders = {{ Authorization = "Bearer '
                      '${RUNBOOKS_TEST_PROM_TOKEN}" }\n')
    result = check(evaluate(run, targets_up, job="healthy"), Outcome.PASS)
    assert "-H 'Authorization: ***'" in result.manual_command and "s3cr3t" not in result.manual_command
    assert "s3cr3t-prometheus-token" in run.redactor.secrets  # masked in every record


# --- end to end: a runbook that needs Prometheus, with and without one --------------------------------------


FEATURE = """\
    Feature: Monitoring
      @requires:prometheus
      Scenario: Quiet
        Then the alert "DiskSpaceLow" is not firing
        And the Prometheus query "sum(up{job="healthy"})" is above 0
        And every Prometheus target of job "healthy" is up

      @requires:prometheus
      Scenario: Burst
        Then the alert "HighErrorRate" is not firing
        And the Prometheus query "up{job="{missing_job}"}" is above 0

      @requires:alertmanager
      Scenario: Silenced
        Then an Alertmanager silence covers "{service="nothing"}" for the next 10 minutes
    """


def write_project(root: Path, env_body: str) -> tuple[Path, Path]:
    (root / "features").mkdir(exist_ok=True)
    feature = root / "features" / "monitoring.feature"
    feature.write_text(textwrap.dedent(FEATURE), encoding="utf-8")
    config = root / "runbooks.toml"
    config.write_text('default_environment = "local"\n[environments.local]\n'
                      + env_body.replace("[environments.test", "[environments.local")
                      + '[environments.local.vars]\nmissing_job = "nosuchjob"\n', encoding="utf-8")
    return config, feature


@pytest.mark.parametrize("declared", [True, False])
def test_cli_runs_or_skips_the_monitoring_scenarios(declared, monitoring, tmp_path, capsys):
    env = (monitoring.env(prometheus=monitoring.prometheus, alertmanager=monitoring.alertmanager) if declared
           else monitoring.env())
    config, feature = write_project(tmp_path, env)
    reports = tmp_path / "reports"
    code = main(["verify", "--config", str(config), "--report-dir", str(reports), "--no-history", str(feature)])
    out = capsys.readouterr().out
    _, records = read_results_json(reports / "results.json")
    outcomes = [(r.scenario, r.outcome) for r in records]
    if declared:
        assert code == 1, out
        assert outcomes == [("Quiet", Outcome.PASS)] * 3 + [("Burst", Outcome.FAIL), ("Burst", Outcome.ERROR),
                                                             ("Silenced", Outcome.FAIL)]
    else:
        assert code == 0, out
        assert {o for _, o in outcomes} == {Outcome.SKIPPED}  # skipped with the reason, never passed
        reasons = {r.scenario: r.observed for r in records}
        assert reasons["Quiet"] == ("not run here: environment local declares no Prometheus server "
                                    "([environments.local.prometheus] url) (@requires:prometheus)")
        assert "declares no Alertmanager" in reasons["Silenced"]


def test_lint_asks_for_the_requires_tag_of_the_steps_that_need_a_server(tmp_path, capsys):
    (tmp_path / "features").mkdir()
    (tmp_path / "runbooks.toml").write_text(
        '[environments.local]\naws = { target = "endpoint", url = "http://127.0.0.1:9", region = "us-east-1" }\n',
        encoding="utf-8")
    (tmp_path / "features" / "alerts.feature").write_text(textwrap.dedent("""\
        @owner:platform-team @severity:high @reviewed:2026-12-01 @operational
        Feature: Alerts
          Purpose:
            p
          When to use:
            w
          Prerequisites:
            - p
          Escalation:
            - e
          Rollback:
            Nothing to roll back.
          References:
            - runbooks.toml

          Scenario: Untagged
            Then the alert "HighErrorRate" is not firing
            And no alert matching "HighErrorRate" is active in Alertmanager

          @requires:prometheus
          Scenario: Tagged
            Then the alert "HighErrorRate" is not firing
        """), encoding="utf-8")
    assert main(["lint", "--config", str(tmp_path / "runbooks.toml"), "--max-age", "36500"]) == 1
    out = capsys.readouterr().out
    assert out.splitlines() == [
        "features/alerts.feature:17: this step reads prometheus: tag its scenario (or the feature) "
        "@requires:prometheus, so that environments without one skip it",
        "features/alerts.feature:18: this step reads alertmanager: tag its scenario (or the feature) "
        "@requires:alertmanager, so that environments without one skip it"]


# --- the shipped rules and the runbook that checks them -------------------------------------------------------

RULES = Path(__file__).resolve().parent.parent / "infra" / "prometheus" / "alerts.yml"
MONITORING = RULES.parents[2] / "features" / "monitoring" / "monitoring_and_alerting.feature"


def test_the_shipped_rules_are_valid_and_the_monitoring_runbook_checks_each():
    import os
    import re
    import shutil
    import subprocess

    alerts = re.findall(r"^\s*- alert: (\w+)$", RULES.read_text(encoding="utf-8"), re.M)
    runbook = MONITORING.read_text(encoding="utf-8")
    seeds = {"HighErrorRate", "HighLatency", "DatabaseConnectionFailures", "DiskSpaceLow", "MemoryUsageHigh"}
    assert seeds <= set(alerts)  # the alerts the operations guide asks for
    for alert in alerts:
        assert f'the Prometheus alerting rule "{alert}" is loaded and healthy' in runbook, alert
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("RUNBOOKS_REQUIRE_PROMETHEUS") == "1":
            pytest.fail("RUNBOOKS_REQUIRE_PROMETHEUS=1 but promtool is not installed (Debian package prometheus)")
        pytest.skip("promtool not installed (Debian package prometheus)")
    checked = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0 and f"SUCCESS: {len(alerts)} rules found" in checked.stdout, checked
