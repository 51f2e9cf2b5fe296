"""Errors that end a command with one line: exit 2 for bad configuration, feature files or usage; exit 3
when a run could not start (:class:`StartError`)."""

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


def read_text(path: str | Path, what: str, *, bom: bool = True) -> str:
    """The text of a file a person wrote (``what``: "configuration file", "feature file", ...): UTF-8, with
    a leading byte-order mark dropped (refused when ``bom`` is False: pytest-bdd reads feature files
    itself and chokes on one). Anything else is a :class:`ConfigError` naming the file, and the line of
    the first byte that is not UTF-8 text."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{what} not found", path) from None
    except IsADirectoryError:
        raise ConfigError(f"{what} expected, found a folder", path) from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what}: {exc.strerror or exc}", path) from None
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise ConfigError(f"not a text file (a NUL byte): a {what} must be UTF-8 text", path, line)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(f"not UTF-8 text (byte 0x{data[exc.start]:02x}): a {what} must be saved as UTF-8",
                          path, line) from None
    if text.startswith("\ufeff"):
        if not bom:
            raise ConfigError(f"starts with a byte-order mark: save the {what} as UTF-8 without BOM", path, 1)
        text = text[1:]
    return text


class StartError(Exception):
    """The run could not start for a reason outside its inputs (the history locked by another process):
    printed as one line, exit 3 — nothing was verified."""
