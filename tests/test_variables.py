"""{variables} fill any field of a step, numeric ones included, and bad values are refused before a run."""

from __future__ import annotations

import json
import textwrap

from runbooks.cli import main


def _project(tmp_path, service_url: str, budget: str) -> str:
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "api.feature").write_text(textwrap.dedent("""\
        Feature: API
          Scenario: Health within budget
            Then the service "api" answers GET "{health_path}" with status {ok_status} within {budget_ms} ms
        """), encoding="utf-8")
    config = tmp_path / "runbooks.toml"
    config.write_text(textwrap.dedent(f"""\
        [environments.ci]
        aws = {{ target = "moto" }}
        [environments.ci.vars]
        health_path = "/health"
        ok_status = "200"
        budget_ms = "{budget}"
        [environments.ci.services]
        api = "{service_url}"
        """), encoding="utf-8")
    return str(config)


def test_numeric_fields_take_variables(tmp_path, status_service):
    status_service.set("/health")
    config = _project(tmp_path, status_service.url, "1500")
    assert main(["verify", "--config", config, "--no-history", "--report-dir", str(tmp_path / "r")]) == 0
    record = json.loads((tmp_path / "r" / "results.json").read_text())["results"][0]
    assert record["step"] == 'the service "api" answers GET "/health" with status 200 within 1500 ms'
    assert record["expected"] == "HTTP 200 within 1500 ms"


def test_a_numeric_field_whose_variable_is_not_a_number_is_refused(tmp_path, status_service, capsys):
    config = _project(tmp_path, status_service.url, "fast")
    assert main(["verify", "--config", config, "--no-history", "--report-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "features/api.feature:3: ms {budget_ms}: variable 'budget_ms' is 'fast', not a number" in err
    assert not (tmp_path / "r").exists()


def test_the_sandbox_provides_its_service_port(tmp_path):
    from runbooks.config import load_config
    from tests.conftest import REPO

    env = load_config(REPO / "runbooks.toml").environment("sandbox")
    assert env.provided_vars == {"api_port"}


def test_numeric_fields_are_validated_before_a_run(tmp_path, capsys):
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "host.feature").write_text(textwrap.dedent("""\
        Feature: Host
          Scenario: Limits
            Then on host "web", port 70000 is listening
            And on host "web", memory usage is below 140%
        """), encoding="utf-8")
    config = tmp_path / "runbooks.toml"
    config.write_text('[environments.ci]\nhosts = { web = "local://" }\n', encoding="utf-8")
    assert main(["verify", "--config", str(config), "--no-history", "--report-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "features/host.feature:3: port '70000': is not a TCP port number (1-65535)" in err
    assert "features/host.feature:4: percent '140': is not a percentage (0-100)" in err


def test_an_environment_without_aws_reports_aws_steps_as_errors_not_drift(tmp_path, status_service, capsys):
    status_service.set("/ok")
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "mixed.feature").write_text(textwrap.dedent("""\
        Feature: Mixed
          Scenario: API and a bucket
            Then the service "api" answers GET "/ok" with status 200 within 2000 ms
            And the S3 bucket "acme-logs" has versioning enabled
        """), encoding="utf-8")
    config = tmp_path / "runbooks.toml"
    config.write_text(f'[environments.ci]\nservices = {{ api = "{status_service.url}" }}\n', encoding="utf-8")
    assert main(["verify", "--config", str(config), "--no-history", "--report-dir", str(tmp_path / "r")]) == 3
    out = capsys.readouterr().out
    assert "environment ci (no AWS)" in out
    assert "this environment declares no AWS target" in out
