"""What the steps know about each AWS resource type, declared once (as Cloud Custodian's ``resource_type``).

One :class:`AwsResource` per type holds the facts that the single-resource steps, the fleet steps, the
tagging-API index and the IAM/manual texts would otherwise each hard-code: the boto3 service and the
paginated list operation (and where the names sit in its pages), the Resource Groups Tagging API type,
how an ARN of the type reads (and so how to get the name back), the error codes meaning "no such
resource", and the words a result uses for it (``s3://acme-logs``, ``dynamodb table orders (eu-west-1)``).

Adding a type is one entry in :data:`AWS_RESOURCES` plus the step module that judges it. Pure data: no
boto3 here, nothing is called.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class AwsResource:
    """One AWS resource type."""

    kind: str  # registry key: "s3-bucket"
    service: str  # boto3 client name, also the ARN's service field: "s3"
    noun: str  # what a message calls one: "bucket"
    collection: str  # what a fleet result calls several: "S3 buckets"
    label_format: str  # a result's resource text; fields {name} and {region}: "s3://{name}"
    list_operation: str  # paginated boto3 operation listing every resource: "list_buckets"
    list_key: str  # the page key holding the list: "Buckets"
    name_key: str | None  # the name's key in each listed item; None when the items are the names
    list_permission: str  # the IAM action behind list_operation: "s3:ListAllMyBuckets"
    cli: str  # the AWS CLI command group for the service: "s3api"
    tagging_type: str  # ResourceTypeFilters value for tag:GetResources: "s3", "dynamodb:table"
    not_found_codes: frozenset[str]  # error codes meaning "no such resource"
    regional: bool = True  # whether ARNs (and listings) belong to one region
    arn_resource_type: str = ""  # ARN resource prefix ("table" in "table/orders"); "" if the name is bare
    arn_separator: str = "/"  # between that prefix and the name ("/" or ":")

    def label(self, name: str, region: str = "") -> str:
        """The resource text of a result about one resource, e.g. ``dynamodb table orders (eu-west-1)``."""
        return self.label_format.format(name=name, region=region)

    def fleet_label(self, pattern: str, region: str = "") -> str:
        """The resource text of a fleet result, e.g. ``DynamoDB tables matching 'acme-*' (eu-west-1)``."""
        suffix = f" ({region})" if self.regional else ""
        return f"{self.collection} matching {pattern!r}{suffix}"

    @property
    def placeholder(self) -> str:
        """What a per-resource hint names the resource by when it stands for many: ``<bucket>``."""
        return f"<{self.noun}>"

    @property
    def list_command(self) -> str:
        """The AWS CLI equivalent of the listing, e.g. ``aws dynamodb list-tables``."""
        command = f"aws {self.cli} {self.list_operation.replace('_', '-')}"
        if self.name_key:
            command += f" --query '{self.list_key}[].{self.name_key}'"
        return command

    def names_in(self, pages: Any) -> list[str]:
        """Every resource name in the pages of :attr:`list_operation`, in order."""
        items = (item for page in pages for item in page.get(self.list_key, []))
        if self.name_key is None:
            return [str(item) for item in items]
        return [str(item[self.name_key]) for item in items]

    def arn_to_name(self, arn: str, region: str = "") -> str:
        """The resource's name from its ARN; ``""`` when the ARN is not of this type (another service or
        resource type, a sub-resource such as a table's stream or index) or, for a regional type, of
        another region than ``region``."""
        parts = arn.split(":", 5)
        if len(parts) != 6 or parts[0] != "arn" or parts[2] != self.service:
            return ""
        if self.regional and parts[3] != region:
            return ""
        resource = parts[5]
        if self.arn_resource_type:
            prefix, sep, resource = resource.partition(self.arn_separator)
            if prefix != self.arn_resource_type or not sep:
                return ""
        if not resource or "/" in resource:
            return ""
        return resource


S3_BUCKET = AwsResource(
    kind="s3-bucket",
    service="s3",
    noun="bucket",
    collection="S3 buckets",
    label_format="s3://{name}",
    list_operation="list_buckets",
    list_key="Buckets",
    name_key="Name",
    list_permission="s3:ListAllMyBuckets",
    cli="s3api",
    tagging_type="s3",
    not_found_codes=frozenset({"NoSuchBucket", "404", "NotFound"}),
    regional=False,  # ARNs have no region; ListBuckets lists every region's buckets
)

DYNAMODB_TABLE = AwsResource(
    kind="dynamodb-table",
    service="dynamodb",
    noun="table",
    collection="DynamoDB tables",
    label_format="dynamodb table {name} ({region})",
    list_operation="list_tables",
    list_key="TableNames",
    name_key=None,
    list_permission="dynamodb:ListTables",
    cli="dynamodb",
    tagging_type="dynamodb:table",
    not_found_codes=frozenset({"ResourceNotFoundException", "TableNotFoundException"}),
    arn_resource_type="table",
)

IAM_USER = AwsResource(
    kind="iam-user",
    service="iam",
    noun="user",
    collection="IAM users",
    label_format="iam user {name}",
    list_operation="list_users",
    list_key="Users",
    name_key="UserName",
    list_permission="iam:ListUsers",
    cli="iam",
    tagging_type="iam:user",
    not_found_codes=frozenset({"NoSuchEntity"}),
    regional=False,  # IAM is global: ARNs have no region
    arn_resource_type="user",  # a user with a path (user/ops/alice) reads as "" like any sub-resource
)

CLOUDTRAIL_TRAIL = AwsResource(
    kind="cloudtrail-trail",
    service="cloudtrail",
    noun="trail",
    collection="CloudTrail trails",
    label_format="cloudtrail trail {name} ({region})",
    list_operation="list_trails",
    list_key="Trails",
    name_key="Name",
    list_permission="cloudtrail:ListTrails",
    cli="cloudtrail",
    tagging_type="cloudtrail:trail",
    not_found_codes=frozenset({"TrailNotFoundException"}),
    arn_resource_type="trail",
)

AWS_RESOURCES: dict[str, AwsResource] = {
    r.kind: r for r in (S3_BUCKET, DYNAMODB_TABLE, IAM_USER, CLOUDTRAIL_TRAIL)
}


def aws_resource(kind: str) -> AwsResource:
    """The resource type registered under ``kind``; KeyError naming the known kinds otherwise."""
    try:
        return AWS_RESOURCES[kind]
    except KeyError:
        raise KeyError(f"unknown AWS resource kind {kind!r} (known: {', '.join(sorted(AWS_RESOURCES))})") from None
