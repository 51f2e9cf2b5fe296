"""Connections and clients shared by every step of one run, created on first use, closed at its end."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Hashable
from typing import Any


class Resources:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[Hashable, Any] = {}
        self._closers: list[Callable[[], None]] = []

    def get(self, key: Hashable, factory: Callable[[], Any], close: Callable[[Any], None] | None = None) -> Any:
        """The value for ``key``, made by ``factory`` the first time (outside the lock: it may connect)."""
        with self._lock:
            if key in self._values:
                return self._values[key]
        value = factory()
        with self._lock:
            if key in self._values:  # another thread won the race; keep theirs, close ours
                if close is not None:
                    close(value)
                return self._values[key]
            self._values[key] = value
            if close is not None:
                self._closers.append(lambda: close(value))
            return value

    def on_close(self, closer: Callable[[], None]) -> None:
        with self._lock:
            self._closers.append(closer)

    def close(self) -> None:
        """Close everything, last opened first; one failing cleanup does not skip the others."""
        while True:
            with self._lock:
                if not self._closers:
                    break
                closer = self._closers.pop()
            try:
                closer()
            except Exception as exc:  # noqa: BLE001
                print(f"runbooks: warning: cleanup failed: {exc}", file=sys.stderr)
        with self._lock:
            self._values.clear()
