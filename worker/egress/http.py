"""HTTP/1.1 for the egress proxy, on h11: nothing is forwarded as the client framed it.

Every request and response is parsed into events by h11 and written out again by h11 (heads,
chunks, trailers), so what reaches the other side is canonical whatever the sender wrote.
h11 tolerates a few things a request-smuggling attempt relies on (bare LF line ends, obs-fold
continuation lines, Content-Length together with Transfer-Encoding): request heads are checked
for those before h11 reads them, and refused with 400.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import NamedTuple, TypeVar
from urllib.parse import urlsplit

import h11

from worker.egress.policy import normalize_host

HEAD_LIMIT = 64 * 1024
HEAD_TIMEOUT = 30.0
"""Seconds a client may take to send a request head."""
CHUNK = 64 * 1024
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "proxy-authorization", "proxy-authenticate",
     "te", "upgrade", "host"}
)  # fmt: skip
"""Headers that end at the proxy (`host` is rewritten from the target)."""
NOT_IN_TRAILERS = frozenset({"content-length", "transfer-encoding", "trailer"}) | HOP_BY_HOP
_HEAD_END = re.compile(rb"\n\r?\n")
_HOST_LINE = re.compile(rb"\r\nhost[ \t]*:", re.IGNORECASE)
_BAD_LINE_ENDS = re.compile(rb"(?<!\r)\n|\r(?!\n)|\r\n[ \t]")
T = TypeVar("T")
RELAY_ERRORS = (OSError, TimeoutError, h11.ProtocolError, asyncio.IncompleteReadError)
"""What ends a relay early: the connection is then closed, and the request recorded as such."""


async def within(awaitable: Awaitable[T], seconds: float) -> T:
    """`asyncio.wait_for` without its Python 3.11 flaw: a cancellation that arrives as the
    awaited thing completes is swallowed (gh-86296), and a cut connection would live on."""
    async with asyncio.timeout(seconds):
        return await awaitable


class Refused(Exception):
    """Answer the client with `status` and `reason`. `tried`: the request was allowed and the
    proxy tried to forward it (the upstream failed), so it stays allowed in the log."""

    def __init__(self, status: int, reason: str, *, tried: bool = False) -> None:
        super().__init__(reason)
        self.status, self.reason, self.tried = status, reason, tried


class Malformed(Refused):
    """A request the proxy could not parse; `raw` is its first line as received, for the log."""

    def __init__(self, status: int, reason: str, raw: str) -> None:
        super().__init__(status, reason)
        self.raw = raw


class UpstreamBroken(Refused):
    """The upstream's HTTP could not be read (or it closed mid-message): 502, still allowed."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(status, reason, tried=True)


class Streams(NamedTuple):
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter


@dataclass
class Traffic:
    """Bytes moved, and when last, across both directions of one exchange."""

    bytes: int = 0
    last: float = field(default_factory=time.monotonic)

    def moved(self, count: int) -> None:
        self.bytes += count
        self.last = time.monotonic()


def printable(raw: bytes, limit: int = 200) -> str:
    """`raw` as text safe for a log line and a Markdown code span."""
    text = raw[:limit].decode("latin-1")
    text = "".join(c if " " <= c <= "~" and c != "`" else f"\\x{ord(c):02x}" for c in text)
    return text + ("…" if len(raw) > limit else "")


def check_head(buffered: bytes) -> None:
    """Refuse a request head (the start of `buffered`) with line ends or folding that h11
    would accept and another parser could read differently."""
    end = _HEAD_END.search(buffered)
    head = buffered[: end.end()] if end else buffered.removesuffix(b"\r")
    if _BAD_LINE_ENDS.search(head):
        raw = printable(head.split(b"\n", 1)[0].rstrip(b"\r"))
        raise Malformed(400, "malformed request head (bare LF, bare CR or obs-fold)", raw)
    if end is None and len(buffered) > HEAD_LIMIT:
        raise Malformed(431, f"request head larger than {HEAD_LIMIT} bytes", printable(head))


