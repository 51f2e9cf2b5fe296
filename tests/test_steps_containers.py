"""Container checks against a real Docker engine the tests start on a private socket.

One engine, three tiny images (FROM scratch + static busybox) and a fleet of containers are shared by
the whole module; every check only reads, so the tests cannot disturb each other.
"""

from __future__ import annotations

import json
import socket
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from runbooks.cli import main
from runbooks.config import ConfigError, load_config
from runbooks.result import CheckResult, Outcome
from runbooks.session import Session
from runbooks.steps.containers import (
    container_healthy,
    container_restarted_at_most,
    container_running,
    container_runs_image,
)
from tests.conftest import evaluate, make_run
from tests.support.dockerd import Dockerd, build_image, running_dockerd, wait_for

SECOND = 1_000_000_000  # the engine's health-check durations are in nanoseconds
BASE = """\
FROM scratch
ADD busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
CMD ["/bin/sleep", "3600"]
"""
HEALTHY = """\
FROM rb-base:1
HEALTHCHECK --interval=1s --timeout=3s --retries=1 CMD ["/bin/true"]
"""
UNHEALTHY = """\
FROM rb-base:1
HEALTHCHECK --interval=1s --timeout=3s --retries=1 CMD ["/bin/sh", "-c", "echo database unreachable; exit 1"]
"""
DECLARED = ["api", "worker", "plain", "warming", "stopped", "crashy", "moved", "ghost"]


@pytest.fixture(scope="module")
def engine() -> Iterator[Dockerd]:
    with running_dockerd() as started:
        yield started


@pytest.fixture(scope="module")
def fleet(engine: Dockerd) -> Iterator[dict[str, Any]]:
    """Images and containers in known states, settled (bounded waits) before any test looks at them."""
    client = docker.DockerClient(base_url=engine.url, timeout=30)
    ids = {
        "base": build_image(client, "rb-base:1", BASE, with_busybox=True),
        "healthy": build_image(client, "rb-healthy:1", HEALTHY),
        "unhealthy": build_image(client, "rb-unhealthy:1", UNHEALTHY),
    }
    client.images.get("rb-healthy:1").tag("registry.example.com/acme/api", "1.4.2")
    client.images.get("rb-base:1").tag("rb-app", "moving")

    def run(image: str, name: str, **kw: Any) -> Any:
        return client.containers.run(image, name=name, detach=True, network_mode="none", **kw)

    run("rb-healthy:1", "api")
    run("rb-unhealthy:1", "worker")
    run("rb-base:1", "plain")
    run(
        "rb-base:1",
        "warming",
        healthcheck={
            "test": ["CMD-SHELL", "echo warming up caches; exit 1"],
            "interval": SECOND,
            "retries": 3,
            "start_period": 3600 * SECOND,  # failures do not count yet
        },
    )
    run("rb-base:1", "stopped", command=["sh", "-c", "exit 3"])
    run(
        "rb-base:1",
        "crashy",
        command=["sh", "-c", "echo boom; exit 1"],
        restart_policy={"Name": "on-failure", "MaximumRetryCount": 3},
    )
    run("rb-app:moving", "moved")
    client.images.get("rb-healthy:1").tag("rb-app", "moving")  # the tag moves on; "moved" keeps the old image

    def attrs(name: str) -> dict[str, Any]:
        return client.api.inspect_container(name)  # type: ignore[no-any-return]

    def health(name: str) -> dict[str, Any]:
        return attrs(name)["State"].get("Health") or {}

    wait_for(lambda: health("api").get("Status") == "healthy", 30, "api to become healthy")
    wait_for(lambda: health("worker").get("Status") == "unhealthy", 30, "worker to become unhealthy")
    wait_for(lambda: bool(health("warming").get("Log")), 30, "a finished probe on warming")
    wait_for(lambda: attrs("stopped")["State"]["Status"] == "exited", 30, "stopped to exit")
    wait_for(lambda: attrs("crashy")["RestartCount"] >= 2, 30, "crashy to be restarted twice")
    yield {"client": client, "ids": ids, "url": engine.url}
    for container in client.containers.list(all=True):
        container.remove(force=True)  # SIGKILL now; a stopping engine would wait 10 s for each PID 1
    client.close()


