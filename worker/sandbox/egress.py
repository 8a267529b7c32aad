"""The egress proxy: the only way out of a sandbox in `allowlist` and `on` network modes.

One asyncio server in the worker, bound to the sandbox network's gateway, serves every running
task and tells them apart by source address (containers cannot spoof it without NET_ADMIN).
It resolves names itself and refuses addresses on the host and private networks, allows HTTP on
port 80 and CONNECT to 443, enforces `.github/codex.yml` `network.allow`, and, when
`network.methods` limits methods, decrypts HTTPS with the deployment's CA to check each request.
Every request, allowed or not, is handed to the task's `record` callback and logged. One request
per client connection (`Connection: close`) keeps the framing simple and unambiguous.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import ssl
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from worker.sandbox import egress_http as http
from worker.sandbox.certs import CertificateAuthority
from worker.sandbox.egress_http import Refused
from worker.sandbox.egress_policy import (
    NetworkPolicy,
    Request,
    decide,
    decide_connect,
    needs_interception,
)
from worker.sandbox.egress_upstream import Upstream

log = logging.getLogger(__name__)


@dataclass
class _Client:
    policy: NetworkPolicy
    record: Callable[[Request], None]
    label: str
    connections: set[asyncio.Task[object]] = field(default_factory=set)


@dataclass
class _Peer:
    """One connection from a registered sandbox."""

    client: _Client
    ip: str
    streams: http.Streams

    @property
    def reader(self) -> asyncio.StreamReader:
        return self.streams.reader

    @property
    def writer(self) -> asyncio.StreamWriter:
        return self.streams.writer


@dataclass
class _Outcome:
    """What becomes of one request: filled in as it goes, recorded at the end."""

    method: str
    host: str
    port: int
    path: str | None
    allowed: bool
    reason: str
    status: int | None = None
    traffic: http.Traffic = field(default_factory=http.Traffic)
    started: float = field(default_factory=time.time)

    def go_ahead(self) -> None:
        if not self.allowed:
            raise Refused(403, self.reason)

    def request(self) -> Request:
        where = (self.method, self.host, self.port, self.path)
        return Request(self.started, *where, self.allowed, self.reason, self.status, self.bytes)

    @property
    def bytes(self) -> int:
        return self.traffic.bytes


def _canonical(ip: str) -> str:
    """One spelling per address, also for IPv4 seen through a dual-stack socket."""
    address = ipaddress.ip_address(ip)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


class EgressProxy:
    def __init__(
        self,
        ca: CertificateAuthority,
        *,
        hosts: Mapping[str, str] | None = None,
        upstream_ca: Path | None = None,
        connect_timeout: float = 10.0,
        idle_timeout: float = 300.0,
    ) -> None:
        """`hosts` maps a name to `address:port`, skipping DNS and the address check for that
        name only (a test hook); `upstream_ca` is trusted for upstream TLS besides the system
        store. `idle_timeout` ends a connection on which no byte moved for that long."""
        self._ca = ca
        self._upstream = Upstream(hosts or {}, upstream_ca, connect_timeout)
        self._connect_timeout = connect_timeout
        self._idle = idle_timeout
        self._clients: dict[str, _Client] = {}
        self._connections: set[asyncio.Task[object]] = set()
        self._server: asyncio.Server | None = None

    async def start(self, bind_host: str, port: int) -> int:
        """Listen on `bind_host:port` (port 0: any free port); returns the port."""
        self._server = await asyncio.start_server(
            self._serve, bind_host, port, limit=http.HEAD_LIMIT
        )
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    def register(
        self,
        client_ip: str,
        policy: NetworkPolicy,
        record: Callable[[Request], None],
        *,
        label: str = "",
    ) -> None:
        """Serve connections from `client_ip` under `policy`, passing each request to `record`;
        `label` (the task id) goes in the logs. Call from the proxy's event loop."""
        self.unregister(client_ip)
        self._clients[_canonical(client_ip)] = _Client(policy, record, label)

    def unregister(self, client_ip: str) -> None:
        """Stop serving `client_ip` and cut its open connections (an address may be reused)."""
        client = self._clients.pop(_canonical(client_ip), None)
        for task in list(client.connections if client else ()):
            task.cancel()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task: asyncio.Task[object] | None = asyncio.current_task()
        assert task is not None
        peername = writer.get_extra_info("peername")
        ip = _canonical(peername[0] if peername else "::")
        client = self._clients.get(ip)
        label = client.label if client else "unregistered"
        self._connections.add(task)
        if client is not None:
            client.connections.add(task)
        try:
            if client is None:
                await self._refuse(ip, reader, writer)
            else:
                await self._handle(_Peer(client, ip, http.Streams(reader, writer)))
        except asyncio.CancelledError:
            # By unregister() or close(); ending normally, because on Python 3.11 asyncio's own
            # done-callback for this task raises on a cancelled one and logs a bogus error.
            log.info("egress %s %s: connection cut", label, ip)
        except http.RELAY_ERRORS as error:
            log.info("egress %s %s: connection ended: %r", label, ip, error)
        except Exception:
            log.exception("egress %s %s: unexpected error", label, ip)
        finally:
            self._connections.discard(task)
            if client is not None:
                client.connections.discard(task)
            writer.close()

    async def _refuse(
        self, ip: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        log.warning("egress: refused %s, not a registered sandbox", ip)
        with contextlib.suppress(Refused, *http.RELAY_ERRORS):
            await http.read_head(reader)  # answering before reading could reset the connection
        await http.respond(writer, 403, "this address is not a registered sandbox")

    async def _handle(self, peer: _Peer) -> None:
        policy = peer.client.policy
        try:
            head = http.parse_request(await http.read_head(peer.reader))
            if head.method == "CONNECT":
                host, port = http.parse_authority(head.target, None)
            else:
                host, port, path = http.parse_absolute(head.target, "http")
        except Refused as refused:
            log.info("egress %s %s: bad request: %s", peer.client.label, peer.ip, refused.reason)
            await http.respond(peer.writer, refused.status, refused.reason)
            return
        if head.method != "CONNECT":
            await self._forward(peer, head, host, port, path, tls=False)
            return
        decision = decide_connect(policy, host, port)
        if decision.allowed and needs_interception(policy):
            await self._intercept(peer, host, port)
        else:
            outcome = _Outcome("CONNECT", host, port, None, decision.allowed, decision.reason)
            await self._tunnel(peer, outcome)

    @contextlib.asynccontextmanager
    async def _recording(self, peer: _Peer, outcome: _Outcome) -> AsyncIterator[None]:
        """Answer a `Refused` for the client, note a relay cut short, and record the outcome."""
        try:
            yield
        except Refused as refused:
            outcome.allowed = outcome.allowed and not refused.denied
            outcome.reason = refused.reason
            await http.respond(peer.writer, refused.status, refused.reason)
        except http.RELAY_ERRORS as error:
            outcome.reason += f"; relay ended early: {error!r}"
        finally:
            self._log(peer, outcome)
            try:
                peer.client.record(outcome.request())
            except Exception:
                log.exception("egress %s %s: record callback failed", peer.client.label, peer.ip)

    def _log(self, peer: _Peer, outcome: _Outcome) -> None:
        host = f"[{outcome.host}]" if ":" in outcome.host else outcome.host
        target = f"{outcome.method} {host}:{outcome.port}{outcome.path or ''}"
        verdict = "allowed" if outcome.allowed else "denied"
        log.info(
            "egress %s %s: %s %s, %s (status %s, %d bytes)",
            *(peer.client.label, peer.ip, target, verdict, outcome.reason),
            *(outcome.status, outcome.bytes),
        )

    async def _forward(
        self, peer: _Peer, head: http.RequestHead, host: str, port: int, path: str, *, tls: bool
    ) -> None:
        """Decide one HTTP request, then relay it and its response, or answer it ourselves."""
        decision = decide(peer.client.policy, host, port, head.method)
        outcome = _Outcome(head.method, host, port, path, decision.allowed, decision.reason)
        async with self._recording(peer, outcome):
            outcome.go_ahead()
            framing = http.body_framing(head)
            upstream = await self._upstream.connect(host, port, tls=tls)
            try:
                upstream.writer.write(http.forward_head(head, path, host, port, tls=tls))
                outcome.status = await http.exchange(
                    framing, peer.streams, upstream, outcome.traffic, self._idle
                )
            finally:
                upstream.writer.close()

    async def _tunnel(self, peer: _Peer, outcome: _Outcome) -> None:
        """A CONNECT we do not decrypt: allowed or not as a whole, then bytes both ways."""
        async with self._recording(peer, outcome):
            outcome.go_ahead()
            upstream = await self._upstream.connect(outcome.host, outcome.port, tls=False)
            try:
                await http.respond_established(peer.writer)
                await http.splice(peer.streams, upstream, outcome.traffic, self._idle)
            finally:
                upstream.writer.close()

    async def _intercept(self, peer: _Peer, host: str, port: int) -> None:
        """An allowed CONNECT we decrypt with a leaf from our CA, to decide the request inside
        it (recorded by `_forward`; the CONNECT itself only when the TLS handshake fails)."""
        await http.respond_established(peer.writer)
        try:
            context = self._ca.leaf_context(host)
            await peer.writer.start_tls(context, ssl_handshake_timeout=self._connect_timeout)
        except (ssl.SSLError, OSError, TimeoutError) as error:
            reason = f"TLS with the client failed ({error!r}): does the sandbox trust our CA?"
            async with self._recording(peer, _Outcome("CONNECT", host, port, None, True, reason)):
                return
        try:
            head = http.parse_request(await http.read_head(peer.reader))
        except Refused as refused:
            log.info("egress %s %s: bad request: %s", peer.client.label, peer.ip, refused.reason)
            await http.respond(peer.writer, refused.status, refused.reason)
            return
        try:
            path = http.inner_path(head, host)
        except Refused as refused:  # names another host than the CONNECT: recorded, refused
            outcome = _Outcome(head.method, host, port, head.target, False, refused.reason)
            async with self._recording(peer, outcome):
                raise
            return
        await self._forward(peer, head, host, port, path, tls=True)