def header(event: h11.Request | h11.Response, name: bytes) -> list[bytes]:
    return [value for key, value in event.headers if key == name]


def check_framing(request: h11.Request) -> None:
    """h11 lets Transfer-Encoding win over Content-Length; the proxy refuses the pair."""
    if header(request, b"transfer-encoding") and header(request, b"content-length"):
        raise Refused(400, "both Content-Length and Transfer-Encoding")


class Side:
    """One h11 connection over one stream pair: the client's (`h11.SERVER`, we answer it) or an
    upstream's (`h11.CLIENT`)."""

    def __init__(self, role: type[h11.SERVER] | type[h11.CLIENT], streams: Streams) -> None:
        self.h11 = h11.Connection(role, max_incomplete_event_size=HEAD_LIMIT)
        self.streams = streams
        self.traffic = Traffic()
        self._head = b""
        self._held = b""

    async def next_event(self, timeout: float, *, whole: bool = False) -> object:
        """The next event; a request head is checked by `check_head` first. `timeout` is the
        idle limit: it only fires once no byte moved on this side's exchange for that long;
        `whole`: it bounds the whole event however its bytes drip in (a request head)."""
        deadline = asyncio.get_running_loop().time() + timeout if whole else None
        while True:
            if self.h11.our_role is h11.SERVER and self.h11.their_state is h11.IDLE:
                buffered = self.h11.trailing_data[0]
                self._head = buffered
                check_head(buffered)
                self._host_for_connect(buffered)
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as error:
                if self.h11.our_role is h11.CLIENT:
                    raise UpstreamBroken(502, f"bad response from upstream: {error}") from None
                status = error.error_status_hint
                raise Malformed(status, f"malformed request: {error}", self.first_line) from None
            if event is not h11.NEED_DATA:
                return event
            self.h11.receive_data(await self._read(timeout, deadline))

    def _host_for_connect(self, buffered: bytes) -> None:
        """h11 requires Host in HTTP/1.1; a CONNECT names its host in the target, and clients
        often leave Host out: give it the target as Host (before h11 read a byte of it)."""
        end = _HEAD_END.search(buffered)
        if end is None or not buffered.startswith(b"CONNECT "):
            return
        line, _, rest = buffered.partition(b"\r\n")
        if _HOST_LINE.search(b"\r\n" + rest[: end.end()]):
            return
        target = line.split(b" ")[1] if line.count(b" ") == 2 else b""
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=HEAD_LIMIT)
        self.h11.receive_data(line + b"\r\nHost: " + target + b"\r\n" + rest)

    @property
    def first_line(self) -> str:
        """The first line of the last request head as received, for the log."""
        return printable(self._head[:512].split(b"\n", 1)[0].rstrip(b"\r"))

    async def _read(self, timeout: float, deadline: float | None) -> bytes:
        while True:
            wait = timeout if deadline is None else deadline - asyncio.get_running_loop().time()
            try:
                return await within(self.streams.reader.read(CHUNK), wait)
            except TimeoutError:
                if deadline is not None or time.monotonic() - self.traffic.last >= timeout:
                    raise

    async def send(
        self, event: h11.Event, timeout: float, *, counted: bool = True, hold: bool = False
    ) -> None:
        """Write `event`; `hold` keeps it for the next write (a response head goes out with
        its first body bytes: one segment, one wake-up of the reader)."""
        data = self._held + (self.h11.send(event) or b"")
        self._held = data if hold else b""
        if data and not hold:
            writer = self.streams.writer
            writer.write(data)
            if writer.transport.get_write_buffer_size() > CHUNK:  # else drain would not wait
                await within(writer.drain(), timeout)
            if counted:
                self.traffic.moved(len(data))

    @property
    def reusable(self) -> bool:
        return self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE


def answer(status: int, reason: str, *, close: bool = True) -> tuple[h11.Response, h11.Data]:
    """The proxy's own plain-text answer, e.g. a 403 saying which setting refused the request."""
    body = f"egress proxy: {reason}\n".encode()
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
    if close:
        headers.append(("Connection", "close"))
    phrase = HTTPStatus(status).phrase.encode()
    return h11.Response(status_code=status, headers=headers, reason=phrase), h11.Data(data=body)


