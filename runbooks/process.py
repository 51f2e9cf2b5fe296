"""How the process ends when the world ends it: SIGTERM as an interruption, a stdout its reader closed.

``SIGTERM`` (a CI cancellation, ``timeout``) is handled like Ctrl-C: :class:`Terminated` is a
``KeyboardInterrupt``, so pytest stops the same way, the session writes its reports and history, marks
the run interrupted and exits ``128 + 15``. A stdout closed by its reader (``runbooks steps | head``)
discards the rest of the output; the command runs on and ends with its own exit code.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, TextIO, cast

SIGNALS = (signal.SIGTERM,)  # SIGINT keeps Python's own handler: it raises KeyboardInterrupt already


class Terminated(KeyboardInterrupt):
    """The process received SIGTERM: an interruption, said by the signal's number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def signal_of(interruption: BaseException) -> int:
    """The signal behind an interruption: SIGTERM for :class:`Terminated`, else SIGINT (Ctrl-C)."""
    return interruption.signum if isinstance(interruption, Terminated) else int(signal.SIGINT)


def exit_status(signum: int) -> int:
    """The shell's convention for a process ended by a signal: 130 for SIGINT, 143 for SIGTERM."""
    return 128 + signum


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """For the length of the block, SIGTERM raises :class:`Terminated` (once: a repeated signal while the
    reports are written is ignored; SIGKILL still ends the process). The previous handlers come back after
    the block. Outside the main thread (where Python cannot take signals) this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired = False

    def interrupt(signum: int, frame: FrameType | None) -> None:
        nonlocal fired
        if not fired:
            fired = True
            raise Terminated(signum)

    previous = {signum: signal.signal(signum, interrupt) for signum in SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class _DiscardWhenClosed:
    """sys.stdout, except that a reader who went away (EPIPE) makes the rest of the output go nowhere."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._discard()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._discard()

    def _discard(self) -> None:
        """Point the descriptor at /dev/null, so the buffered rest (and Python's flush at exit) go nowhere."""
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, self._stream.fileno())
            finally:
                os.close(devnull)
        except (OSError, ValueError):  # no descriptor behind the stream: nothing more to do
            pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextmanager
def tolerate_closed_stdout() -> Iterator[None]:
    """For the length of the block, output to a stdout whose reader is gone is discarded, not an error."""
    original = sys.stdout
    guarded = _DiscardWhenClosed(original)
    sys.stdout = cast(TextIO, guarded)
    try:
        yield
    finally:
        guarded.flush()
        if sys.stdout is guarded:
            sys.stdout = original
