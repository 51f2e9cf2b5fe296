"""Targets: what a check talks to (AWS, HTTP services, hosts, Docker), registered by name.

A target owns its section of an environment in ``runbooks.toml`` (schema and parsing), opens its
connections lazily for one run and closes them at the end, says which ``@requires:`` capabilities it
can answer, and teaches the fault classification its library's exceptions. Checks reach a target as
an attribute of their context: ``ctx.aws``, ``ctx.http``, ``ctx.hosts``, ``ctx.docker``.

Adding a target is one module here with one class decorated by :func:`register`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..config import Environment
    from ..resources import Resources

# Modules holding the built-in targets, imported on first use of the registry (in this order).
BUILTIN = ("docker", "hosts", "aws", "http", "postgres", "redis", "prometheus", "alertmanager")


class Where:
    """Raises configuration errors that name the file and line of a key."""

    def __init__(self, fail: Callable[[str, str, str | None], ConfigError], env: str, root: Path | None = None
                 ) -> None:
        self._fail = fail
        self.env = env
        self.root = root  # the folder of runbooks.toml: relative paths in a section are relative to it
        self.table = f"environments.{env}"

    def error(self, message: str, section: str = "", key: str | None = None) -> ConfigError:
        table = f"{self.table}.{section}" if section else self.table
        return self._fail(f"environment {self.env!r}: {message}", table, key)


class Target:
    """One kind of thing checks talk to. Subclasses set the class attributes and override what applies."""

    name: ClassVar[str]  # the attribute on the check context: ctx.<name>
    section: ClassVar[str]  # its key in [environments.NAME] (None-like "" when it has none)
    # @requires:<capability> -> why a scenario cannot run here ("{env}" is the environment's name)
    capabilities: ClassVar[dict[str, str]] = {}

    def __init__(self, env: Environment, resources: Resources) -> None:
        self.env = env
        self.resources = resources

    @classmethod
    def parse(cls, raw: Any, where: Where) -> Any:
        """This target's settings from the environment's section (``raw`` is None when it is absent)."""
        return raw

    @classmethod
    def can(cls, env: Environment, capability: str) -> bool:
        """Whether ``env`` can answer scenarios that ``@requires:<capability>``."""
        return True

    def open(self) -> None:
        """Called once when the run starts (connections are still opened lazily, on first use)."""

    def close(self) -> None:
        """Close what this run opened (the run's resources close themselves)."""

    @classmethod
    def secrets(cls, env: Environment) -> Iterable[str]:
        """Credentials in this target's settings of ``env`` (a DSN's password): masked in every output."""
        return ()


T = TypeVar("T", bound=type[Target])
TARGETS: dict[str, type[Target]] = {}


def register(cls: T) -> T:
    TARGETS[cls.name] = cls
    return cls


def targets() -> dict[str, type[Target]]:
    """Every registered target: the built-in ones first, in BUILTIN's order, then any added later."""
    for module in BUILTIN:
        importlib.import_module(f"{__name__}.{module}")
    return {name: TARGETS[name] for name in sorted(TARGETS, key=lambda n: BUILTIN.index(n) if n in BUILTIN else 99)}


def capability_owner(capability: str) -> type[Target] | None:
    return next((t for t in targets().values() if capability in t.capabilities), None)


def missing_capability(env: Environment, tags: set[str] | list[str]) -> str | None:
    """Why a scenario with these tags cannot run in ``env`` (None when it can)."""
    for tag in sorted(tags):
        if tag.startswith("requires:"):
            name = tag.split(":", 1)[1]
            owner = capability_owner(name)
            if owner is not None and not owner.can(env, name):
                reason = owner.capabilities[name].format(env=env.name)
                return f"not run here: {reason} (@requires:{name})"
    return None


def known_capabilities() -> list[str]:
    return [c for t in targets().values() for c in t.capabilities]