async def respond(side: Side, status: int, reason: str, timeout: float = 10.0) -> None:
    """Answer on `side` and have it closed; a write that fails is the client's problem. A head
    h11 never parsed gets the same answer written out as HTTP/1.1."""
    if status == 0:  # inside a tunnel already answered: closing is all that is left
        return
    head, body = answer(status, reason)
    try:
        if side.h11.our_state is h11.SEND_RESPONSE:
            for event in (head, body, h11.EndOfMessage()):
                await side.send(event, timeout, counted=False)
            return
        if side.h11.our_state is not h11.IDLE:
            return
        lines = [f"HTTP/1.1 {status} {head.reason.decode()}"]
        lines += [f"{name.decode()}: {value.decode()}" for name, value in head.headers.raw_items()]
        side.streams.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body.data)
        await within(side.streams.writer.drain(), timeout)
    except (*RELAY_ERRORS, RuntimeError):
        pass


def parse_authority(text: str, default_port: int | None) -> tuple[str, int]:
    """`host:port` (or `[v6]:port`) as in CONNECT and Host."""
    host, port = text, ""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":")
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    name = normalize_host(host)
    digits = port.isascii() and port.isdigit()
    if name is None or not (digits or (not port and default_port)):
        raise Refused(400, f"`{text}` is not a valid host and port")
    number = int(port) if port else int(default_port or 0)
    if not 0 < number < 65536:
        raise Refused(400, f"`{text}` is not a valid port")
    return name, number


def parse_absolute(target: str, scheme: str) -> tuple[str, int, str]:
    """Host, port and path of an absolute-form target such as `http://host/path?q`."""
    try:
        parts = urlsplit(target)
    except ValueError:
        raise Refused(400, f"`{target}` is not a valid URL") from None
    if parts.scheme.lower() != scheme or parts.username or parts.password or "@" in parts.netloc:
        hint = " (https goes through CONNECT)" if scheme == "http" else ""
        raise Refused(400, f"expected an absolute {scheme}:// URL{hint}")
    host, port = parse_authority(parts.netloc, 80 if scheme == "http" else 443)
    return host, port, (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def inner_path(request: h11.Request, host: str) -> str:
    """The path of a request inside a CONNECT to `host`; it may not name another host."""
    hosts = header(request, b"host")
    named = [parse_authority(value.decode("latin-1"), 443)[0] for value in hosts]
    if len(hosts) != 1 or named[0] != host:
        raise Refused(403, f"the Host header does not match the CONNECT host `{host}`")
    target = request.target.decode("latin-1")
    if target.startswith("/") or (target == "*" and request.method == b"OPTIONS"):
        return target
    target_host, _, path = parse_absolute(target, "https")
    if target_host != host:
        raise Refused(403, f"the request names a host other than the CONNECT host `{host}`")
    return path


def upstream_request(
    request: h11.Request, path: str, host: str, port: int, *, tls: bool, close: bool
) -> h11.Request:
    """The request as the proxy sends it upstream: our Host, no hop-by-hop headers."""
    listed = {token.strip().lower() for value in header(request, b"connection")
              for token in value.decode("latin-1").split(",")}  # fmt: skip
    authority = f"[{host}]" if ":" in host else host
    if port != (443 if tls else 80):
        authority += f":{port}"
    headers: list[tuple[bytes, bytes]] = [(b"Host", authority.encode())]
    dropped = HOP_BY_HOP | (listed - {"content-length", "transfer-encoding"})
    headers += forwarded_headers(request.headers, frozenset(dropped))
    if close:
        headers.append((b"Connection", b"close"))
    return h11.Request(method=request.method, target=path.encode(), headers=headers)


def forwarded_headers(
    headers: h11._headers.Headers, dropped: frozenset[str] = HOP_BY_HOP
) -> list[tuple[bytes, bytes]]:
    return [(n, v) for n, v in headers.raw_items() if n.lower().decode("latin-1") not in dropped]
