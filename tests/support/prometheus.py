"""A real Prometheus and Alertmanager on 127.0.0.1 for the monitoring step tests, and the apps they scrape.

``monitoring`` (session scope) starts, on free ports, with their own configuration and temporary storage:

- the apps: the sandbox's reference API (``runbooks.sandbox.service``: the metric families of an
  instrumented service, counters growing with its live traffic) with a controlled history, error ratio and
  latency: ``healthy``; ``burst`` (300,000 good requests, then 10% errors); ``recovered`` (an old burst, now
  clean); ``slow`` (p95 1.7 s now); and ``down``, a port that refuses connections;
- Alertmanager (``prometheus-alertmanager``, clustering off, every notification to a null receiver);
- Prometheus scraping the apps every second with the platform's rules (infra/prometheus/alerts.yml, windows
  and ``for:`` shortened to seconds) plus a quiet rule of severity info, sending its alerts to that
  Alertmanager;
- a second Prometheus with no target, no Alertmanager and one rule that fails to evaluate.

It returns once every rule group has been evaluated and the alerts the apps trigger are firing (Prometheus
applies a new target list after 5 s: about 10 s in all). Without the binaries the tests that use it are
skipped, saying so; with ``RUNBOOKS_REQUIRE_PROMETHEUS=1`` they fail instead (CI that installs them).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from runbooks.sandbox.service import ReferenceService
from runbooks.sandbox.stack import ServiceSpec

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "infra" / "prometheus" / "alerts.yml"
REQUIRE = "RUNBOOKS_REQUIRE_PROMETHEUS"
STARTUP_S = 40  # Prometheus applies targets 5 s after start; the alerts need a few evaluations more

# name -> (history: ok, errors, p95; live: requests per second, error ratio, p95)
APPS: dict[str, ServiceSpec] = {
    "healthy": ServiceSpec(requests_ok=3000, requests_error=3, p95_seconds=0.2, requests_per_second=50,
                           error_ratio=0.002, live_p95_seconds=0.2),
    # The totals must tell the wrong story however long the session runs before the test reads them (up to
    # ~30 min): a long healthy history dilutes the burst below 5%, a big old burst keeps "recovered" above.
    "burst": ServiceSpec(requests_ok=300000, requests_error=3, p95_seconds=0.2, requests_per_second=40,
                         error_ratio=0.10, live_p95_seconds=0.2),
    "recovered": ServiceSpec(requests_ok=30000, requests_error=3300, p95_seconds=0.2, requests_per_second=5,
                             error_ratio=0.0, live_p95_seconds=0.2),
    "slow": ServiceSpec(requests_ok=3000, requests_error=3, p95_seconds=0.2, requests_per_second=200,
                        error_ratio=0.002, live_p95_seconds=1.7),
}
QUIET_RULE = """
  - name: test
    rules:
      - alert: NeverFires
        expr: vector(0) > 1
        labels:
          severity: info
          service: test
"""
BROKEN_RULE = """groups:
  - name: broken
    rules:
      - alert: ManyToMany
        expr: (label_replace(vector(1), "a", "x", "", "") or label_replace(vector(1), "a", "y", "", ""))
          * on() (label_replace(vector(1), "a", "x", "", "") or label_replace(vector(1), "a", "y", "", ""))
