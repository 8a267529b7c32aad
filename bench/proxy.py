"""Egress proxy: kept-alive requests through the proxy process against the same requests sent
straight to the server, on loopback, in the same run.

The servers are the fake internet's (`tests/fakes/internet.py`); the proxy is the process the
worker starts (`egress_proc`), with an `allowlist` policy, so HTTPS is decrypted and every request
is decided, logged and streamed back. One client connection carries all requests of a run, as
pip's and npm's do; per-request time is the median of `requests` requests. Servers, client and
proxy are separate processes, as sandbox, proxy and internet are: threads of one Python process
would measure its lock hand-offs (a sleeping thread waits up to 5 ms for the GIL).

Two more figures are floors under the proxy's ratio. One hop: the same requests through a byte
relay on asyncio streams that parses and decides nothing, in a process of its own as the proxy
is. One engine: h11 alone reading and writing one exchange on both sides of a proxy (the
request, then the response), in memory with no I/O, against the same direct request: any proxy
that re-serializes every message on h11, as this one must, costs at least the relay plus that.
"""

from __future__ import annotations

import asyncio
import http.client
import multiprocessing
import socket
import ssl
import statistics
import tempfile
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path

import h11

from bench.report import Row, ratio, target
from tests.fakes.internet import Internet
from worker.egress.client import ProxyProcess
from worker.egress.policy import NetworkPolicy, Request

TARGET = 1.5
POLICY = NetworkPolicy("allowlist", ("allowed.example", "tls.allowed.example"), ("GET",))


def _timed(
    connection: http.client.HTTPConnection, path: str, requests: int, warm: int = 5
) -> float:
    """Median seconds per request of `requests` GETs on one kept-alive connection, after
    `warm` that pay the connections and handshakes."""
    took = []
    for number in range(requests + warm):
        started = time.perf_counter()
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"{path}: {response.status}")
        if number >= warm:
            took.append(time.perf_counter() - started)
    connection.close()
    return statistics.median(took)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(64 * 1024):
        writer.write(data)
    writer.close()


async def _byte_relay(upstream_port: int, pipe: Connection) -> None:
    """A listener splicing each connection, unread, to `127.0.0.1:upstream_port`; its port goes
    to `pipe`, and it serves until told to stop."""

    async def splice(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
        await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))

    server = await asyncio.start_server(splice, "127.0.0.1", 0)
    pipe.send(server.sockets[0].getsockname()[1])
    await asyncio.to_thread(pipe.recv)
    server.close()


def _exchange_bytes(port: int, host: str, path: str) -> tuple[bytes, bytes]:
    """One request as http.client writes it and the server's whole answer, as bytes."""
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept-Encoding: identity\r\n\r\n"
    reader = h11.Connection(h11.CLIENT)
    answer = b""
    with socket.create_connection(("127.0.0.1", port)) as connection:
        connection.sendall(request.encode())
        while not isinstance(event := reader.next_event(), h11.EndOfMessage):
            if event is h11.NEED_DATA:
                data = connection.recv(65536)
                reader.receive_data(data)
                answer += data
            elif not isinstance(event, h11.Response | h11.Data):
                raise RuntimeError(f"the server at {port} ended without a whole answer: {event}")
    return request.encode(), answer


def h11_exchange(request: bytes, answer: bytes, rounds: int) -> float:
    """Median seconds h11 takes to read `request` as a server, write it on as a client, read
    `answer` as that client and write it back as the server: the least an h11 proxy does."""
    client_side, upstream_side = h11.Connection(h11.SERVER), h11.Connection(h11.CLIENT)
    took = []
    for _ in range(rounds):
        started = time.perf_counter()
        client_side.receive_data(request)
        head = client_side.next_event()
        assert isinstance(head, h11.Request)
        client_side.next_event()  # EndOfMessage
        headers = [(b"Host", b"allowed.example")] + [
            (name, value) for name, value in head.headers.raw_items() if name.lower() != b"host"
        ]
        upstream_side.send(h11.Request(method=head.method, target=b"/b", headers=headers))
        upstream_side.send(h11.EndOfMessage())
        upstream_side.receive_data(answer)
        while not isinstance(event := upstream_side.next_event(), h11.EndOfMessage):
            if isinstance(event, h11.Response):
                client_side.send(h11.Response(status_code=event.status_code,
                                              headers=list(event.headers.raw_items())))  # fmt: skip
            elif isinstance(event, h11.Data):
                client_side.send(h11.Data(data=event.data))
        client_side.send(h11.EndOfMessage())
        client_side.start_next_cycle()
        upstream_side.start_next_cycle()
        took.append(time.perf_counter() - started)
    return statistics.median(took)


def _runs(internet: _Remote, proxy_port: int, relay_port: int) -> dict[str, Callable[[int], float]]:
    plain, tls = internet.ports
    trust = ssl.create_default_context(cafile=internet.ca_file)
    trust.check_hostname = False  # direct: the server's name is `tls.allowed.example`, not 127…
    proxied_tls = ssl.create_default_context(cafile=internet.directory / "proxy-ca.pem")

    def tunnel(requests: int) -> float:
        return _timed(tunnel_to(), "/bench", requests)

    def new_tunnels(requests: int) -> float:
        took = []
        for _ in range(max(20, requests // 10)):
            started = time.perf_counter()
            _timed(tunnel_to(), "/bench", 1, warm=0)
            took.append(time.perf_counter() - started)
        return statistics.median(took)

    def tunnel_to() -> http.client.HTTPSConnection:
        connection = http.client.HTTPSConnection("127.0.0.1", proxy_port, context=proxied_tls)
        connection.set_tunnel("tls.allowed.example", 443)
        return connection

    return {
        "https new tunnel": new_tunnels,
        "http direct": lambda n: _timed(http.client.HTTPConnection("127.0.0.1", plain), "/b", n),
        "http relay": lambda n: _timed(
            http.client.HTTPConnection("127.0.0.1", relay_port), "/b", n
        ),
        "http proxied": lambda n: _timed(
            http.client.HTTPConnection("127.0.0.1", proxy_port), "http://allowed.example/b", n
        ),
        "https direct": lambda n: _timed(
            http.client.HTTPSConnection("127.0.0.1", tls, context=trust), "/bench", n
        ),
        "https proxied": tunnel,
    }


class _Remote:
    """What the client and the proxy need of an `Internet` served by another process."""

    def __init__(self, directory: Path, hosts: dict[str, str]) -> None:
        self.directory, self.hosts = directory, hosts
        self.ca_file = directory / "upstream-ca.pem"
        names = ("allowed.example", "tls.allowed.example")
        self.ports = [int(hosts[name].rpartition(":")[2]) for name in names]


async def _measure(internet: _Remote, requests: int) -> tuple[dict[str, float], int]:
    config = {
        "bind": "127.0.0.1", "port": 0, "ca_dir": str(internet.directory / "proxy-ca"),
        "hosts": internet.hosts, "upstream_ca": str(internet.ca_file),
    }  # fmt: skip
    process = await ProxyProcess.start(config)
    records: list[Request] = []
    try:
        ca = (internet.directory / "proxy-ca" / "ca-cert.pem").read_bytes()
        (internet.directory / "proxy-ca.pem").write_bytes(ca)
        await process.register("127.0.0.1", POLICY, records.append, "bench")
        plain = internet.ports[0]
        relay, relay_child = _in_child(lambda pipe: asyncio.run(_byte_relay(plain, pipe)))
        try:
            runs = _runs(internet, process.port, int(await asyncio.to_thread(relay.recv)))

            def client(pipe: Connection) -> None:
                pipe.send({name: run(requests) for name, run in runs.items()})

            results, child = _in_child(client)
            seconds = await asyncio.to_thread(results.recv)
            child.join(10)
        finally:
            relay.send("stop")
            relay_child.join(10)
        exchange = _exchange_bytes(plain, "allowed.example", "/b")
        seconds["h11 exchange"] = h11_exchange(*exchange, requests)
        await process.unregister("127.0.0.1")
    finally:
        await process.close()
    return seconds, len(records)


def _in_child(work: Callable[[Connection], None]) -> tuple[Connection, BaseProcess]:
    ours, theirs = multiprocessing.get_context("fork").Pipe()
    child = multiprocessing.get_context("fork").Process(target=work, args=(theirs,), daemon=True)
    child.start()
    theirs.close()  # the child's now: a child that dies gives `ours` EOF, not a wait forever
    return ours, child


def bench_proxy(requests: int) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="codex-bench-proxy-") as tmp:

        def serve(pipe: Connection) -> None:
            with Internet(Path(tmp)) as internet:
                pipe.send(internet.hosts)
                pipe.recv()  # until told to stop

        servers, child = _in_child(serve)
        internet = _Remote(Path(tmp), servers.recv())
        try:
            seconds, logged = asyncio.run(_measure(internet, requests))
        finally:
            servers.send("stop")
            child.join(10)
    rows = []
    for scheme in ("http", "https"):
        direct, proxied = seconds[f"{scheme} direct"], seconds[f"{scheme} proxied"]
        rows.append(Row(f"{scheme} request, direct (kept alive; baseline)",
                        f"{direct * 1e3:.2f} ms", "1.00x"))  # fmt: skip
        if scheme == "http":
            relay, h11_alone = seconds["http relay"], seconds["h11 exchange"]
            floor = "parses and decides nothing: one more hop"
            rows.append(Row("http request through a byte relay on asyncio streams (kept alive)",
                            f"{relay * 1e3:.2f} ms", ratio(relay, direct), floor))  # fmt: skip
            least = (relay + h11_alone) / direct
            engine = f"in memory, no I/O; with the hop, an h11 proxy is at least {least:.2f}x"
            rows.append(Row("h11 alone: one exchange read and written on both sides",
                            f"{h11_alone * 1e3:.2f} ms", ratio(h11_alone, direct),
                            engine))  # fmt: skip
        note = target(proxied < TARGET * direct, f"< {TARGET:.1f}x")
        if scheme == "https":
            note += f"; {logged} requests logged with verdicts"
        rows.append(Row(f"{scheme} request through the egress proxy (kept alive)",
                        f"{proxied * 1e3:.2f} ms", ratio(proxied, direct), note))  # fmt: skip
    fresh = seconds["https new tunnel"]
    rows.append(Row("https request on a new tunnel each (CONNECT, two TLS handshakes)",
                    f"{fresh * 1e3:.2f} ms", ratio(fresh, seconds["https direct"]),
                    "what every request paid when the proxy closed after one"))  # fmt: skip
    return rows


if __name__ == "__main__":
    from bench.report import show

    show(bench_proxy(300))
