"""Docker containers on the environment's engine: running, healthy, image, restart count.

The engine is ``[environments.X.docker] host`` (default: ``DOCKER_HOST``, as the docker CLI does); a
step names a container the environment declares under ``containers``, which may map it to the real
container name. Every check reads ``docker inspect``; nothing is changed on the engine.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from runbooks.sdk import CheckContext, CheckResult, Container, CouldNotCheck, Finding, check

from ._shared import excerpt

TITLE = "Containers (Docker)"  # its heading in the step catalogue
CATALOG_ORDER = 100


def _inspect(ctx: CheckContext, target: Container, expected: str, manual: str) -> dict[str, Any]:
    """``docker inspect`` of the container: FAIL when it does not exist, ERROR when the engine cannot
    answer."""
    try:
        attrs = ctx.docker.inspect_container(target)
    except CouldNotCheck as exc:
        raise Finding(
            CheckResult.errored(
                target.resource, exc.fault.reason, exc.fault.hint, expected=expected, manual_command=manual
            )
        ) from None
    if attrs is None:
        raise Finding(
            CheckResult.failed(
                target.resource,
                expected,
                "no such container",
                _missing_hint(ctx, target),
                manual_command=manual,
            )
        )
    return attrs


def _missing_hint(ctx: CheckContext, target: Container) -> str:
    hint = (
        f"deploy the container {target.real!r} on this engine, or correct its name under "
        f"[environments.{ctx.env.name}.docker] containers"
    )
    try:
        names = ctx.docker.container_names(target)
    except CouldNotCheck:
        return hint
    close = difflib.get_close_matches(target.real, names, n=3, cutoff=0.5)
    return hint + ("; similar containers on the engine: " + ", ".join(close) if close else "")


def _when(timestamp: str) -> str:
    """``2026-11-21T23:34:16.313633456Z`` -> ``2026-11-21 23:34:16Z``."""
    match = re.match(r"(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)", timestamp or "")
    return f"{match.group(1)} {match.group(2)}Z" if match else timestamp


def _state(attrs: dict[str, Any]) -> str:
    """The container's state as one phrase: ``running since ...``, ``exited with code 1 at ...``."""
    state = attrs.get("State", {})
    status = state.get("Status", "unknown")
    if status == "running":
        return f"running since {_when(state.get('StartedAt', ''))}"
    if status == "exited":
        phrase = f"exited with code {state.get('ExitCode')} at {_when(state.get('FinishedAt', ''))}"
        if state.get("OOMKilled"):
            phrase += " (killed: out of memory)"
        if state.get("Error"):
            phrase += f" (error: {excerpt(state['Error'])})"
        return phrase
    if status == "restarting":
        restarts = attrs.get("RestartCount", 0)
        return f"restarting (last exit code {state.get('ExitCode')}, {restarts} restarts so far)"
    return status


def _not_running_hint(target: Container, attrs: dict[str, Any]) -> str:
    status = attrs.get("State", {}).get("Status")
    logs = target.command(f"logs --tail 50 {target.real}")
    if status == "paused":
        return f"it is paused: {target.command('unpause ' + target.real)}"
    if status == "restarting":
        return f"it is crash-looping: find why in {logs}"
    if status == "created":
        return f"it was created but never started: {target.command('start ' + target.real)} (or redeploy)"
    return (
        f"find why it stopped in {logs}, then start it ({target.command('start ' + target.real)}) or redeploy"
    )


@check(
    'the container "{container}" is running',
    manual="docker inspect -f '{{{{.State.Status}}}}' {container}",
)
def container_running(ctx: CheckContext, container: str) -> CheckResult:
    """The container exists on the environment's Docker engine and its state is running (not exited,
    restarting, paused or only created)."""
    target = ctx.docker.container(container)
    manual = target.inspect("{{.State.Status}}")
    expected = "running"
    attrs = _inspect(ctx, target, expected, manual)
    observed = _state(attrs)
    if attrs.get("State", {}).get("Status") == "running":
        return CheckResult.passed(target.resource, expected, observed, manual_command=manual)
    return CheckResult.failed(
        target.resource, expected, observed, _not_running_hint(target, attrs), manual_command=manual
    )


