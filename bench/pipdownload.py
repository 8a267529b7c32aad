"""A real `pip download` of a dozen packages from the real package index: in a sandbox on the
setup network (the baseline), then in a sandbox whose only way out is the egress proxy in
`allowlist` mode (decrypted, every request decided and logged), in the same run.

No host is named here: the baseline run's own log says which hosts pip fetched from, and the
allowlist is made of those. Each run starts from an empty download folder with pip's cache off.
Where this host's resolver answers with a reserved address for those hosts (a network that
intercepts TLS to the index, as here), the proxy would refuse them as not public, rightly; the
benchmark then pins them to those addresses through the proxy's `EGRESS_HOSTS` hook.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import socket
import statistics
import time

import docker

from app.settings import Settings
from bench.report import Row, ratio, target
from worker.egress.service import Egress
from worker.protocols import Sandbox
from worker.repoconfig import NetworkConfig
from worker.report.worklog import WorkLog
from worker.sandbox.containers import open_sandbox
from worker.sandbox.spec import SandboxSpec

TARGET = 1.2
PACKAGES = (
    "six", "idna", "attrs", "iniconfig", "packaging", "pluggy", "tomli", "certifi", "urllib3",
    "typing-extensions", "zipp", "wheel",
)  # fmt: skip
COMMAND = (
    "rm -rf /tmp/d && python3 -m pip download -vvv --no-cache-dir --no-deps --only-binary=:all: "
    "--disable-pip-version-check -d /tmp/d " + " ".join(PACKAGES)
)
HOSTS = re.compile(r"https://([A-Za-z0-9.-]+)[:/]")


def _pinned(hosts: set[str]) -> dict[str, str]:
    found = {}
    for host in sorted(hosts):
        address = socket.getaddrinfo(host, 443, family=socket.AF_INET)[0][4][0]
        if not ipaddress.ip_address(address).is_global:
            found[host] = f"{address}:443"
    return found


def _settings(image: str, pinned: dict[str, str] | None = None) -> Settings:
    return Settings(
        egress_hosts=pinned or {},
        app_id=1,
        webhook_secret="bench-webhook-secret",  # noqa: S106
        openai_api_key="sk-bench-not-used",
        private_key="unused",
        sandbox_image=image,
        egress_port=int(os.environ.get("BENCH_EGRESS_PORT", "3134")),
        egress_ca_dir=os.environ.get("BENCH_EGRESS_CA", "/tmp/codex-bench-ca"),  # noqa: S108
    )


async def _timed(sandbox: Sandbox, runs: int, where: str) -> tuple[list[float], str]:
    """Seconds of each of `runs` downloads in `sandbox`, and all that pip printed."""
    took, printed = [], ""
    for _ in range(runs):
        started = time.monotonic()
        done = await sandbox.run(COMMAND, timeout=300)
        if done.exit_code != 0:
            raise RuntimeError(f"pip {where} failed:\n{done.output[-800:]}")
        took.append(time.monotonic() - started)
        printed += done.output
    return took, printed


async def _downloads(image: str, runs: int) -> tuple[list[float], list[float], int, int]:
    engine = docker.from_env()
    spec = SandboxSpec(image=image, network=_settings(image).sandbox_network, label="bench:pip")
    async with open_sandbox(engine, spec) as sandbox:
        direct, printed = await _timed(sandbox, runs, "on the setup network")
    hosts = set(HOSTS.findall(printed))
    egress = await Egress.start(_settings(image, _pinned(hosts)), engine)
    try:
        network = NetworkConfig(agent="allowlist", allow=sorted(hosts), methods=["GET", "HEAD"])
        spec = SandboxSpec(image=image, network=egress.network, label="bench:pip-proxy")
        async with open_sandbox(engine, spec) as sandbox:
            worklog = WorkLog()
            async with egress.serve(sandbox, network, worklog, "bench:pip-proxy"):
                proxied, _ = await _timed(sandbox, runs, "through the proxy")
        return direct, proxied, len(hosts), worklog.egress_allowed
    finally:
        await egress.close()
        engine.close()


def bench_pip(image: str, runs: int = 3) -> list[Row]:
    direct, proxied, hosts, requests = asyncio.run(_downloads(image, runs))
    base, through = statistics.median(direct), statistics.median(proxied)
    times = ratio(through, base)
    return [
        Row(f"`pip download` of {len(PACKAGES)} packages, setup network (baseline)",
            f"{base:.2f} s", "1.00x", f"median of {runs}; {hosts} hosts"),
        Row(f"`pip download` of {len(PACKAGES)} packages, through the allowlist proxy",
            f"{through:.2f} s", times,
            f"median of {runs}; {requests // max(1, runs)} requests a run, decrypted and logged; "
            + target(through / base < TARGET, f"< {TARGET}x")),
    ]  # fmt: skip
