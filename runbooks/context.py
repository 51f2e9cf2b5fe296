"""What a check function sees: the run's targets, its per-run resources and the scenario's state."""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .faults import Fault, classify
from .result import CheckResult

if TYPE_CHECKING:
    from .config import Environment, ServiceSettings
    from .resources import Resources
    from .targets.alertmanager import AlertmanagerTarget
    from .targets.aws import AwsAccount, AwsTarget, RegionView
    from .targets.docker import DockerTarget
    from .targets.hosts import HostsTarget
    from .targets.http import HttpTarget
    from .targets.postgres import PostgresTarget
    from .targets.prometheus import PrometheusTarget
    from .targets.redis import RedisTarget


# The step whose check is running in this thread (the session sets it): lets observers such as the
# permission meta-test attribute an AWS call to the step that made it.
CURRENT_STEP: contextvars.ContextVar[Any] = contextvars.ContextVar("runbooks_current_step", default=None)

# Set while a check is evaluated ahead of its turn (runbooks.read_ahead): only memoised AWS reads may be made.
AHEAD: contextvars.ContextVar[bool] = contextvars.ContextVar("runbooks_read_ahead", default=False)


class NotReadAhead(Exception):
    """A check evaluated ahead asked for something other than a memoised AWS read: its read-ahead ends here
    (the check runs in its turn as always)."""


def refuse_ahead(what: str) -> None:
    if AHEAD.get():
        raise NotReadAhead(what)


class Finding(Exception):
    """Raised inside a check to end it with ``result`` (e.g. the bucket does not exist at all)."""

    def __init__(self, result: CheckResult) -> None:
        super().__init__(result.observed)
        self.result = result


@dataclass
class ScenarioState:
    """What a scenario's steps share (e.g. the last HTTP response), reset for every scenario."""

    values: dict[str, Any] = field(default_factory=dict)


class CheckContext:
    """What a check function may use. Checks never build their own clients: the targets hold the
    read-only guard, the timeouts and the per-run memo."""

    def __init__(self, env: Environment, targets: dict[str, Any], resources: Resources,
                 scenario: ScenarioState | None = None, region: str | None = None,
                 account: AwsAccount | None = None) -> None:
        self.env = env
        self.scenario = scenario if scenario is not None else ScenarioState()
        self._targets = targets
        self._resources = resources
        self.region = region
        self.account = account  # the scenario's account (``@all-accounts``); None: the run's own credentials

    @property
    def aws(self) -> AwsTarget | RegionView:
        """The environment's AWS target, in the scenario's account (``@all-accounts``: that account's role)
        and region (``@region:``/``@all-regions``)."""
        target = self._targets["aws"]
        if self.account is not None:
            target = target.account(self.account)
        return target.in_region(self.region)  # type: ignore[no-any-return]

    @property
    def http(self) -> HttpTarget:
        return self._other("http")  # type: ignore[no-any-return]

    @property
    def hosts(self) -> HostsTarget:
        return self._other("hosts")  # type: ignore[no-any-return]

    @property
    def docker(self) -> DockerTarget:
        return self._other("docker")  # type: ignore[no-any-return]

    @property
    def postgres(self) -> PostgresTarget:
        return self._other("postgres")  # type: ignore[no-any-return]

    @property
    def redis(self) -> RedisTarget:
        return self._other("redis")  # type: ignore[no-any-return]

    @property
    def prometheus(self) -> PrometheusTarget:
        return self._other("prometheus")  # type: ignore[no-any-return]

    @property
    def alertmanager(self) -> AlertmanagerTarget:
        return self._other("alertmanager")  # type: ignore[no-any-return]

    def target(self, name: str) -> Any:
        """A target by its registered name (for targets added by packages)."""
        return self._targets["aws"] if name == "aws" else self._other(name)

    def _other(self, name: str) -> Any:
        refuse_ahead(f"the {name} target")  # its reads are not memoised: done ahead, they would be done twice
        return self._targets[name]

    def service(self, name: str) -> ServiceSettings:
        return self.http.service(name)

    def resource(self, key: Hashable, factory: Callable[[], Any], close: Callable[[Any], None] | None = None) -> Any:
        """A connection or client shared by every step of the run, created on first use, closed at its end."""
        refuse_ahead("a shared resource")
        return self._resources.get(key, factory, close)

    def classify(self, exc: BaseException) -> Fault:
        """Why ``exc`` means "could not check", named for this environment's AWS target."""
        return classify(exc, self._targets["aws"].target_name)
