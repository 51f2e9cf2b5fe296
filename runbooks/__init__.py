"""Executable operational runbooks: Gherkin procedures whose steps check real infrastructure.

The step SDK (``runbooks.sdk``) is re-exported here: ``from runbooks import check, CheckContext``.
It is loaded on first use, so ``import runbooks`` stays cheap for the CLI.
"""

from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("runbooks")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0.0.0+unknown"


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    import importlib

    sdk = importlib.import_module(f"{__name__}.sdk")
    if name in sdk.__all__:
        return getattr(sdk, name)
    raise AttributeError(f"module 'runbooks' has no attribute {name!r}")
