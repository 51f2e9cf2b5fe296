"""Alertmanager steps against a real Alertmanager (tests/support/prometheus.py) that the real Prometheus sends
its alerts to. The tests post their own alerts and silences (the steps only read); each test uses label
values of its own, so they share the server without disturbing each other."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from runbooks.result import Outcome
from runbooks.session import Session
from runbooks.steps.alertmanager import active_alert, no_active_alert, silence_covers
from tests.conftest import checked as check
from tests.conftest import evaluate
from tests.support.http_servers import refused_port
from tests.support.prometheus import Monitoring  # the `monitoring` fixture is in tests/conftest.py's plugins


@pytest.fixture
def run(monitoring: Monitoring, run_factory: Callable[[str], Session]) -> Session:
    return run_factory(monitoring.env(alertmanager=monitoring.alertmanager))


@pytest.fixture
def run_with_prometheus(monitoring: Monitoring, run_factory: Callable[[str], Session]) -> Session:
    return run_factory(monitoring.env(prometheus=monitoring.prometheus, alertmanager=monitoring.alertmanager))


def test_active_alerts_by_name_or_labels(run, monitoring):
    monitoring.post_alert({"alertname": "QueueBacklog", "service": "orders", "severity": "critical"})
    monitoring.post_alert({"alertname": "QueueMuted", "service": "orders", "severity": "warning"})
    monitoring.add_silence({"alertname": "QueueMuted"})
    failed = check(evaluate(run, no_active_alert, alert="QueueBacklog"), Outcome.FAIL,
                   '1 active: QueueBacklog{service="orders",severity="critical"} since ', "(to null)")
    assert failed.evidence["active"] == [{"alertname": "QueueBacklog", "service": "orders", "severity": "critical"}]
    check(evaluate(run, no_active_alert, alert="QueueMuted"), Outcome.PASS, "none active (1 silenced)")
    check(evaluate(run, no_active_alert, alert='{service="orders",severity="critical"}'), Outcome.FAIL, "1 active")
    check(evaluate(run, no_active_alert, alert='{service="orders"}'), Outcome.FAIL, "1 active", "(1 silenced)")
    check(evaluate(run, no_active_alert, alert='{service=~"order.*",severity!="critical"}'), Outcome.PASS,
          "(1 silenced)")
    check(evaluate(run, active_alert, alert="QueueBacklog"), Outcome.PASS, "1 active: QueueBacklog{")
    check(evaluate(run, active_alert, alert="QueueMuted"), Outcome.FAIL, "none active (1 silenced)")
    check(evaluate(run, active_alert, alert="NothingLikeIt"), Outcome.FAIL, "none active (no such alert at all)")


def test_alerts_prometheus_sent_and_names_no_rule_has(run_with_prometheus):
    # HighErrorRate fires in Prometheus (the burst app) and reached Alertmanager
    check(evaluate(run_with_prometheus, no_active_alert, alert='HighErrorRate{job="burst"}'), Outcome.FAIL,
          '1 active: HighErrorRate{job="burst",service="api",severity="critical"}')
    check(evaluate(run_with_prometheus, no_active_alert, alert='HighErrorRate{job="healthy"}'), Outcome.PASS)
    # with Prometheus declared too, a name no rule has cannot pass as "not active"
    check(evaluate(run_with_prometheus, no_active_alert, alert="HighErorRate"), Outcome.ERROR,
          "Prometheus has no alerting rule named HighErorRate; did you mean 'HighErrorRate'",
          "Alertmanager could never receive it")


def test_a_silence_covers_the_maintenance_window(run, monitoring):
    monitoring.add_silence({"service": "db"}, minutes=120, comment="CHG-42 database patching")
    monitoring.add_silence({"service": "cache"}, minutes=10)
    monitoring.add_silence({"service": "queue"}, starts_in_min=30, minutes=60)
    monitoring.add_silence({"service": "web", "instance": "web-1"})
    passed = check(evaluate(run, silence_covers, labels='{service="db"}', minutes=90), Outcome.PASS,
                   "by alice until ", "min left: CHG-42 database patching")
    assert passed.evidence["silence"]
    check(evaluate(run, silence_covers, labels='DiskSpaceLow{service="db",severity="warning"}', minutes=90),
          Outcome.PASS, "CHG-42")  # more labels than the silence names: still covered
    short = check(evaluate(run, silence_covers, labels='{service="cache"}', minutes=60), Outcome.FAIL,
                  "ends too early: silence ")
    assert "amtool silence update --duration 60m" in short.hint
    check(evaluate(run, silence_covers, labels='{service="queue"}', minutes=60), Outcome.FAIL, "not active yet: ")
    missing = check(evaluate(run, silence_covers, labels='{service="web"}', minutes=60), Outcome.FAIL,
                    "no silence matches (")  # it also needs instance=web-1, which these labels do not give
    assert "amtool silence add service=web --duration 60m" in missing.hint
    assert missing.expected == 'an active silence covering {service="web"} for the next 60 minutes'


def test_every_step_errors_when_alertmanager_is_down_or_not_declared(run_factory):
    with refused_port() as port:
        url = f"http://127.0.0.1:{port}"
        down = run_factory(f'aws = {{ target = "endpoint", url = "http://127.0.0.1:9", region = "us-east-1" }}\n'
                           f'[environments.test.alertmanager]\nurl = "{url}"\n')
        for func, args in ((no_active_alert, {"alert": "X"}), (active_alert, {"alert": "X"}),
                           (silence_covers, {"labels": '{service="db"}', "minutes": 5})):
            result = check(evaluate(down, func, **args), Outcome.ERROR,
                           f"cannot reach Alertmanager at {url}: connection refused")
            assert result.resource == url
    bare = run_factory('aws = { target = "endpoint", url = "http://127.0.0.1:9", region = "us-east-1" }\n', "bare")
    missing = evaluate(bare, no_active_alert, alert="X")
    assert (missing.outcome, missing.observed) == (
        Outcome.ERROR, "environment 'bare' declares no Alertmanager ([environments.bare.alertmanager] url)")
