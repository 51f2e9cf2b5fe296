"""Errors that end a command with one line and exit 2: bad configuration, feature files or usage."""

from __future__ import annotations

from pathlib import Path


class ConfigError(Exception):
    """A problem in the configuration or a feature file, reported as ``file:line: message``."""

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None) -> None:
        self.message = message
        self.path = str(path) if path is not None else None
        self.line = line
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.path and self.line:
            return f"{self.path}:{self.line}: {self.message}"
        if self.path:
            return f"{self.path}: {self.message}"
        return self.message


class UsageError(Exception):
    """Bad usage or input (an option, a missing file): printed as one line, exit 2."""
