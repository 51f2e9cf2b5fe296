"""Misbehaving servers on 127.0.0.1 for the deadline tests: one that trickles its body, one whose body is
huge (streamed from one reused chunk, never held in memory), and one that answers every request with the
same status and counts them. (A server that accepts and never answers: ``moto_server.silent_server``.)

Each is a raw socket server with a thread per connection, so that a test controls every byte and when it
is sent; each yields its URL and stops with its ``with`` block.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field


@dataclass
class Served:
    """A running server: its URL and the requests it has received (their first lines)."""

    url: str
    requests: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def count(self) -> int:
        with self.lock:
            return len(self.requests)


@contextlib.contextmanager
def _serve(answer: Callable[[socket.socket, Served, threading.Event], None]) -> Iterator[Served]:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    served = Served(f"http://127.0.0.1:{listener.getsockname()[1]}")
    stop = threading.Event()
    connections: list[socket.socket] = []

    def handle(conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn:
            answer(conn, served, stop)

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:  # closed: the test is over
                return
            connections.append(conn)
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, name="slow-server", daemon=True)
    thread.start()
    try:
        yield served
    finally:
        stop.set()
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        thread.join(timeout=5)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.close()


def _read_request(conn: socket.socket, served: Served) -> bytes:
    """Read one request's head (and a Content-Length body); note its first line."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return b""
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
            while len(body) < length:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                body += chunk
    with served.lock:
        served.requests.append(head.split(b"\r\n", 1)[0].decode(errors="replace"))
    return head


@contextlib.contextmanager
def trickle_server(body_bytes: int = 120, interval_s: float = 0.5) -> Iterator[Served]:
    """Answers 200 with a ``Content-Length`` of ``body_bytes`` at once, then one byte every ``interval_s``:
    every read gets something, so a per-read timeout never fires."""

    def answer(conn: socket.socket, served: Served, stop: threading.Event) -> None:
        if not _read_request(conn, served):
            return
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % body_bytes)
        for _ in range(body_bytes):
            if stop.wait(interval_s):
                return
            conn.sendall(b"x")

    with _serve(answer) as served:
        yield served


@contextlib.contextmanager
def huge_body_server(size: int = 200 * 1024 * 1024, chunked: bool = True) -> Iterator[Served]:
    """Answers 200 with a body of ``size`` bytes, sent as fast as the client reads it, from one reused 64 KiB
    chunk. ``chunked``: without a ``Content-Length`` (chunked transfer encoding), so only reading tells the
    size; else with one."""
    piece = b"x" * 65536

    def answer(conn: socket.socket, served: Served, stop: threading.Event) -> None:
        if not _read_request(conn, served):
            return
        framing = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: %d" % size
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" + framing + b"\r\n\r\n")
        left = size
        while left > 0 and not stop.is_set():
            part = piece[:left]
            conn.sendall(b"%x\r\n%s\r\n" % (len(part), part) if chunked else part)
            left -= len(part)
        if chunked:
            conn.sendall(b"0\r\n\r\n")

    with _serve(answer) as served:
        yield served


@contextlib.contextmanager
def counting_server(status: int = 500, body: bytes = b"", content_type: str = "application/xml",
                    delay_s: float = 0.0) -> Iterator[Served]:
    """Answers every request with ``status`` and ``body`` (after ``delay_s``), keeping the connection open for
    the next one; ``served.count`` is how many requests arrived."""

    def answer(conn: socket.socket, served: Served, stop: threading.Event) -> None:
        while not stop.is_set() and _read_request(conn, served):
            if delay_s:
                time.sleep(delay_s)
            conn.sendall(b"HTTP/1.1 %d Status\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s"
                         % (status, content_type.encode(), len(body), body))

    with _serve(answer) as served:
        yield served
