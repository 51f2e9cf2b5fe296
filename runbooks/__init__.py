"""Executable operational runbooks: Gherkin procedures whose steps check real infrastructure.

The step SDK (``runbooks.sdk``) is re-exported here: ``from runbooks import check, CheckContext``.
It is loaded on first use, so ``import runbooks`` stays cheap for the CLI.
"""

from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    import importlib

    sdk = importlib.import_module(f"{__name__}.sdk")
    if name in sdk.__all__:
        return getattr(sdk, name)
    raise AttributeError(f"module 'runbooks' has no attribute {name!r}")
