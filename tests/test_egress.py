"""The egress proxy over real loopback sockets: a sandbox's view (plain `http.client` through the
proxy) and the upstream's view (what actually arrived), plus the pure policy rules."""

from __future__ import annotations

import http.client
import logging
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from tests.egress_helpers import ALLOWLIST, ON, Running, get, https, recorded
from tests.fakes.internet import Internet
from worker.egress.certs import CertificateAuthority
from worker.egress.policy import (
    NetworkPolicy,
    address_allowed,
    decide,
    decide_connect,
    host_allowed,
    needs_interception,
)
from worker.egress.proxy import EgressProxy


@pytest.fixture(autouse=True)
def no_errors_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """One bad connection must never surface as an error in the worker's log."""
    yield
    logged = [*caplog.get_records("setup"), *caplog.get_records("call"), *caplog.records]
    assert [r.getMessage() for r in logged if r.levelno >= logging.ERROR] == []


@pytest.fixture(scope="module")
def proxy_ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority.load_or_create(tmp_path_factory.mktemp("proxy-ca"))


@pytest.fixture
def proxy(internet: Internet, proxy_ca: CertificateAuthority) -> Iterator[Running]:
    internet.seen.clear()
    running = Running(EgressProxy(proxy_ca, hosts=internet.hosts, upstream_ca=internet.ca_file))
    yield running
    running.stop()


def test_allowed_http_get_reaches_the_server(proxy: Running, internet: Internet) -> None:
    records = proxy.register(ALLOWLIST)
    status, body = get(proxy, "http://Allowed.Example./hello?x=1", {"Proxy-Authorization": "x"})
    assert (status, body) == (200, b"http allowed.example GET /hello?x=1 0")
    [seen] = internet.seen
    assert "Proxy-Authorization" not in seen.headers
    assert seen.headers["Connection"] == "close"
    [record] = recorded(records, 1)
    assert (record.method, record.host, record.port, record.path) == (
        "GET", "allowed.example", 80, "/hello?x=1",
    )  # fmt: skip
    assert record.allowed and record.status == 200 and record.bytes > len(body)


def test_denied_host_over_http_is_403_and_never_reaches_the_server(
    proxy: Running, internet: Internet
) -> None:
    records = proxy.register(ALLOWLIST)
    status, body = get(proxy, "http://denied.example/")
    assert status == 403
    assert b"denied.example" in body and b".github/codex.yml" in body
    assert internet.seen == []
    [record] = recorded(records, 1)
    assert not record.allowed and record.status is None and "network.allow" in record.reason


def test_allowed_https_get_is_intercepted_and_reaches_the_server(
    proxy: Running, internet: Internet, proxy_ca: CertificateAuthority
) -> None:
    records = proxy.register(ALLOWLIST)
    status, body, peer = https(proxy, "tls.allowed.example", proxy_ca.cert_pem, path="/a?b")
    assert (status, body) == (200, b"https tls.allowed.example GET /a?b 0")
    peer.verify_directly_issued_by(proxy_ca.cert)  # the client saw the proxy's leaf
    [record] = recorded(records, 1)
    assert (record.method, record.host, record.port, record.path) == (
        "GET", "tls.allowed.example", 443, "/a?b",
    )  # fmt: skip
    assert record.allowed and record.status == 200


def test_denied_method_over_https_is_403_while_get_passes(
    proxy: Running, internet: Internet, proxy_ca: CertificateAuthority
) -> None:
    records = proxy.register(ALLOWLIST)
    status, body, _ = https(proxy, "tls.allowed.example", proxy_ca.cert_pem, "POST", "/submit")
    assert status == 403
    assert b"POST" in body and b"network.methods" in body
    assert internet.seen == []
    status, _, _ = https(proxy, "tls.allowed.example", proxy_ca.cert_pem, "GET", "/read")
    assert status == 200
    assert [(seen.method, seen.path) for seen in internet.seen] == [("GET", "/read")]
    denied, allowed = recorded(records, 2)
    assert (denied.method, denied.path, denied.allowed) == ("POST", "/submit", False)
    assert (allowed.method, allowed.path, allowed.allowed) == ("GET", "/read", True)


def through_tunnel(proxy: Running, trust: bytes, host: str, data: bytes) -> bytes:
    """Raw bytes sent inside a CONNECT tunnel to `host`, and everything that comes back."""
    context = ssl.create_default_context(cadata=trust.decode())
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as raw:
        raw.sendall(f"CONNECT {host}:443 HTTP/1.1\r\n\r\n".encode())
        assert raw.recv(1024).startswith(b"HTTP/1.1 200")
        with context.wrap_socket(raw, server_hostname=host) as tls:
            tls.sendall(data)
            return b"".join(iter(lambda: tls.recv(65536), b""))


def test_a_request_pipelined_behind_an_allowed_one_is_not_forwarded(
    proxy: Running, internet: Internet, proxy_ca: CertificateAuthority
) -> None:
    proxy.register(ALLOWLIST)
    reply = through_tunnel(
        proxy, proxy_ca.cert_pem, "tls.allowed.example",
        b"GET /first HTTP/1.1\r\nHost: tls.allowed.example\r\n\r\n"
        b"POST /second HTTP/1.1\r\nHost: tls.allowed.example\r\nContent-Length: 0\r\n\r\n",
    )  # fmt: skip
    assert reply.startswith(b"HTTP/1.1 200") and b"Connection: close" in reply
    assert [(seen.method, seen.path) for seen in internet.seen] == [("GET", "/first")]


