"""Derived credentials never reach an output, even when the server echoes what it was sent.

A service URL with ``user:password@`` (a password holding '@', ':' and a %-escape) makes requests send
``Authorization: Basic <base64>``; a step's URL carries ``?token=``, ``access_token=`` and
``X-Amz-Signature=``; a header sends ``Bearer <token>`` from an environment variable named in ``secrets``.
The server answers 500 with the query string and the request headers, so all of them land in the records.
Every output of ``verify`` (console, results.json, JUnit, Cucumber JSON, history, drift, webhook bodies) and
of ``render`` is then searched for each secret in each form it can take.
"""

from __future__ import annotations

import base64
import json
import shlex
import sqlite3
import textwrap
from urllib.parse import quote, unquote

from runbooks.cli import main
from runbooks.context import ScenarioState
from runbooks.redact import MASK, Redactor
from runbooks.steps.http import http_get, response_body_contains, service_answers
from tests.conftest import evaluate

USER = "svc-user"
PASSWORD = "PLANTED%40pw:w@rd-tailQZ"  # as written in the URL: decoded it is PLANTED@pw:w@rd-tailQZ
QUERY_TOKEN = "PLANTED-query%2Ftoken-5e0f"
ACCESS_TOKEN = "PLANTED-access-token-9c1d"
SIGNATURE = "PLANTEDsig0a1b2c3d4e5f"
HEADER_TOKEN = "PLANTED-bearer-token-7d1c"
HOOK_TOKEN = "PLANTED-hook-token-4c6b"
SECRETS = (PASSWORD, QUERY_TOKEN, ACCESS_TOKEN, SIGNATURE, HEADER_TOKEN, HOOK_TOKEN)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def forms(secret: str) -> set[str]:
    """Raw, percent-decoded, percent-encoded; for the URL password also user:password and its base64 (the
    Basic value requests sends), and the tail after the password's last '@' (masked up to the first '@')."""
    out = {secret, unquote(secret), quote(unquote(secret), safe="")}
    if secret == PASSWORD:
        pairs = {f"{USER}:{secret}", f"{USER}:{unquote(secret)}"}
        out |= pairs | {b64(p) for p in pairs} | {f"Basic {b64(p)}" for p in pairs}
        out |= {"rd-tailQZ", "PLANTED%40pw:w%40rd-tailQZ"}  # requests re-encodes the '@' it sends
    if secret == HEADER_TOKEN:
        out.add(f"Bearer {secret}")
    return out


