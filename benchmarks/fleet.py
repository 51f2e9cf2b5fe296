"""Fleet benchmark: runbooks' fleet steps through the real CLI against the best hand-written boto3 code.

    python benchmarks/fleet.py --buckets 1000 --latency-ms 0 30
    python benchmarks/fleet.py --buckets 200 --accounts 4 --regions eu-west-1 us-east-1 --latency-ms 30

A moto server runs in its own process (benchmarks/counting_moto_server.py) and counts every API
request it serves. N buckets and N/5 tables are provisioned with about 10% seeded violations per rule
(plus decoys that do not match the pattern): in moto's own account, or with ``--accounts A`` spread
over A member accounts (N/A buckets each, spread over the ``--regions``; N/5/(A x R) tables in each
account and region), each with the role ``runbooks-readonly``. Then, against the same server:

* ``runbooks verify`` runs a six-step fleet feature as a subprocess (interpreter start-up included)
  on an ``endpoint`` target, its scenarios tagged ``@all-accounts`` (with ``--accounts``; the tables'
  also ``@all-regions`` with several regions), and its results.json is parsed;
* the per-resource floor does the same checks by hand: in each account its role assumed once, one
  client per service and region, one thread pool over every account's buckets and tables, one call
  per bucket and rule (GetPublicAccessBlock, GetBucketVersioning, GetBucketEncryption,
  GetBucketTagging) and two per table (DescribeContinuousBackups, ListTagsOfResource).

With ``--latency-ms`` the server makes every request wait that long (each in its own thread, so the
waits overlap as on a network), one measurement per value. It prints wall time, API calls counted at
the server, the model limit (calls x latency / threads) and each side's ratio to it, the CPU both
processes used, and the ratios runbooks / hand-written, and checks that both found every seeded
violation of each account and region and nothing else (exit 1 if not).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import partial
from pathlib import Path
from typing import Any

import boto3
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from runbooks.targets.aws import NETWORK_WORKERS

HERE = Path(__file__).resolve().parent
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
HUB = "123456789012"  # moto's account for the plain credentials: the run's own, the only one without --accounts
MEMBERS = 210000000000  # member account n (1, 2, ...) is MEMBERS + n
ROLE = "runbooks-readonly"  # the role runbooks and the floor assume in each member account
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{HUB}:root"}, "Action": "sts:AssumeRole"}]})
PATTERN = "bench-*"
TAG = "owner"
FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
BUCKET_RULES = ("public-access-block", "versioning", "encryption", "tag")
TABLE_RULES = ("pitr", "table-tag")
# The feature's steps, in order, and the rule each one checks.
BUCKET_STEPS = {
    f'every S3 bucket matching "{PATTERN}" blocks all public access': "public-access-block",
    f'every S3 bucket matching "{PATTERN}" has versioning enabled': "versioning",
    f'every S3 bucket matching "{PATTERN}" is encrypted with "AES256"': "encryption",
    f'every S3 bucket matching "{PATTERN}" has tag "{TAG}"': "tag",
}
TABLE_STEPS = {
    f'every DynamoDB table matching "{PATTERN}" has point-in-time recovery enabled': "pitr",
    f'every DynamoDB table matching "{PATTERN}" has tag "{TAG}"': "table-tag",
}
STEPS = BUCKET_STEPS | TABLE_STEPS
Key = tuple[str, str, str]  # (account, region, rule): a bucket's region is the first of --regions (S3 is global)
Item = tuple[str, str, str, Callable[[], set[str]]]  # the floor's work: account, region, name, the check


# --- the server ----------------------------------------------------------------------------------


class CountingServer:
    def __init__(self, log: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.lock = threading.Lock()  # boto3's default session makes clients for one thread at a time

    def __enter__(self) -> CountingServer:
        env = {**os.environ, **CREDENTIALS}
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, str(HERE / "counting_moto_server.py"), str(self.port)],
                stdout=out, stderr=subprocess.STDOUT, env=env,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                self.calls()
                return self
            except requests.RequestException:
                if self.process.poll() is not None:
                    raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}") from None
                time.sleep(0.1)  # polling interval while the server starts, bounded by the deadline
        raise RuntimeError("the moto server did not start within 30 s")

    def __exit__(self, *_: Any) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def cpu_seconds(self) -> float:
        """CPU time the server process has used so far (Linux /proc; 0 elsewhere)."""
        assert self.process is not None
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def set_latency(self, ms: float) -> None:
        """Every AWS request from now on waits ``ms`` before moto answers it (0: none)."""
        requests.post(f"{self.url}/__bench__/latency", params={"ms": ms}, timeout=5).raise_for_status()

    def calls(self, reset: bool = False) -> dict[str, Any]:
        method = requests.post if reset else requests.get
        response = method(f"{self.url}/__bench__/calls", timeout=5)
        response.raise_for_status()
        return response.json()  # type: ignore[no-any-return]

    def assume(self, account: str, role: str) -> dict[str, str]:
        """Credentials that act in ``account`` (moto: the account of the assumed role)."""
        creds = self.client("sts").assume_role(
            RoleArn=f"arn:aws:iam::{account}:role/{role}", RoleSessionName="bench")["Credentials"]
        return {"aws_access_key_id": creds["AccessKeyId"], "aws_secret_access_key": creds["SecretAccessKey"],
                "aws_session_token": creds["SessionToken"]}

    def client(self, service: str, region: str = "eu-west-1", credentials: dict[str, str] | None = None,
               **config: Any) -> Any:
        """A client of the server in ``region``, with ``credentials`` (None: the hub account's own)."""
        with self.lock:
            client = boto3.client(
                service, region_name=region, endpoint_url=self.url,
                **(credentials or {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}),
                config=Config(s3={"addressing_style": "path"}, max_pool_connections=16, **config),
            )
        if service == "s3control":  # its endpoint rules put the account id in front of the host
            host = f"127.0.0.1:{self.port}"

            def to_server(request: Any, **_: Any) -> None:
                prefix, _, rest = request.url.partition(f".{host}")
                if rest or request.url.endswith(f".{host}"):
                    request.url = prefix.rpartition("//")[0] + f"//{host}" + rest

            client.meta.events.register("before-sign.s3-control", to_server)
        return client


# --- provisioning --------------------------------------------------------------------------------


@dataclass
class Fleet:
    accounts: list[str]  # [HUB] without --accounts
    regions: list[str]  # the first: where the bucket scenario runs, and the buckets' key
    buckets: dict[str, list[str]]  # by account
    tables: dict[tuple[str, str], list[str]]  # by (account, region)
    violations: dict[Key, set[str]]

    @property
    def n_buckets(self) -> int:
        return sum(map(len, self.buckets.values()))

    @property
    def n_tables(self) -> int:
        return sum(map(len, self.tables.values()))


def provision(server: CountingServer, n_buckets: int, n_accounts: int, regions: list[str], seed: int) -> Fleet:
    """N buckets spread over the accounts (and, by LocationConstraint, over the regions), N/5 tables over
    the accounts x regions; about 10% of each account's buckets and of each account and region's tables
    seeded per rule (at least one)."""
    rng = random.Random(seed)
    accounts = [str(MEMBERS + n) for n in range(1, n_accounts + 1)] or [HUB]
    home = regions[0]
    per_account = max(1, n_buckets // len(accounts))
    per_table_group = max(1, n_buckets // 5 // (len(accounts) * len(regions)))
    buckets = {a: [f"bench-{k * per_account + i:05d}" for i in range(per_account)] for k, a in enumerate(accounts)}
    groups = [(a, r) for a in accounts for r in regions]
    tables = {g: [f"bench-t-{k * per_table_group + i:05d}" for i in range(per_table_group)]
              for k, g in enumerate(groups)}
    violations = {(a, home, rule): set(rng.sample(names, max(1, len(names) // 10)))
                  for a, names in buckets.items() for rule in BUCKET_RULES}
    violations |= {(a, r, rule): set(rng.sample(names, max(1, len(names) // 10)))
                   for (a, r), names in tables.items() for rule in TABLE_RULES}

    def member(account: str) -> dict[str, str] | None:
        """Credentials in the account (None: the hub's own), its role for runbooks and the floor created."""
        if account == HUB:
            return None
        credentials = server.assume(account, "OrganizationAccountAccessRole")
        server.client("iam", home, credentials).create_role(RoleName=ROLE, AssumeRolePolicyDocument=TRUST)
        return credentials

    credentials = {a: member(a) for a in accounts}
    s3_in = {(a, r): server.client("s3", r, credentials[a]) for a, r in groups}  # a bucket is created in its region
    ddb_in = {(a, r): server.client("dynamodb", r, credentials[a]) for a, r in groups}

    def make_bucket(account: str, name: str, region: str) -> None:
        s3 = s3_in[account, region]
        s3.create_bucket(Bucket=name, **({} if region == "us-east-1" else {  # us-east-1: no constraint
            "CreateBucketConfiguration": {"LocationConstraint": region}}))
        if name.startswith("other-"):  # a decoy: every violation, but outside the pattern
            return
        bad = {rule for rule in BUCKET_RULES if name in violations[account, home, rule]}
        if "public-access-block" not in bad:
            s3.put_public_access_block(
                Bucket=name, PublicAccessBlockConfiguration={flag: True for flag in FLAGS}
            )
        if "versioning" not in bad:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        if "encryption" not in bad:
            s3.put_bucket_encryption(
                Bucket=name,
                ServerSideEncryptionConfiguration={
                    "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
                },
            )
        tags = [{"Key": "team", "Value": "bench"}]
        if "tag" not in bad:
            tags.append({"Key": TAG, "Value": "platform"})
        elif sum(map(ord, name)) % 2:  # half the offenders have no tags at all
            return
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tags})

    def make_table(account: str, region: str, name: str) -> None:
        ddb = ddb_in[account, region]
        decoy = name.startswith("other-")
        bad = {rule for rule in TABLE_RULES if decoy or name in violations[account, region, rule]}
        tags = [] if "table-tag" in bad else [{"Key": TAG, "Value": "p"}]
        ddb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            **({"Tags": tags} if tags else {}),
        )
        if "pitr" not in bad:
            ddb.update_continuous_backups(
                TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
            )

    # buckets in turn in each region; 5 decoy buckets per account, 2 decoy tables per account and region
    bucket_jobs = [(a, name, regions[i % len(regions)]) for a, names in buckets.items() for i, name in enumerate(names)]
    bucket_jobs += [(a, f"other-{a}-{i}", home) for a in accounts for i in range(5)]
    table_jobs = [(a, r, name) for (a, r), names in tables.items() for name in [*names, "other-t-0", "other-t-1"]]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda job: make_bucket(*job), bucket_jobs))
        list(pool.map(lambda job: make_table(*job), table_jobs))
    return Fleet(accounts, regions, buckets, tables, violations)


# --- runbooks through its CLI ----------------------------------------------------------------------


def feature(scenarios: dict[str, tuple[list[str], list[str]]]) -> str:
    """A feature of the scenarios: name -> (tags, steps)."""
    text = "Feature: Fleet baseline\n  Every bench bucket and table follows the storage baseline.\n"
    for name, (tags, steps) in scenarios.items():
        text += "\n" + (f"  {' '.join(tags)}\n" if tags else "") + f"  Scenario: {name}\n"
        text += "".join(f"    {'Then' if i == 0 else 'And'} {step}\n" for i, step in enumerate(steps))
    return text


def fleet_feature(fleet: Fleet) -> str:
    """The six steps: the buckets' once per account (S3 is global), the tables' per account and region."""
    every = ["@all-accounts"] if fleet.accounts != [HUB] else []
    regions = ["@all-regions"] if len(fleet.regions) > 1 else []
    return feature({"Buckets follow the baseline": (every, list(BUCKET_STEPS)),
                    "Tables follow the baseline": (every + regions, list(TABLE_STEPS))})


def write_project(directory: Path, url: str, text: str, fleet: Fleet, read_ahead: int | None = None) -> Path:
    (directory / "features").mkdir(parents=True, exist_ok=True)
    (directory / "features" / "fleet.feature").write_text(text, encoding="utf-8")
    accounts = ", ".join(f'{{ id = "{a}", name = "member-{n:02d}" }}' for n, a in enumerate(fleet.accounts, 1)
                         if a != HUB)
    config = directory / "runbooks.toml"
    config.write_text(
        textwrap.dedent(
            f"""\
            default_environment = "bench"
            [environments.bench.aws]
            target = "endpoint"
            url = "{url}"
            region = "{fleet.regions[0]}"
            regions = {json.dumps(fleet.regions)}
            """
        ) + (f'role_name = "{ROLE}"\naccounts = [{accounts}]\n' if accounts else "")
        + (f"read_ahead = {read_ahead}\n" if read_ahead is not None else ""),
        encoding="utf-8",
    )
    return config


def runbooks_command() -> list[str]:
    script = Path(sys.executable).with_name("runbooks")
    if script.exists():
        return [str(script)]
    found = shutil.which("runbooks")
    return [found] if found else [sys.executable, "-m", "runbooks.cli"]


def run_cli(directory: Path, url: str, text: str, fleet: Fleet, workers: int | None = None,
            read_ahead: int | None = None,
            ) -> tuple[float, int, list[dict[str, Any]], str]:
    config = write_project(directory, url, text, fleet, read_ahead)
    reports = directory / "reports"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | CREDENTIALS
    # An installed package has its bytecode compiled; this sandbox sets PYTHONDONTWRITEBYTECODE, which
    # would make every start-up compile ~340 modules. Keep bytecode, outside the source tree.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(directory.parent / "pycache")
    started = time.perf_counter()
    done = subprocess.run(
        [*runbooks_command(), "verify", "--config", str(config), "--report-dir", str(reports),
         *(["--workers", str(workers)] if workers else [])],
        cwd=directory, env=env, capture_output=True, text=True, timeout=1800, check=False,
    )
    took = time.perf_counter() - started
    results_path = reports / "results.json"
    if not results_path.exists():
        tail = done.stderr[-3000:]
        raise RuntimeError(f"runbooks verify wrote no results (exit {done.returncode}):\n{tail}")
    results = json.loads(results_path.read_text(encoding="utf-8"))["results"]
    return took, done.returncode, results, done.stdout


def offenders_in(record: dict[str, Any]) -> set[str]:
    """Names listed by one fleet result: ``3 of 120 buckets without X: a, b, c[; ...]``."""
    if record["outcome"] == "pass":
        return set()
    if record["outcome"] != "fail" or " without " not in record["observed"]:
        raise RuntimeError(f"unexpected {record['outcome']} for {record['step']!r}: {record['observed']}")
    listed = record["observed"].split(": ", 1)[1].split("; ", 1)[0]
    return {name.strip() for name in listed.split(",")}


# --- the hand-written floor ----------------------------------------------------------------------


def floor(server: CountingServer, fleet: Fleet, threads: int) -> dict[Key, set[str]]:
    """The same six rules by hand, as fast as plain boto3 does them: in each account its role assumed once
    (the hub account: its own credentials), one client per service and region, and one thread pool over
    every account's buckets and tables."""
    retries = {"retries": {"mode": "adaptive", "max_attempts": 5}}
    home = fleet.regions[0]

    def code(exc: ClientError) -> str:
        return str(exc.response["Error"]["Code"])

    def bucket(s3: Any, account_block: dict[str, bool], name: str) -> set[str]:
        found = set()
        try:
            own = s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
        except ClientError as exc:
            if code(exc) != "NoSuchPublicAccessBlockConfiguration":
                raise
            own = {}
        if not all(own.get(flag) or account_block.get(flag) for flag in FLAGS):
            found.add("public-access-block")
        if s3.get_bucket_versioning(Bucket=name).get("Status") != "Enabled":
            found.add("versioning")
        try:
            rules = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"]
        except ClientError as exc:
            if code(exc) != "ServerSideEncryptionConfigurationNotFoundError":
                raise
            rules = []
        algorithms = [r.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm") for r in rules]
        if "AES256" not in algorithms:
            found.add("encryption")
        try:
            tags = s3.get_bucket_tagging(Bucket=name)["TagSet"]
        except ClientError as exc:
            if code(exc) != "NoSuchTagSet":
                raise
            tags = []
        if TAG not in {t["Key"] for t in tags}:
            found.add("tag")
        return found

    def table(ddb: Any, arn: str, name: str) -> set[str]:
        found = set()
        pitr = ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
        if pitr.get("PointInTimeRecoveryDescription", {}).get("PointInTimeRecoveryStatus") != "ENABLED":
            found.add("pitr")
        keys: set[str] = set()
        params: dict[str, Any] = {"ResourceArn": arn}
        while True:
            page = ddb.list_tags_of_resource(**params)
            keys |= {t["Key"] for t in page.get("Tags", [])}
            if not page.get("NextToken"):
                break
            params["NextToken"] = page["NextToken"]
        if TAG not in keys:
            found.add("table-tag")
        return found

    def work(account: str) -> list[Item]:
        """One account's work items: its role assumed, its clients, its buckets and (per region) tables."""
        credentials = None if account == HUB else server.assume(account, ROLE)

        def client(service: str, region: str = home) -> Any:
            return server.client(service, region, credentials, **retries)

        try:
            account_block = client("s3control").get_public_access_block(AccountId=account)[
                "PublicAccessBlockConfiguration"
            ]
        except ClientError as exc:
            if code(exc) != "NoSuchPublicAccessBlockConfiguration":
                raise
            account_block = {}
        s3 = client("s3")
        items: list[Item] = [(account, home, b["Name"], partial(bucket, s3, account_block, b["Name"]))
                             for b in s3.list_buckets()["Buckets"] if fnmatchcase(b["Name"], PATTERN)]
        for region in fleet.regions:
            ddb = client("dynamodb", region)
            items += [(account, region, t, partial(table, ddb, f"arn:aws:dynamodb:{region}:{account}:table/{t}", t))
                      for page in ddb.get_paginator("list_tables").paginate() for t in page["TableNames"]
                      if fnmatchcase(t, PATTERN)]
        return items

    result: dict[Key, set[str]] = {}
    with ThreadPoolExecutor(threads) as pool:
        items = [item for account_items in pool.map(work, fleet.accounts) for item in account_items]
        for (account, region, name, _), found in zip(items, pool.map(lambda item: item[3](), items), strict=True):
            for rule in found:
                result.setdefault((account, region, rule), set()).add(name)
    return result


# --- main ----------------------------------------------------------------------------------------


@dataclass
class Measurement:
    label: str
    wall_s: float
    calls: int
    server_cpu_s: float  # the moto server's CPU: the bottleneck, and steadier than wall time on a busy host
    client_cpu_s: float
    by_service: dict[str, int]
    concurrency: int = 1  # requests the side keeps in flight: its threads


@contextmanager
def measured(server: CountingServer, label: str, child: bool, concurrency: int = 1) -> Iterator[list[Measurement]]:
    """Time a block and count what the server did for it; ``child``: the client is a subprocess."""
    server.calls(reset=True)
    out: list[Measurement] = []
    cpu0, server0, wall0 = _client_cpu(child), server.cpu_seconds(), time.perf_counter()
    yield out
    wall = time.perf_counter() - wall0
    calls = server.calls(reset=True)
    server_cpu, client_cpu = server.cpu_seconds() - server0, _client_cpu(child) - cpu0
    out.append(Measurement(label, wall, calls["total"], server_cpu, client_cpu, calls["by_service"], concurrency))


def _client_cpu(child: bool) -> float:
    if not child:
        return time.process_time()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def compare(label: str, found: dict[Key, set[str]], expected: dict[Key, set[str]]) -> list[str]:
    """What ``found`` missed or added, per account, region and rule."""
    problems = []
    for key in sorted(expected.keys() | found.keys()):
        names, got = expected.get(key, set()), found.get(key, set())
        missed, extra = names - got, got - names
        where = "/".join(key)  # account/region/rule
        if missed:
            problems.append(f"{label}: {where}: missed {len(missed)}: {', '.join(sorted(missed)[:5])}")
        if extra:
            problems.append(f"{label}: {where}: {len(extra)} not seeded: {', '.join(sorted(extra)[:5])}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--buckets", type=int, default=200,
                        help="number of matching buckets in all (tables: N/5), spread over the accounts")
    parser.add_argument("--accounts", type=int, default=0,
                        help="member accounts the fleet is spread over, each assumed through its role "
                             "(scenarios @all-accounts); 0: the hub account alone")
    parser.add_argument("--regions", nargs="+", default=["eu-west-1"],
                        help="the tables' regions (several: their scenario @all-regions) and the buckets'")
    parser.add_argument("--threads", type=int, nargs="+", default=[4, 8], help="floor thread pools to try")
    parser.add_argument("--workers", type=int, default=None,
                        help=f"runbooks verify --workers (default: its own, {NETWORK_WORKERS} on an endpoint)")
    parser.add_argument("--latency-ms", type=float, nargs="+", default=[0.0],
                        help="added to every request by the server, one measurement per value (e.g. 0 30)")
    parser.add_argument("--read-ahead", type=int, default=None,
                        help="runbooks' aws.read_ahead, scenarios read ahead (default: its own; 0: off)")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each side; the best time counts")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    workers = args.workers or NETWORK_WORKERS

    problems: list[str] = []
    results: dict[float, tuple[list[Measurement], list[Measurement]]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="runbooks-bench-") as tmp,
        CountingServer(Path(tmp) / "moto.log") as server,
    ):
        started = time.perf_counter()
        fleet = provision(server, args.buckets, args.accounts, args.regions, args.seed)
        n, t, a, r = fleet.n_buckets, fleet.n_tables, len(fleet.accounts), len(fleet.regions)
        print(f"fleet benchmark: {n} buckets and {t} tables matching {PATTERN!r} (+{5 * a + 2 * a * r} decoys) in "
              + (f"{a} member accounts" if fleet.accounts != [HUB] else "the hub account")
              + f" x {r} region{'s' if r > 1 else ''}, moto server {server.url}; "
              f"provisioned in {time.perf_counter() - started:.1f} s")
        print("seeded violations, in all: " + ", ".join(
            f"{rule} {sum(len(v) for (_, _, of), v in fleet.violations.items() if of == rule)}"
            for rule in (*BUCKET_RULES, *TABLE_RULES)))

        # Warm-up, not measured: every code path of the server once (the floor touches all the
        # resources), and the CLI's start-up alone - the same command on a one-step runbook.
        floor(server, fleet, max(args.threads))
        one_step = feature({"Start-up": ([], [f'the AWS account is "{HUB}"'])})
        for attempt in range(2):  # the first run also fills the bytecode cache
            with measured(server, "start-up", child=True) as startup:
                run_cli(Path(tmp) / f"startup-{attempt}", server.url, one_step, fleet)

        for latency in args.latency_ms:
            server.set_latency(latency)
            runs: list[Measurement] = []
            floors: list[Measurement] = []
            for attempt in range(args.repeat):  # interleaved, so that a busy moment hits both sides
                label = "runbooks verify (CLI, subprocess)"
                with measured(server, label, child=True, concurrency=workers) as out:
                    _, code, records, stdout = run_cli(
                        Path(tmp) / f"cli-{latency:g}-{attempt}", server.url, fleet_feature(fleet), fleet, args.workers,
                        args.read_ahead)
                runs += out
                reported = [r for r in records if r["step"] in STEPS]  # a scenario without @all-accounts: no account
                keys = [(r["account"] or HUB, r["region"], STEPS[r["step"]]) for r in reported]
                found = {key: offenders_in(r) for key, r in zip(keys, reported, strict=True)}
                if sorted(keys) != sorted(fleet.violations) or code != 1:
                    problems.append(f"runbooks: exit {code}, {len(keys)} of {len(fleet.violations)} step results "
                                    f"(one per account, region and rule):\n{stdout[-3000:]}")
                problems += compare(f"runbooks ({latency:g} ms)", found, fleet.violations)
                for threads in args.threads:
                    label = f"hand-written boto3 ({threads} threads)"
                    with measured(server, label, child=False, concurrency=threads) as out:
                        found = floor(server, fleet, threads)
                    floors += out
                    problems += compare(f"floor ({threads} threads, {latency:g} ms)", found, fleet.violations)
            results[latency] = (runs, floors)
        server.set_latency(0)

    print(f"\nCLI start-up (the same command on a one-step runbook): {startup[0].wall_s:.2f} s wall, "
          f"{startup[0].client_cpu_s:.2f} s CPU")
    for latency, (runs, floors) in results.items():
        report(latency, n, runs, floors)
    print("load average at the end: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    if problems:
        print("\nWRONG RESULTS:\n" + "\n".join(problems))
        return 1
    print("correct: both found every seeded violation of each account and region and nothing else "
          "(decoys ignored)")
    return 0


def report(latency_ms: float, n: int, runs: list[Measurement], floors: list[Measurement]) -> None:
    """One table per latency: the best run of each side, the model limit, and the ratios.

    The model limit of a side is the least time its calls could take at its concurrency when every
    request waits ``latency_ms``: calls x latency / concurrency (no CPU, no start-up, no serial part). The
    CPU floor is another: the server's and the client's CPU seconds spread over every core of the machine
    (which both share, with whatever else runs on it). The server's own CPU seconds are a third: moto runs
    in one Python process whose request handling holds one interpreter lock, so they hardly overlap. The
    bound is the largest of the three, what this machine lets the side reach at best."""
    best = [min(runs, key=lambda m: m.wall_s)]
    for label in dict.fromkeys(m.label for m in floors):
        best.append(min((m for m in floors if m.label == label), key=lambda m: m.wall_s))
    print(f"\n{latency_ms:g} ms per request")
    columns = ("wall s", "API calls", "calls/bucket", "in flight", "model s", "wall/model", "server CPU s",
               "client CPU s", "CPU floor s", "bound s", "wall/bound")
    widths = (7, 9, 12, 9, 8, 10, 12, 12, 11, 7, 10)
    cores = os.cpu_count() or 1
    print(f"{'':36} " + " ".join(f"{c:>{w}}" for c, w in zip(columns, widths, strict=True)))
    for m in best:
        model = m.calls * latency_ms / 1000 / m.concurrency
        cpu_floor = (m.server_cpu_s + m.client_cpu_s) / cores
        bound = max(model, cpu_floor, m.server_cpu_s)
        print(f"{m.label:36} {m.wall_s:7.2f} {m.calls:9d} {m.calls / n:12.2f} {m.concurrency:9d} "
              + (f"{model:8.2f} {m.wall_s / model:10.2f}" if model else f"{'-':>8} {'-':>10}")
              + f" {m.server_cpu_s:12.2f} {m.client_cpu_s:12.2f} {cpu_floor:11.2f}"
              + f" {bound:7.2f} {m.wall_s / bound:10.2f}")
    cli = best[0]
    for m in best[1:]:
        print(f"{'runbooks / ' + m.label:56} wall {cli.wall_s / m.wall_s:5.2f}  calls {cli.calls / m.calls:5.2f}  "
              f"server CPU {cli.server_cpu_s / m.server_cpu_s:5.2f}")
    fastest = min(best[1:], key=lambda m: m.wall_s)
    best_label = f"runbooks / best hand-written ({fastest.concurrency} threads)"
    print(f"{best_label:56} wall {cli.wall_s / fastest.wall_s:5.2f}")
    print("each run, wall s: " + "; ".join(
        f"{label} " + ", ".join(f"{m.wall_s:.2f}" for m in [*runs, *floors] if m.label == label)
        for label in dict.fromkeys(m.label for m in [*runs, *floors])))
    print("calls by service: runbooks " + json.dumps(cli.by_service, sort_keys=True)
          + "; floor " + json.dumps(best[-1].by_service, sort_keys=True))


if __name__ == "__main__":
    sys.exit(main())