def docker_env(host: str | None, containers: str = json.dumps(DECLARED)) -> str:
    host_line = f'host = "{host}"\n' if host else ""
    return f"[environments.test.docker]\n{host_line}containers = {containers}\n"


@pytest.fixture(scope="module")
def run(fleet: dict[str, Any]) -> Iterator[Session]:
    with tempfile.TemporaryDirectory() as directory:
        started = make_run(Path(directory), docker_env(fleet["url"]))
        yield started
        started.stop()


def check(run: Session, func: Any, **args: Any) -> CheckResult:
    return evaluate(run, func, **args)


# running ------------------------------------------------------------------------------------------
def test_running_passes_for_a_running_container(run: Session, fleet: dict[str, Any]) -> None:
    result = check(run, container_running, container="api")
    assert result.outcome is Outcome.PASS, result
    assert result.resource == f"container api ({fleet['url']})"
    assert result.expected == "running"
    assert result.observed.startswith("running since 20")
    assert result.manual_command == f"docker -H {fleet['url']} inspect -f '{{{{.State.Status}}}}' api"


def test_running_fails_for_an_exited_container_with_its_exit_code(run: Session) -> None:
    result = check(run, container_running, container="stopped")
    assert result.outcome is Outcome.FAIL, result
    assert result.observed.startswith("exited with code 3 at 20"), result.observed
    assert "logs --tail 50 stopped" in result.hint


def test_missing_container_fails_with_no_such_container(run: Session) -> None:
    for func, extra in (
        (container_running, {}),
        (container_healthy, {}),
        (container_runs_image, {"image": "rb-base:1"}),
        (container_restarted_at_most, {"count": 0}),
    ):
        result = check(run, func, container="ghost", **extra)
        assert result.outcome is Outcome.FAIL, (func.__name__, result)
        assert result.observed == "no such container"
        assert "deploy the container 'ghost'" in result.hint


def test_missing_container_hint_names_similar_containers(fleet: dict[str, Any], tmp_path: Path) -> None:
    run = make_run(tmp_path, docker_env(fleet["url"], '{ api = "apii" }'))
    try:
        result = check(run, container_running, container="api")
    finally:
        run.stop()
    assert result.outcome is Outcome.FAIL
    assert result.resource == f"container api [apii] ({fleet['url']})"
    assert result.observed == "no such container"
    assert result.hint.endswith("similar containers on the engine: api")


def test_declared_alias_checks_the_real_container(fleet: dict[str, Any], tmp_path: Path) -> None:
    run = make_run(tmp_path, docker_env(fleet["url"], '{ frontend = "api" }'))
    try:
        result = check(run, container_healthy, container="frontend")
    finally:
        run.stop()
    assert result.outcome is Outcome.PASS, result
    assert result.resource == f"container frontend [api] ({fleet['url']})"
    assert result.manual_command.endswith("inspect -f '{{json .State.Health}}' api")


