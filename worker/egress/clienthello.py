"""The server name a TLS client asks for, read from its ClientHello before any byte goes upstream.

In `network.agent: on` the proxy splices CONNECT tunnels without decrypting them, and the only
name it can check is the SNI in the client's first flight: a client that CONNECTs to one host and
asks the TLS server for another (domain fronting on a shared CDN) is refused. The parser is a
pure function over bytes (RFC 8446 4.1.2 and RFC 6066 3), so it is tested with plain data.
"""

from __future__ import annotations

from dataclasses import dataclass

HELLO_LIMIT = 64 * 1024
"""A ClientHello larger than this (post-quantum key shares are ~1.2 kB) is refused."""
_HANDSHAKE, _CLIENT_HELLO, _SERVER_NAME, _HOST_NAME = 0x16, 0x01, 0x0000, 0x00


class NotClientHello(ValueError):
    """The bytes are not a well-formed TLS ClientHello; the message says what is wrong."""


@dataclass(frozen=True)
class ClientHello:
    server_name: str | None
    """The SNI host name (lower case), None when the client sent none."""
    size: int
    """Bytes of the TLS records that carried the hello, to forward as they are."""


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, count: int) -> bytes:
        if self.at + count > len(self.data):
            raise NotClientHello("truncated ClientHello")
        piece = self.data[self.at : self.at + count]
        self.at += count
        return piece

    def number(self, width: int) -> int:
        return int.from_bytes(self.take(width), "big")

    def vector(self, width: int) -> _Reader:
        return _Reader(self.take(self.number(width)))

    @property
    def done(self) -> bool:
        return self.at == len(self.data)


def _handshake_bytes(data: bytes) -> tuple[bytes, int] | None:
    """The handshake layer carried by the leading TLS records, once it holds one whole message;
    with the number of record bytes it took. None: more bytes needed."""
    message, at = b"", 0
    while True:
        if len(message) >= 4 and len(message) >= 4 + int.from_bytes(message[1:4], "big"):
            return message, at
        if len(data) < at + 5:
            return None
        if data[at] != _HANDSHAKE or data[at + 1] != 0x03:
            raise NotClientHello("not a TLS handshake record")
        length = int.from_bytes(data[at + 3 : at + 5], "big")
        if length == 0 or length > 2**14 + 256:
            raise NotClientHello(f"TLS record length {length} is invalid")
        if len(data) < at + 5 + length:
            return None
        message += data[at + 5 : at + 5 + length]
        at += 5 + length
        if at > HELLO_LIMIT:
            raise NotClientHello(f"ClientHello larger than {HELLO_LIMIT} bytes")


def _server_name(extension: _Reader) -> str:
    names = extension.vector(2)
    while not names.done:
        kind, name = names.number(1), names.vector(2)
        if kind == _HOST_NAME:
            try:
                return name.data.decode("ascii").lower()
            except UnicodeDecodeError:
                raise NotClientHello("SNI host name is not ASCII") from None
    raise NotClientHello("server_name extension without a host name")


def parse_client_hello(data: bytes) -> ClientHello | None:
    """The ClientHello at the start of `data`, None when more bytes are needed; raises
    `NotClientHello` for anything else (plain text, another handshake message, bad lengths)."""
    found = _handshake_bytes(data)
    if found is None:
        return None
    message, size = found
    if message[0] != _CLIENT_HELLO:
        raise NotClientHello("the first handshake message is not a ClientHello")
    hello = _Reader(message[4 : 4 + int.from_bytes(message[1:4], "big")])
    hello.take(2 + 32)  # legacy_version, random
    hello.vector(1)  # legacy_session_id
    hello.vector(2)  # cipher_suites
    hello.vector(1)  # legacy_compression_methods
    if hello.done:
        return ClientHello(None, size)  # no extensions at all
    extensions, names = hello.vector(2), []
    while not extensions.done:
        kind, body = extensions.number(2), extensions.vector(2)
        if kind == _SERVER_NAME:
            names.append(_server_name(body))
    if len(names) > 1:
        raise NotClientHello("more than one server_name extension")
    return ClientHello(names[0] if names else None, size)
