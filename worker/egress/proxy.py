"""The egress proxy: the only way out of a sandbox in `allowlist` and `on` network modes.

One asyncio server (in a process of its own, `egress_proc`) serves every running task and tells
them apart by source address (containers cannot spoof it without NET_ADMIN). It resolves names
itself and refuses addresses on the host and private networks, allows HTTP on port 80 and
CONNECT to 443, and enforces `.github/codex.yml` `network`:

- `allowlist`: every CONNECT is decrypted with the deployment's CA, and every request inside
  must name the CONNECT host and pass `allow` and `methods`;
- `on`: tunnels are spliced, after the ClientHello's server name was checked against the
  CONNECT host.

Connections are kept alive and every request on them is decided on its own; upstream
connections are pooled per sandbox and host. Every request, refused while parsing or not, goes
to the task's `record` callback with its true verdict. `Caps` bounds what one sandbox holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from pathlib import Path

import h11

from worker.egress import http
from worker.egress.certs import CertificateAuthority
from worker.egress.http import Malformed, Refused, Side
from worker.egress.limits import Caps, LogBudget
from worker.egress.policy import (
    NetworkPolicy,
    Request,
    canonical_ip,
    decide,
    decide_connect,
)
from worker.egress.record import Client, Peer, recording
from worker.egress.relay import forward
from worker.egress.tunnel import Outcome, Tunnels
from worker.egress.upstream import Pool, Upstream

log = logging.getLogger(__name__)


class EgressProxy:
    def __init__(
        self,
        ca: CertificateAuthority,
        *,
        hosts: Mapping[str, str] | None = None,
        upstream_ca: Path | None = None,
        connect_timeout: float = 10.0,
        idle_timeout: float = 300.0,
        keepalive_timeout: float = 60.0,
        head_timeout: float = http.HEAD_TIMEOUT,
        caps: Caps | None = None,
    ) -> None:
        """`hosts` maps a name to `address:port`, skipping DNS and the address check for that
        name only (a test hook); `upstream_ca` is trusted for upstream TLS besides the system
        store. `idle_timeout` ends an exchange on which no byte moved for that long;
        `keepalive_timeout` a client connection waiting that long for its next request, and
        `head_timeout` one whose first request head takes longer, however slowly it drips."""
        self._ca = ca
        self.pool = Pool(Upstream(hosts or {}, upstream_ca, connect_timeout))
        self._connect_timeout = connect_timeout
        self._idle = idle_timeout
        self._keepalive = keepalive_timeout
        self._head_timeout = head_timeout
        self.caps = caps or Caps()
        self._budget = LogBudget(log)
        self._tunnels = Tunnels(self.pool.upstream, ca, connect_timeout, idle_timeout)
        self._clients: dict[str, Client] = {}
        self._connections: set[asyncio.Task[object]] = set()
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self, bind_host: str, port: int) -> int:
        """Listen on `bind_host:port` (port 0: any free port); returns the port."""
        self._server = await asyncio.start_server(
            self._serve, bind_host, port, limit=http.HEAD_LIMIT, backlog=1024
        )
        self._sweeper = asyncio.create_task(self.pool.sweeping())
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        self.pool.close()
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
        self._clients[canonical_ip(client_ip)] = Client(policy, record, label)

    def unregister(self, client_ip: str) -> set[asyncio.Task[object]]:
        """Stop serving `client_ip` and cut its open connections (an address may be reused);
        returns them, ending."""
        ip = canonical_ip(client_ip)
        client = self._clients.pop(ip, None)
        cut = set(client.connections if client else ())
        for task in cut:
            task.cancel()
        self.pool.sweep(owner=ip)
        return cut

    async def release(self, client_ip: str) -> None:
        """`unregister`, and wait until the cut connections are recorded."""
        await asyncio.gather(*self.unregister(client_ip), return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task: asyncio.Task[object] | None = asyncio.current_task()
        assert task is not None
        peername = writer.get_extra_info("peername")
        ip = canonical_ip(peername[0] if peername else "::")
        client = self._clients.get(ip)
        label = client.label if client else "unregistered"
        over = self.caps.admit(ip)
        self._connections.add(task)
        if client is not None:
            client.connections.add(task)
        try:
            if over and self.caps.open.total() > self.caps.total:
                self._budget.log(label, logging.WARNING, "egress %s %s: %s", label, ip, over)
                writer.transport.abort()  # no descriptor to spare for an answer, nor a read
                if client is not None:
                    client.record(Outcome("?", "", 0, None, False, f"{over}: cut").request())
            elif client is None:
                await self._refuse(ip, Side(h11.SERVER, http.Streams(reader, writer)))
            else:
                side = Side(h11.SERVER, http.Streams(reader, writer))
                peer = Peer(client, ip, side, self._budget)
                await (self._too_many(peer, over) if over else self._handle(peer))
        except asyncio.CancelledError:
            # By unregister() or close(); ending normally, because on Python 3.11 asyncio's own
            # done-callback for this task raises on a cancelled one and logs a bogus error.
            self._budget.log(label, logging.INFO, "egress %s %s: connection cut", label, ip)
        except http.RELAY_ERRORS as error:
            self._budget.log(label, logging.INFO, "egress %s %s: ended: %r", label, ip, error)
        except Exception:
            log.exception("egress %s %s: unexpected error", label, ip)
        finally:
            self.caps.leave(ip)
            self._connections.discard(task)
            if client is not None:
                client.connections.discard(task)
            writer.close()

    async def _refuse(self, ip: str, side: Side) -> None:
        self._budget.log(ip, logging.WARNING, "egress: refused %s, not a registered sandbox", ip)
        with contextlib.suppress(Refused, *http.RELAY_ERRORS):
            await side.next_event(2.0)  # answering before reading could reset the connection
        await http.respond(side, 403, "this address is not a registered sandbox")

    async def _too_many(self, peer: Peer, reason: str) -> None:
        """Over the sandbox's cap: a 429 before any upstream connection, recorded as refused."""
        outcome = Outcome("?", "", 0, None, False, reason)
        async with recording(peer, outcome):
            with contextlib.suppress(Refused, *http.RELAY_ERRORS):
                # the head, to log it; not a slot to hold
                event = await peer.side.next_event(2.0, whole=True)
                if isinstance(event, h11.Request):
                    outcome.method = event.method.decode("latin-1")
                    outcome.path = http.printable(event.target)
            raise Refused(429, f"{reason}: close some before opening more")

    async def _next_request(self, peer: Peer, timeout: float) -> h11.Request | None:
        """The next request on the connection, None once the client is done; a malformed one
        is answered, recorded with its raw first line, and ends the connection."""
        try:  # the timeout is for the whole head: no slow-loris drip
            event = await peer.side.next_event(timeout, whole=True)
        except Malformed as bad:
            outcome = Outcome("?", "", 0, bad.raw, False, bad.reason)
            async with recording(peer, outcome):
                raise
            return None
        except TimeoutError:
            if peer.side.h11.their_state is h11.IDLE and not peer.side.h11.trailing_data[0]:
                return None  # a kept-alive connection with nothing more to say
            outcome = Outcome("?", "", 0, peer.side.first_line, False, "")
            async with recording(peer, outcome):
                raise Refused(408, f"request not received within {timeout:g} s") from None
            return None
        return event if isinstance(event, h11.Request) else None

    async def _handle(self, peer: Peer, *, host: str | None = None) -> None:
        """Requests on one client connection until it closes; `host` is the CONNECT host when
        this connection is the decrypted inside of a tunnel."""
        timeout = self._head_timeout
        while (request := await self._next_request(peer, timeout)) is not None:
            if request.method == b"CONNECT" and host is None:
                await self._connect(peer, request)
                return
            if not await self._request(peer, request, host):
                return
            peer.side.h11.start_next_cycle()
            timeout = self._keepalive

    async def _request(self, peer: Peer, request: h11.Request, inner: str | None) -> bool:
        """Decide and forward one request; whether the connection may carry another."""
        target = request.target.decode("latin-1")
        method = request.method.decode("latin-1")
        outcome = Outcome(method, inner or "", 443 if inner else 0, target, False, "")
        peer.side.traffic = http.Traffic()
        outcome.traffic = peer.side.traffic
        async with recording(peer, outcome):
            if inner is None:
                host, port, path = http.parse_absolute(target, "http")
            else:
                host, port, path = inner, 443, http.inner_path(request, inner)
            outcome.host, outcome.port, outcome.path = host, port, path
            decision = decide(peer.client.policy, host, port, method)
            outcome.allowed, outcome.reason = decision.allowed, decision.reason
            outcome.go_ahead()
            http.check_framing(request)
            close = peer.side.h11.their_state is h11.MUST_CLOSE or any(
                b"close" in value.lower() for value in http.header(request, b"connection")
            )
            upstream = http.upstream_request(
                request, path, host, port, tls=inner is not None, close=close
            )
            key = (peer.ip, host, port, inner is not None)
            outcome.status = await forward(peer.side, upstream, self.pool, key, self._idle)
        return outcome.allowed and outcome.status is not None and peer.side.reusable

    async def _connect(self, peer: Peer, request: h11.Request) -> None:
        """A CONNECT: decided on its host, then decrypted (`allowlist`) or checked by its
        ClientHello and spliced (`on`)."""
        target = request.target.decode("latin-1")
        outcome = Outcome("CONNECT", "", 0, None, False, "")
        try:
            host, port = http.parse_authority(target, None)
        except Refused as refused:
            outcome.path, outcome.reason = target, refused.reason
            async with recording(peer, outcome):
                raise
            return
        decision = decide_connect(peer.client.policy, host, port)
        outcome.host, outcome.port = host, port
        outcome.allowed, outcome.reason = decision.allowed, decision.reason
        if not decision.allowed or peer.client.policy.mode == "on":
            async with recording(peer, outcome):
                outcome.go_ahead()
                await self._tunnels.splice(peer.side, outcome)
            return
        if peer.side.h11.trailing_data[0]:  # bytes the TLS layer would never see
            async with recording(peer, outcome):
                raise Refused(400, "data sent before the tunnel was established")
            return
        if await self._tunnels.decrypt(peer.side, host, outcome):
            peer.side = Side(h11.SERVER, peer.side.streams)
            await self._handle(peer, host=host)
        else:
            async with recording(peer, outcome):
                return
