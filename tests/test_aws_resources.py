"""The declarative AWS resource table (runbooks/targets/aws_resources.py): pure data, no AWS needed."""

from __future__ import annotations

import dataclasses

import botocore.session
import pytest

from runbooks.sdk import AWS_RESOURCES, AwsResource, aws_resource
from runbooks.targets.aws_resources import DYNAMODB_TABLE, S3_BUCKET

REGION = "eu-west-1"
ACCOUNT = "123456789012"


def test_registry_holds_bucket_and_table_by_kind() -> None:
    assert AWS_RESOURCES["s3-bucket"] is S3_BUCKET is aws_resource("s3-bucket")
    assert AWS_RESOURCES["dynamodb-table"] is DYNAMODB_TABLE is aws_resource("dynamodb-table")
    assert all(kind == resource.kind for kind, resource in AWS_RESOURCES.items())


def test_unknown_kind_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="'sqs-queue'.*cloudtrail-trail, dynamodb-table, iam-user, s3-bucket"):
        aws_resource("sqs-queue")


def test_entries_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        S3_BUCKET.noun = "bin"  # type: ignore[misc]


# --- labels: exactly the resource texts the steps have always reported ---------------------------------

def test_labels() -> None:
    assert S3_BUCKET.label("acme-logs") == "s3://acme-logs"
    assert S3_BUCKET.label("acme-logs", REGION) == "s3://acme-logs"  # a bucket's label has no region
    assert DYNAMODB_TABLE.label("orders", REGION) == "dynamodb table orders (eu-west-1)"


def test_fleet_labels_and_placeholders() -> None:
    assert S3_BUCKET.fleet_label("acme-*", REGION) == "S3 buckets matching 'acme-*'"
    assert DYNAMODB_TABLE.fleet_label("acme-*", REGION) == "DynamoDB tables matching 'acme-*' (eu-west-1)"
    assert (S3_BUCKET.noun, S3_BUCKET.placeholder) == ("bucket", "<bucket>")
    assert (DYNAMODB_TABLE.noun, DYNAMODB_TABLE.placeholder) == ("table", "<table>")


def test_not_found_codes() -> None:
    assert S3_BUCKET.not_found_codes == {"NoSuchBucket", "404", "NotFound"}
    assert DYNAMODB_TABLE.not_found_codes == {"ResourceNotFoundException", "TableNotFoundException"}


# --- ARN -> name --------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("arn", "name"),
    [
        ("arn:aws:s3:::acme-logs", "acme-logs"),
        ("arn:aws-cn:s3:::acme-logs", "acme-logs"),  # any partition
        ("arn:aws:s3:::acme-logs/some/key", ""),  # an object, not a bucket
        ("arn:aws:dynamodb:eu-west-1:123456789012:table/orders", ""),  # another service
        ("arn:aws:s3", ""),  # not an ARN
        ("", ""),
    ],
)
def test_bucket_arn_to_name(arn: str, name: str) -> None:
    assert S3_BUCKET.arn_to_name(arn, REGION) == name


def test_bucket_arn_ignores_the_region() -> None:
    """S3 ARNs carry no region, and ListBuckets lists every region's buckets."""
    assert S3_BUCKET.arn_to_name("arn:aws:s3:::acme-logs", "us-east-1") == "acme-logs"
    assert S3_BUCKET.arn_to_name("arn:aws:s3:::acme-logs") == "acme-logs"


@pytest.mark.parametrize(
    ("arn", "name"),
    [
        (f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/orders", "orders"),
        (f"arn:aws-us-gov:dynamodb:{REGION}:{ACCOUNT}:table/orders.v2-x_y", "orders.v2-x_y"),
        # a deleted table's ARN reads like a live one; it names no listed table, so it matches nothing
        (f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/deleted-last-week", "deleted-last-week"),
        (f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/orders", ""),  # another region's table
        (f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/orders/stream/2024-01-01T00:00:00.000", ""),
        (f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/orders/index/by-customer", ""),
        (f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/orders/backup/01700000000000-abcdef", ""),
        (f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/orders/export/01700000000000-abcdef", ""),
        (f"arn:aws:dynamodb::{ACCOUNT}:global-table/orders", ""),  # a global table, not a table
        (f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/", ""),
        (f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table", ""),
        (f"arn:aws:s3:{REGION}:{ACCOUNT}:table/orders", ""),  # another service
        ("arn:aws:s3:::orders", ""),
    ],
)
def test_table_arn_to_name(arn: str, name: str) -> None:
    assert DYNAMODB_TABLE.arn_to_name(arn, REGION) == name


def test_a_colon_separated_resource_type() -> None:
    """Types whose ARN reads ``function:NAME`` (Lambda) are one field away."""
    function = dataclasses.replace(
        DYNAMODB_TABLE, kind="lambda-function", service="lambda", arn_resource_type="function", arn_separator=":"
    )
    assert function.arn_to_name(f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:resize", REGION) == "resize"
    assert function.arn_to_name(f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:resize", REGION) == ""


# --- listing ------------------------------------------------------------------------------------------

def test_names_from_list_pages() -> None:
    bucket_pages = [{"Buckets": [{"Name": "a", "CreationDate": 0}, {"Name": "b"}]}, {"Buckets": [{"Name": "c"}]}, {}]
    assert S3_BUCKET.names_in(bucket_pages) == ["a", "b", "c"]
    table_pages = [{"TableNames": ["t1", "t2"], "LastEvaluatedTableName": "t2"}, {"TableNames": ["t3"]}]
    assert DYNAMODB_TABLE.names_in(table_pages) == ["t1", "t2", "t3"]
    assert DYNAMODB_TABLE.names_in([]) == []


def test_list_commands_and_permissions() -> None:
    assert S3_BUCKET.list_command == "aws s3api list-buckets --query 'Buckets[].Name'"
    assert DYNAMODB_TABLE.list_command == "aws dynamodb list-tables"
    assert S3_BUCKET.list_permission == "s3:ListAllMyBuckets"
    assert DYNAMODB_TABLE.list_permission == "dynamodb:ListTables"


@pytest.mark.parametrize("resource", list(AWS_RESOURCES.values()), ids=lambda r: r.kind)
def test_listing_spec_matches_the_service_model(resource: AwsResource) -> None:
    """The list operation exists, can be paginated, and its output holds ``list_key`` of names (or of
    structures with ``name_key``); the tagging type and the list permission belong to the service."""
    session = botocore.session.get_session()
    model = session.get_service_model(resource.service)
    camel = "".join(part.title() for part in resource.list_operation.split("_"))
    assert camel in model.operation_names
    client = session.create_client(resource.service, region_name=REGION, aws_access_key_id="x",
                                   aws_secret_access_key="x")
    assert client.can_paginate(resource.list_operation)
    output = model.operation_model(camel).output_shape
    assert output is not None
    members = output.members  # type: ignore[attr-defined]
    assert resource.list_key in members
    item = members[resource.list_key].member
    if resource.name_key is None:
        assert item.type_name == "string"
    else:
        assert item.members[resource.name_key].type_name == "string"
    assert resource.tagging_type.split(":")[0] == resource.service
    assert resource.list_permission.startswith(f"{resource.service}:List")
