"""The HTTP target: services by name (``[environments.NAME.services]``) and one requests session per run."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..faults import UnknownName
from ..names import did_you_mean
from . import Target, Where, register

if TYPE_CHECKING:
    import requests

    from ..config import Environment
    from ..resources import Resources

_SERVICE_KEYS = {"url", "verify_tls", "timeout_s", "headers"}


@dataclass(frozen=True)
class ServiceSettings:
    name: str
    url: str
    verify_tls: bool | str = True
    timeout_s: float = 10.0
    headers: dict[str, str] = field(default_factory=dict)  # values may use ${ENV_VAR}; they are treated as secrets


def expand_env(value: str) -> str:
    """``${NAME}`` from the process environment: secrets stay out of runbooks.toml. KeyError if unset:
    an empty token would send an unauthenticated request and report the 401 as drift."""
    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: os.environ[m.group(1)], value)


def parse_services(raw: dict[str, Any] | None, where: Where) -> dict[str, ServiceSettings]:
    services: dict[str, ServiceSettings] = {}
    for service, value in (raw or {}).items():
        if isinstance(value, str):
            value = {"url": value}
        if not isinstance(value, dict) or "url" not in value or set(value) - _SERVICE_KEYS:
            raise where.error(f"service {service!r} must be a URL or a table with {', '.join(sorted(_SERVICE_KEYS))}",
                              "services", service)
        if not re.match(r"^https?://", value["url"]):
            raise where.error(f"service {service!r} URL must start with http:// or https://", "services", service)
        headers = value.get("headers", {})
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
            raise where.error(f"service {service!r} headers must be a table of strings", "services", service)
        try:
            value = {**value, "headers": {k: expand_env(v) for k, v in headers.items()}}
        except KeyError as exc:
            raise where.error(f"service {service!r} header uses ${{{exc.args[0]}}}, which is not set in the "
                              "environment of this run", "services", service) from None
        services[service] = ServiceSettings(name=service, **value)
    return services


@register
class HttpTarget(Target):
    """The environment's services, plus those the run provides (the sandbox's reference API)."""

    name = "http"
    section = "services"

    def __init__(self, env: Environment, resources: Resources) -> None:
        super().__init__(env, resources)
        self.services: dict[str, ServiceSettings] = dict(env.services)
        self._session: requests.Session | None = None

    @classmethod
    def parse(cls, raw: Any, where: Where) -> dict[str, ServiceSettings]:
        return parse_services(raw, where)

    def provide(self, name: str, url: str) -> None:
        """A service the run started itself (the sandbox's API on a free port)."""
        self.services[name] = ServiceSettings(name=name, url=url)

    def service(self, name: str) -> ServiceSettings:
        try:
            return self.services[name]
        except KeyError:
            raise UnknownName(
                f"service {name!r} is not defined by environment {self.env.name!r}"
                + did_you_mean(name, self.services, known="defined")
            ) from None

    @property
    def session(self) -> requests.Session:
        if self._session is None:
            import requests

            from .. import __version__

            self._session = requests.Session()
            self._session.headers["User-Agent"] = f"runbooks/{__version__}"
        return self._session

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        return self.session.get(url, **kwargs)

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, url, **kwargs)

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
