"""Several regions per environment: @all-regions runs a scenario per region, @region:NAME pins one."""

from __future__ import annotations

import json
import textwrap

import pytest

from runbooks.cli import main
from tests.support.moto_server import MotoServer

pytest_plugins = ["tests.support.moto_server"]  # fixtures: moto_server, endpoint_credentials


def _table(server: MotoServer, region: str, name: str, pitr: bool) -> None:
    ddb = server.client("dynamodb", region)
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    if pitr:
        ddb.update_continuous_backups(
            TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )


@pytest.mark.timeout(60)
def test_a_scenario_runs_once_per_region_and_a_pinned_one_in_its_region(
    tmp_path, moto_server, endpoint_credentials
):
    moto_server.reset()
    _table(moto_server, "eu-west-1", "orders", pitr=True)
    _table(moto_server, "us-east-1", "orders", pitr=False)  # the drifted replica region
    _table(moto_server, "us-east-1", "audit", pitr=True)  # only exists in us-east-1
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "regions.feature").write_text(textwrap.dedent("""\
        Feature: Multi-region tables
          @all-regions
          Scenario: Orders can be recovered in every region
            Then the DynamoDB table "orders" has point-in-time recovery enabled

          @region:us-east-1
          Scenario: The audit table lives in us-east-1
            Then the DynamoDB table "audit" is active

          Scenario: The home region is the default
            Then the DynamoDB table "orders" has point-in-time recovery enabled
        """), encoding="utf-8")
    config = tmp_path / "runbooks.toml"
    config.write_text(textwrap.dedent(f"""\
        [environments.multi.aws]
        target = "endpoint"
        url = "{moto_server.url}"
        region = "eu-west-1"
        regions = ["eu-west-1", "us-east-1"]
        """), encoding="utf-8")
    reports = tmp_path / "reports"
    assert main(["verify", "--config", str(config), "--no-history", "--report-dir", str(reports)]) == 1
    records = json.loads((reports / "results.json").read_text())["results"]
    outcomes = {(r["scenario"], r["outcome"]) for r in records}
    assert outcomes == {
        ("Orders can be recovered in every region [eu-west-1]", "pass"),
        ("Orders can be recovered in every region [us-east-1]", "fail"),
        ("The audit table lives in us-east-1", "pass"),
        ("The home region is the default", "pass"),
    }
    failed = next(r for r in records if r["outcome"] == "fail")
    assert failed["resource"] == "dynamodb table orders (us-east-1)"
