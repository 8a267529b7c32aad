"""The egress proxy's HTTP/1.1 on the wire, over real loopback sockets: kept-alive connections
with a decision per request, one reused upstream connection, trailers re-serialized, and framing
that two parsers could read differently refused with 400 and logged as refused."""

from __future__ import annotations

import http.client
import logging
import socket
import ssl
import threading
from collections.abc import Iterator

import pytest

from tests.egress_helpers import ALLOWLIST, ON, Running, recorded
from tests.fakes.internet import Internet
from worker.egress.certs import CertificateAuthority
from worker.egress.policy import Request
from worker.egress.proxy import EgressProxy
from worker.egress.service import egress_line


@pytest.fixture(scope="module")
def proxy_ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority.load_or_create(tmp_path_factory.mktemp("proxy-ca"))


class RawUpstream:
    """An upstream that keeps the exact bytes it received and answers with a chunked response
    carrying a trailer, to see what the proxy writes on both sides."""

    RESPONSE = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n"
        b"5\r\nhello\r\n0\r\nX-Checksum: abc\r\n\r\n"
    )

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                data = b""
                while not (b"\r\n0\r\n" in data and data.endswith(b"\r\n\r\n")):
                    more = conn.recv(65536)
                    if not more:
                        break
                    data += more
                self.received.append(data)
                conn.sendall(self.RESPONSE)


@pytest.fixture
def proxy(internet: Internet, proxy_ca: CertificateAuthority) -> Iterator[Running]:
    internet.seen.clear()
    running = Running(EgressProxy(proxy_ca, hosts=internet.hosts, upstream_ca=internet.ca_file))
    yield running
    running.stop()


def exchange(proxy: Running, data: bytes) -> bytes:
    """Raw bytes to the proxy, and everything it answers until it closes."""
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as raw:
        raw.sendall(data)
        return b"".join(iter(lambda: raw.recv(65536), b""))


def test_several_requests_on_one_connection_are_each_decided_and_share_one_upstream(
    proxy: Running, internet: Internet
) -> None:
    records = proxy.register(ALLOWLIST)
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
    try:
        for path in ("/one", "/two", "/three"):
            conn.request("GET", f"http://allowed.example{path}")
            response = conn.getresponse()
            assert response.status == 200
            assert response.read() == f"http allowed.example GET {path} 0".encode()
        conn.request("POST", "http://allowed.example/four", body=b"x")
        response = conn.getresponse()
        assert response.status == 403 and b"network.methods" in response.read()
    finally:
        conn.close()
    assert [seen.path for seen in internet.seen] == ["/one", "/two", "/three"]
    assert len({seen.connection for seen in internet.seen}) == 1  # one upstream connection
    assert all(r.bytes > 0 for r in records[:3])  # each request's own bytes
    verdicts = [(r.method, r.path, r.allowed) for r in recorded(records, 4)]
    assert verdicts == [
        ("GET", "/one", True), ("GET", "/two", True), ("GET", "/three", True),
        ("POST", "/four", False),
    ]  # fmt: skip


def test_several_requests_in_one_decrypted_tunnel_reuse_one_upstream_connection(
    proxy: Running, internet: Internet, proxy_ca: CertificateAuthority
) -> None:
    records = proxy.register(ALLOWLIST)
    context = ssl.create_default_context(cadata=proxy_ca.cert_pem.decode())
    conn = http.client.HTTPSConnection("127.0.0.1", proxy.port, context=context, timeout=5)
    conn.set_tunnel("tls.allowed.example", 443)
    try:
        for path in ("/a", "/b", "/c"):
            conn.request("GET", path)
            assert conn.getresponse().read() == f"https tls.allowed.example GET {path} 0".encode()
    finally:
        conn.close()
    assert [seen.path for seen in internet.seen] == ["/a", "/b", "/c"]
    assert len({seen.connection for seen in internet.seen}) == 1
    assert [(r.path, r.allowed, r.status) for r in recorded(records, 3)] == [
        ("/a", True, 200), ("/b", True, 200), ("/c", True, 200),
    ]  # fmt: skip