def _last_probe(health: dict[str, Any]) -> str:
    log = health.get("Log") or []
    if not log:
        return "no probe has finished yet"
    last = log[-1]
    output = excerpt(last.get("Output", ""))
    return f"last probe exit {last.get('ExitCode')}" + (f": {output}" if output else " (no output)")


@check(
    'the container "{container}" is healthy',
    manual="docker inspect -f '{{{{json .State.Health}}}}' {container}",
)
def container_healthy(ctx: CheckContext, container: str) -> CheckResult:
    """The container is running and its HEALTHCHECK reports healthy. FAIL when it has no health check
    (nothing to trust), while it is still starting, and when unhealthy; the last probe's output is shown."""
    target = ctx.docker.container(container)
    manual = target.inspect("{{json .State.Health}}")
    expected = "health: healthy"
    attrs = _inspect(ctx, target, expected, manual)
    state = attrs.get("State", {})
    if state.get("Status") != "running":
        return CheckResult.failed(
            target.resource,
            expected,
            f"not running: {_state(attrs)}",
            _not_running_hint(target, attrs),
            manual_command=manual,
        )
    health = state.get("Health")
    test = (attrs.get("Config", {}).get("Healthcheck") or {}).get("Test") or []
    if not health or test == ["NONE"]:
        return CheckResult.failed(
            target.resource,
            expected,
            "has no health check" + (" (disabled)" if test == ["NONE"] else ""),
            "add a HEALTHCHECK to the image (or healthcheck: to its compose service) so the engine can tell "
            "whether it serves",
            manual_command=manual,
        )
    status = health.get("Status", "unknown")
    probe = _last_probe(health)
    if status == "healthy":
        return CheckResult.passed(
            target.resource, expected, f"health: healthy ({probe})", manual_command=manual
        )
    if status == "starting":
        return CheckResult.failed(
            target.resource,
            expected,
            f"health: starting; {probe}",
            "the health check has not passed yet: re-run once its start period is over; "
            "if it stays starting, "
            f"look at the probe output above and {target.command('logs --tail 50 ' + target.real)}",
            manual_command=manual,
        )
    streak = health.get("FailingStreak", 0)
    return CheckResult.failed(
        target.resource,
        expected,
        f"health: {status} after {streak} failing probe(s) in a row; {probe}",
        "the container runs but fails its own health check: read the probe output above and "
        f"{target.command('logs --tail 50 ' + target.real)}; restart or roll back if it does not recover",
        manual_command=manual,
    )


def _reference(ref: str) -> str:
    """An image reference in the short form the engine shows in RepoTags (``nginx`` -> ``nginx:latest``)."""
    name, at, digest = ref.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = ""
    if ":" in last:
        name, _, tag = name.rpartition(":")
    for prefix in ("docker.io/", "index.docker.io/"):
        if name.startswith(prefix):
            name = name[len(prefix) :]
    if name.startswith("library/") and name.count("/") == 1:
        name = name[len("library/") :]
    if at:
        return f"{name}@{digest}"
    return f"{name}:{tag or 'latest'}"


def _names_image(ref: str, image_id: str, tags: list[str], digests: list[str]) -> bool:
    """Whether ``ref`` (tag, digest reference or image id) names exactly this image."""
    hex_id = image_id.partition(":")[2] or image_id
    wanted = ref.partition("sha256:")[2] if ref.startswith("sha256:") else ref
    if re.fullmatch(r"[0-9a-f]{12,64}", wanted) and hex_id.startswith(wanted):
        return True
    normal = _reference(ref)
    if "@" in normal:
        return normal in {_reference(d) for d in digests}
    return normal in {_reference(t) for t in tags}


