"""The declarative reference stack (``infra/*.toml``) and its provisioning with direct boto3 calls."""

from __future__ import annotations

import json
import tomllib
import uuid
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ..config import ConfigError


@dataclass
class BucketSpec:
    name: str
    region: str | None = None  # None: the stack's region (a replica lives elsewhere)
    versioning: str | None = None  # "Enabled" | "Suspended" | None (never enabled)
    encryption: str | None = None  # "AES256" | "aws:kms" | "aws:kms:dsse" | None
    public_access_block: bool = False
    tags: dict[str, str] = field(default_factory=dict)
    objects: list[str] = field(default_factory=list)
    object_tags: dict[str, dict[str, str]] = field(default_factory=dict)  # key -> its tags (keys in objects)
    # {destination = "<bucket>", role = "<IAM role ARN>"}: one Enabled rule for every object
    replication: dict[str, str] | None = None


@dataclass
class TableSpec:
    name: str
    hash_key: str
    range_key: str | None = None
    pitr: bool = False
    # How long PITR has been on: the restorable window reaches back this far (moto starts it at "now").
    pitr_since_days: int = 0
    tags: dict[str, str] = field(default_factory=dict)
    global_secondary_indexes: list[dict[str, str]] = field(default_factory=list)
    # Terraform S3-backend lock table contents: state paths (a `<path>-md5` digest item each) and held
    # locks {state, who, operation, age_minutes}, written exactly as Terraform writes them.
    terraform_states: list[str] = field(default_factory=list)
    terraform_locks: list[dict[str, Any]] = field(default_factory=list)
    billing_mode: str = "PAY_PER_REQUEST"  # or "PROVISIONED", with the units below
    read_capacity: int = 5
    write_capacity: int = 5
    # Application Auto Scaling of a PROVISIONED table: {read = {min, max, target}, write = {...}}; {} none
    autoscaling: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass
class BackupVaultSpec:
    name: str
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class BackupPlanSpec:
    name: str
    vault: str
    schedule: str = "cron(0 3 * * ? *)"
    retention_days: int = 35


@dataclass
class AlarmSpec:
    name: str
    namespace: str
    metric: str
    threshold: float
    comparison: str = "GreaterThanThreshold"
    statistic: str = "Sum"
    period_s: int = 60
    evaluation_periods: int = 5
    dimensions: dict[str, str] = field(default_factory=dict)
    description: str = ""
    state: str = "OK"  # OK | ALARM | INSUFFICIENT_DATA, set after creation


@dataclass
class UserSpec:
    name: str
    mfa: bool = False  # a virtual MFA device assigned
    # {age_days, last_used_days (absent: never used), service, status}: age and last use are set in moto's
    # record after creation (no API can backdate a key; AWS fills them in as time passes)
    access_keys: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class TrailSpec:
    name: str
    bucket: str
    multi_region: bool = True
    log_file_validation: bool = True
    logging: bool = True  # False: started, then stopped (StopLogging)


@dataclass
class MetricSpec:
    name: str  # what a variant calls it
    namespace: str
    metric: str
    dimensions: dict[str, str] = field(default_factory=dict)
    unit: str = "Count"
    values: list[float] = field(default_factory=list)  # one datapoint a minute, the most recent last


@dataclass
class AccountSpec:
    root_mfa: bool = True
    root_access_keys: bool = False


@dataclass
class ServiceSpec:
    ready_status: int = 200
    # What the API served before the run started it: where its counters start.
    requests_ok: int = 1000
    requests_error: int = 0
    p95_seconds: float = 0.1
    # The traffic it serves from then on (what a window between two scrapes of /metrics sees).
    requests_per_second: float = 0.0
    error_ratio: float = 0.0  # share of those requests answered 5xx
    live_p95_seconds: float = 0.1
    cache_status: str = "ok"  # what /health/ready reports for its cache dependency


