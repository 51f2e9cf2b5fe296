"""Fleet benchmark: runbooks' fleet steps through the real CLI against the best hand-written boto3 code.

    python benchmarks/fleet.py --buckets 1000 --latency-ms 0 30

A moto server runs in its own process (benchmarks/counting_moto_server.py) and counts every API
request it serves. N buckets and N/5 tables are provisioned with about 10% seeded violations per rule
(plus decoys that do not match the pattern). Then, against the same server:

* ``runbooks verify`` runs a six-step fleet feature as a subprocess (interpreter start-up included)
  on an ``endpoint`` target, and its results.json is parsed;
* the per-resource floor does the same checks by hand: one client per service, a thread pool, one
  call per bucket and rule (GetPublicAccessBlock, GetBucketVersioning, GetBucketEncryption,
  GetBucketTagging) and two per table (DescribeContinuousBackups, ListTagsOfResource).

With ``--latency-ms`` the server makes every request wait that long (each in its own thread, so the
waits overlap as on a network), one measurement per value. It prints wall time, API calls counted at
the server, the model limit (calls x latency / threads) and each side's ratio to it, the CPU both
processes used, and the ratios runbooks / hand-written, and checks that both found every seeded
violation and nothing else (exit 1 if not).
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
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import boto3
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from runbooks.targets.aws import NETWORK_WORKERS

HERE = Path(__file__).resolve().parent
REGION = "eu-west-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
PATTERN = "bench-*"
TAG = "owner"
FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
BUCKET_RULES = ("public-access-block", "versioning", "encryption", "tag")
TABLE_RULES = ("pitr", "table-tag")
# The feature's steps, in order, and the rule each one checks.
STEPS = {
    f'every S3 bucket matching "{PATTERN}" blocks all public access': "public-access-block",
    f'every S3 bucket matching "{PATTERN}" has versioning enabled': "versioning",
    f'every S3 bucket matching "{PATTERN}" is encrypted with "AES256"': "encryption",
    f'every S3 bucket matching "{PATTERN}" has tag "{TAG}"': "tag",
    f'every DynamoDB table matching "{PATTERN}" has point-in-time recovery enabled': "pitr",
    f'every DynamoDB table matching "{PATTERN}" has tag "{TAG}"': "table-tag",
}


# --- the server ----------------------------------------------------------------------------------


class CountingServer:
    def __init__(self, log: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

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

    def client(self, service: str, **config: Any) -> Any:
        client = boto3.client(
            service, region_name=REGION, endpoint_url=self.url,
            aws_access_key_id="testing", aws_secret_access_key="testing",
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
    buckets: list[str]
    tables: list[str]
    violations: dict[str, set[str]] = field(default_factory=dict)


def provision(server: CountingServer, n_buckets: int, seed: int) -> Fleet:
    rng = random.Random(seed)
    buckets = [f"bench-{i:05d}" for i in range(n_buckets)]
    tables = [f"bench-t-{i:05d}" for i in range(max(1, n_buckets // 5))]
    violations = {rule: set(rng.sample(buckets, max(1, len(buckets) // 10))) for rule in BUCKET_RULES}
    violations |= {rule: set(rng.sample(tables, max(1, len(tables) // 10))) for rule in TABLE_RULES}
    decoys = [f"other-{i}" for i in range(5)]  # every violation, but outside the pattern
    decoy_tables = [f"other-t-{i}" for i in range(2)]
    s3, ddb = server.client("s3"), server.client("dynamodb")

    def make_bucket(name: str) -> None:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
        if name in decoys:
            return
        if name not in violations["public-access-block"]:
            s3.put_public_access_block(
                Bucket=name, PublicAccessBlockConfiguration={flag: True for flag in FLAGS}
            )
        if name not in violations["versioning"]:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        if name not in violations["encryption"]:
            s3.put_bucket_encryption(
                Bucket=name,
                ServerSideEncryptionConfiguration={
                    "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
                },
            )
        tags = [{"Key": "team", "Value": "bench"}]
        if name not in violations["tag"]:
            tags.append({"Key": TAG, "Value": "platform"})
        elif sum(map(ord, name)) % 2:  # half the offenders have no tags at all
            return
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tags})

    def make_table(name: str) -> None:
        tags = [] if name in violations["table-tag"] or name in decoy_tables else [{"Key": TAG, "Value": "p"}]
        ddb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            **({"Tags": tags} if tags else {}),
        )
        if name not in violations["pitr"] and name not in decoy_tables:
            ddb.update_continuous_backups(
                TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
            )

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(make_bucket, buckets + decoys))
        list(pool.map(make_table, tables + decoy_tables))
    return Fleet(buckets, tables, violations)


# --- runbooks through its CLI ----------------------------------------------------------------------


FEATURE = """\
Feature: Fleet baseline
  Every bench bucket and table follows the storage baseline.

  Scenario: Buckets and tables follow the baseline
{steps}
"""


def write_project(directory: Path, url: str, steps: list[str]) -> Path:
    (directory / "features").mkdir(parents=True, exist_ok=True)
    body = "\n".join(f"    {'Then' if i == 0 else 'And'} {step}" for i, step in enumerate(steps))
    (directory / "features" / "fleet.feature").write_text(FEATURE.format(steps=body), encoding="utf-8")
    config = directory / "runbooks.toml"
    config.write_text(
        textwrap.dedent(
            f"""\
            default_environment = "bench"
            [environments.bench]
            aws = {{ target = "endpoint", url = "{url}", region = "{REGION}" }}
            """
        ),
        encoding="utf-8",
    )
    return config


def runbooks_command() -> list[str]:
    script = Path(sys.executable).with_name("runbooks")
    if script.exists():
        return [str(script)]
    found = shutil.which("runbooks")
    return [found] if found else [sys.executable, "-m", "runbooks.cli"]


def run_cli(directory: Path, url: str, steps: list[str], workers: int | None = None,
            ) -> tuple[float, int, list[dict[str, Any]], str]:
    config = write_project(directory, url, steps)
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


def floor(server: CountingServer, threads: int) -> dict[str, set[str]]:
    """The same six rules by hand, as fast as plain boto3 does them: one client per service."""
    retries = {"retries": {"mode": "adaptive", "max_attempts": 5}}
    s3, ddb = server.client("s3", **retries), server.client("dynamodb", **retries)
    account = server.client("sts", **retries).get_caller_identity()["Account"]
    try:
        account_block = server.client("s3control", **retries).get_public_access_block(AccountId=account)[
            "PublicAccessBlockConfiguration"
        ]
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "NoSuchPublicAccessBlockConfiguration":
            raise
        account_block = {}

    def code(exc: ClientError) -> str:
        return str(exc.response["Error"]["Code"])

    def bucket(name: str) -> set[str]:
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

    def table(name: str) -> set[str]:
        found = set()
        pitr = ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
        if pitr.get("PointInTimeRecoveryDescription", {}).get("PointInTimeRecoveryStatus") != "ENABLED":
            found.add("pitr")
        arn = f"arn:aws:dynamodb:{REGION}:{account}:table/{name}"
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

    buckets = [b["Name"] for b in s3.list_buckets()["Buckets"] if fnmatchcase(b["Name"], PATTERN)]
    tables = [
        t for page in ddb.get_paginator("list_tables").paginate() for t in page["TableNames"]
        if fnmatchcase(t, PATTERN)
    ]
    result: dict[str, set[str]] = {rule: set() for rule in (*BUCKET_RULES, *TABLE_RULES)}
    with ThreadPoolExecutor(threads) as pool:
        for name, found in zip(buckets, pool.map(bucket, buckets), strict=True):
            for rule in found:
                result[rule].add(name)
        for name, found in zip(tables, pool.map(table, tables), strict=True):
            for rule in found:
                result[rule].add(name)
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


def compare(label: str, found: dict[str, set[str]], expected: dict[str, set[str]]) -> list[str]:
    problems = []
    for rule, names in expected.items():
        missed, extra = names - found.get(rule, set()), found.get(rule, set()) - names
        if missed:
            problems.append(f"{label}: {rule}: missed {len(missed)}: {', '.join(sorted(missed)[:5])}")
        if extra:
            problems.append(f"{label}: {rule}: {len(extra)} not seeded: {', '.join(sorted(extra)[:5])}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--buckets", type=int, default=200, help="number of matching buckets (tables: N/5)")
    parser.add_argument("--threads", type=int, nargs="+", default=[4, 8], help="floor thread pools to try")
    parser.add_argument("--workers", type=int, default=None,
                        help=f"runbooks verify --workers (default: its own, {NETWORK_WORKERS} on an endpoint)")
    parser.add_argument("--latency-ms", type=float, nargs="+", default=[0.0],
                        help="added to every request by the server, one measurement per value (e.g. 0 30)")
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
        fleet = provision(server, args.buckets, args.seed)
        n, t = len(fleet.buckets), len(fleet.tables)
        print(f"fleet benchmark: {n} buckets and {t} tables matching {PATTERN!r} (+7 decoys), moto server "
              f"{server.url}; provisioned in {time.perf_counter() - started:.1f} s")
        print("seeded violations: " + ", ".join(f"{rule} {len(v)}" for rule, v in fleet.violations.items()))

        # Warm-up, not measured: every code path of the server once (the floor touches all the
        # resources), and the CLI's start-up alone - the same command on a one-step runbook.
        floor(server, max(args.threads))
        for attempt in range(2):  # the first run also fills the bytecode cache
            with measured(server, "start-up", child=True) as startup:
                run_cli(Path(tmp) / f"startup-{attempt}", server.url, ['the AWS account is "123456789012"'])

        for latency in args.latency_ms:
            server.set_latency(latency)
            runs: list[Measurement] = []
            floors: list[Measurement] = []
            for attempt in range(args.repeat):  # interleaved, so that a busy moment hits both sides
                label = "runbooks verify (CLI, subprocess)"
                with measured(server, label, child=True, concurrency=workers) as out:
                    _, code, records, stdout = run_cli(
                        Path(tmp) / f"cli-{latency:g}-{attempt}", server.url, list(STEPS), args.workers)
                runs += out
                found = {STEPS[r["step"]]: offenders_in(r) for r in records if r["step"] in STEPS}
                if len(found) != len(STEPS) or code != 1:
                    problems.append(f"runbooks: exit {code}, {len(found)}/{len(STEPS)} steps reported:\n{stdout}")
                problems += compare(f"runbooks ({latency:g} ms)", found, fleet.violations)
                for threads in args.threads:
                    label = f"hand-written boto3 ({threads} threads)"
                    with measured(server, label, child=False, concurrency=threads) as out:
                        found = floor(server, threads)
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
    print("correct: both found every seeded violation and nothing else (decoys ignored)")
    return 0


def report(latency_ms: float, n: int, runs: list[Measurement], floors: list[Measurement]) -> None:
    """One table per latency: the best run of each side, the model limit, and the ratios.

    The model limit of a side is the least time its calls could take at its concurrency when every
    request waits ``latency_ms``: calls x latency / concurrency (no CPU, no start-up, no serial part). The
    CPU floor is the other bound: the server's and the client's CPU seconds spread over every core of the
    machine (which both share, with whatever else runs on it)."""
    best = [min(runs, key=lambda m: m.wall_s)]
    for label in dict.fromkeys(m.label for m in floors):
        best.append(min((m for m in floors if m.label == label), key=lambda m: m.wall_s))
    print(f"\n{latency_ms:g} ms per request")
    columns = ("wall s", "API calls", "calls/bucket", "in flight", "model s", "wall/model", "server CPU s",
               "client CPU s", "CPU floor s")
    widths = (7, 9, 12, 9, 8, 10, 12, 12, 11)
    cores = os.cpu_count() or 1
    print(f"{'':36} " + " ".join(f"{c:>{w}}" for c, w in zip(columns, widths, strict=True)))
    for m in best:
        model = m.calls * latency_ms / 1000 / m.concurrency
        print(f"{m.label:36} {m.wall_s:7.2f} {m.calls:9d} {m.calls / n:12.2f} {m.concurrency:9d} "
              + (f"{model:8.2f} {m.wall_s / model:10.2f}" if model else f"{'-':>8} {'-':>10}")
              + f" {m.server_cpu_s:12.2f} {m.client_cpu_s:12.2f} {(m.server_cpu_s + m.client_cpu_s) / cores:11.2f}")
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
