"""Capacity checks against in-process moto: DynamoDB billing mode, Application Auto Scaling targets and
policies, and CloudWatch metric statistics over a recent window (GetMetricStatistics)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from runbooks.result import Outcome
from runbooks.session import Session
from runbooks.steps.aws_cloudwatch import aggregate, metric_at_most, parse_dimensions, period_for
from runbooks.steps.aws_dynamodb_capacity import table_autoscaling_range, table_billing_mode, table_target_tracking
from tests.conftest import evaluate

REGION = "eu-west-1"


def make_table(name: str, provisioned: bool = False) -> str:
    kwargs: dict[str, Any] = {"BillingMode": "PAY_PER_REQUEST"}
    if provisioned:
        kwargs = {"BillingMode": "PROVISIONED",
                  "ProvisionedThroughput": {"ReadCapacityUnits": 5, "WriteCapacityUnits": 10}}
    boto3.client("dynamodb", region_name=REGION).create_table(
        TableName=name, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}], **kwargs)
    return name


def autoscale(table: str, capacity: str, low: int, high: int, policy: str | None = "TargetTrackingScaling") -> None:
    client: Any = boto3.client("application-autoscaling", region_name=REGION)
    dimension = f"dynamodb:table:{capacity.title()}CapacityUnits"
    client.register_scalable_target(ServiceNamespace="dynamodb", ResourceId=f"table/{table}",
                                    ScalableDimension=dimension, MinCapacity=low, MaxCapacity=high)
    if policy == "TargetTrackingScaling":
        client.put_scaling_policy(
            PolicyName=f"{table}-{capacity}", ServiceNamespace="dynamodb", ResourceId=f"table/{table}",
            ScalableDimension=dimension, PolicyType=policy,
            TargetTrackingScalingPolicyConfiguration={"TargetValue": 70.0, "PredefinedMetricSpecification": {
                "PredefinedMetricType": f"DynamoDB{capacity.title()}CapacityUtilization"}})


# billing mode -----------------------------------------------------------------------------------------------
def test_billing_mode_pass_and_fail(moto_run: Session) -> None:
    make_table("ondemand")
    make_table("provisioned", provisioned=True)
    result = evaluate(moto_run, table_billing_mode, table="ondemand", mode="PAY_PER_REQUEST")
    assert (result.outcome, result.observed) == (Outcome.PASS, "BillingMode PAY_PER_REQUEST")
    result = evaluate(moto_run, table_billing_mode, table="provisioned", mode="PAY_PER_REQUEST")
    assert (result.outcome, result.observed) == (Outcome.FAIL, "BillingMode PROVISIONED (5 read, 10 write units)")
    assert result.resource == "dynamodb table provisioned (eu-west-1)"


def test_billing_mode_of_a_missing_table_is_a_fail(moto_run: Session) -> None:
    result = evaluate(moto_run, table_billing_mode, table="nope", mode="PROVISIONED")
    assert (result.outcome, result.observed) == (Outcome.FAIL, "the table does not exist")


# auto scaling -----------------------------------------------------------------------------------------------
def test_autoscaling_range_as_planned_passes(moto_run: Session) -> None:
    table = make_table("audit", provisioned=True)
    autoscale(table, "write", 10, 200)
    result = evaluate(moto_run, table_autoscaling_range, table=table, capacity="write", low=10, high=200)
    assert (result.outcome, result.observed) == (Outcome.PASS, "scales between 10 and 200 units")
    assert result.expected == "write capacity auto-scaled between 10 and 200 units"
    assert result.manual_command == ("aws application-autoscaling describe-scalable-targets --service-namespace "
                                     "dynamodb --resource-ids table/audit")


def test_autoscaling_range_other_than_planned_fails(moto_run: Session) -> None:
    table = make_table("audit", provisioned=True)
    autoscale(table, "write", 10, 50)
    result = evaluate(moto_run, table_autoscaling_range, table=table, capacity="write", low=10, high=200)
    assert (result.outcome, result.observed) == (Outcome.FAIL, "scales between 10 and 50 units")
    assert "--min-capacity 10 --max-capacity 200" in result.hint


def test_no_scalable_target_fails_and_the_other_capacity_does_not_count(moto_run: Session) -> None:
    table = make_table("audit", provisioned=True)
    autoscale(table, "read", 5, 100)
    result = evaluate(moto_run, table_autoscaling_range, table=table, capacity="write", low=10, high=200)
    assert (result.outcome, result.observed) == (Outcome.FAIL, "no scalable target: write capacity does not auto-scale")


def test_suspended_scaling_fails(moto_run: Session) -> None:
    target = {"ServiceNamespace": "dynamodb", "ResourceId": "table/audit", "MinCapacity": 10, "MaxCapacity": 200,
              "ScalableDimension": "dynamodb:table:WriteCapacityUnits", "RoleARN": "arn:aws:iam::1:role/x",
              "CreationTime": datetime.now(UTC),
              "SuspendedState": {"DynamicScalingOutSuspended": True, "DynamicScalingInSuspended": False}}
    with Stubber(moto_run.aws.client("application-autoscaling")) as stub:
        stub.add_response("describe_scalable_targets", {"ScalableTargets": [target]})
        result = evaluate(moto_run, table_autoscaling_range, table="audit", capacity="write", low=10, high=200)
    assert (result.outcome, result.observed) == (
        Outcome.FAIL, "scales between 10 and 200 units, but suspended: DynamicScalingOutSuspended")


def test_target_tracking_policy(moto_run: Session) -> None:
    table = make_table("audit", provisioned=True)
    autoscale(table, "read", 5, 100)
    autoscale(table, "write", 10, 200, policy=None)
    result = evaluate(moto_run, table_target_tracking, table=table, capacity="read")
    assert (result.outcome, result.observed) == (
        Outcome.PASS, "policy 'audit-read' tracks DynamoDBReadCapacityUtilization at 70.0%")
    result = evaluate(moto_run, table_target_tracking, table=table, capacity="write")
    assert (result.outcome, result.observed) == (Outcome.FAIL, "no target tracking policy")


def test_autoscaling_denied_is_an_error(moto_run: Session) -> None:
    with Stubber(moto_run.aws.client("application-autoscaling")) as stub:
        stub.add_client_error("describe_scaling_policies", service_error_code="AccessDeniedException",
                              service_message="not authorized", http_status_code=400)
        result = evaluate(moto_run, table_target_tracking, table="audit", capacity="read")
    assert result.outcome is Outcome.ERROR
    assert "application-autoscaling:DescribeScalingPolicies" in result.observed


# CloudWatch metric statistics -------------------------------------------------------------------------------
def put(values: list[float], table: str = "tenants", minutes_ago: int = 0) -> None:
    now = datetime.now(UTC) - timedelta(minutes=minutes_ago, seconds=5)  # a window ends now, exclusive
    boto3.client("cloudwatch", region_name=REGION).put_metric_data(Namespace="AWS/DynamoDB", MetricData=[
        {"MetricName": "ThrottledRequests", "Dimensions": [{"Name": "TableName", "Value": table}],
         "Timestamp": now - timedelta(minutes=len(values) - 1 - i), "Value": v, "Unit": "Count"}
        for i, v in enumerate(values)])


THROTTLES = {"metric": "ThrottledRequests", "namespace": "AWS/DynamoDB", "dimensions": "TableName=tenants"}


def test_metric_sum_below_the_limit_passes(moto_run: Session) -> None:
    put([0, 0, 1, 0])
    result = evaluate(moto_run, metric_at_most, statistic="sum", minutes=15, limit=5, **THROTTLES)
    assert result.outcome is Outcome.PASS
    assert result.observed == "sum 1 Count over the last 15 min (4 datapoint(s))"
    assert result.resource == "cloudwatch metric AWS/DynamoDB ThrottledRequests {TableName=tenants} (eu-west-1)"
    assert result.evidence == {"value": 1.0, "datapoints": 4}


def test_metric_sum_above_the_limit_fails(moto_run: Session) -> None:
    put([3, 12, 25])
    put([500], minutes_ago=60)  # outside the window
    put([999], table="other")  # another table
    result = evaluate(moto_run, metric_at_most, statistic="sum", minutes=15, limit=0, **THROTTLES)
    assert result.outcome is Outcome.FAIL
    assert result.expected == "sum over the last 15 min at most 0"
    assert result.observed == "sum 40 Count over the last 15 min (3 datapoint(s))"


def test_metric_maximum_and_average(moto_run: Session) -> None:
    put([2, 8, 2])
    assert evaluate(moto_run, metric_at_most, statistic="maximum", minutes=15, limit=5, **THROTTLES
                    ).outcome is Outcome.FAIL
    assert evaluate(moto_run, metric_at_most, statistic="average", minutes=15, limit=5, **THROTTLES
                    ).observed.startswith("average 4 Count")


def test_no_datapoints_passes_and_says_what_it_means(moto_run: Session) -> None:
    result = evaluate(moto_run, metric_at_most, statistic="sum", minutes=15, limit=0, **THROTTLES)
    assert result.outcome is Outcome.PASS
    assert result.observed.startswith("no datapoints in the last 15 min (nothing was published")
    assert "aws cloudwatch list-metrics --namespace AWS/DynamoDB --metric-name ThrottledRequests" in result.observed


def test_metric_denied_is_an_error(moto_run: Session) -> None:
    with Stubber(moto_run.aws.client("cloudwatch")) as stub:
        stub.add_client_error("get_metric_statistics", service_error_code="AccessDenied",
                              service_message="not authorized", http_status_code=403)
        result = evaluate(moto_run, metric_at_most, statistic="sum", minutes=15, limit=0, **THROTTLES)
    assert result.outcome is Outcome.ERROR


def test_dimensions_periods_and_aggregation() -> None:
    assert parse_dimensions("TableName=a, Operation=PutItem") == [
        {"Name": "TableName", "Value": "a"}, {"Name": "Operation", "Value": "PutItem"}]
    with pytest.raises(ValueError, match="'TableName' is not Name=Value"):
        parse_dimensions("TableName")
    assert (period_for(15), period_for(1440), period_for(1441), period_for(7 * 1440)) == (60, 60, 120, 420)
    points = [{"Sum": 10.0, "SampleCount": 2.0, "Maximum": 9.0, "Minimum": 1.0},
              {"Sum": 2.0, "SampleCount": 2.0, "Maximum": 1.0, "Minimum": 1.0}]
    assert (aggregate("sum", points), aggregate("average", points), aggregate("maximum", points),
            aggregate("minimum", points)) == (12.0, 3.0, 9.0, 1.0)