def _short_id(image_id: str) -> str:
    return "sha256:" + (image_id.partition(":")[2] or image_id)[:12]


@check(
    'the container "{container}" runs the image "{image}"',
    manual="docker inspect -f '{{{{.Config.Image}}}} {{{{.Image}}}}' {container}",
)
def container_runs_image(ctx: CheckContext, container: str, image: str) -> CheckResult:
    """The image the container runs is the one named: a tag (``api:1.4.2``, ``nginx`` = ``nginx:latest``),
    a digest reference (``repo@sha256:...``) or an image id. Judged on the image the container really
    runs: a container created from a tag that has since moved to a newer image FAILs (recreate it)."""
    target = ctx.docker.container(container)
    manual = target.inspect("{{.Config.Image}} {{.Image}}")
    expected = f"image {image}"
    attrs = _inspect(ctx, target, expected, manual)
    configured = attrs.get("Config", {}).get("Image", "")
    image_id = attrs.get("Image", "")
    try:
        # None: the engine keeps a running container's image; gone only in odd states
        details = ctx.docker.inspect_image(target, image_id) or {}
    except CouldNotCheck as exc:
        return CheckResult.errored(target.resource, exc.fault.reason, expected=expected, manual_command=manual)
    tags = list(details.get("RepoTags") or [])
    digests = list(details.get("RepoDigests") or [])
    runs = f"{_short_id(image_id)}, " + (f"tags: {', '.join(tags)}" if tags else "untagged")
    if _names_image(image, image_id, tags, digests):
        return CheckResult.passed(
            target.resource, expected, f"image {configured} ({runs})", manual_command=manual
        )
    if _reference(image) == _reference(configured):
        return CheckResult.failed(
            target.resource,
            expected,
            f"created from {configured}, which no longer names the image it runs ({runs})",
            f"the tag moved after the container was created: recreate the container from {image} "
            "(redeploy it, e.g. docker compose up -d)",
            manual_command=manual,
        )
    return CheckResult.failed(
        target.resource,
        expected,
        f"image {configured} ({runs})",
        f"deploy {image} to this container (redeploy the service), or correct the expected image",
        manual_command=manual,
    )


@check(
    'the container "{container}" has restarted at most {count:d} times',
    manual="docker inspect -f '{{{{.RestartCount}}}} {{{{.State.StartedAt}}}}' {container}",
)
def container_restarted_at_most(ctx: CheckContext, container: str, count: int) -> CheckResult:
    """The engine restarted the container (its restart policy, after a crash) no more than ``count``
    times since it was last started by hand. The engine's RestartCount counts only its own restarts
    and goes back to 0 on a manual ``docker start``/``docker restart`` (or a redeploy), so it covers
    the time since then, not the container's whole life; the observed text gives State.StartedAt,
    the last start of either kind."""
    target = ctx.docker.container(container)
    manual = target.inspect("{{.RestartCount}} {{.State.StartedAt}}")
    expected = f"at most {count} restart(s)"
    attrs = _inspect(ctx, target, expected, manual)
    restarts = int(attrs.get("RestartCount", 0))
    started = attrs.get("State", {}).get("StartedAt") or ""
    never = not started or started.startswith("0001-")  # the engine's zero time: never started
    observed = f"restarted {restarts} time(s), last started {'never' if never else _when(started)}"
    if restarts <= count:
        return CheckResult.passed(target.resource, expected, observed, manual_command=manual)
    policy = attrs.get("HostConfig", {}).get("RestartPolicy") or {}
    policy_text = policy.get("Name") or "no"
    if policy.get("MaximumRetryCount"):
        policy_text += f":{policy['MaximumRetryCount']}"
    return CheckResult.failed(
        target.resource,
        expected,
        f"{observed} (restart policy {policy_text}; now {_state(attrs)})",
        f"it keeps crashing: find why in {target.command('logs --tail 100 ' + target.real)} "
        "(the exit code above: 137 = killed, e.g. out of memory; 1 = the program failed)",
        manual_command=manual,
    )