def test_an_intercepted_request_cannot_name_another_host(
    proxy: Running, internet: Internet, proxy_ca: CertificateAuthority
) -> None:
    """Domain fronting: an allowed CONNECT, then a Host header for a host that is not allowed."""
    records = proxy.register(ALLOWLIST)
    request = b"GET / HTTP/1.1\r\nHost: tls.denied.example\r\n\r\n"
    reply = through_tunnel(proxy, proxy_ca.cert_pem, "tls.allowed.example", request)
    assert reply.startswith(b"HTTP/1.1 403")
    assert internet.seen == []
    [record] = recorded(records, 1)
    assert not record.allowed and "Host header" in record.reason


def test_a_client_that_does_not_trust_the_proxy_ca_is_recorded(
    proxy: Running, internet: Internet
) -> None:
    records = proxy.register(ALLOWLIST)
    with pytest.raises(ssl.SSLCertVerificationError):
        https(proxy, "tls.allowed.example", internet.ca.cert_pem)
    [record] = recorded(records, 1)
    assert record.method == "CONNECT" and "trust" in record.reason
    assert internet.seen == []


def test_an_upstream_certificate_that_does_not_verify_is_502(
    internet: Internet, proxy_ca: CertificateAuthority
) -> None:
    running = Running(EgressProxy(proxy_ca, hosts=internet.hosts))  # no upstream_ca
    try:
        records = running.register(ALLOWLIST)
        status, body, _ = https(running, "tls.allowed.example", proxy_ca.cert_pem)
        assert status == 502 and b"certificate" in body
        [record] = recorded(records, 1)
        assert record.allowed and record.status is None and "certificate" in record.reason
    finally:
        running.stop()


def test_denied_host_over_connect_is_403_and_never_reaches_the_server(
    proxy: Running, internet: Internet, proxy_ca: CertificateAuthority
) -> None:
    records = proxy.register(ALLOWLIST)
    with pytest.raises(OSError, match="403"):
        https(proxy, "tls.denied.example", proxy_ca.cert_pem)
    assert internet.seen == []
    [record] = recorded(records, 1)
    assert (record.method, record.host, record.allowed) == ("CONNECT", "tls.denied.example", False)


def test_on_mode_tunnels_without_interception(proxy: Running, internet: Internet) -> None:
    records = proxy.register(ON)
    status, body, peer = https(proxy, "tls.denied.example", internet.ca.cert_pem, "POST", "/x")
    assert (status, body) == (200, b"https tls.denied.example POST /x 7")
    peer.verify_directly_issued_by(internet.ca.cert)  # the upstream's own certificate
    [record] = recorded(records, 1)
    assert (record.method, record.path, record.allowed, record.status) == (
        "CONNECT", None, True, None,
    )  # fmt: skip
    assert record.bytes > len(body)


def test_allowlist_with_every_method_is_intercepted_too(
    proxy: Running, internet: Internet, proxy_ca: CertificateAuthority
) -> None:
    """`methods: ['*']` used to mean an unread tunnel, in which any Host could hide (issue 11):
    `allowlist` now always decrypts, so each request is seen and recorded."""
    records = proxy.register(NetworkPolicy("allowlist", ("tls.allowed.example",), ("*",)))
    status, _, peer = https(proxy, "tls.allowed.example", proxy_ca.cert_pem, "POST")
    assert status == 200
    peer.verify_directly_issued_by(proxy_ca.cert)
    [record] = recorded(records, 1)
    assert (record.method, record.path, record.allowed) == ("POST", "/", True)


def test_unregistered_clients_are_refused(
    proxy: Running, internet: Internet, proxy_ca: CertificateAuthority
) -> None:
    records = proxy.register(ON, ip="127.0.0.1")
    with pytest.raises(OSError, match="403"):
        https(proxy, "tls.allowed.example", proxy_ca.cert_pem, source="127.0.0.2")
    proxy.unregister("127.0.0.1")
    assert get(proxy, "http://allowed.example/")[0] == 403
    assert internet.seen == [] and records == []


@pytest.mark.parametrize(
    "url",
    ["http://localhost/", "http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/",
     "http://[::ffff:127.0.0.1]/", "http://[fd00::1]/"],
)  # fmt: skip
def test_names_and_addresses_on_private_networks_are_refused(proxy: Running, url: str) -> None:
    records = proxy.register(ON)
    status, body = get(proxy, url)
    assert status == 403 and b"private network" in body
    [record] = recorded(records, 1)
    assert not record.allowed and record.status is None


def test_connect_to_a_private_address_is_refused(
    proxy: Running, proxy_ca: CertificateAuthority
) -> None:
    records = proxy.register(ON)
    with pytest.raises(OSError, match="403"):
        https(proxy, "10.0.0.1", proxy_ca.cert_pem)
    assert not recorded(records, 1)[0].allowed