def test_default_engine_comes_from_docker_host(
    fleet: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", fleet["url"])
    run = make_run(tmp_path, docker_env(None))
    try:
        result = check(run, container_running, container="api")
    finally:
        run.stop()
    assert result.outcome is Outcome.PASS, result
    assert result.resource == f"container api ({fleet['url']})"
    assert (
        result.manual_command == "docker inspect -f '{{.State.Status}}' api"
    )  # DOCKER_HOST already says where


# healthy ------------------------------------------------------------------------------------------
def test_healthy_passes_when_the_health_check_passes(run: Session) -> None:
    result = check(run, container_healthy, container="api")
    assert result.outcome is Outcome.PASS, result
    assert (result.expected, result.observed) == (
        "health: healthy",
        "health: healthy (last probe exit 0 (no output))",
    )


def test_healthy_fails_when_unhealthy_with_the_probe_output(run: Session) -> None:
    result = check(run, container_healthy, container="worker")
    assert result.outcome is Outcome.FAIL, result
    assert result.observed.startswith("health: unhealthy after ")
    assert result.observed.endswith("last probe exit 1: database unreachable"), result.observed


def test_healthy_fails_without_a_health_check(run: Session) -> None:
    result = check(run, container_healthy, container="plain")
    assert result.outcome is Outcome.FAIL, result
    assert result.observed == "has no health check"
    assert "HEALTHCHECK" in result.hint


def test_healthy_fails_while_starting_with_the_last_probe(run: Session) -> None:
    result = check(run, container_healthy, container="warming")
    assert result.outcome is Outcome.FAIL, result
    assert result.observed == "health: starting; last probe exit 1: warming up caches"


def test_healthy_fails_for_a_stopped_container(run: Session) -> None:
    result = check(run, container_healthy, container="stopped")
    assert result.outcome is Outcome.FAIL, result
    assert result.observed.startswith("not running: exited with code 3")


# image --------------------------------------------------------------------------------------------
def test_image_passes_for_the_tag_it_was_started_from(run: Session, fleet: dict[str, Any]) -> None:
    result = check(run, container_runs_image, container="api", image="rb-healthy:1")
    assert result.outcome is Outcome.PASS, result
    short = fleet["ids"]["healthy"].split(":")[1][:12]
    assert result.observed.startswith(f"image rb-healthy:1 (sha256:{short}, tags: ")
    assert "registry.example.com/acme/api:1.4.2" in result.observed


@pytest.mark.parametrize("image", ["registry.example.com/acme/api:1.4.2", "ID12", "ID64"])
def test_image_passes_for_another_tag_or_the_id_of_the_same_image(
    run: Session, fleet: dict[str, Any], image: str
) -> None:
    hex_id = fleet["ids"]["healthy"].split(":")[1]
    image = {"ID12": hex_id[:12], "ID64": f"sha256:{hex_id}"}.get(image, image)
    result = check(run, container_runs_image, container="api", image=image)
    assert result.outcome is Outcome.PASS, result
    assert result.expected == f"image {image}"


def test_image_fails_for_another_image_and_says_what_runs(run: Session, fleet: dict[str, Any]) -> None:
    result = check(run, container_runs_image, container="worker", image="rb-healthy:1")
    assert result.outcome is Outcome.FAIL, result
    short = fleet["ids"]["unhealthy"].split(":")[1][:12]
    assert result.observed == f"image rb-unhealthy:1 (sha256:{short}, tags: rb-unhealthy:1)"
    assert result.hint.startswith("deploy rb-healthy:1")


def test_image_without_tag_means_latest(run: Session) -> None:
    result = check(run, container_runs_image, container="api", image="rb-healthy")
    assert result.outcome is Outcome.FAIL, result  # rb-healthy:latest is not what runs
    assert result.observed.startswith("image rb-healthy:1 ")


def test_image_fails_when_the_tag_moved_after_the_container_was_created(
    run: Session, fleet: dict[str, Any]
) -> None:
    result = check(run, container_runs_image, container="moved", image="rb-app:moving")
    assert result.outcome is Outcome.FAIL, result
    short = fleet["ids"]["base"].split(":")[1][:12]
    assert result.observed == (
        "created from rb-app:moving, which no longer names the image it runs "
        f"(sha256:{short}, tags: rb-base:1)"
    )
    assert "recreate the container" in result.hint


# restarts -----------------------------------------------------------------------------------------
def test_restart_count_fails_above_the_limit_and_passes_within_it(run: Session) -> None:
    failed = check(run, container_restarted_at_most, container="crashy", count=0)
    assert failed.outcome is Outcome.FAIL, failed
    assert failed.expected == "at most 0 restart(s)"
    assert failed.observed.startswith("restarted ")
    assert "(restart policy on-failure:3; now " in failed.observed
    restarts = int(failed.observed.split()[1])
    assert 2 <= restarts <= 3
    passed = check(run, container_restarted_at_most, container="crashy", count=10)
    assert passed.outcome is Outcome.PASS, passed
    assert passed.observed.startswith("restarted ")


def test_restart_count_passes_at_zero_for_a_steady_container(run: Session, fleet: dict[str, Any]) -> None:
    result = check(run, container_restarted_at_most, container="api", count=0)
    # the count only covers the time since the last start, so the observed text says when that was
    started = fleet["client"].api.inspect_container("api")["State"]["StartedAt"]  # 2026-...T10:00:00.123Z
    when = f"{started[:10]} {started[11:19]}Z"
    assert (result.outcome, result.observed) == (Outcome.PASS, f"restarted 0 time(s), last started {when}")
    assert result.manual_command.endswith("inspect -f '{{.RestartCount}} {{.State.StartedAt}}' api")


# engine cannot answer -> ERROR, never PASS/FAIL ---------------------------------------------------
def test_no_socket_is_an_error(tmp_path: Path) -> None:
    url = f"unix://{tmp_path}/none/docker.sock"
    run = make_run(tmp_path, docker_env(url))
    try:
        results = [
            check(run, container_running, container="api"),
            check(run, container_restarted_at_most, container="api", count=1),
        ]
    finally:
        run.stop()
    for result in results:
        assert result.outcome is Outcome.ERROR, result
        assert result.resource == f"container api ({url})"
        assert (
            result.observed
            == f"cannot reach the Docker engine at {url}: no socket there (engine stopped or wrong path)"
        )
        assert "docker.host" in result.hint


def test_socket_without_engine_is_an_error() -> None:
    with tempfile.TemporaryDirectory(prefix="rbs.", dir="/tmp") as directory:
        path = f"{directory}/docker.sock"
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
            dead.bind(path)  # the file exists, but nobody listens: connect is refused
        run = make_run(Path(directory), docker_env(f"unix://{path}"))
        try:
            result = check(run, container_healthy, container="api")
        finally:
            run.stop()
    assert result.outcome is Outcome.ERROR, result
    assert result.observed.endswith("connection refused (no engine listening)"), result.observed


def test_engine_stopped_during_the_run_is_an_error(engine: Dockerd, tmp_path: Path) -> None:
    second = Dockerd()
    try:
        second.start()
        run = make_run(tmp_path, docker_env(second.url))
        try:
            before = check(run, container_running, container="api")  # client is made and kept by the run
            second.stop()
            after = check(run, container_running, container="api")
        finally:
            run.stop()
    finally:
        second.cleanup()
    assert (before.outcome, before.observed) == (Outcome.FAIL, "no such container")
    assert after.outcome is Outcome.ERROR, after
    # a stopped engine removes its socket; the run's kept client must not turn that into PASS/FAIL
    assert after.observed == (
        f"cannot reach the Docker engine at {second.url}: no socket there (engine stopped or wrong path)"
    )


def test_undeclared_container_at_run_time_is_an_error(run: Session) -> None:
    result = check(run, container_running, container="apii")
    assert result.outcome is Outcome.ERROR
    assert result.observed == "container 'apii' is not defined by environment 'test'; did you mean 'api'?"


# configuration ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        (
            '[environments.t.docker]\nhots = "unix:///x"\n',
            2,
            "unknown docker key 'hots'; did you mean 'host'?",
        ),
        (
            '[environments.t.docker]\nhost = "/var/run/docker.sock"\n',
            2,
            "docker.host must be a URL starting with",
        ),
        (
            '[environments.t.docker]\ncontainers = "api"\n',
            2,
            "docker.containers must be a list of names or a table",
        ),
        (
            '[environments.t.docker]\ncontainers = ["api", "bad name"]\n',
            2,
            "container 'bad name' is not a valid",
        ),
        (
            '[environments.t.docker.containers]\napi = "ok"\nweb = 3\n',
            3,
            "container 3 is not a valid container name",
        ),
    ],
)
def test_docker_table_is_validated_with_file_and_line(
    tmp_path: Path, body: str, line: int, message: str
) -> None:
    path = tmp_path / "runbooks.toml"
    path.write_text("[environments.t]\n" + body, encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert raised.value.line == line + 1, str(raised.value)
    assert message in raised.value.message


def test_docker_table_forms(tmp_path: Path) -> None:
    path = tmp_path / "runbooks.toml"
    path.write_text(
        textwrap.dedent("""\
        [environments.a]
        docker = { host = "tcp://10.0.0.5:2376", containers = ["api", "db"] }
        [environments.b.docker.containers]
        api = "acme_api_1"
        """),
        encoding="utf-8",
    )
    config = load_config(path)
    assert config.environments["a"].docker.host == "tcp://10.0.0.5:2376"
    assert config.environments["a"].containers == {"api": "api", "db": "db"}
    assert config.environments["b"].containers == {"api": "acme_api_1"}


# through the CLI ----------------------------------------------------------------------------------
FEATURE = """\
Feature: Containers after a deployment
  Scenario: The API container is up
    Then the container "api" is running
    And the container "api" is healthy
    And the container "api" runs the image "rb-healthy:1"
    And the container "api" has restarted at most 0 times

  Scenario: The worker is degraded
    Then the container "worker" is healthy
    And the container "crashy" has restarted at most 0 times
"""


def write_project(directory: Path, url: str, feature: str) -> tuple[Path, Path]:
    config = directory / "runbooks.toml"
    config.write_text(f'[environments.test]\ndescription = "containers"\n{docker_env(url)}', encoding="utf-8")
    (directory / "features").mkdir()
    path = directory / "features" / "containers.feature"
    path.write_text(feature, encoding="utf-8")
    return config, path


def test_cli_runs_a_container_runbook(
    fleet: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, feature = write_project(tmp_path, fleet["url"], FEATURE)
    reports = tmp_path / "reports"
    code = main(
        ["verify", str(feature), "--config", str(config), "--env", "test", "--report-dir", str(reports)]
    )
    out, err = capsys.readouterr()
    assert code == 1, out + err
    steps = json.loads((reports / "results.json").read_text())["results"]
    outcomes = [(s["step"], s["outcome"]) for s in steps]
    assert outcomes == [
        ('the container "api" is running', "pass"),
        ('the container "api" is healthy', "pass"),
        ('the container "api" runs the image "rb-healthy:1"', "pass"),
        ('the container "api" has restarted at most 0 times', "pass"),
        ('the container "worker" is healthy', "fail"),
        ('the container "crashy" has restarted at most 0 times', "fail"),
    ]
    worker = steps[4]
    assert worker["resource"] == f"container worker ({fleet['url']})"
    assert worker["observed"].endswith("database unreachable")
    assert "-> exit 1" in out


def test_preflight_refuses_an_undeclared_container(
    fleet: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    feature = FEATURE.replace('And the container "api" is healthy', 'And the container "apii" is healthy')
    config, path = write_project(tmp_path, fleet["url"], feature)
    code = main(
        [
            "verify",
            str(path),
            "--config",
            str(config),
            "--env",
            "test",
            "--report-dir",
            str(tmp_path / "reports"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.splitlines() == [
        "runbooks: error: features/containers.feature:4: container 'apii' is not defined by environment 'test'; "
        "did you mean 'api'? (nothing was run)"
    ]
    assert not (tmp_path / "reports").exists()  # nothing ran
