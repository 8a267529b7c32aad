"""HTTP/1.1 framing for the egress proxy: parse request heads, relay one exchange, splice tunnels.

The proxy forwards exactly one request per client connection, and that request's body by its
declared framing (Content-Length or chunked), so a client cannot slip a second, undecided
request behind an allowed one. Heads are capped at `HEAD_LIMIT`; ambiguous framing (both
Content-Length and Transfer-Encoding, conflicting lengths) is refused, not guessed at.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Literal, NamedTuple
from urllib.parse import urlsplit

from worker.sandbox.egress_policy import normalize_host

HEAD_LIMIT = 64 * 1024
HEAD_TIMEOUT = 30.0
"""Seconds a client may take to send a request head."""
CHUNK = 64 * 1024
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "proxy-authorization"})
NOT_FORWARDED = HOP_BY_HOP | {"proxy-authenticate", "te", "trailer", "upgrade", "host"}
"""Request headers dropped on the way up (`host` is rewritten from the target)."""
_FRAMING = frozenset({"content-length", "transfer-encoding"})
_REQUEST_LINE = re.compile(r"^([!#$%&'*+.^_`|~0-9A-Za-z-]+) ([\x21-\x7e]+) HTTP/1\.[01]$")
_HEADER = re.compile(r"^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([^\x00-\x08\x0a-\x1f\x7f]*?)[ \t]*$")
_CHUNK_SIZE = re.compile(rb"^([0-9A-Fa-f]{1,16})[ \t]*(;[^\r\n]*)?\r\n$")
_STATUS_LINE = re.compile(rb"^HTTP/1\.[01] (\d{3})[ \r]")
RELAY_ERRORS = (
    OSError,
    ValueError,
    TimeoutError,
    asyncio.IncompleteReadError,
    asyncio.LimitOverrunError,
)
"""What ends a relay early: the connection is then closed, and the request recorded as such."""


class Refused(Exception):
    """Answer the client with `status` and `reason`; `denied` when the policy said no (as
    opposed to a malformed request or an unreachable upstream)."""

    def __init__(self, status: int, reason: str, *, denied: bool = True) -> None:
        super().__init__(reason)
        self.status, self.reason, self.denied = status, reason, denied


class Streams(NamedTuple):
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter


@dataclass(frozen=True)
class RequestHead:
    method: str
    target: str
    headers: tuple[tuple[str, str], ...]

    def values(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name]


@dataclass
class Traffic:
    """Bytes moved, and when last, across both directions of one connection."""

    bytes: int = 0
    last: float = field(default_factory=time.monotonic)


async def read_head(reader: asyncio.StreamReader) -> bytes:
    try:
        return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT)
    except asyncio.LimitOverrunError:
        raise Refused(431, f"request head larger than {HEAD_LIMIT} bytes", denied=False) from None
    except TimeoutError:
        raise Refused(408, "request head not received in time", denied=False) from None


def parse_request(raw: bytes) -> RequestHead:
    lines = raw.decode("latin-1")[:-4].split("\r\n")
    line = _REQUEST_LINE.match(lines[0])
    headers = [_HEADER.match(text) for text in lines[1:]]
    if line is None or not all(headers):
        raise Refused(400, "malformed HTTP request head", denied=False)
    pairs = tuple((match.group(1), match.group(2)) for match in headers if match)
    return RequestHead(line.group(1).upper(), line.group(2), pairs)


def parse_authority(text: str, default_port: int | None) -> tuple[str, int]:
    """`host:port` (or `[v6]:port`) as in CONNECT and Host."""
    host, port = text, ""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":")
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    name = normalize_host(host)
    if name is None or not (port.isdigit() or (not port and default_port)):
        raise Refused(400, f"`{text}` is not a valid host and port", denied=False)
    number = int(port) if port else int(default_port or 0)
    if not 0 < number < 65536:
        raise Refused(400, f"`{text}` is not a valid port", denied=False)
    return name, number


def parse_absolute(target: str, scheme: str) -> tuple[str, int, str]:
    """Host, port and path of an absolute-form target such as `http://host/path?q`."""
    try:
        parts = urlsplit(target)
    except ValueError:
        raise Refused(400, f"`{target}` is not a valid URL", denied=False) from None
    if parts.scheme.lower() != scheme or parts.username or parts.password or "@" in parts.netloc:
        hint = " (https goes through CONNECT)" if scheme == "http" else ""
        raise Refused(400, f"expected an absolute {scheme}:// URL{hint}", denied=False)
    host, port = parse_authority(parts.netloc, 80 if scheme == "http" else 443)
    return host, port, (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def inner_path(head: RequestHead, host: str) -> str:
    """The path of a request inside a CONNECT to `host`; it may not name another host."""
    hosts = head.values("host")
    if len(hosts) > 1 or (hosts and parse_authority(hosts[0], 443)[0] != host):
        raise Refused(403, f"the Host header does not match the CONNECT host `{host}`")
    if head.target.startswith("/") or (head.target == "*" and head.method == "OPTIONS"):
        return head.target
    target_host, _, path = parse_absolute(head.target, "https")
    if target_host != host:
        raise Refused(403, f"the request names a host other than the CONNECT host `{host}`")
    return path


def body_framing(head: RequestHead) -> int | Literal["chunked"]:
    """Length of the request body, or `chunked`; refuses framing that two parsers could read
    differently (the classic request-smuggling openings)."""
    encodings, lengths = head.values("transfer-encoding"), set(head.values("content-length"))
    if encodings and lengths:
        raise Refused(400, "both Content-Length and Transfer-Encoding", denied=False)
    if encodings:
        if [value.strip().lower() for value in encodings] != ["chunked"]:
            raise Refused(501, "only chunked Transfer-Encoding is supported", denied=False)
        return "chunked"
    if len(lengths) > 1 or not all(value.isdigit() for value in lengths):
        raise Refused(400, "invalid Content-Length", denied=False)
    return int(lengths.pop()) if lengths else 0


def forward_head(head: RequestHead, path: str, host: str, port: int, *, tls: bool) -> bytes:
    tokens = ",".join(head.values("connection")).split(",")
    listed = {token.strip().lower() for token in tokens} - _FRAMING
    authority = f"[{host}]" if ":" in host else host
    if port != (443 if tls else 80):
        authority += f":{port}"
    lines = [f"{head.method} {path} HTTP/1.1", f"Host: {authority}"]
    for name, value in head.headers:
        if name.lower() not in NOT_FORWARDED and name.lower() not in listed:
            lines.append(f"{name}: {value}")
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def respond(writer: asyncio.StreamWriter, status: int, reason: str) -> None:
    body = f"egress proxy: {reason}\n".encode()
    head = (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    with contextlib.suppress(OSError, RuntimeError):
        writer.write(head.encode() + body)
        await writer.drain()


async def respond_established(writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
    await writer.drain()


async def _send(writer: asyncio.StreamWriter, data: bytes, traffic: Traffic, idle: float) -> None:
    writer.write(data)
    await asyncio.wait_for(writer.drain(), idle)
    traffic.bytes += len(data)
    traffic.last = time.monotonic()


async def _copy(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    traffic: Traffic,
    idle: float,
    size: int | None,
) -> None:
    """Copy `size` bytes (None: until EOF), giving up once neither direction moved for `idle`."""
    while size is None or size > 0:
        want = CHUNK if size is None else min(size, CHUNK)
        try:
            data = await asyncio.wait_for(reader.read(want), idle)
        except TimeoutError:
            if time.monotonic() - traffic.last < idle:
                continue
            raise
        if not data:
            if size is None:
                return
            raise asyncio.IncompleteReadError(b"", size)
        await _send(writer, data, traffic, idle)
        size = None if size is None else size - len(data)


async def _relay_chunked(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, traffic: Traffic, idle: float
) -> None:
    while True:
        line = await asyncio.wait_for(reader.readuntil(b"\r\n"), idle)
        size = _CHUNK_SIZE.match(line)
        if size is None:
            raise ValueError("malformed chunk size line")
        await _send(writer, line, traffic, idle)
        if int(size.group(1), 16) == 0:
            break
        await _copy(reader, writer, traffic, idle, int(size.group(1), 16))
        if await asyncio.wait_for(reader.readexactly(2), idle) != b"\r\n":
            raise ValueError("chunk not followed by CRLF")
        await _send(writer, b"\r\n", traffic, idle)
    while (line := await asyncio.wait_for(reader.readuntil(b"\r\n"), idle)) != b"\r\n":
        await _send(writer, line, traffic, idle)  # trailer fields
    await _send(writer, line, traffic, idle)


async def _relay_response(
    upstream: asyncio.StreamReader, client: asyncio.StreamWriter, traffic: Traffic, idle: float
) -> int:
    """Relay interim (1xx) heads and the final response; returns the final status."""
    while True:
        head = await asyncio.wait_for(upstream.readuntil(b"\r\n\r\n"), idle)
        status = _STATUS_LINE.match(head)
        if status is None:
            raise ValueError("malformed response status line")
        code = int(status.group(1))
        if not 100 <= code < 200:
            break
        await _send(client, head, traffic, idle)
    # One request per connection: tell the client so, whatever the upstream said.
    status_line, *fields = head[:-4].split(b"\r\n")
    kept = [f for f in fields if f.split(b":")[0].strip().lower().decode() not in HOP_BY_HOP]
    final = b"\r\n".join([status_line, *kept, b"Connection: close", b"", b""])
    await _send(client, final, traffic, idle)
    await _copy(upstream, client, traffic, idle, None)
    return code


async def exchange(
    framing: int | Literal["chunked"],
    client: Streams,
    upstream: Streams,
    traffic: Traffic,
    idle: float,
) -> int:
    """Relay the request body and the response at once (so `Expect: 100-continue` and early
    answers work); returns the upstream's status. The request head is already sent."""
    if framing == "chunked":
        body = _relay_chunked(client.reader, upstream.writer, traffic, idle)
    else:
        body = _copy(client.reader, upstream.writer, traffic, idle, framing)
    sending = asyncio.ensure_future(body)
    response = asyncio.ensure_future(_relay_response(upstream.reader, client.writer, traffic, idle))
    try:
        done, _ = await asyncio.wait({sending, response}, return_when=asyncio.FIRST_COMPLETED)
        if response not in done:
            sending.result()
        return await response
    finally:
        sending.cancel()
        response.cancel()
        await asyncio.gather(sending, response, return_exceptions=True)


async def splice(client: Streams, upstream: Streams, traffic: Traffic, idle: float) -> None:
    """Bytes both ways until both sides are done, either fails, or nothing moves for `idle`."""

    async def one_way(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _copy(reader, writer, traffic, idle, None)
        if writer.can_write_eof():
            writer.write_eof()

    directions = {
        asyncio.ensure_future(one_way(client.reader, upstream.writer)),
        asyncio.ensure_future(one_way(upstream.reader, client.writer)),
    }
    try:
        done, pending = await asyncio.wait(directions, return_when=asyncio.FIRST_COMPLETED)
        if pending and all(task.exception() is None for task in done):
            await asyncio.wait(pending)
    finally:
        for task in directions:
            task.cancel()
        await asyncio.gather(*directions, return_exceptions=True)