@pytest.mark.parametrize("policy", [ALLOWLIST, ON])
def test_connect_to_a_port_other_than_443_is_refused(
    proxy: Running, internet: Internet, proxy_ca: CertificateAuthority, policy: NetworkPolicy
) -> None:
    records = proxy.register(policy)
    with pytest.raises(OSError, match="403"):
        https(proxy, "tls.allowed.example", proxy_ca.cert_pem, port=8443)
    assert internet.seen == []
    [record] = recorded(records, 1)
    assert (record.port, record.allowed) == (8443, False) and "443" in record.reason


def test_request_bodies_are_forwarded_in_on_mode(proxy: Running, internet: Internet) -> None:
    proxy.register(ON)
    status, body = get(proxy, "http://denied.example/up", method="POST", body=b"0123456789")
    assert (status, body) == (200, b"http denied.example POST /up 10")
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
    conn.request("POST", "http://denied.example/chunked", body=iter([b"abc", b"defg"]),
                 encode_chunked=True)  # fmt: skip
    assert conn.getresponse().read() == b"http denied.example POST /chunked 7"
    conn.close()
    assert [seen.body for seen in internet.seen] == [b"0123456789", b"abcdefg"]


def test_unregistering_cuts_open_tunnels(proxy: Running, internet: Internet) -> None:
    """A container's address may be reused by the next task: its tunnels must not outlive it."""
    proxy.register(ON)
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as raw:
        raw.sendall(b"CONNECT tls.allowed.example:443 HTTP/1.1\r\n\r\n")
        assert raw.recv(1024).startswith(b"HTTP/1.1 200")
        proxy.unregister("127.0.0.1")
        assert raw.recv(1024) == b""


def test_oversized_heads_and_garbage_do_not_hurt_the_server(proxy: Running) -> None:
    proxy.register(ON)
    for junk in (
        b"GET http://allowed.example/ HTTP/1.1\r\nX: " + b"a" * 70_000,
        b"\x00\xff\r\n\r\n",
    ):
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as raw:
            raw.sendall(junk)
            assert raw.recv(1024).startswith((b"HTTP/1.1 431", b"HTTP/1.1 400"))
    assert get(proxy, "http://allowed.example/")[0] == 200


def test_the_ca_is_created_once_with_a_private_key(tmp_path: Path) -> None:
    first = CertificateAuthority.load_or_create(tmp_path / "ca")
    again = CertificateAuthority.load_or_create(tmp_path / "ca")
    assert first.cert_pem == again.cert_pem
    assert (tmp_path / "ca" / "ca-key.pem").stat().st_mode & 0o777 == 0o600
    constraints = first.cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca
    assert first.leaf_context("a.example") is first.leaf_context("a.example")


# Pure rules


@pytest.mark.parametrize(
    ("host", "allowed"),
    [("allowed.example", True), ("ALLOWED.example.", True), ("a.b.allowed.example", True),
     ("api.allowed.example", True), ("allowed.example.evil", False), ("notallowed.example", False),
     ("other.example", False), ("", False), ("bad host", False)],
)  # fmt: skip
def test_host_matching(host: str, allowed: bool) -> None:
    assert host_allowed(ALLOWLIST, host) is allowed


def test_a_wildcard_does_not_match_its_apex() -> None:
    policy = NetworkPolicy("allowlist", ("*.packages.example.org",))
    assert host_allowed(policy, "x.packages.example.org")
    assert not host_allowed(policy, "packages.example.org")


def test_methods_and_ports() -> None:
    assert decide(ALLOWLIST, "allowed.example", 80, "get").allowed
    assert not decide(ALLOWLIST, "allowed.example", 80, "POST").allowed
    assert not decide(ALLOWLIST, "allowed.example", 8080, "GET").allowed
    assert not decide(ALLOWLIST, "allowed.example", 443, None).allowed
    assert decide_connect(ALLOWLIST, "allowed.example", 443).allowed
    assert not decide_connect(ALLOWLIST, "allowed.example", 80).allowed
    assert decide(ON, "anything.example", 443, None).allowed
    assert not decide(ON, "anything.example", 22, None).allowed
    assert not decide_connect(ON, "anything.example", 8443).allowed


def test_interception_in_allowlist_mode_whatever_the_methods() -> None:
    assert needs_interception(ALLOWLIST)
    assert not needs_interception(ON)
    assert needs_interception(NetworkPolicy("allowlist", ("a.example",), ("*",)))


@pytest.mark.parametrize(
    "ip",
    ["127.0.0.1", "10.1.2.3", "172.17.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
     "0.0.0.0", "224.0.0.1", "255.255.255.255", "240.0.0.1", "::1", "::", "fd00::1",  # noqa: S104
     "fe80::1", "ff02::1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "64:ff9b::a00:1",
     "2002:a00:1::", "not-an-ip"],
)  # fmt: skip
def test_addresses_on_the_host_or_private_networks_are_refused(ip: str) -> None:
    assert not address_allowed(ip)


@pytest.mark.parametrize("ip", ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(ip: str) -> None:
    assert address_allowed(ip)
