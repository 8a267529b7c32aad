"""The egress proxy against real sandboxes: the sandbox image on the egress network that
deploy/docker/sandbox-network.sh firewalls, the proxy process the worker starts (`Egress`), and
the fake internet on this host. What `test_egress_load.py` and `test_egress_tls.py` attack on
loopback, here from containers: one sandbox flooding the proxy with slow connections while
another sandbox's request is served, and domain fronting in both network modes."""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import docker
import pytest

from app.settings import Settings
from tests.fakes.internet import Internet
from tests.harness import SANDBOX_IMAGE
from worker.egress.service import Egress
from worker.repoconfig import NetworkConfig
from worker.report.worklog import WorkLog
from worker.sandbox.containers import DockerSandbox, open_sandbox
from worker.sandbox.removal import removals_settled
from worker.sandbox.spec import SandboxSpec

pytestmark = pytest.mark.system

PORT = 3130
"""A port in the firewall's EGRESS_PORTS that no other test on this host listens on."""
CAP = 64
"""`EGRESS_SANDBOX_CONNECTIONS`' default: what one sandbox may hold open."""
FLOOD = 300
T = TypeVar("T")

FLOOD_SCRIPT = """\
import os, selectors, socket, sys, time
from urllib.parse import urlsplit
proxy = urlsplit(os.environ["HTTP_PROXY"])
held = []
for _ in range(int(sys.argv[1])):  # slow clients: a head that never ends
    sock = socket.create_connection((proxy.hostname, proxy.port), timeout=10)
    sock.sendall(b"GET http://allowed.example/flood HTTP/1.1\\r\\nHost: allowed.example\\r\\n")
    held.append(sock)
answers, pending = {}, set(held)
selector = selectors.DefaultSelector()
for sock in held:
    selector.register(sock, selectors.EVENT_READ)
deadline = time.monotonic() + 5  # over the cap, the proxy answers within its 2 s head wait
while pending and time.monotonic() < deadline:
    for key, _ in selector.select(timeout=0.5):
        line = key.fileobj.recv(4096).split(b"\\r\\n")[0].decode() or "closed"
        answers[line] = answers.get(line, 0) + 1
        selector.unregister(key.fileobj)
        pending.discard(key.fileobj)
answers["held open"] = len(pending)
with open("/tmp/flood.out", "w") as out:
    out.write(repr(sorted(answers.items())))
time.sleep(60)  # the connections stay open while the other sandbox asks
"""

FETCH = """\
import sys, urllib.error, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=15) as reply:
        print(reply.status, reply.read().decode())
except urllib.error.HTTPError as error:
    print(error.code)
"""

FRONT = """\
import os, socket, ssl, sys
from urllib.parse import urlsplit
proxy = urlsplit(os.environ["HTTPS_PROXY"])
connect, name = sys.argv[1], sys.argv[2]
context = ssl.create_default_context()
context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # hostile: checks nothing
raw = socket.create_connection((proxy.hostname, proxy.port), timeout=10)
raw.sendall(f"CONNECT {connect}:443 HTTP/1.1\\r\\nHost: {connect}:443\\r\\n\\r\\n".encode())
print("connect:", raw.recv(1024).split(b"\\r\\n")[0].decode())
try:
    tls = context.wrap_socket(raw, server_hostname=name)
    head = f"GET /fronted HTTP/1.1\\r\\nHost: {name}\\r\\nConnection: close\\r\\n\\r\\n"
    tls.sendall(head.encode())
    reply = b"".join(iter(lambda: tls.recv(65536), b""))
    status, last = reply.split(b"\\r\\n")[0], reply.strip().rsplit(b"\\n", 1)[-1]
    print("reply:", status.decode(), "|", last.decode())
except (ssl.SSLError, OSError) as error:
    print("cut:", type(error).__name__)
"""


@dataclass
class Box:
    sandbox: DockerSandbox
    worklog: WorkLog

    async def python(self, script: str, *args: str) -> str:
        command = " ".join(["python3", "-c", shlex.quote(script), *map(shlex.quote, args)])
        return (await self.sandbox.run(command, timeout=60)).output.strip()


@contextlib.asynccontextmanager
async def proxied(
    engine: docker.DockerClient, egress: Egress, config: NetworkConfig, label: str
) -> AsyncIterator[Box]:
    """A sandbox in its agent phase under `config`, served by `egress`; it starts on the egress
    network, as the worker's agent containers do."""
    spec = SandboxSpec(image=SANDBOX_IMAGE, network=egress.network, label=f"test-egress-{label}")
    async with open_sandbox(engine, spec) as sandbox:
        worklog = WorkLog()
        async with egress.serve(sandbox, config, worklog, label):
            yield Box(sandbox, worklog)


def with_egress(
    tmp_path: Path, internet: Internet, body: Callable[[Egress, docker.DockerClient], Awaitable[T]]
) -> T:
    """`body` with the worker's egress proxy on the real egress network."""
    settings = Settings(
        app_id=1, private_key="unused", webhook_secret="a-real-secret-value",
        openai_api_key="a-real-key-value", sandbox_image=SANDBOX_IMAGE, egress_port=PORT,
        egress_ca_dir=tmp_path / "proxy-ca", egress_hosts=internet.hosts,
        egress_upstream_ca=internet.ca_file,
    )  # fmt: skip
    internet.seen.clear()

    async def run() -> T:
        engine = docker.from_env()
        egress = await Egress.start(settings, engine)
        try:
            assert egress.problem is None, egress.problem
            return await body(egress, engine)
        finally:
            await egress.close()
            await removals_settled()
            engine.close()

    return asyncio.run(run())


