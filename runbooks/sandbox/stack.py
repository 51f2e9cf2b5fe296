"""The declarative reference stack (``infra/*.toml``) and its provisioning with direct boto3 calls."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import ConfigError


@dataclass
class BucketSpec:
    name: str
    versioning: str | None = None  # "Enabled" | "Suspended" | None (never enabled)
    encryption: str | None = None  # "AES256" | "aws:kms" | "aws:kms:dsse" | None
    public_access_block: bool = False
    tags: dict[str, str] = field(default_factory=dict)
    objects: list[str] = field(default_factory=list)


@dataclass
class TableSpec:
    name: str
    hash_key: str
    range_key: str | None = None
    pitr: bool = False
    tags: dict[str, str] = field(default_factory=dict)
    global_secondary_indexes: list[dict[str, str]] = field(default_factory=list)


@dataclass
class ServiceSpec:
    ready_status: int = 200
    requests_ok: int = 1000
    requests_error: int = 0
    p95_seconds: float = 0.1


@dataclass
class Stack:
    region: str
    buckets: list[BucketSpec]
    tables: list[TableSpec]
    service: ServiceSpec


def load_stack(path: Path, variant: str = "healthy") -> Stack:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read stack: {exc}", path) from None
    variants = data.get("variants", {})
    if variant != "healthy" and variant not in variants:
        raise ConfigError(f"unknown variant {variant!r}; defined: healthy, {', '.join(variants)}", path)
    overlay = variants.get(variant, {})
    try:
        buckets = _apply(data.get("buckets", []), overlay.get("buckets", []), BucketSpec)
        tables = _apply(data.get("tables", []), overlay.get("tables", []), TableSpec)
        service = ServiceSpec(**{**data.get("service", {}), **overlay.get("service", {})})
    except TypeError as exc:
        raise ConfigError(f"invalid stack definition: {exc}", path) from None
    return Stack(data.get("region", "us-east-1"), buckets, tables, service)


def _apply(base: list[dict[str, Any]], drift: list[dict[str, Any]], kind: Any) -> list[Any]:
    by_name = {item["name"]: dict(item) for item in base}
    for change in drift:
        target = by_name[change["name"]]
        for key, value in change.items():
            if key == "tags_remove":
                target["tags"] = {k: v for k, v in target.get("tags", {}).items() if k not in value}
            else:
                target[key] = value
    return [kind(**item) for item in by_name.values()]


def provision(stack: Stack, session: Any) -> None:
    """Create the stack with an unguarded session (only the sandbox may mutate)."""
    s3 = session.client("s3", region_name=stack.region)
    for bucket in stack.buckets:
        _create_bucket(s3, stack.region, bucket)
    ddb = session.client("dynamodb", region_name=stack.region)
    for table in stack.tables:
        _create_table(ddb, table)


def _create_bucket(s3: Any, region: str, b: BucketSpec) -> None:
    kwargs: dict[str, Any] = {"Bucket": b.name}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**kwargs)
    if b.versioning:
        if b.versioning == "Suspended":  # only a bucket that was once versioned can be suspended
            s3.put_bucket_versioning(Bucket=b.name, VersioningConfiguration={"Status": "Enabled"})
        s3.put_bucket_versioning(Bucket=b.name, VersioningConfiguration={"Status": b.versioning})
    if b.encryption:
        rule: dict[str, Any] = {"SSEAlgorithm": b.encryption}
        if b.encryption.startswith("aws:kms"):
            rule["KMSMasterKeyID"] = "alias/acme-sandbox"
        s3.put_bucket_encryption(
            Bucket=b.name,
            ServerSideEncryptionConfiguration={"Rules": [{"ApplyServerSideEncryptionByDefault": rule}]},
        )
    if b.public_access_block:
        s3.put_public_access_block(
            Bucket=b.name,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )
    if b.tags:
        s3.put_bucket_tagging(
            Bucket=b.name, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in b.tags.items()]}
        )
    for key in b.objects:
        s3.put_object(Bucket=b.name, Key=key, Body=b"{}")


def _create_table(ddb: Any, t: TableSpec) -> None:
    attributes = {t.hash_key}
    schema = [{"AttributeName": t.hash_key, "KeyType": "HASH"}]
    if t.range_key:
        attributes.add(t.range_key)
        schema.append({"AttributeName": t.range_key, "KeyType": "RANGE"})
    gsis = []
    for index in t.global_secondary_indexes:
        attributes.add(index["hash_key"])
        gsis.append(
            {
                "IndexName": index["name"],
                "KeySchema": [{"AttributeName": index["hash_key"], "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        )
    kwargs: dict[str, Any] = {
        "TableName": t.name,
        "KeySchema": schema,
        "AttributeDefinitions": [{"AttributeName": a, "AttributeType": "S"} for a in sorted(attributes)],
        "BillingMode": "PAY_PER_REQUEST",
    }
    if gsis:
        kwargs["GlobalSecondaryIndexes"] = gsis
    if t.tags:
        kwargs["Tags"] = [{"Key": k, "Value": v} for k, v in t.tags.items()]
    ddb.create_table(**kwargs)
    if t.pitr:
        ddb.update_continuous_backups(
            TableName=t.name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )
