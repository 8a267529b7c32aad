"""Domain fronting through the egress proxy: the server name a TLS client asks for must be the
host it CONNECTed to. The ClientHello parser on plain bytes, then the proxy on loopback."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator

import pytest

from tests.egress_helpers import ON, Running, https, recorded
from tests.fakes.internet import Internet
from worker.egress.certs import CertificateAuthority
from worker.egress.clienthello import NotClientHello, parse_client_hello
from worker.egress.policy import NetworkPolicy
from worker.egress.proxy import EgressProxy


def client_hello(server_name: str | None) -> bytes:
    """The first flight of Python's own TLS client, as a sandbox's tools would send it."""
    context = ssl.create_default_context()
    if server_name is None:
        context.check_hostname = False
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=server_name)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def test_the_server_name_is_read_from_a_real_client_hello() -> None:
    data = client_hello("Files.Example.org")
    hello = parse_client_hello(data + b"more")
    assert hello is not None
    assert (hello.server_name, hello.size) == ("files.example.org", len(data))


def test_a_hello_without_server_name() -> None:
    hello = parse_client_hello(client_hello(None))
    assert hello is not None and hello.server_name is None


def test_a_partial_hello_asks_for_more() -> None:
    data = client_hello("files.example.org")
    assert all(parse_client_hello(data[:cut]) is None for cut in (0, 3, 5, 40, len(data) - 1))


def test_a_hello_split_across_records_is_read() -> None:
    data = client_hello("split.example.org")
    body = data[5:]
    first, second = body[:50], body[50:]
    split = b"\x16\x03\x01" + len(first).to_bytes(2, "big") + first
    split += b"\x16\x03\x01" + len(second).to_bytes(2, "big") + second
    hello = parse_client_hello(split)
    assert hello is not None and hello.server_name == "split.example.org"


@pytest.mark.parametrize(
    "data",
    [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\x16\x03\x01\x00\x00",
     b"\x16\x03\x01\x00\x05\x02\x00\x00\x01\x00", b"\x16\x03\x01\x00\x06\x01\x00\x00\x02\x03\x03"],
)  # fmt: skip
def test_what_is_not_a_client_hello_is_refused(data: bytes) -> None:
    with pytest.raises(NotClientHello):
        parse_client_hello(data)


def built_hello(*extensions: bytes) -> bytes:
    """A minimal ClientHello record with `extensions`, built by hand."""
    body = b"\x03\x03" + bytes(32) + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00"
    joined = b"".join(extensions)
    body += len(joined).to_bytes(2, "big") + joined
    handshake = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + len(handshake).to_bytes(2, "big") + handshake


def sni(name: str) -> bytes:
    entry = b"\x00" + len(name).to_bytes(2, "big") + name.encode()
    names = len(entry).to_bytes(2, "big") + entry
    return b"\x00\x00" + len(names).to_bytes(2, "big") + names


def test_a_hand_built_hello_reads_like_a_real_one() -> None:
    hello = parse_client_hello(built_hello(b"\x00\x17\x00\x00", sni("b.example.org")))
    assert hello is not None and hello.server_name == "b.example.org"


def test_two_server_name_extensions_are_refused() -> None:
    """Two names, and a parser that reads the other one than the server does, is fronting."""
    with pytest.raises(NotClientHello, match="more than one"):
        parse_client_hello(built_hello(sni("allowed.example"), sni("denied.example")))


@pytest.fixture(scope="module")
def proxy_ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority.load_or_create(tmp_path_factory.mktemp("proxy-ca"))


@pytest.fixture
def proxy(internet: Internet, proxy_ca: CertificateAuthority) -> Iterator[Running]:
    internet.seen.clear()
    running = Running(EgressProxy(proxy_ca, hosts=internet.hosts, upstream_ca=internet.ca_file))
    yield running
    running.stop()


def fronted(proxy: Running, trust: bytes, connect: str, server_name: str) -> bytes:
    """CONNECT to `connect`, then a TLS handshake asking for `server_name` (the certificate
    unchecked, as a hostile client would) and a request for it; what comes back."""
    context = ssl.create_default_context(cadata=trust.decode())
    context.check_hostname = False
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as raw:
        raw.sendall(f"CONNECT {connect}:443 HTTP/1.1\r\nHost: {connect}:443\r\n\r\n".encode())
        assert raw.recv(1024).startswith(b"HTTP/1.1 200")
        with context.wrap_socket(raw, server_hostname=server_name) as tls:
            tls.sendall(f"GET / HTTP/1.1\r\nHost: {server_name}\r\n\r\n".encode())
            return b"".join(iter(lambda: tls.recv(65536), b""))


def test_on_mode_refuses_a_server_name_other_than_the_connect_host(
    proxy: Running, internet: Internet
) -> None:
    records = proxy.register(ON)
    with pytest.raises((ssl.SSLError, OSError)):
        fronted(proxy, internet.ca.cert_pem, "tls.allowed.example", "tls.denied.example")
    assert internet.seen == []
    [record] = recorded(records, 1)
    assert (record.method, record.host, record.allowed) == ("CONNECT", "tls.allowed.example", False)
    assert "`tls.denied.example` differs from the CONNECT host" in record.reason
    assert record.bytes == 0  # not one byte went upstream


def test_on_mode_splices_a_matching_server_name(proxy: Running, internet: Internet) -> None:
    records = proxy.register(ON)
    status, body, _ = https(proxy, "tls.allowed.example", internet.ca.cert_pem)
    assert (status, body) == (200, b"https tls.allowed.example GET / 0")
    [record] = recorded(records, 1)
    assert record.allowed and "TLS server name `tls.allowed.example`" in record.reason


def test_allowlist_refuses_a_host_header_other_than_the_connect_host_even_if_allowed(
    proxy: Running, internet: Internet, proxy_ca: CertificateAuthority
) -> None:
    """Fronting one allowed name through another's tunnel is refused too: the log must say
    where each request went. The client asks for the other name in its SNI as well."""
    both = ("tls.allowed.example", "tls.denied.example")
    records = proxy.register(NetworkPolicy("allowlist", both, ("*",)))
    reply = fronted(proxy, proxy_ca.cert_pem, "tls.allowed.example", "tls.denied.example")
    assert reply.startswith(b"HTTP/1.1 403") and b"CONNECT host" in reply
    assert internet.seen == []
    [record] = recorded(records, 1)
    assert not record.allowed and "Host header" in record.reason


def test_bytes_sent_before_the_tunnel_is_established_are_refused(
    proxy: Running, internet: Internet
) -> None:
    """They would reach neither the TLS layer nor the log: refused, and recorded."""
    records = proxy.register(NetworkPolicy("allowlist", ("tls.allowed.example",)))
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as raw:
        raw.sendall(b"CONNECT tls.allowed.example:443 HTTP/1.1\r\n\r\n\x16\x03\x01early")
        reply = b"".join(iter(lambda: raw.recv(65536), b""))
    assert reply.startswith(b"HTTP/1.1 400") and b"before the tunnel" in reply
    [record] = recorded(records, 1)
    assert (record.method, record.allowed) == ("CONNECT", False)