async def _until(check: Callable[[], Awaitable[T | None]], what: str, timeout: float = 30) -> T:
    deadline = time.monotonic() + timeout
    while not (value := await check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)
    return value


def _logged(box: Box, count: int) -> Callable[[], Awaitable[list[str] | None]]:
    """The work log's egress lines once there are `count` (they stream in batches)."""

    async def lines() -> list[str] | None:
        return box.worklog.egress_log if len(box.worklog.egress_log) >= count else None

    return lines


ALLOWLIST = NetworkConfig(agent="allowlist", allow=["allowed.example", "tls.allowed.example"])


def test_a_flood_of_slow_connections_from_one_sandbox_leaves_another_sandbox_served(
    docker_ready: None, tmp_path: Path, internet: Internet
) -> None:
    async def body(egress: Egress, engine: docker.DockerClient) -> None:
        async with (
            proxied(engine, egress, ALLOWLIST, "flooder") as flooder,
            proxied(engine, egress, ALLOWLIST, "other") as other,
        ):
            await flooder.sandbox.run(
                f"setsid python3 -c {shlex.quote(FLOOD_SCRIPT)} {FLOOD} >/dev/null 2>&1 & "
                "echo $! > /tmp/flood.pid",
                timeout=30,
            )

            async def flooded() -> str | None:
                done = await flooder.sandbox.run("cat /tmp/flood.out", timeout=10)
                return done.output if done.exit_code == 0 else None

            answers = await _until(flooded, "the flood's answers")
            assert answers.strip() == repr(
                sorted({"HTTP/1.1 429 Too Many Requests": FLOOD - CAP, "held open": CAP}.items())
            ), answers
            reply = await other.python(FETCH, "http://allowed.example/other")
            assert reply == "200 http allowed.example GET /other 0", reply
            alive = await flooder.sandbox.run("kill -0 $(cat /tmp/flood.pid)", timeout=10)
            assert alive.exit_code == 0, "the flood still held its connections meanwhile"
            assert [seen.path for seen in internet.arrived("allowed.example")] == ["/other"]
            assert other.worklog.egress_allowed == 1 and not other.worklog.egress_denied

            def over_cap() -> list[str]:
                lines = flooder.worklog.egress_log
                return [line for line in lines if f"holds its limit of {CAP} open" in line]

            async def all_recorded() -> list[str] | None:
                return over_cap() if len(over_cap()) >= FLOOD - CAP else None

            await _until(all_recorded, "every refused flood connection in the work log")
            assert flooder.worklog.egress_allowed == 0

    with_egress(tmp_path, internet, body)


def test_on_mode_refuses_a_tls_server_name_other_than_the_connect_host(
    docker_ready: None, tmp_path: Path, internet: Internet
) -> None:
    """Domain fronting through a spliced tunnel: CONNECT names one host, the ClientHello
    another. Refused before a byte goes upstream; the matching name is spliced."""

    async def body(egress: Egress, engine: docker.DockerClient) -> None:
        async with proxied(engine, egress, NetworkConfig(agent="on"), "on") as box:
            fronted = await box.python(FRONT, "tls.allowed.example", "tls.denied.example")
            assert fronted.splitlines()[0] == "connect: HTTP/1.1 200 Connection established"
            assert fronted.splitlines()[1].startswith("cut: "), fronted
            assert internet.seen == []
            [line] = await _until(_logged(box, 1), "the refusal in the work log")
            assert "REFUSED CONNECT tls.allowed.example" in line
            assert "the TLS server name `tls.denied.example` differs from the CONNECT host" in line
            matching = await box.python(FRONT, "tls.allowed.example", "tls.allowed.example")
            assert matching.splitlines()[1] == (
                "reply: HTTP/1.1 200 OK | https tls.allowed.example GET /fronted 0"
            ), matching
            assert [seen.path for seen in internet.seen] == ["/fronted"]

    with_egress(tmp_path, internet, body)


def test_allowlist_decrypts_and_refuses_an_inner_host_other_than_the_connect_host(
    docker_ready: None, tmp_path: Path, internet: Internet
) -> None:
    """Both names are allowed, every method too: the request is refused for naming another
    host than its tunnel's, so the log says where each request went."""
    both = NetworkConfig(
        agent="allowlist", allow=["tls.allowed.example", "tls.denied.example"], methods=["*"]
    )

    async def body(egress: Egress, engine: docker.DockerClient) -> None:
        async with proxied(engine, egress, both, "allowlist") as box:
            fronted = await box.python(FRONT, "tls.allowed.example", "tls.denied.example")
            assert fronted.splitlines()[1].startswith("reply: HTTP/1.1 403 Forbidden |"), fronted
            assert "does not match the CONNECT host" in fronted
            assert internet.seen == []
            await _until(_logged(box, 1), "the refusal in the work log")
            assert list(box.worklog.egress_denied) == ["GET tls.allowed.example/fronted"]
            straight = await box.python(FRONT, "tls.denied.example", "tls.denied.example")
            assert straight.splitlines()[1] == (
                "reply: HTTP/1.1 200 OK | https tls.denied.example GET /fronted 0"
            ), straight

    with_egress(tmp_path, internet, body)
