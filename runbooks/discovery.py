"""Where the step vocabulary comes from: the built-in library, installed step packs, and the project's own steps.

Every command that needs the vocabulary (``verify``, plain ``pytest``, ``lint``, ``steps``,
``iam-policy``, ``render``) loads it through :func:`load_steps`, so they all see the same registry.

- built-in: ``runbooks.steps``;
- installed packs: the entry-point group ``runbooks.steps`` (a module, or a package whose public
  modules are step modules);
- the project: ``steps = [...]`` in ``runbooks.toml`` — folders or ``.py`` files relative to it, or
  dotted module names — else its ``steps/`` folder when there is one. A folder is imported as a
  package named after it, its parent directory first on ``sys.path`` (as pytest does for a rootdir),
  so the team's tests import the very same modules (``from steps.storage import ...``).
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import pkgutil
import sys
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from .errors import ConfigError, UsageError

if TYPE_CHECKING:
    from .config import Config

BUILTIN_PACKAGE = "runbooks.steps"
ENTRY_POINT_GROUP = "runbooks.steps"
DEFAULT_PROJECT_STEPS = "steps"


def load_steps(config: Config | None = None) -> list[ModuleType]:
    """Import every step module (which registers its steps) and return them, built-in ones first."""
    modules = _with_submodules(_import(BUILTIN_PACKAGE, "the built-in step library"))
    for entry in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        dist = getattr(entry.dist, "name", "?")
        modules += _with_submodules(_import(entry.value, f"step pack {entry.name!r} (from {dist})", entry.load))
    if config is not None:
        for module in project_step_modules(config):
            modules += _with_submodules(module)
    unique: dict[str, ModuleType] = {}
    for module in modules:
        unique.setdefault(module.__name__, module)
    return list(unique.values())


def project_step_modules(config: Config) -> list[ModuleType]:
    """The project's own step modules (or packages), imported."""
    builtin = Path(_import(BUILTIN_PACKAGE, "the built-in step library").__path__[0]).resolve()
    configured = config.steps is not None
    entries = config.steps if config.steps is not None else (DEFAULT_PROJECT_STEPS,)
    modules = []
    for entry in entries:
        path = config.root / entry
        if path.exists():
            if path.resolve() == builtin:  # this repository's own steps/: already the built-in library
                continue
            modules.append(_import_path(path, config))
        elif configured and all(part.isidentifier() for part in entry.split(".")):
            modules.append(_import(entry, f"step module {entry!r} (runbooks.toml steps)"))
        elif configured:
            raise ConfigError(f"steps: {entry!r} is neither a file or folder under {config.root} "
                              "nor an importable module name", config.path)
    return modules


def _import_path(path: Path, config: Config) -> ModuleType:
    if path.is_dir():
        name, parent = path.name, path.parent
    elif path.suffix == ".py":
        name, parent = path.stem, path.parent
    else:
        raise ConfigError(f"steps: {path} is not a folder or a .py file", config.path)
    if not name.isidentifier():
        raise ConfigError(f"steps: {path.name!r} cannot be imported as a Python module (rename it)", config.path)
    if str(parent) not in sys.path:  # first, as pytest's rootdir insertion does: the project's folder wins
        sys.path.insert(0, str(parent))
    if name not in sys.modules:
        # Found in that folder only: a steps/ without __init__.py would otherwise lose to any regular
        # package of the same name further down sys.path.
        spec = importlib.machinery.PathFinder.find_spec(name, [str(parent)])
        if spec is not None:
            module = importlib.util.module_from_spec(spec)  # a namespace package (no loader) needs no more
            sys.modules[name] = module
            try:
                if spec.loader is not None:
                    _import(name, f"steps {path}", lambda: _executed(spec, module))
            except BaseException:
                del sys.modules[name]
                raise
    module = _import(name, f"steps {path}")
    origin = Path(getattr(module, "__file__", None) or next(iter(getattr(module, "__path__", [])), "")).resolve()
    if origin != path.resolve() and path.resolve() not in origin.parents:
        raise ConfigError(f"steps: {path} would be imported as {name!r}, but {name!r} is already the module "
                          f"at {origin}; rename the folder or name it as a dotted module", config.path)
    return module


def _executed(spec: importlib.machinery.ModuleSpec, module: ModuleType) -> ModuleType:
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def _with_submodules(module: ModuleType) -> list[ModuleType]:
    """A step module, or a package's step modules: its ``MODULES`` if it names them, else every public
    module in it (not ``_helpers``, not tests)."""
    if not hasattr(module, "__path__"):
        return [module]
    names = getattr(module, "MODULES", None)
    if names is None:
        names = [f"{module.__name__}.{info.name}" for info in pkgutil.iter_modules(module.__path__)
                 if not info.name.startswith(("_", "test", "conftest"))]
    return [module, *(_import(name, f"step module {name!r}") for name in names)]


def _import(name: str, what: str, load: object = None) -> ModuleType:
    try:
        module = load() if callable(load) else importlib.import_module(name)
    except (UsageError, ConfigError):
        raise
    except Exception as exc:  # noqa: BLE001 - any failure to import a step module is bad input: one line
        raise UsageError(f"{what}: cannot import {name}: {type(exc).__name__}: {exc}") from None
    if not isinstance(module, ModuleType):
        raise UsageError(f"{what}: {name} is not a module")
    return module