@dataclass
class Stack:
    region: str
    buckets: list[BucketSpec]
    tables: list[TableSpec]
    service: ServiceSpec
    backup_vaults: list[BackupVaultSpec] = field(default_factory=list)
    backup_plans: list[BackupPlanSpec] = field(default_factory=list)
    alarms: list[AlarmSpec] = field(default_factory=list)
    users: list[UserSpec] = field(default_factory=list)
    trails: list[TrailSpec] = field(default_factory=list)
    metrics: list[MetricSpec] = field(default_factory=list)
    account: AccountSpec = field(default_factory=AccountSpec)
    # TCP port of the reference API on 127.0.0.1 (0: any free port). Fixed in the shipped stack so
    # that runbooks can check the port on the host, as they would on a real API host.
    service_port: int = 0


_LISTS: dict[str, Any] = {
    "buckets": BucketSpec,
    "tables": TableSpec,
    "backup_vaults": BackupVaultSpec,
    "backup_plans": BackupPlanSpec,
    "alarms": AlarmSpec,
    "users": UserSpec,
    "trails": TrailSpec,
    "metrics": MetricSpec,
}


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
        lists = {key: _apply(data.get(key, []), overlay.get(key, []), kind, key) for key, kind in _LISTS.items()}
        service_data = {**data.get("service", {}), **overlay.get("service", {})}
        port = int(service_data.pop("port", 0))
        service = ServiceSpec(**service_data)
        account = AccountSpec(**{**data.get("account", {}), **overlay.get("account", {})})
    except (TypeError, KeyError) as exc:
        raise ConfigError(f"invalid stack definition: {exc}", path) from None
    return Stack(region=data.get("region", "us-east-1"), service=service, service_port=port, account=account,
                 **lists)


def _apply(base: list[dict[str, Any]], drift: list[dict[str, Any]], kind: Any, key: str) -> list[Any]:
    by_name = {item["name"]: dict(item) for item in base}
    known = {f.name for f in fields(kind)}
    for change in drift:
        if change["name"] not in by_name:
            raise KeyError(f"variant changes {key} {change['name']!r}, which the stack does not define")
        target = by_name[change["name"]]
        for attribute, value in change.items():
            if attribute == "tags_remove":
                target["tags"] = {k: v for k, v in target.get("tags", {}).items() if k not in value}
            elif attribute not in known:
                raise KeyError(f"variant sets unknown attribute {attribute!r} of {key} {change['name']!r}")
            else:
                target[attribute] = value
    return [kind(**item) for item in by_name.values()]


def provision(stack: Stack, session: Any) -> None:
    """Create the stack with an unguarded session (only the sandbox may mutate)."""
    for bucket in stack.buckets:
        region = bucket.region or stack.region
        _create_bucket(session.client("s3", region_name=region), region, bucket)
    ddb = session.client("dynamodb", region_name=stack.region)
    account = session.client("sts", region_name=stack.region).get_caller_identity()["Account"]
    for table in stack.tables:
        _create_table(ddb, table, account, stack.region)
    backup = session.client("backup", region_name=stack.region)
    for vault in stack.backup_vaults:
        backup.create_backup_vault(BackupVaultName=vault.name, BackupVaultTags=vault.tags)
    for plan in stack.backup_plans:
        backup.create_backup_plan(BackupPlan={
            "BackupPlanName": plan.name,
            "Rules": [{
                "RuleName": "daily",
                "TargetBackupVaultName": plan.vault,
                "ScheduleExpression": plan.schedule,
                "Lifecycle": {"DeleteAfterDays": plan.retention_days},
            }],
        })
        # Resource selections cannot be created: moto does not implement CreateBackupSelection. The
        # runbooks' selection checks are tagged @requires:aws-backup and do not run on moto.
    cloudwatch = session.client("cloudwatch", region_name=stack.region)
    for alarm in stack.alarms:
        _create_alarm(cloudwatch, alarm)
    for metric in stack.metrics:
        _put_metric(cloudwatch, metric)
    autoscaling = session.client("application-autoscaling", region_name=stack.region)
    for table in stack.tables:
        _autoscale_table(autoscaling, table)
    iam = session.client("iam", region_name=stack.region)
    for user in stack.users:
        _create_user(iam, user, account, stack.region)
    _set_root_account(stack.account, account)
    cloudtrail = session.client("cloudtrail", region_name=stack.region)
    for trail in stack.trails:
        cloudtrail.create_trail(Name=trail.name, S3BucketName=trail.bucket, IsMultiRegionTrail=trail.multi_region,
                                EnableLogFileValidation=trail.log_file_validation)
        cloudtrail.start_logging(Name=trail.name)
        if not trail.logging:  # someone called StopLogging
            cloudtrail.stop_logging(Name=trail.name)


