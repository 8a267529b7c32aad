"""What becomes of a CONNECT once it is allowed: decrypted, or checked by its SNI and spliced.

`allowlist` decrypts every tunnel with a leaf from the deployment's CA, so each request inside
is read and decided (the proxy then serves it like any kept-alive connection). `on` does not
decrypt: the proxy connects upstream, reads the client's ClientHello and refuses a server name
other than the CONNECT host before a single byte goes upstream. `Outcome` is the record of one
request or tunnel as it is filled in, the line the egress log gets at the end.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import time
from dataclasses import dataclass, field

from worker.egress.certs import CertificateAuthority
from worker.egress.clienthello import HELLO_LIMIT, NotClientHello, parse_client_hello
from worker.egress.http import CHUNK, HEAD_TIMEOUT, Refused, Side, Traffic, within
from worker.egress.policy import Request, normalize_host
from worker.egress.relay import splice
from worker.egress.upstream import Upstream

ESTABLISHED = b"HTTP/1.1 200 Connection established\r\n\r\n"


@dataclass
class Outcome:
    """What becomes of one request: filled in as it goes, recorded at the end."""

    method: str
    host: str
    port: int
    path: str | None
    allowed: bool
    reason: str
    status: int | None = None
    answered: int | None = None
    """The proxy's own answer (403, 429, ...), when it gave one."""
    traffic: Traffic = field(default_factory=Traffic)
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

    @property
    def target(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        where = f"{host}:{self.port}" if self.host else ""
        return f"{self.method} {where}{self.path or ''}"


@dataclass
class Tunnels:
    upstream: Upstream
    ca: CertificateAuthority
    handshake_timeout: float
    idle: float

    async def _established(self, side: Side) -> None:
        side.streams.writer.write(ESTABLISHED)
        await within(side.streams.writer.drain(), self.idle)

    async def decrypt(self, side: Side, host: str, outcome: Outcome) -> bool:
        """Answer the CONNECT and take the client's TLS with a leaf for `host`; False (and
        `outcome` says why) when the handshake fails."""
        context = self.ca.leaf_context(host)
        # The client sends its ClientHello as soon as it reads the 200: it must stay in the
        # socket for the TLS layer, not land in the plain stream's buffer.
        transport = side.streams.writer.transport
        if isinstance(transport, asyncio.ReadTransport):
            transport.pause_reading()
        await self._established(side)
        try:
            await side.streams.writer.start_tls(
                context, ssl_handshake_timeout=self.handshake_timeout
            )
        except (ssl.SSLError, OSError, TimeoutError) as error:
            outcome.allowed = False
            outcome.reason = f"TLS with the client failed ({error!r}): does it trust our CA?"
            return False
        return True

    async def splice(self, side: Side, outcome: Outcome) -> None:
        """`on` mode: connect, answer, check the ClientHello's server name, then bytes both
        ways. A refusal after the 200 can only close the connection (status 0)."""
        host, early = outcome.host, side.h11.trailing_data[0]
        upstream = await self.upstream.connect(host, outcome.port, tls=False)
        try:
            await self._established(side)
            hello = await _read_hello(side, early)
            named = hello.server_name
            if named is None and _is_name(host):
                raise Refused(0, f"the TLS ClientHello names no server; CONNECT named `{host}`")
            if named is not None and normalize_host(named) != host:
                raise Refused(
                    0, f"the TLS server name `{named}` differs from the CONNECT host `{host}`"
                )
            outcome.reason += f"; TLS server name `{named}`" if named else ""
            upstream.writer.write(hello.data)
            outcome.traffic.moved(len(hello.data))
            await splice(side.streams, upstream, outcome.traffic, self.idle)
        finally:
            upstream.writer.close()


@dataclass(frozen=True)
class _Hello:
    server_name: str | None
    data: bytes
    """Everything the client sent so far, the hello first, to forward as it is."""


async def _read_hello(side: Side, early: bytes) -> _Hello:
    data = early
    while True:
        try:
            hello = parse_client_hello(data)
        except NotClientHello as error:
            raise Refused(0, f"not a TLS ClientHello inside the tunnel: {error}") from None
        if hello is not None:
            return _Hello(hello.server_name, data)
        if len(data) > HELLO_LIMIT:
            raise Refused(0, "the TLS ClientHello is too large")
        try:
            more = await within(side.streams.reader.read(CHUNK), HEAD_TIMEOUT)
        except TimeoutError:
            raise Refused(0, "no TLS ClientHello received in time") from None
        if not more:
            raise Refused(0, "the client closed the tunnel before its TLS ClientHello")
        data += more


def _is_name(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return True
    return False
