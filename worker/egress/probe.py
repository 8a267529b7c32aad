"""What a sandbox on a given network can reach, found out by trying it from a real sandbox.

The firewall that keeps sandboxes off this host lives outside this program (iptables rules from
deploy/docker/sandbox-network.sh, which the worker, often not root, cannot read), so the only
honest check is an experiment: a throwaway sandbox, started the way every sandbox is, resolves
names and opens connections, and says which ones got through. `selftest` decides what the
answers mean; this module only gathers them.
"""

from __future__ import annotations

import asyncio
import importlib
import ipaddress
import json
import logging
import os
import shlex
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import docker
import docker.errors

from worker.sandbox.containers import open_sandbox
from worker.sandbox.spec import SandboxError, SandboxSpec

log = logging.getLogger(__name__)

MARKER = "codex-netcheck:"
REACH_SECONDS = 3.0
"""How long a connection that should succeed may take (a public host, the proxy)."""
BLOCK_SECONDS = 1.5
"""How long to wait on a connection that should be dropped: its timeout is the expected answer."""

PROBE = f"""\
import json, socket, sys, threading, time
plan, found = json.loads(sys.argv[1]), {{"resolve": {{}}, "connect": {{}}}}
def resolve(name, timeout):
    try:
        found["resolve"][name] = sorted({{a[4][0] for a in socket.getaddrinfo(name, 443)}})
    except OSError:
        found["resolve"][name] = []
def connect(label, host, port, timeout):
    try:
        socket.create_connection((host, port), timeout=timeout).close()
        found["connect"][label] = "open"
    except ConnectionRefusedError:  # an answer all the same: the packets got there
        found["connect"][label] = "refused"
    except OSError:
        found["connect"][label] = "blocked"
jobs = [(threading.Thread(target=resolve, args=(n, t), daemon=True), t)
        for n, t in plan["resolve"].items()]
jobs += [(threading.Thread(target=connect, args=(k, *v), daemon=True), v[2])
         for k, v in plan["connect"].items()]
start = time.monotonic()
for job, _ in jobs:
    job.start()
for job, timeout in jobs:  # a name with no answer in its time has none
    job.join(max(0.0, start + timeout + 0.2 - time.monotonic()))
print({MARKER!r} + json.dumps(found))
"""


@dataclass
class Probe:
    """What to try from one network: names to resolve in so many seconds, and labelled
    `(host, port, seconds)` connections."""

    resolve: dict[str, float] = field(default_factory=dict)
    connect: dict[str, tuple[str, int, float]] = field(default_factory=dict)


@dataclass
class Findings:
    """What got through: addresses per name (empty: no answer) and per label `open`,
    `refused` (something answered: the packets arrived) or `blocked`."""

    resolved: dict[str, list[str]]
    connected: dict[str, str]

    def reached(self, label: str) -> bool:
        return self.connected.get(label, "blocked") != "blocked"


class ProbeFailed(Exception):
    """The probe sandbox did not start or did not answer; the message says why."""


async def run_probe(
    engine: docker.DockerClient, image: str, network: str, probe: Probe
) -> Findings:
    """Start a sandbox on `network` as tasks do (same code, same limits, no DNS or options of
    its own), try everything in `probe` at once, and report."""
    spec = SandboxSpec(image=image, network=network, memory="256m", cpus=0.5, pids=64,
                       label="netcheck", selftest=True)  # fmt: skip
    plan = json.dumps({"resolve": probe.resolve, "connect": probe.connect})
    # One try of one second per DNS query: a network without DNS answers "no" in time.
    command = (
        f"RES_OPTIONS='timeout:1 attempts:1' python3 -c {shlex.quote(PROBE)} {shlex.quote(plan)}"
    )
    try:
        async with open_sandbox(engine, spec) as sandbox:
            result = await sandbox.run(command, timeout=int(REACH_SECONDS) + 5)
    except (docker.errors.DockerException, SandboxError) as error:
        raise ProbeFailed(f"the probe on {network!r}: {error}") from error
    for line in result.output.splitlines():
        if line.startswith(MARKER):
            found = json.loads(line.removeprefix(MARKER))
            return Findings(found["resolve"], found["connect"])
    raise ProbeFailed(f"the probe on {network!r} gave no answer: {result.output[-300:]!r}")


@asynccontextmanager
async def host_listener() -> AsyncIterator[int]:
    """A throwaway service on every address of this host, as Redis or the app could be bound:
    a sandbox that reaches its port reaches this host. Yields the port."""

    async def hang_up(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(hang_up, "0.0.0.0", 0)  # noqa: S104
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()


async def gateway(engine: docker.DockerClient, network: str) -> str | None:
    """The network's gateway: this host's own address on that bridge (None: no such network)."""
    try:
        attrs = (await asyncio.to_thread(engine.networks.get, network)).attrs
    except docker.errors.NotFound:
        return None
    configs = attrs.get("IPAM", {}).get("Config") or [{}]
    value = configs[0].get("Gateway")
    return str(value) if value else None


def package_index_host() -> str | None:
    """The host of the package index pip uses on this machine (`PIP_INDEX_URL`, pip's
    configuration, else pip's own default): a public name setup must resolve and reach. Read
    from pip at run time, so no registry is named here; None when pip is not installed."""
    url = os.environ.get("PIP_INDEX_URL", "").split()
    if url:
        return urlsplit(url[0]).hostname
    try:
        configuration = importlib.import_module("pip._internal.configuration")
        config = configuration.Configuration(isolated=False)
        config.load()
        configured = str(config.get_value("global.index-url")).split()
        if configured and urlsplit(configured[0]).hostname:
            return urlsplit(configured[0]).hostname
    except Exception:  # noqa: S110 - not configured (pip raises), or pip's internals moved
        pass
    try:
        index = importlib.import_module("pip._internal.models.index")
    except ImportError:
        return None
    return urlsplit(str(index.PyPI.url)).hostname


def private_resolvers() -> list[str]:
    """This host's DNS resolvers in private ranges, as sandbox-network.sh reads them
    (`SANDBOX_DNS`, else systemd-resolved's upstream file, else /etc/resolv.conf): setup may
    reach them on port 53 only, so any other port of theirs is a private address to try."""
    listed = os.environ.get("SANDBOX_DNS", "").replace(",", " ").split()
    if not listed:
        upstream = Path("/run/systemd/resolve/resolv.conf")
        path = upstream if upstream.exists() else Path("/etc/resolv.conf")
        try:
            lines = path.read_text().splitlines()
        except OSError:
            lines = []
        listed = [line.split()[1] for line in lines if line.startswith("nameserver ")
                  and len(line.split()) > 1]  # fmt: skip
    found = []
    for text in listed:
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            continue
        if address.version == 4 and address.is_private and not address.is_loopback:
            found.append(text)
    return found
