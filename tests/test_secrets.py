"""Secrets never reach the console, the reports, the history or notifications.

Secrets are planted in every way a configuration can carry them (URL credentials, a query token, an
Authorization header from the environment, a variable declared secret, the webhook URL) and every
output is searched for them.
"""

from __future__ import annotations

import textwrap

from runbooks.cli import main

HEADER_TOKEN = "PLANTED-header-token-7d1c"
URL_PASSWORD = "PLANTED-url-password-2b9a"
QUERY_TOKEN = "PLANTED-query-token-5e0f"
VARIABLE_SECRET = "PLANTED-variable-secret-8a3d"
HOOK_TOKEN = "PLANTED-hook-token-4c6b"
SECRETS = (HEADER_TOKEN, URL_PASSWORD, QUERY_TOKEN, VARIABLE_SECRET, HOOK_TOKEN)


def test_planted_secrets_appear_in_no_output(tmp_path, status_service, capsys, monkeypatch):
    monkeypatch.setenv("RUNBOOKS_TEST_API_TOKEN", HEADER_TOKEN)
    status_service.set("/health", status=500, body='{"status": "degraded"}')
    status_service.set(f"/search?key={VARIABLE_SECRET}", body="ok")
    status_service.set("/search")
    status_service.set("/hook", body="ok")
    host = status_service.url.removeprefix("http://")
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "secrets.feature").write_text(textwrap.dedent(f"""\
        @owner:test @severity:high
        Feature: Secrets stay secret
          Scenario: The API answers
            Then the service "api" answers GET "/health" with status 200 within 2000 ms
            And the service "api" answers GET "/search?key={{api_key}}" with status 200 within 2000 ms
            And the service "api" answers GET "/search?token={QUERY_TOKEN}" with status 204 within 2000 ms
            And the service "admin" answers GET "/health" with status 200 within 2000 ms

          Scenario: The search answers with the key
            When I GET "/search" from "api"
            Then the response body contains "{{api_key}}"
        """), encoding="utf-8")
    config = tmp_path / "runbooks.toml"
    config.write_text(textwrap.dedent(f"""\
        [environments.ci]
        aws = {{ target = "moto", region = "eu-west-1" }}
        secrets = ["api_key"]
        [environments.ci.vars]
        api_key = "{VARIABLE_SECRET}"
        [environments.ci.services.api]
        url = "http://{host}"
        headers = {{ Authorization = "Bearer ${{RUNBOOKS_TEST_API_TOKEN}}" }}
        [environments.ci.services.admin]
        url = "http://svc-user:{URL_PASSWORD}@{host}"
        """), encoding="utf-8")
    history = tmp_path / "history.sqlite"
    reports = tmp_path / "reports"
    hook = f"{status_service.url}/hook?token={HOOK_TOKEN}"
    common = ["--config", str(config)]
    assert main(["verify", *common, "--report-dir", str(reports), "--history", str(history),
                 "--notify", hook, "--notify-always", "--drift"]) == 1
    assert main(["history", *common, "--history", str(history)]) == 0
    assert main(["drift", *common, "--history", str(history), "--notify", hook, "--notify-always"]) == 0
    captured = capsys.readouterr()

    # the credentials were really used: the header and the variable reached the service
    gets = [r for r in status_service.requests if r["method"] == "GET"]
    assert any(r["headers"].get("Authorization") == f"Bearer {HEADER_TOKEN}" for r in gets)
    assert any(VARIABLE_SECRET in r["path"] for r in gets)
    assert any(r["headers"].get("Authorization", "").startswith("Basic ") for r in gets)  # URL credentials
    posts = [r for r in status_service.requests if r["method"] == "POST"]
    assert len(posts) == 2 and VARIABLE_SECRET not in "".join(p["body"] for p in posts)

    outputs = {
        "stdout": captured.out,
        "stderr": captured.err,
        "results.json": (reports / "results.json").read_text(),
        "junit.xml": (reports / "junit.xml").read_text(),
        "history": history.read_bytes().decode("latin-1"),
        "notifications": "\n".join(p["body"] for p in posts),
    }
    wal = history.with_name(history.name + "-wal")
    if wal.exists():
        outputs["history-wal"] = wal.read_bytes().decode("latin-1")
    assert "search" in outputs["results.json"] and "***" in outputs["results.json"]  # redacted, not dropped
    for name, text in outputs.items():
        for secret in SECRETS:
            assert secret not in text, f"{secret} leaked into {name}"


def test_structured_evidence_is_masked_like_the_text_fields() -> None:
    from runbooks.redact import MASK, Redactor
    from runbooks.result import Outcome, StepRecord

    record = StepRecord("r", "s", "step", Outcome.FAIL, observed="token s3cr3t-value",
                        evidence={"offenders": {"bucket-s3cr3t-value": "sent s3cr3t-value"}, "names": ["s3cr3t-value"]})
    masked = Redactor(["s3cr3t-value"]).record(record)
    assert "s3cr3t-value" not in repr(masked.to_json())
    assert masked.evidence == {"offenders": {f"bucket-{MASK}": f"sent {MASK}"}, "names": [MASK]}
    assert masked.observed == f"token {MASK}"
