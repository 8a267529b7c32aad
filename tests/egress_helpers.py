"""What the egress proxy tests share: the proxy run on a loop of its own, as the worker runs it,
requests through it as a sandbox makes them, and the policies they register."""

from __future__ import annotations

import asyncio
import http.client
import ssl
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from cryptography import x509

from tests.harness import wait_for
from worker.egress.policy import NetworkPolicy, Request
from worker.egress.proxy import EgressProxy

T = TypeVar("T")
ALLOWLIST = NetworkPolicy("allowlist", ("allowed.example", "*.allowed.example"), ("GET", "HEAD"))
ON = NetworkPolicy("on")


class Running:
    """An `EgressProxy` on its own event loop in a thread, as the worker runs it in its loop."""

    def __init__(self, proxy: EgressProxy) -> None:
        self.proxy = proxy
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.port = self.run(proxy.start("127.0.0.1", 0))

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=10)

    def register(self, policy: NetworkPolicy, ip: str = "127.0.0.1") -> list[Request]:
        records: list[Request] = []

        async def register() -> None:
            self.proxy.register(ip, policy, records.append, label="task-test")

        self.run(register())
        return records

    def unregister(self, ip: str) -> None:
        async def unregister() -> None:
            self.proxy.unregister(ip)

        self.run(unregister())

    def stop(self) -> None:
        self.run(self.proxy.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()


def get(
    proxy: Running,
    url: str,
    headers: dict[str, str] | None = None,
    method: str = "GET",
    body: bytes | None = None,
) -> tuple[int, bytes]:
    """A plain-HTTP request through the proxy, as `http_proxy=` makes a client send it."""
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
    try:
        conn.request(method, url, body=body, headers={"Connection": "close", **(headers or {})})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def https(
    proxy: Running,
    host: str,
    trust: bytes,
    method: str = "GET",
    path: str = "/",
    *,
    port: int = 443,
    source: str = "127.0.0.1",
) -> tuple[int, bytes, x509.Certificate]:
    """An HTTPS request through a CONNECT tunnel, trusting only `trust` (a CA in PEM), with the
    strict certificate checks that are the default from Python 3.13."""
    context = ssl.create_default_context(cadata=trust.decode())
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    conn = http.client.HTTPSConnection(
        "127.0.0.1", proxy.port, context=context, timeout=5, source_address=(source, 0)
    )
    conn.set_tunnel(host, port)
    try:
        conn.request(method, path, body=b"payload" if method == "POST" else None)
        assert isinstance(conn.sock, ssl.SSLSocket)
        peer = x509.load_der_x509_certificate(conn.sock.getpeercert(binary_form=True) or b"")
        response = conn.getresponse()
        return response.status, response.read(), peer
    finally:
        conn.close()


def recorded(records: list[Request], count: int) -> list[Request]:
    """The records, once `count` of them arrived (the proxy records after answering)."""
    return wait_for(lambda: records if len(records) >= count else None, 5, f"{count} records")
