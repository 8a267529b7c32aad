"""Stand-ins for the internet: an HTTP and an HTTPS server on loopback, reached through the egress
proxy by names (`allowed.example`, `tls.denied.example`, ...) mapped with `EGRESS_HOSTS`.

Each server answers every request with `<scheme> <host> <method> <path> <body length>` and keeps
what it received, so a test sees both sides: what the sandbox got back and what actually arrived.
The HTTPS server's CA is not the proxy's: the proxy must trust it as an upstream CA.
"""

from __future__ import annotations

import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from worker.egress.certs import CertificateAuthority

NAMES = ("allowed.example", "denied.example")
"""Plain HTTP names; `tls.<name>` are their HTTPS twins."""


@dataclass(frozen=True)
class Seen:
    """A request as the upstream server received it."""

    scheme: str
    method: str
    path: str
    host: str
    headers: dict[str, str]
    body: bytes
    connection: int = 0
    """The client port of the connection it came on: equal for requests on one connection."""


class _Upstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # head and body go out in two writes: no delayed-ACK stall
    seen: list[Seen]
    scheme: str

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding") != "chunked":
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        chunks = []
        while size := int(self.rfile.readline().split(b";")[0], 16):
            chunks.append(self.rfile.read(size))
            self.rfile.readline()
        self.rfile.readline()
        return b"".join(chunks)

    def _answer(self) -> None:
        body = self._body()
        host = self.headers.get("Host", "")
        port = int(self.client_address[1])
        self.seen.append(
            Seen(self.scheme, self.command, self.path, host, dict(self.headers), body, port)
        )
        reply = f"{self.scheme} {host} {self.command} {self.path} {len(body)}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _serve(seen: list[Seen], scheme: str, context: ssl.SSLContext | None) -> ThreadingHTTPServer:
    handler = type("Handler", (_Upstream,), {"seen": seen, "scheme": scheme})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server


@dataclass
class Internet:
    directory: Path
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.ca = CertificateAuthority.load_or_create(self.directory / "ca")
        self.ca_file = self.directory / "upstream-ca.pem"
        self.ca_file.write_bytes(self.ca.cert_pem)
        context = self.ca.leaf_context(f"tls.{NAMES[0]}")

        def by_name(sock: ssl.SSLObject, name: str | None, _: ssl.SSLContext) -> None:
            sock.context = self.ca.leaf_context(name or f"tls.{NAMES[0]}")

        context.sni_callback = by_name
        self.servers = (_serve(self.seen, "http", None), _serve(self.seen, "https", context))
        plain, tls = (f"127.0.0.1:{server.server_port}" for server in self.servers)
        self.hosts = {name: plain for name in NAMES} | {f"tls.{name}": tls for name in NAMES}
        """Name → `address:port`, the proxy's `EGRESS_HOSTS`."""

    def __enter__(self) -> Internet:
        return self

    def __exit__(self, *exc: object) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()

    def arrived(self, host: str) -> list[Seen]:
        """What reached the servers for `host` (its Host header, without a port)."""
        return [s for s in list(self.seen) if s.host.split(":")[0] == host]
