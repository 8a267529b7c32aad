"""Whether this worker may give sandboxes a network: decided at start-up, by experiment.

A worker whose firewall is missing (deploy/docker/sandbox-network.sh never ran, or a reboot
flushed its rules) would hand every setup script and every `network.agent: on` model this host's
Redis, Docker API and private networks. So before network modes are used the worker tries its
firewall both ways from throwaway sandboxes (`probe.py`):
- the setup network resolves a public name and reaches it, and reaches neither a service on this
  host nor a private address;
- the egress network reaches the proxy, and nothing else: no host service, no public address,
  and no DNS (CVE-2024-29018 is Docker forwarding DNS out of `--internal` networks).
It also refuses `allowlist` and `on` on an engine with that CVE unless the operator says
otherwise (`ALLOW_VULNERABLE_ENGINE`): the CVE needs a loopback resolver on the host, which the
operator can see and this worker cannot, so a fixed engine is asked for and the override exists.

The decisions (`verdict.py`) are pure; `NetworkCheck` runs the probes in the
background, at start-up and then every `NETWORK_CHECK_INTERVAL` seconds (a reboot or another
tool can flush the rules under a running worker), and answers `problem_for(mode)` for the
attempt code from the latest verdict: a firewall gone turns network modes off with the same
status as at start-up, and a fixed one turns them back on.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import docker

from app.settings import Settings
from worker.egress import probe as netprobe
from worker.egress.probe import Findings, Probe, ProbeFailed
from worker.egress.verdict import Plan, Verdict, judge, off

log = logging.getLogger(__name__)

CHECK_SECONDS = 20.0
"""The whole self-test, both probes at once; a check that takes longer counts as failed."""


class NetworkCheck:
    """The self-test, run in the background at start-up and every `every` seconds after
    (0: once); `problem_for` waits for the first verdict, then answers from the latest."""

    def __init__(self, check: Callable[[], Awaitable[Verdict]], every: float) -> None:
        self._first: asyncio.Future[Verdict] = asyncio.get_running_loop().create_future()
        self._latest: Verdict | None = None
        self.runs = 0
        """Self-tests finished, for tests and the log."""
        self._task = asyncio.create_task(self._checking(check, every))

    @classmethod
    def start(
        cls, settings: Settings, engine: docker.DockerClient, *, proxy_running: bool
    ) -> NetworkCheck:
        return cls(lambda: _check(settings, engine, proxy_running),
                   settings.network_check_interval)  # fmt: skip

    async def _checking(self, check: Callable[[], Awaitable[Verdict]], every: float) -> None:
        while True:
            verdict = await check()
            if verdict != self._latest:  # said at start-up, then only when it changes
                _log(verdict)
            self._latest, self.runs = verdict, self.runs + 1
            if not self._first.done():
                self._first.set_result(verdict)
            if every <= 0:
                return
            await asyncio.sleep(every)

    async def verdict(self) -> Verdict:
        if self._latest is not None:
            return self._latest
        return await asyncio.shield(self._first)

    async def problem_for(self, mode: str) -> str | None:
        """Why network `mode` ("setup", "allowlist" or "on") may not be used on this worker,
        in a sentence for the status comment; None when it may ("off" always may)."""
        if mode == "off":
            return None
        verdict = await self.verdict()
        return verdict.setup if mode == "setup" else verdict.egress

    async def close(self) -> None:
        self._task.cancel()
        self._first.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


async def _check(settings: Settings, engine: docker.DockerClient, proxy_running: bool) -> Verdict:
    try:
        verdict = await asyncio.wait_for(
            _run(settings, engine, proxy_running, settings.sandbox_network), CHECK_SECONDS
        )
    except TimeoutError:
        problem = f"the network self-test did not finish in {CHECK_SECONDS:.0f} s"
        verdict = Verdict(off("setup", problem), off("allowlist/on", problem))
    except Exception as error:  # whatever broke, the answer is "no network" (fail closed)
        problem = f"the network self-test failed ({type(error).__name__}: {error})"
        verdict = Verdict(off("setup", problem), off("allowlist/on", problem))
    return verdict


def _log(verdict: Verdict) -> None:
    for line in (verdict.setup, verdict.egress, *verdict.warnings):
        if line:
            log.warning("network self-test: %s", line)
    if not (verdict.setup or verdict.egress or verdict.warnings):
        log.info("network self-test: setup and egress networks are firewalled as they should be")


async def _run(
    settings: Settings, engine: docker.DockerClient, proxy_running: bool, setup_network: str
) -> Verdict:
    public = netprobe.package_index_host()
    setup_gateway, egress_gateway, address, version = await asyncio.gather(
        netprobe.gateway(engine, setup_network) if setup_network else _none(),
        netprobe.gateway(engine, settings.egress_network),
        _address(public),
        asyncio.to_thread(lambda: str(engine.version().get("Version", "unknown"))),
    )
    async with netprobe.host_listener() as listener:
        plan = Plan(
            public, address, setup_gateway, egress_gateway, listener,
            urlsplit(settings.redis_url).port or 6379,
            settings.egress_port if proxy_running else None,
            tuple(netprobe.private_resolvers()),
        )  # fmt: skip
        image = settings.sandbox_image
        setup, egress = await asyncio.gather(
            _probe(engine, image, setup_network, plan.setup_probe(), setup_gateway),
            _probe(engine, image, settings.egress_network, plan.egress_probe(), egress_gateway),
        )
    return judge(plan, setup, egress, version, settings.allow_vulnerable_engine)


async def _probe(
    engine: docker.DockerClient, image: str, network: str, probe: Probe, gateway: str | None
) -> Findings | str | None:
    if gateway is None:
        return None  # no such network: nothing runs on it
    try:
        return await netprobe.run_probe(engine, image, network, probe)
    except ProbeFailed as error:
        return str(error)


async def _address(name: str | None) -> str | None:
    """`name`'s first IPv4 address as this host resolves it (for the egress probe, which must
    not be able to resolve it itself)."""
    if name is None:
        return None
    try:
        infos = await asyncio.wait_for(
            asyncio.get_running_loop().getaddrinfo(name, 443, family=socket.AF_INET), 3
        )
    except (OSError, TimeoutError):
        return None
    return str(infos[0][4][0]) if infos else None


async def _none() -> None:
    return None