def test_echoed_credentials_appear_in_no_output(tmp_path, status_service, capsys, monkeypatch):
    monkeypatch.setenv("RUNBOOKS_TEST_ECHO_TOKEN", HEADER_TOKEN)
    status_service.set("/echo", status=500, echo=True)
    status_service.set("/hook", body="ok")
    host = status_service.url.removeprefix("http://")
    query = f"token={QUERY_TOKEN}&access_token={ACCESS_TOKEN}&X-Amz-Signature={SIGNATURE}"
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "echo.feature").write_text(textwrap.dedent(f"""\
        @owner:test @severity:high
        Feature: Echoing services
          Scenario: The services answer
            Then the service "basic" answers GET "/echo" with status 200 within 2000 ms
            And the service "api" answers GET "/echo?{query}" with status 200 within 2000 ms

          Scenario: The body is read
            When I GET "/echo?token={QUERY_TOKEN}" from "basic"
            Then the response body contains "nothing like this"
        """), encoding="utf-8")
    config = tmp_path / "runbooks.toml"
    config.write_text(textwrap.dedent(f"""\
        [environments.ci]
        aws = {{ target = "moto", region = "eu-west-1" }}
        secrets = ["RUNBOOKS_TEST_ECHO_TOKEN"]
        [environments.ci.services.api]
        url = "http://{host}"
        headers = {{ Authorization = "Bearer ${{RUNBOOKS_TEST_ECHO_TOKEN}}" }}
        [environments.ci.services.basic]
        url = "http://{USER}:{PASSWORD}@{host}/"
        """), encoding="utf-8")
    history, reports, site = tmp_path / "history.sqlite", tmp_path / "reports", tmp_path / "site"
    cucumber = tmp_path / "cucumber.json"
    hook = f"{status_service.url}/hook?token={HOOK_TOKEN}"
    common = ["--config", str(config)]
    assert main(["verify", *common, "--report-dir", str(reports), "--cucumber-json", str(cucumber),
                 "--history", str(history), "--drift", "--notify", hook, "--notify-always"]) == 1
    verify_out = capsys.readouterr()
    assert main(["drift", *common, "--history", str(history), "--json"]) == 0
    drift_out = capsys.readouterr()
    assert main(["render", *common, "--results", str(reports / "results.json"), "--out", str(site)]) == 0
    render_out = capsys.readouterr()

    # the credentials were really sent, and the server really echoed them into the records
    gets = [r for r in status_service.requests if r["method"] == "GET"]
    sent = {r["headers"].get("Authorization") for r in gets}
    assert f"Basic {b64(f'{USER}:{unquote(PASSWORD)}')}" in sent and f"Bearer {HEADER_TOKEN}" in sent
    assert any(query in r["path"] for r in gets)
    records = json.loads((reports / "results.json").read_text())["results"]
    observed = " ".join(r["observed"] for r in records)
    assert observed.count(f'"Authorization": "{MASK}') == 3 and f"token={MASK}" in observed  # excerpts may cut

    # the commands to check by hand keep their URL (quoted for the shell) and lose only the secret
    manuals = [r["manual_command"] for r in records if r["manual_command"].startswith("curl")]
    assert len(manuals) == 4
    for manual in manuals:
        url = shlex.split(manual)[-1] if "|" not in manual else shlex.split(manual.split(" | ")[0])[-1]
        assert url.startswith("http://") and f"{host}/echo" in url, manual
    assert any(f"-H 'Authorization: {MASK}'" in m and f"X-Amz-Signature={MASK}" in m for m in manuals)
    assert any(f"http://{MASK}@{host}/echo" in m for m in manuals)

    posts = [r for r in status_service.requests if r["method"] == "POST"]
    assert posts and all("Echoing services" in p["body"] or "echo" in p["body"] for p in posts)
    outputs = {
        "verify stdout (console, drift)": verify_out.out,
        "verify stderr": verify_out.err,
        "drift --json": drift_out.out + drift_out.err,
        "render": render_out.out + render_out.err,
        "results.json": (reports / "results.json").read_text(),
        "junit.xml": (reports / "junit.xml").read_text(),
        "cucumber.json": cucumber.read_text(),
        "history dump": "\n".join(sqlite3.connect(history).iterdump()),
        "webhook bodies": "\n".join(p["body"] for p in posts),
    }
    for path in [history, history.with_name(history.name + "-wal")]:
        if path.exists():
            outputs[path.name] = path.read_bytes().decode("latin-1")
    site_files = sorted(p for p in site.rglob("*") if p.is_file())
    assert site_files
    outputs |= {f"site {p.relative_to(site)}": p.read_text(encoding="utf-8") for p in site_files}
    assert f"{host}/echo" in "".join(v for k, v in outputs.items() if k.startswith("site"))
    leaks = [f"{form!r} in {name}" for name, text in outputs.items() for secret in SECRETS
             for form in forms(secret) if form in text]
    assert not leaks


def test_json_and_header_shaped_credentials_are_masked_alike():
    redactor = Redactor()
    text = redactor.text('{"Authorization": "Basic dXNlcjpwQHNz", "password": "hunter22", "user": "bob"}')
    assert text == f'{{"Authorization": "{MASK}", "password": "{MASK}", "user": "bob"}}'
    assert redactor.text("{'X-Api-Key': 'k3y-value'}") == f"{{'X-Api-Key': '{MASK}'}}"
    assert redactor.text("Authorization: Bearer abcdef\nAccept: */*") == f"Authorization: {MASK}\nAccept: */*"
    # a header masked in a shell command keeps the rest of the command
    assert (redactor.text("curl -sS -H 'Authorization: Bearer abcdef' 'http://h/x?a=1&token=s3cret'")
            == f"curl -sS -H 'Authorization: {MASK}' 'http://h/x?a=1&token={MASK}'")