MALFORMED = {
    "a Unicode digit as Content-Length": (
        "POST http://allowed.example/sup HTTP/1.1\r\nHost: allowed.example\r\n"
        "Content-Length: ²\r\n\r\nx"
    ).encode(),
    "Content-Length and Transfer-Encoding": (
        b"POST http://allowed.example/clte HTTP/1.1\r\nHost: allowed.example\r\n"
        b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    ),
    "bare LF line ends": b"GET http://allowed.example/lf HTTP/1.1\nHost: allowed.example\n\n",
    "an obs-fold header": (
        b"GET http://allowed.example/fold HTTP/1.1\r\nHost: allowed.example\r\n"
        b"X-A: 1\r\n  Transfer-Encoding: chunked\r\n\r\n"
    ),
    "a chunk extension with a bare LF": (
        b"POST http://allowed.example/ext HTTP/1.1\r\nHost: allowed.example\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n3;x=\nGET /smuggled HTTP/1.1\r\nabc\r\n0\r\n\r\n"
    ),
}


@pytest.mark.parametrize("what", MALFORMED)
def test_ambiguous_framing_is_400_never_forwarded_and_recorded_as_refused(
    proxy: Running, internet: Internet, caplog: pytest.LogCaptureFixture, what: str
) -> None:
    records = proxy.register(ON)
    caplog.set_level(logging.INFO, "worker.egress.proxy")
    reply = exchange(proxy, MALFORMED[what])
    assert reply.startswith(b"HTTP/1.1 400"), reply
    assert [seen.path for seen in internet.seen] == []
    [record] = recorded(records, 1)
    assert not record.allowed and record.status is None
    assert "allowed.example" in f"{record.host}{record.path}"  # the raw target, for the log
    logged = [r.getMessage() for r in caplog.records if "denied" in r.getMessage()]
    assert any("allowed.example" in line for line in logged), logged
    what_line, line = egress_line(record)
    assert "REFUSED" in line and "allowed.example" in what_line


def test_trailers_are_forwarded_as_fields_not_bytes(proxy_ca: CertificateAuthority) -> None:
    upstream = RawUpstream()
    running = Running(EgressProxy(proxy_ca, hosts={"raw.example": f"127.0.0.1:{upstream.port}"}))
    try:
        records = running.register(ON)
        reply = exchange(
            running,
            b"POST http://raw.example/t HTTP/1.1\r\nHost: raw.example\r\nConnection: close\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n3;name=value\r\nabc\r\n0\r\nX-Sum: 1\n\r\n",
        )
    finally:
        running.stop()
        upstream.server.close()
    [sent] = upstream.received
    head, _, body = sent.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head
    assert body == b"3\r\nabc\r\n0\r\nX-Sum: 1\r\n\r\n"  # no extension, the bare LF is gone
    assert reply.endswith(b"5\r\nhello\r\n0\r\nX-Checksum: abc\r\n\r\n")
    [record] = recorded(records, 1)
    assert record.allowed and record.status == 200


def test_an_unknown_request_line_is_logged_with_what_was_sent(proxy: Running) -> None:
    records = proxy.register(ON)
    reply = exchange(proxy, b"GET http://allowed.example/\x01odd HTTP/1.1\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 400")
    [record] = recorded(records, 1)
    assert not record.allowed and record.path == "GET http://allowed.example/\\x01odd HTTP/1.1"


def test_a_refused_request_in_the_log_line_says_refused(proxy: Running) -> None:
    request = Request(0.0, "?", "", 0, "GET http://x.example/ HTTP/1.1", False, "bad", None, 0)
    what, line = egress_line(request)
    assert what == "? GET http://x.example/ HTTP/1.1"
    assert "REFUSED" in line and line.endswith(": bad")


def test_an_upstream_that_answers_garbage_is_502_and_stays_allowed(
    proxy_ca: CertificateAuthority,
) -> None:
    """The request was allowed and forwarded: the log must not call it refused."""
    server = socket.create_server(("127.0.0.1", 0))

    def garbage() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/9 what\r\n\r\n")

    threading.Thread(target=garbage, daemon=True).start()
    port = server.getsockname()[1]
    running = Running(EgressProxy(proxy_ca, hosts={"raw.example": f"127.0.0.1:{port}"}))
    try:
        records = running.register(ON)
        reply = exchange(running, b"GET http://raw.example/ HTTP/1.1\r\nHost: raw.example\r\n\r\n")
    finally:
        running.stop()
        server.close()
    assert reply.startswith(b"HTTP/1.1 502") and b"bad response from upstream" in reply
    [record] = recorded(records, 1)
    assert record.allowed and record.status is None and "bad response" in record.reason