def _create_bucket(s3: Any, region: str, b: BucketSpec) -> None:
    kwargs: dict[str, Any] = {"Bucket": b.name}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**kwargs)
    if b.versioning or b.replication:
        # Only a bucket that was once versioned can be suspended, and replication needs versioning
        # Enabled when it is configured: enable first, configure replication, then set the final status.
        s3.put_bucket_versioning(Bucket=b.name, VersioningConfiguration={"Status": "Enabled"})
    if b.replication:
        s3.put_bucket_replication(Bucket=b.name, ReplicationConfiguration={
            "Role": b.replication["role"],
            "Rules": [{
                "ID": f"replicate-to-{b.replication['destination']}",
                "Status": "Enabled",
                "Priority": 1,
                "Filter": {},
                "DeleteMarkerReplication": {"Status": "Enabled"},
                "Destination": {"Bucket": f"arn:aws:s3:::{b.replication['destination']}"},
            }],
        })
    if b.versioning and b.versioning != "Enabled":
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
    for key, tags in b.object_tags.items():
        s3.put_object_tagging(Bucket=b.name, Key=key,
                              Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]})


def _create_table(ddb: Any, t: TableSpec, account: str, region: str) -> None:
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
        "BillingMode": t.billing_mode,
    }
    if t.billing_mode == "PROVISIONED":
        units = {"ReadCapacityUnits": t.read_capacity, "WriteCapacityUnits": t.write_capacity}
        kwargs["ProvisionedThroughput"] = units
        gsis = [{**index, "ProvisionedThroughput": units} for index in gsis]
    if gsis:
        kwargs["GlobalSecondaryIndexes"] = gsis
    if t.tags:
        kwargs["Tags"] = [{"Key": k, "Value": v} for k, v in t.tags.items()]
    ddb.create_table(**kwargs)
    if t.pitr:
        ddb.update_continuous_backups(
            TableName=t.name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )
        if t.pitr_since_days:
            _backdate_pitr(t.name, account, region, t.pitr_since_days)
    for state in t.terraform_states:
        ddb.put_item(TableName=t.name, Item={"LockID": {"S": f"{state}-md5"},
                                             "Digest": {"S": uuid.uuid5(uuid.NAMESPACE_URL, state).hex}})
    for lock in t.terraform_locks:
        ddb.put_item(TableName=t.name, Item=terraform_lock_item(lock))


def terraform_lock_item(lock: dict[str, Any]) -> dict[str, Any]:
    """A held lock as Terraform's S3 backend writes it: LockID = state path, Info = JSON lock info."""
    created = datetime.now(UTC) - timedelta(minutes=float(lock.get("age_minutes", 0)))
    info = {
        "ID": lock.get("id") or str(uuid.uuid4()),
        "Operation": lock.get("operation", "OperationTypeApply"),
        "Info": "",
        "Who": lock["who"],
        "Version": lock.get("version", "1.9.8"),
        "Created": created.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z",  # Go's RFC 3339 with nanoseconds
        "Path": lock["state"],
    }
    return {"LockID": {"S": lock["state"]}, "Info": {"S": json.dumps(info)}}


def _backdate_pitr(table: str, account: str, region: str, days: int) -> None:
    """Make PITR look as old as a long-lived environment's. No AWS API can set this (AWS fills the
    window in as time passes); moto starts the window at the moment PITR is enabled, so the sandbox sets
    moto's record directly. Checks still read it through DescribeContinuousBackups."""
    from moto.core.utils import unix_time
    from moto.dynamodb.models import dynamodb_backends

    description = dynamodb_backends[account][region].get_table(table).continuous_backups[
        "PointInTimeRecoveryDescription"]
    description["EarliestRestorableDateTime"] = unix_time() - days * 86400


