"""A TCP relay in front of a real server that a test can cut and hang, as a network would.

The server is a loopback port (Redis) or a unix socket (the Docker engine's, which a worker then
reaches as `DOCKER_HOST=tcp://127.0.0.1:<port>`).

`cut()` closes every connection and stops listening (a Redis that is down: connections are
refused), `hang()` keeps accepting and reading but never forwards a byte (a Redis that is
stuck, or a network that drops packets), `restore()` passes traffic again on the same port.
Faults stay on the relay: the server behind it, and everything else using it, are untouched.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

from tests.harness import free_port


class Relay:
    def __init__(self, target_port: int | None = None, *, unix: str | None = None) -> None:
        assert (target_port is None) != (unix is None), "a port or a unix socket"
        self.target = ("127.0.0.1", target_port or 0)
        self.unix = unix
        self.port = free_port()
        self.hanging = threading.Event()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._listen()

    def cut(self) -> None:
        """Refuse new connections and close the open ones."""
        with self._lock:
            listener, self._listener = self._listener, None
            open_sockets, self._sockets = self._sockets, set()
        for sock in ([listener] if listener else []) + list(open_sockets):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def hang(self) -> None:
        """Accept and read, never answer: every request waits until its client gives up."""
        self.hanging.set()

    def restore(self) -> None:
        self.hanging.clear()
        if self._listener is None:
            self._listen()

    def close(self) -> None:
        self.cut()

    def _listen(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        with self._lock:
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut: the listener was closed
            try:
                upstream = self._connect()
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                if self._listener is not listener:  # cut meanwhile
                    client.close()
                    upstream.close()
                    return
                self._sockets.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _connect(self) -> socket.socket:
        if self.unix is None:
            return socket.create_connection(self.target, timeout=5)
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        upstream.settimeout(5)
        try:
            upstream.connect(self.unix)
        except OSError:
            upstream.close()
            raise
        return upstream

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        for data in _chunks(source):
            if self.hanging.is_set():
                continue  # swallowed: the other side never hears of it
            try:
                sink.sendall(data)
            except OSError:
                break
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        with self._lock:
            self._sockets.difference_update((source, sink))


def _chunks(sock: socket.socket) -> Iterator[bytes]:
    while True:
        try:
            data = sock.recv(65536)
        except OSError:
            return
        if not data:
            return
        yield data


def engine_relay() -> Relay:
    """A relay in front of the Docker engine the tests use (`DOCKER_HOST`, or the local
    socket); a worker pointed at `DOCKER_HOST=tcp://127.0.0.1:<relay.port>` loses its engine
    when the relay is cut, while every other user of the engine goes on."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if host.startswith("unix://"):
        return Relay(unix=host.removeprefix("unix://"))
    parts = urlsplit(host)
    assert parts.scheme == "tcp" and parts.hostname in ("127.0.0.1", "localhost"), host
    return Relay(parts.port or 2375)
