"""`service_answers` against real local HTTP servers, and the manual step."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from runbooks.result import Outcome
from runbooks.session import Session
from runbooks.steps.http import BODY_EXCERPT, service_answers
from runbooks.steps.manual import manual_step
from tests.conftest import evaluate
from tests.support.moto_server import closed_port_url, silent_server

LONG_BODY = "x" * (BODY_EXCERPT * 3)
ROUTES: dict[str, tuple[int, dict[str, str], str]] = {
    "/ok": (200, {}, "ok"),
    "/base/ok": (200, {}, "ok under a base path"),
    "/ready": (503, {}, json.dumps({"status": "not ready", "checks": {"s3": "timeout"}})),
    "/long": (500, {}, LONG_BODY),
    "/moved": (302, {"Location": "/ok"}, ""),
}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        status, headers, body = ROUTES.get(self.path, (404, {}, "not found"))
        data = body.encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def web() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def web_run(web: str, run_factory: Callable[..., Session]) -> Session:
    return run_factory(
        f"""\
        [environments.test.services]
        web = "{web}"
        based = "{web}/base/"
        """
    )


def test_expected_status_in_time_passes(web: str, web_run: Session) -> None:
    result = evaluate(web_run, service_answers, service="web", path="/ok", status=200, ms=5000)
    assert result.outcome is Outcome.PASS
    assert result.resource == f"{web}/ok"
    assert result.expected == "HTTP 200 within 5000 ms"
    assert result.observed.startswith("HTTP 200 in ") and result.observed.endswith(" ms")
    assert result.manual_command == f"curl -sS -o /dev/null -w '%{{http_code}} %{{time_total}}s\\n' {web}/ok"


def test_manual_command_repeats_the_checks_trust_and_headers(web: str, run_factory: Callable[..., Session],
                                                             tmp_path: Path) -> None:
    bundle = tmp_path / "private ca.pem"  # a space: the command must quote it
    bundle.write_text("", encoding="utf-8")
    run = run_factory(
        f"""\
        [environments.test.services.web]
        url = "{web}"
        verify_tls = "{bundle}"
        headers = {{ Authorization = "Bearer s3cret-token" }}
        [environments.test.services.insecure]
        url = "{web}"
        verify_tls = false
        """
    )
    trusted = evaluate(run, service_answers, service="web", path="/ok", status=200, ms=5000)
    assert trusted.manual_command == (
        f"curl -sS --cacert '{bundle}' -H 'Authorization: ***' "
        f"-o /dev/null -w '%{{http_code}} %{{time_total}}s\\n' {web}/ok"
    )
    assert trusted.outcome is Outcome.PASS and "s3cret" not in trusted.manual_command
    insecure = evaluate(run, service_answers, service="insecure", path="/ok", status=200, ms=5000)
    assert insecure.outcome is Outcome.PASS
    assert insecure.manual_command.startswith("curl -sS -k -o /dev/null ")


def test_service_base_path_is_kept(web: str, web_run: Session) -> None:
    result = evaluate(web_run, service_answers, service="based", path="/ok", status=200, ms=5000)
    assert (result.outcome, result.resource) == (Outcome.PASS, f"{web}/base/ok")


def test_other_status_fails_with_the_body(web: str, web_run: Session) -> None:
    result = evaluate(web_run, service_answers, service="web", path="/ready", status=200, ms=5000)
    assert result.outcome is Outcome.FAIL
    assert result.expected == "HTTP 200 within 5000 ms"
    assert result.observed.startswith("HTTP 503 in ")
    assert result.observed.endswith(': {"status": "not ready", "checks": {"s3": "timeout"}}')
    assert "web is not answering /ready" in result.hint


def test_long_body_is_cut_to_an_excerpt(web_run: Session) -> None:
    result = evaluate(web_run, service_answers, service="web", path="/long", status=200, ms=5000)
    assert result.outcome is Outcome.FAIL
    body = result.observed.split(": ", 1)[1]
    assert body == "x" * BODY_EXCERPT + "..."


def test_redirect_is_not_followed(web_run: Session) -> None:
    result = evaluate(web_run, service_answers, service="web", path="/moved", status=200, ms=5000)
    assert result.outcome is Outcome.FAIL
    assert result.observed.startswith("HTTP 302 in ")


def test_right_status_too_slow_fails(web_run: Session) -> None:
    # Any real answer takes more than 0 ms: the latency bound, not the status, fails it.
    result = evaluate(web_run, service_answers, service="web", path="/ok", status=200, ms=0)
    assert result.outcome is Outcome.FAIL
    assert result.expected == "HTTP 200 within 0 ms"
    assert result.observed.startswith("HTTP 200 in ")
    assert "slow" in result.hint


def test_connection_refused_is_an_error(run_factory: Callable[..., Session]) -> None:
    url = closed_port_url()
    run = run_factory(f'services = {{ down = {{ url = "{url}", timeout_s = 2 }} }}\n')
    result = evaluate(run, service_answers, service="down", path="/health", status=200, ms=500)
    assert result.outcome is Outcome.ERROR
    assert (result.resource, result.observed) == (f"{url}/health", "connection refused")
    assert "service is running" in result.hint
    assert url in result.manual_command


def test_no_answer_is_a_timeout_error(run_factory: Callable[..., Session]) -> None:
    with silent_server() as url:
        run = run_factory(f'services = {{ hung = {{ url = "{url}", timeout_s = 0.3 }} }}\n')
        started = time.monotonic()
        result = evaluate(run, service_answers, service="hung", path="/health", status=200, ms=500)
        took = time.monotonic() - started
    assert result.outcome is Outcome.ERROR
    assert result.observed == "no answer within 0.3 s (timeout)"
    assert took < 5  # the configured timeout applied, not a default
    assert "reachable" in result.hint


def test_unknown_service_at_run_time_is_an_error_naming_it(web_run: Session) -> None:
    result = evaluate(web_run, service_answers, service="wbe", path="/ok", status=200, ms=500)
    assert result.outcome is Outcome.ERROR
    assert (
        result.observed
        == "service 'wbe' is not defined by environment 'test'; did you mean 'web' or 'based'?"
    )


def test_manual_step_is_recorded_not_run(moto_run: Session) -> None:
    result = evaluate(moto_run, manual_step, action="page the on-call lead")
    assert result.outcome is Outcome.MANUAL
    assert (result.observed, result.hint) == ("performed by a person", "page the on-call lead")
