"""How the egress proxy reaches the internet: its own name resolution, address check and TLS.

The proxy never lets a name decide where it connects: it resolves the name, refuses the lot
when any answer is on the host or a private network (the metadata service, Redis, the Docker
API, DNS rebinding), and connects to the address it checked. Upstream TLS is verified for the
requested name, against the system store plus an optional extra CA.

`Pool` keeps a few finished upstream connections per sandbox and host, so a kept-alive client
(pip, npm) pays one connection and one handshake upstream, not one per request. A sandbox's
connections are never lent to another: each key starts with the sandbox's address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import h11

from worker.egress.http import HEAD_LIMIT, Refused, Side, Streams, Traffic, within
from worker.egress.policy import address_allowed, normalize_host


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class Upstream:
    def __init__(self, hosts: Mapping[str, str], extra_ca: Path | None, timeout: float) -> None:
        """`hosts` maps a name to `address:port`, skipping DNS and the address check for that
        name only (a test hook). `timeout` bounds resolution and connection, handshake included."""
        self._hosts = {normalize_host(name) or name: to for name, to in hosts.items()}
        self._tls = ssl.create_default_context()
        if extra_ca is not None:
            self._tls.load_verify_locations(cafile=extra_ca)
        self._tls.set_alpn_protocols(["http/1.1"])
        self._timeout = timeout

    async def connect(self, host: str, port: int, *, tls: bool) -> Streams:
        """Streams to `host:port` (a normalized name), or `Refused` saying why not."""
        address, port = await self._resolve(host, port)
        context, server_name = (self._tls, host) if tls else (None, None)
        connecting = asyncio.open_connection(
            address, port, ssl=context, server_hostname=server_name, limit=HEAD_LIMIT
        )
        try:
            return Streams(*await within(connecting, self._timeout))
        except TimeoutError:
            raise Refused(504, f"connecting to `{host}` timed out", tried=True) from None
        except ssl.SSLCertVerificationError as error:
            reason = f"`{host}`'s certificate does not verify: {error.verify_message}"
            raise Refused(502, reason, tried=True) from None
        except OSError as error:
            raise Refused(502, f"connecting to `{host}` failed: {error}", tried=True) from None

    async def _resolve(self, host: str, port: int) -> tuple[str, int]:
        if host in self._hosts:
            address, _, mapped_port = self._hosts[host].rpartition(":")
            return address.strip("[]"), int(mapped_port)
        if _is_ip(host):
            candidates, says = [host], f"`{host}` is"
        else:
            resolving = asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
            try:
                infos = await within(resolving, self._timeout)
            except (OSError, TimeoutError) as error:
                raise Refused(502, f"cannot resolve `{host}`: {error}", tried=True) from None
            candidates = [str(info[4][0]) for info in infos]
            says = f"`{host}` resolves to {', '.join(candidates)}:"
        if not candidates or not all(address_allowed(address) for address in candidates):
            raise Refused(403, f"{says} on the host or a private network, not reachable")
        return candidates[0], port


Key = tuple[str, str, int, bool]
"""Sandbox address, host, port, TLS."""


@dataclass
class Pool:
    """Idle upstream connections, at most `per_key` per key, each kept `keep` seconds."""

    upstream: Upstream
    per_key: int = 4
    keep: float = 30.0
    idle: dict[Key, list[tuple[Side, float]]] = field(default_factory=dict)
    opened: int = 0
    """Upstream connections made, for tests and the benchmark."""

    async def acquire(self, key: Key) -> tuple[Side, bool]:
        """A connection for `key` and whether it is new (a reused one may have been closed by
        the server meanwhile: only a new one's failure is the server's answer)."""
        parked = self.idle.get(key, [])
        while parked:
            side, since = parked.pop()
            if time.monotonic() - since < self.keep and not _closed(side):
                return side, False
            side.streams.writer.close()
        _, host, port, tls = key
        self.opened += 1
        return Side(h11.CLIENT, await self.upstream.connect(host, port, tls=tls)), True

    def release(self, key: Key, side: Side) -> None:
        """Park `side` for reuse when its exchange ended cleanly, else close it."""
        parked = self.idle.setdefault(key, [])
        if side.reusable and len(parked) < self.per_key and not _closed(side):
            side.h11.start_next_cycle()
            side.traffic = Traffic()  # the exchange's counter stays with its record
            parked.append((side, time.monotonic()))
        else:
            side.streams.writer.close()

    def sweep(self, owner: str | None = None) -> None:
        """Close expired connections, or all of `owner`'s (a sandbox that is gone)."""
        now = time.monotonic()
        for key in list(self.idle):
            keep = [(s, t) for s, t in self.idle[key] if key[0] != owner and now - t < self.keep]
            for side, since in self.idle[key]:
                if (side, since) not in keep:
                    side.streams.writer.close()
            self.idle[key] = keep
            if not keep:
                del self.idle[key]

    async def sweeping(self, every: float = 5.0) -> None:
        while True:
            await asyncio.sleep(every)
            self.sweep()

    def close(self) -> None:
        for key in list(self.idle):
            self.sweep(owner=key[0])


def _closed(side: Side) -> bool:
    return side.streams.reader.at_eof() or side.streams.writer.is_closing()
