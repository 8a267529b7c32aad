"""How the egress proxy reaches the internet: its own name resolution, address check and TLS.

The proxy never lets a name decide where it connects: it resolves the name, refuses the lot
when any answer is on the host or a private network (the metadata service, Redis, the Docker
API, DNS rebinding), and connects to the address it checked. Upstream TLS is verified for the
requested name, against the system store plus an optional extra CA.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Mapping
from pathlib import Path

from worker.sandbox.egress_http import HEAD_LIMIT, Refused, Streams
from worker.sandbox.egress_policy import address_allowed, normalize_host


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
            return Streams(*await asyncio.wait_for(connecting, self._timeout))
        except TimeoutError:
            raise Refused(504, f"connecting to `{host}` timed out", denied=False) from None
        except ssl.SSLCertVerificationError as error:
            reason = f"`{host}`'s certificate does not verify: {error.verify_message}"
            raise Refused(502, reason, denied=False) from None
        except OSError as error:
            raise Refused(502, f"connecting to `{host}` failed: {error}", denied=False) from None

    async def _resolve(self, host: str, port: int) -> tuple[str, int]:
        if host in self._hosts:
            address, _, mapped_port = self._hosts[host].rpartition(":")
            return address.strip("[]"), int(mapped_port)
        if _is_ip(host):
            candidates, says = [host], f"`{host}` is"
        else:
            resolving = asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
            try:
                infos = await asyncio.wait_for(resolving, self._timeout)
            except (OSError, TimeoutError) as error:
                raise Refused(502, f"cannot resolve `{host}`: {error}", denied=False) from None
            candidates = [str(info[4][0]) for info in infos]
            says = f"`{host}` resolves to {', '.join(candidates)}:"
        if not candidates or not all(address_allowed(address) for address in candidates):
            raise Refused(403, f"{says} on the host or a private network, not reachable")
        return candidates[0], port