def test_url_credentials_are_masked_to_the_last_at_sign_and_in_every_form():
    redactor = Redactor()
    url = "https://user:p%40ss:w@rd99@example.org:8443/api?access_token=tok-1234"
    assert redactor.text(f"GET {url} failed") == f"GET https://{MASK}@example.org:8443/api?access_token={MASK} failed"
    # learnt from the URL: the server's echo of the password, the Basic value and the token, in any shape
    echo = (f'"Authorization": "Basic {b64("user:p@ss:w@rd99")}" password p@ss:w@rd99 '
            f"{b64('user:p@ss:w@rd99')} query access%5Ftoken tok-1234")
    assert redactor.text(echo) == f'"Authorization": "{MASK}" password {MASK} {MASK} query access%5Ftoken {MASK}'


def test_configured_credentials_are_known_before_any_url_is_seen(run_factory, monkeypatch):
    monkeypatch.setenv("RUNBOOKS_TEST_BASIC", "Basic " + b64("ops:hdr-pass-77"))
    run = run_factory("""\
        aws = { target = "moto", region = "eu-west-1" }
        [environments.test.services.api]
        url = "http://ops:url%3Apass-88@127.0.0.1:9/"
        headers = { Authorization = "${RUNBOOKS_TEST_BASIC}" }
        [environments.test.services.s3like]
        url = "http://127.0.0.1:9/?X-Amz-Signature=sig-abcdef-99"
    """)
    masked = run.redactor.text(f"hdr-pass-77 url:pass-88 url%3Apass-88 {b64('ops:url:pass-88')} sig-abcdef-99")
    assert masked == " ".join([MASK] * 5)


def test_an_excerpt_cut_inside_a_secret_does_not_show_its_start():
    redactor = Redactor(["PLANTED-token-abcdef"])
    assert redactor.text("body: PLANTED-tok...") == f"body: {MASK}..."
    assert redactor.text("'x PLANTED-to\u2026'") == f"'x {MASK}\u2026'"


def test_manual_commands_quote_urls_for_the_shell_and_keep_them_when_masked(status_service, run_factory):
    status_service.set("/q", status=500, echo=True)
    run = run_factory(f"""\
        aws = {{ target = "moto", region = "eu-west-1" }}
        [environments.test.services.web]
        url = "http://ops:pa%40ss@{status_service.url.removeprefix('http://')}"
        headers = {{ X-Api-Key = "k3y-PLANTED" }}
        """)
    path = "/q?a=(1)&b>2&token=t0k-PLANTED"
    url = f"{status_service.url.replace('http://', 'http://ops:pa%40ss@')}{path}"
    state = ScenarioState()
    results = [evaluate(run, service_answers, path=path, service="web", status=200, ms=2000),
               evaluate(run, http_get, state, path=path, service="web"),
               evaluate(run, response_body_contains, state, text="it's > here")]
    for result in results:
        words = shlex.split(result.manual_command.split(" | ")[0])
        assert words[-1] == url and words[words.index("-H") + 1] == f"X-Api-Key: {MASK}", result.manual_command
        masked = run.redactor.record(result)  # a CheckResult has the record's text fields
        words = shlex.split(masked.manual_command.split(" | ")[0])
        assert words[-1] == url.replace("ops:pa%40ss", MASK).replace("t0k-PLANTED", MASK), masked.manual_command
        assert "PLANTED" not in repr(masked) and "pa@ss" not in repr(masked) and "pa%40ss" not in repr(masked)
    assert shlex.split(results[2].manual_command.split(" | ")[1]) == ["grep", "-F", "it's > here"]
