"""One sandbox cannot starve the rest of the shared egress proxy: a flood of slow connections
from one sandbox address while another sandbox's request still goes through, the flood answered
429 past its cap without reaching any upstream, and the log bounded."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator

import pytest

from tests.egress_helpers import ALLOWLIST, Running, get, recorded
from tests.fakes.internet import Internet
from tests.harness import wait_for
from worker.egress.certs import CertificateAuthority
from worker.egress.limits import Caps, LogBudget
from worker.egress.policy import NetworkPolicy
from worker.egress.proxy import EgressProxy

FLOOD = 300
CAP = 32


@pytest.fixture
def proxy(internet: Internet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    internet.seen.clear()
    ca = CertificateAuthority.load_or_create(tmp_path_factory.mktemp("proxy-ca"))
    caps = Caps(per_sandbox=CAP, total=1024)
    running = Running(
        EgressProxy(ca, hosts=internet.hosts, upstream_ca=internet.ca_file, caps=caps)
    )
    yield running
    running.stop()


def test_a_flood_from_one_sandbox_leaves_another_sandboxs_request_alone(
    proxy: Running, internet: Internet, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "worker.sandbox")
    flooder = proxy.register(ALLOWLIST, ip="127.0.0.2")
    other = proxy.register(ALLOWLIST, ip="127.0.0.1")
    flood: list[socket.socket] = []
    try:
        for _ in range(FLOOD):  # slow clients: a head that never ends
            sock = socket.create_connection(
                ("127.0.0.1", proxy.port), timeout=10, source_address=("127.0.0.2", 0)
            )
            sock.sendall(b"GET http://allowed.example/flood HTTP/1.1\r\n")
            flood.append(sock)
        assert get(proxy, "http://allowed.example/other") == (
            200,
            b"http allowed.example GET /other 0",
        )
        answers = [sock.recv(1024) for sock in flood[CAP:]]
    finally:
        for sock in flood:
            sock.close()
    assert all(answer.startswith(b"HTTP/1.1 429") for answer in answers)
    assert b"limit of 32 open connections" in answers[0]
    assert [seen.path for seen in internet.seen] == ["/other"]
    [allowed] = recorded(other, 1)
    assert allowed.allowed and allowed.status == 200
    over = wait_for(
        lambda: (
            [r for r in flooder if "limit of 32" in r.reason] if len(flooder) >= FLOOD else None
        ),
        10,
        "every flood connection recorded",
    )
    assert len(over) == FLOOD - CAP and not any(r.allowed for r in flooder)
    lines = [r for r in caplog.records if r.name.startswith("worker.sandbox")]
    assert len(lines) < 100, f"{len(lines)} log lines for one flood"
    assert any("log lines suppressed" in r.getMessage() for r in lines) or len(lines) <= 30


def test_the_cap_frees_up_when_the_flood_ends(proxy: Running, internet: Internet) -> None:
    proxy.register(ALLOWLIST, ip="127.0.0.1")
    held = [socket.create_connection(("127.0.0.1", proxy.port), timeout=5) for _ in range(CAP)]
    try:
        wait_for(lambda: proxy.proxy.caps.open.get("127.0.0.1") == CAP, 5, "the cap filled")
        status, body = get(proxy, "http://allowed.example/")
        assert status == 429 and b"close some" in body
    finally:
        for sock in held:
            sock.close()
    wait_for(lambda: not proxy.proxy.caps.open, 5, "the connections counted out")
    assert get(proxy, "http://allowed.example/")[0] == 200


def test_a_head_dripped_byte_by_byte_is_cut_at_the_head_deadline(
    internet: Internet, tmp_path_factory: pytest.TempPathFactory
) -> None:
    ca = CertificateAuthority.load_or_create(tmp_path_factory.mktemp("proxy-ca"))
    running = Running(EgressProxy(ca, hosts=internet.hosts, head_timeout=0.5))
    try:
        records = running.register(ALLOWLIST)
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", running.port), timeout=5) as raw:
            raw.sendall(b"GET http://allowed.example/slow HTTP/1.1\r\n")
            for byte in b"X: " + b"a" * 100:  # a byte every 20 ms: never idle, never done
                try:
                    raw.sendall(bytes([byte]))
                except OSError:
                    break
                time.sleep(0.02)
                if time.monotonic() - started > 1.5:
                    break
            answer = raw.recv(1024)
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert time.monotonic() - started < 3
        [record] = recorded(records, 1)
        assert not record.allowed and record.path == "GET http://allowed.example/slow HTTP/1.1"
    finally:
        running.stop()


def test_caps_count_per_sandbox_and_in_total() -> None:
    caps = Caps(per_sandbox=2, total=4)
    assert [caps.admit("a"), caps.admit("a"), caps.admit("b")] == [None, None, None]
    assert "2 open connections" in (caps.admit("a") or "")
    caps.leave("a")
    assert caps.admit("c") is None
    assert "all sandboxes" in (caps.admit("d") or "")
    for ip in ("a", "a", "b", "c", "d"):
        caps.leave(ip)
    assert not caps.open and caps.admit("c") is None


def test_a_log_budget_says_how_many_lines_it_kept_back(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "budget")
    budget = LogBudget(logging.getLogger("budget"), lines=3, window=0.2)
    for number in range(10):
        budget.log("task-1", logging.INFO, "line %d", number)
    budget.log("task-2", logging.INFO, "another sandbox's line")
    time.sleep(0.25)
    budget.log("task-1", logging.INFO, "after the window")
    assert [r.getMessage() for r in caplog.records] == [
        "line 0", "line 1", "line 2", "another sandbox's line",
        "egress task-1: 7 log lines suppressed", "after the window",
    ]  # fmt: skip


def test_past_the_global_cap_connections_are_cut_unread_and_recorded(
    internet: Internet, tmp_path_factory: pytest.TempPathFactory
) -> None:
    ca = CertificateAuthority.load_or_create(tmp_path_factory.mktemp("proxy-ca"))
    caps = Caps(per_sandbox=1000, total=5)
    running = Running(EgressProxy(ca, hosts=internet.hosts, caps=caps))
    try:
        records = running.register(ALLOWLIST)
        held = [socket.create_connection(("127.0.0.1", running.port), timeout=5) for _ in range(5)]
        wait_for(lambda: caps.open.total() == 5, 5, "five connections held")
        with socket.create_connection(("127.0.0.1", running.port), timeout=5) as extra:
            try:
                extra.sendall(b"GET http://allowed.example/ HTTP/1.1\r\n\r\n")
                answer = extra.recv(1024)
            except (ConnectionResetError, BrokenPipeError):
                answer = b""  # cut: no answer at all
            assert answer == b""
        for sock in held:
            sock.close()
        [cut, *_] = recorded(records, 1)
        assert not cut.allowed and "limit of 5 connections for all sandboxes" in cut.reason
        wait_for(lambda: not caps.open, 5, "the connections counted out")
        assert get(running, "http://allowed.example/")[0] == 200
    finally:
        running.stop()


def test_a_stalled_body_and_an_idle_connection_are_let_go(
    internet: Internet, tmp_path_factory: pytest.TempPathFactory
) -> None:
    ca = CertificateAuthority.load_or_create(tmp_path_factory.mktemp("proxy-ca"))
    proxy = EgressProxy(ca, hosts=internet.hosts, idle_timeout=0.5, keepalive_timeout=0.5)
    running = Running(proxy)
    try:
        records = running.register(NetworkPolicy("on"))
        with socket.create_connection(("127.0.0.1", running.port), timeout=5) as raw:
            raw.sendall(b"POST http://allowed.example/up HTTP/1.1\r\nHost: allowed.example\r\n"
                        b"Content-Length: 10\r\n\r\nabc")  # fmt: skip
            stalled = b"".join(iter(lambda: raw.recv(1024), b""))
        assert stalled.startswith(b"HTTP/1.1 408") and b"nothing moved for 0.5 s" in stalled
        [record] = recorded(records, 1)
        assert record.status is None and "nothing moved" in record.reason
        with socket.create_connection(("127.0.0.1", running.port), timeout=5) as raw:
            raw.sendall(b"GET http://allowed.example/ HTTP/1.1\r\nHost: allowed.example\r\n\r\n")
            answer = raw.recv(1024)
            while not answer.endswith(b"GET / 0"):
                answer += raw.recv(1024)
            assert answer.startswith(b"HTTP/1.1 200")
            started = time.monotonic()
            assert raw.recv(1024) == b""  # closed once idle past the keep-alive timeout
            assert time.monotonic() - started < 3
        assert len(recorded(records, 2)) == 2
    finally:
        running.stop()
