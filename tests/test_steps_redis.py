"""Redis steps against real servers on 127.0.0.1: a master with a password and maxmemory, its replica, and a
closed port. Every step has its PASS, FAIL and ERROR; the target sends nothing but PING and INFO; the URL's
password reaches no output of `runbooks verify`.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runbooks.cli import main as cli_main
from runbooks.config import ConfigError, load_config
from runbooks.faults import CouldNotCheck, FaultKind
from runbooks.result import CheckResult, Outcome
from runbooks.session import Session
from runbooks.steps.redis import redis_answers_ping, redis_memory_below, redis_replicas_at_least, redis_role
from tests.conftest import evaluate, make_run
from tests.support.redis_server import PASSWORD, RedisServer, redis_master, redis_replica  # noqa: F401
from tests.support.sshd import free_port

AWS = 'aws = { target = "endpoint", url = "http://127.0.0.1:9", region = "us-east-1" }\n'  # never called


@pytest.fixture
def run(tmp_path: Path, redis_master: RedisServer, redis_replica: RedisServer) -> Iterator[Session]:  # noqa: F811
    body = (f"{AWS}[environments.test.redis]\n"
            f'cache = "{redis_master.url()}"\n'
            f'replica = {{ url = "{redis_replica.url(db=2)}", timeout_s = 2 }}\n'
            f'down = "redis://:{PASSWORD}@127.0.0.1:{free_port()}/0"\n'
            f'badpass = "{redis_master.url(password="wrong-password")}"\n')
    session = make_run(tmp_path, body)
    yield session
    session.stop()


def check(run: Session, func: Callable[..., CheckResult], **args: object) -> CheckResult:
    result = evaluate(run, func, **args)
    assert result.manual_command.startswith("redis-cli -h 127.0.0.1 -p "), result
    assert PASSWORD not in json.dumps(result.__dict__, default=str)
    return result


def test_a_server_that_answers_passes_and_a_slow_answer_fails(run: Session) -> None:
    result = check(run, redis_answers_ping, redis="cache", ms=5000)
    assert result.outcome is Outcome.PASS and result.observed.startswith("PONG in "), result
    assert result.manual_command.endswith("--askpass PING")
    assert result.resource == f"redis cache (redis 127.0.0.1:{run.env.redis['cache'].port}/0)"
    assert check(run, redis_answers_ping, redis="cache", ms=0).outcome is Outcome.FAIL


def test_a_server_that_is_down_fails_the_ping_step_and_errors_the_others(run: Session) -> None:
    result = check(run, redis_answers_ping, redis="down", ms=5000)
    assert result.outcome is Outcome.FAIL, result
    assert result.observed.startswith("could not connect to redis down") and "refused" in result.observed
    for func, args in ((redis_role, {"role": "master"}), (redis_memory_below, {"percent": 90}),
                       (redis_replicas_at_least, {"count": 1})):
        other = check(run, func, redis="down", **args)
        assert other.outcome is Outcome.ERROR and other.observed.startswith("could not connect to redis down"), other


def test_a_down_server_is_an_error_even_before_any_ping(run: Session) -> None:
    other = check(run, redis_role, redis="down", role="master")
    assert other.outcome is Outcome.ERROR and "could not connect to redis down" in other.observed, other


def test_rejected_credentials_are_an_error(run: Session) -> None:
    result = check(run, redis_answers_ping, redis="badpass", ms=5000)
    assert result.outcome is Outcome.ERROR and "authentication failed" in result.observed, result
    assert check(run, redis_role, redis="badpass", role="master").outcome is Outcome.ERROR


def test_the_role_of_master_and_replica(run: Session) -> None:
    master = check(run, redis_role, redis="cache", role="master")
    assert master.outcome is Outcome.PASS and master.observed == "role master"
    replica = check(run, redis_role, redis="replica", role="replica")
    assert replica.outcome is Outcome.PASS and "(link up)" in replica.observed, replica
    wrong = check(run, redis_role, redis="replica", role="master")
    assert wrong.outcome is Outcome.FAIL and wrong.observed.startswith("role replica of 127.0.0.1:")
    assert "failover" in wrong.hint
    assert "-n 2" in replica.manual_command  # the database of the URL


def test_memory_against_maxmemory(run: Session, redis_master: RedisServer) -> None:  # noqa: F811
    result = check(run, redis_memory_below, redis="cache", percent=90)
    assert result.outcome is Outcome.PASS and "of 64.0 MiB" in result.observed, result
    client = redis_master.client()
    used = int(client.info("memory")["used_memory"])
    try:
        client.config_set("maxmemory", str(used * 2))  # about half used
        full = check(run, redis_memory_below, redis="cache", percent=10)
        assert full.outcome is Outcome.FAIL and full.evidence["maxmemory"] == used * 2, full
        client.config_set("maxmemory", "0")
        unlimited = check(run, redis_memory_below, redis="cache", percent=90)
        assert unlimited.outcome is Outcome.FAIL and "no maxmemory set" in unlimited.observed, unlimited
    finally:
        client.config_set("maxmemory", str(64 * 1024 * 1024))


def test_connected_replicas(run: Session) -> None:
    result = check(run, redis_replicas_at_least, redis="cache", count=1)
    assert result.outcome is Outcome.PASS and result.evidence["connected_replicas"] == 1, result
    assert "online" in result.observed
    more = check(run, redis_replicas_at_least, redis="cache", count=2)
    assert more.outcome is Outcome.FAIL
    on_replica = check(run, redis_replicas_at_least, redis="replica", count=1)
    assert on_replica.outcome is Outcome.FAIL and "(this server is a replica)" in on_replica.observed


def test_only_read_commands_are_ever_sent(run: Session) -> None:
    target = run.targets["redis"]
    settings = target.server("cache")
    with pytest.raises(CouldNotCheck) as refused:
        target._send(target.client(settings), settings, "FLUSHALL")
    assert refused.value.fault.kind is FaultKind.READ_ONLY and "FLUSHALL is not a read command" in str(refused.value)


@pytest.mark.parametrize(("table", "message"), [
    ('cache = "http://127.0.0.1:6379"', "url must be redis://"),
    ('cache = { url = "redis://h:6379/x" }', "must be a number"),
    ('cache = { url = "redis://h:6379/0", timeout = 5 }', "unknown key 'timeout'"),
    ('cache = { url = "redis://h:6379/0", timeout_s = 0 }', "timeout_s must be"),
])
def test_bad_redis_settings_are_refused(tmp_path: Path, table: str, message: str) -> None:
    path = tmp_path / "runbooks.toml"
    path.write_text(f"[environments.test]\n{AWS}[environments.test.redis]\n{table}\n")
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_the_url_password_appears_in_no_output_of_a_run(tmp_path: Path, redis_master: RedisServer,  # noqa: F811
                                                         capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNBOOKS_TEST_REDIS_PASSWORD", PASSWORD)
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "cache.feature").write_text(textwrap.dedent("""\
        @owner:test @severity:high
        Feature: The cache

          @requires:redis
          Scenario: Reads
            Then the Redis "cache" answers PING within 5000 ms
            And the Redis "env" role is "replica"
            And the Redis "down" answers PING within 1000 ms
            And the Redis "down" uses less than 80% of its maxmemory
        """))
    (tmp_path / "runbooks.toml").write_text(
        f"[environments.ci]\n{AWS}[environments.ci.redis]\n"
        f'cache = "{redis_master.url()}"\n'
        f'env = "redis://:${{RUNBOOKS_TEST_REDIS_PASSWORD}}@127.0.0.1:{redis_master.port}/0"\n'
        f'down = "redis://runbooks:{PASSWORD}@127.0.0.1:{free_port()}/0"\n')
    reports = tmp_path / "reports"
    code = cli_main(["verify", "--config", str(tmp_path / "runbooks.toml"), "--report-dir", str(reports)])
    captured = capsys.readouterr()
    assert code == 1, captured.out + captured.err
    results = json.loads((reports / "results.json").read_text())["results"]
    assert [r["outcome"] for r in results] == ["pass", "fail", "fail", "error"], results
    outputs = {"stdout": captured.out, "stderr": captured.err, "results.json": (reports / "results.json").read_text(),
               "junit.xml": (reports / "junit.xml").read_text()}
    for name, text in outputs.items():
        assert PASSWORD not in text, f"the password leaked into {name}"