def _create_alarm(cloudwatch: Any, a: AlarmSpec) -> None:
    cloudwatch.put_metric_alarm(
        AlarmName=a.name,
        AlarmDescription=a.description,
        Namespace=a.namespace,
        MetricName=a.metric,
        Dimensions=[{"Name": k, "Value": v} for k, v in a.dimensions.items()],
        Statistic=a.statistic,
        Period=a.period_s,
        EvaluationPeriods=a.evaluation_periods,
        Threshold=a.threshold,
        ComparisonOperator=a.comparison,
        TreatMissingData="notBreaching",
    )
    cloudwatch.set_alarm_state(AlarmName=a.name, StateValue=a.state,
                               StateReason=f"the reference stack declares this alarm {a.state}")


def _autoscale_table(autoscaling: Any, t: TableSpec) -> None:
    """Scalable targets and target tracking policies, as the data stack's aws_appautoscaling_* resources."""
    for capacity, plan in t.autoscaling.items():
        dimension = f"dynamodb:table:{capacity.title()}CapacityUnits"
        autoscaling.register_scalable_target(
            ServiceNamespace="dynamodb", ResourceId=f"table/{t.name}", ScalableDimension=dimension,
            MinCapacity=int(plan["min"]), MaxCapacity=int(plan["max"]))
        autoscaling.put_scaling_policy(
            PolicyName=f"{t.name}-{capacity}-target-tracking", ServiceNamespace="dynamodb",
            ResourceId=f"table/{t.name}", ScalableDimension=dimension, PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration={
                "TargetValue": float(plan.get("target", 70.0)),
                "PredefinedMetricSpecification": {
                    "PredefinedMetricType": f"DynamoDB{capacity.title()}CapacityUtilization"},
            })


def _put_metric(cloudwatch: Any, m: MetricSpec) -> None:
    """One datapoint a minute, the last half a minute ago: what the service published over the last minutes."""
    now = datetime.now(UTC) - timedelta(seconds=30)
    data = [{
        "MetricName": m.metric,
        "Dimensions": [{"Name": k, "Value": v} for k, v in m.dimensions.items()],
        "Timestamp": now - timedelta(minutes=len(m.values) - 1 - i),
        "Value": float(value),
        "Unit": m.unit,
    } for i, value in enumerate(m.values)]
    for start in range(0, len(data), 500):  # PutMetricData takes at most 1,000 datapoints a call
        cloudwatch.put_metric_data(Namespace=m.namespace, MetricData=data[start:start + 500])


def _create_user(iam: Any, u: UserSpec, account: str, region: str) -> None:
    iam.create_user(UserName=u.name)
    if u.mfa:
        serial = iam.create_virtual_mfa_device(VirtualMFADeviceName=u.name)["VirtualMFADevice"]["SerialNumber"]
        iam.enable_mfa_device(UserName=u.name, SerialNumber=serial, AuthenticationCode1="123456",
                              AuthenticationCode2="654321")
    for spec in u.access_keys:
        key_id = iam.create_access_key(UserName=u.name)["AccessKey"]["AccessKeyId"]
        if spec.get("status", "Active") != "Active":
            iam.update_access_key(UserName=u.name, AccessKeyId=key_id, Status=spec["status"])
        _age_access_key(account, u.name, key_id, spec, region)


def _age_access_key(account: str, user: str, key_id: str, spec: dict[str, Any], region: str) -> None:
    """Make a key as old as the stack says, and record its last use. No API can do either (AWS fills them in
    as time passes); the sandbox sets moto's record directly. Checks still read them through ListAccessKeys
    and GetAccessKeyLastUsed."""
    from moto.core.utils import utcnow
    from moto.iam.models import AccessKeyLastUsed, iam_backends

    [key] = [k for k in iam_backends[account]["aws"].get_user(user).access_keys if k.access_key_id == key_id]
    key.create_date = utcnow() - timedelta(days=float(spec.get("age_days", 0)))
    if "last_used_days" in spec:
        key.last_used = AccessKeyLastUsed(utcnow() - timedelta(days=float(spec["last_used_days"])),
                                          str(spec.get("service", "s3")), region)


def _set_root_account(spec: AccountSpec, account: str) -> None:
    """Root MFA and root access keys: no API sets either (only the root user, in the console); moto reports
    neither, so the sandbox sets the account summary it answers GetAccountSummary with."""
    from moto.iam.models import iam_backends

    summary = iam_backends[account]["aws"].account_summary
    summary._account_mfa_enabled = int(spec.root_mfa)
    summary._account_access_keys_present = int(spec.root_access_keys)