"""


def binary(*names: str) -> str | None:
    return next((path for name in names if (path := shutil.which(name))), None)


def require_binaries() -> tuple[str, str]:
    """The prometheus and alertmanager binaries; skip (or fail, under RUNBOOKS_REQUIRE_PROMETHEUS=1) without."""
    prometheus = binary("prometheus")
    alertmanager = binary("prometheus-alertmanager", "alertmanager")
    if prometheus and alertmanager:
        return prometheus, alertmanager
    missing = " and ".join(n for n, p in (("prometheus", prometheus), ("alertmanager", alertmanager)) if not p)
    reason = (f"{missing} not installed (Debian: apt-get install prometheus prometheus-alertmanager); "
              f"set {REQUIRE}=1 to make this a failure")
    if os.environ.get(REQUIRE) == "1":
        pytest.fail(f"{REQUIRE}=1 but {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get_json(url: str, timeout: float = 2.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - 127.0.0.1 only
        return json.loads(response.read())


def post_json(url: str, body: Any) -> Any:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - 127.0.0.1 only
        text = response.read()
    return json.loads(text) if text else None


def wait_for(what: str, condition: Callable[[], bool], timeout: float, logs: list[Path],
             state: Callable[[], str] = lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except (OSError, urllib.error.URLError, ValueError, KeyError):
            pass
        time.sleep(0.2)
    try:
        seen = state()
    except (OSError, urllib.error.URLError, ValueError, KeyError) as exc:
        seen = f"(state unreadable: {exc})"
    tails = "\n".join(f"--- {log.name}:\n" + "\n".join(log.read_text(errors="replace").splitlines()[-5:])
                      for log in logs if log.exists())
    raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}\n{seen}\n{tails}")


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)


def start(name: str, argv: list[str], directory: Path) -> Process:
    log = directory / f"{name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=directory)
    return Process(name, popen, log)


def shortened_rules() -> str:
    """The shipped rules with windows and for: durations in seconds, plus the quiet info rule."""
    text = RULES.read_text(encoding="utf-8")
    for minutes in ("5m", "2m", "10m"):
        text = text.replace(f"[{minutes}]", "[5s]").replace(f"for: {minutes}", "for: 1s")
    return text.rstrip("\n") + "\n" + QUIET_RULE


@dataclass
class Monitoring:
    prometheus: str  # base URLs
    alertmanager: str
    broken_prometheus: str  # no target, no Alertmanager, one rule failing to evaluate
    apps: dict[str, str]  # job -> URL (the "down" job's port refuses connections)
    started: float = field(default_factory=time.monotonic)

    def env(self, *, prometheus: str | None = None, alertmanager: str | None = None, services: bool = True,
            name: str = "test") -> str:
        """The TOML body of environment ``name`` that declares these servers and the apps as services."""
        lines = ['aws = { target = "endpoint", url = "http://127.0.0.1:9", region = "us-east-1" }']
        if services:
            lines += [f"[environments.{name}.services]", *(f'{job} = "{url}"' for job, url in self.apps.items())]
        for section, url in (("prometheus", prometheus), ("alertmanager", alertmanager)):
            if url:
                lines += [f"[environments.{name}.{section}]", f'url = "{url}"']
        return "\n".join(lines) + "\n"

    def alerts(self) -> list[dict[str, Any]]:
        return list(get_json(self.prometheus + "/api/v1/alerts")["data"]["alerts"])

    def post_alert(self, labels: dict[str, str], minutes: int = 60) -> None:
        """An alert as Prometheus would send it (the tests' only writes go to the servers, never the steps')."""
        now = datetime.now(UTC)
        post_json(self.alertmanager + "/api/v2/alerts", [{
            "labels": labels, "annotations": {"summary": "posted by the tests"},
            "startsAt": now.isoformat(), "endsAt": (now + timedelta(minutes=minutes)).isoformat()}])

    def add_silence(self, matchers: dict[str, str], starts_in_min: float = 0, minutes: float = 120,
                    comment: str = "CHG-1234 maintenance") -> str:
        now = datetime.now(UTC) + timedelta(minutes=starts_in_min)
        body = {"matchers": [{"name": k, "value": v, "isRegex": False, "isEqual": True} for k, v in matchers.items()],
                "startsAt": now.isoformat(), "endsAt": (now + timedelta(minutes=minutes)).isoformat(),
                "createdBy": "alice", "comment": comment}
        return str(post_json(self.alertmanager + "/api/v2/silences", body)["silenceID"])

    def am_alert_names(self) -> set[str]:
        return {a["labels"].get("alertname", "") for a in get_json(self.alertmanager + "/api/v2/alerts")}


def _firing(monitoring: Monitoring, alert: str, job: str) -> bool:
    return any(a["state"] == "firing" and a["labels"].get("alertname") == alert and a["labels"].get("job") == job
               for a in monitoring.alerts())


def _state(monitoring: Monitoring) -> str:
    alerts = [(a["labels"].get("alertname"), a["labels"].get("job"), a["state"]) for a in monitoring.alerts()]
    rules = [(r["name"], r["health"], r.get("lastError", "")) for g in
             get_json(monitoring.prometheus + "/api/v1/rules")["data"]["groups"] for r in g["rules"]]
    targets = [(t["labels"].get("job"), t["health"], t.get("lastError", "")) for t in
               get_json(monitoring.prometheus + "/api/v1/targets")["data"]["activeTargets"]]
    return f"alerts: {alerts}\nrules: {rules}\ntargets: {targets}"


def _evaluated(url: str) -> bool:
    groups = get_json(url + "/api/v1/rules")["data"]["groups"]
    return bool(groups) and all(r.get("health") != "unknown" for g in groups for r in g["rules"])


@pytest.fixture(scope="session")
def monitoring(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Monitoring]:
    prometheus_bin, alertmanager_bin = require_binaries()
    directory = tmp_path_factory.mktemp("monitoring")
    services = {job: ReferenceService(dataclasses.replace(spec)).start() for job, spec in APPS.items()}
    down = free_port()  # nothing listens there
    am_port, prom_port, broken_port = free_port(), free_port(), free_port()
    (directory / "alertmanager.yml").write_text(
        'route:\n  receiver: "null"\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\n'
        'receivers:\n  - name: "null"\n', encoding="utf-8")
    (directory / "rules.yml").write_text(shortened_rules(), encoding="utf-8")
    jobs = {job: service.url.removeprefix("http://") for job, service in services.items()}
    jobs["down"] = f"127.0.0.1:{down}"
    scrape = "".join(f'  - job_name: {job}\n    static_configs: [{{targets: ["{target}"]}}]\n'
                     for job, target in jobs.items())
    (directory / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
        "rule_files: [rules.yml]\n"
        f'alerting:\n  alertmanagers:\n    - static_configs: [{{targets: ["127.0.0.1:{am_port}"]}}]\n'
        "scrape_configs:\n" + scrape + "  - job_name: empty\n    static_configs: []\n", encoding="utf-8")
    (directory / "broken.yml").write_text(BROKEN_RULE, encoding="utf-8")
    (directory / "broken-prometheus.yml").write_text(
        "global:\n  evaluation_interval: 1s\nrule_files: [broken.yml]\n", encoding="utf-8")
    processes = [
        start("alertmanager", [alertmanager_bin, "--config.file=alertmanager.yml", "--storage.path=am-data",
                               f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address=",
                               "--log.level=warn"], directory),
        start("prometheus", [prometheus_bin, "--config.file=prometheus.yml", "--storage.tsdb.path=prom-data",
                             f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"], directory),
        start("broken-prometheus", [prometheus_bin, "--config.file=broken-prometheus.yml",
                                    "--storage.tsdb.path=broken-data", f"--web.listen-address=127.0.0.1:{broken_port}",
                                    "--log.level=error"], directory),
    ]
    monitoring = Monitoring(f"http://127.0.0.1:{prom_port}", f"http://127.0.0.1:{am_port}",
                            f"http://127.0.0.1:{broken_port}",
                            {**{job: s.url for job, s in services.items()}, "down": f"http://127.0.0.1:{down}"})
    logs = [p.log for p in processes]
    try:
        wait_for("the alerts of the burst and slow apps to fire, and every rule to be evaluated", lambda: (
            _firing(monitoring, "HighErrorRate", "burst") and _firing(monitoring, "HighLatency", "slow")
            and _firing(monitoring, "TargetDown", "down") and _evaluated(monitoring.prometheus)
            and _evaluated(monitoring.broken_prometheus)), STARTUP_S, logs, lambda: _state(monitoring))
        wait_for("Alertmanager to receive HighErrorRate", lambda: "HighErrorRate" in monitoring.am_alert_names(),
                 10, logs)
        yield monitoring
    finally:
        for process in processes:
            process.stop()
        for service in services.values():
            service.stop()
