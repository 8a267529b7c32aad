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

The decisions (`engine_affected`, `judge`) are pure; `NetworkCheck` runs the probes once in the
background and answers `problem_for(mode)` for the attempt code.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import docker

from app.settings import Settings
from worker.egress import probe as netprobe
from worker.egress.probe import BLOCK_SECONDS, REACH_SECONDS, Findings, Probe, ProbeFailed

log = logging.getLogger(__name__)

CHECK_SECONDS = 20.0
"""The whole self-test, both probes at once; a check that takes longer counts as failed."""
FIREWALL = (
    "the sandbox firewall is missing or incomplete (run deploy/docker/sandbox-network.sh as root)"
)
METADATA = ("169.254.169.254", 80)


def engine_affected(version: str) -> bool:
    """Whether Docker engine `version` forwards DNS from `--internal` networks
    (CVE-2024-29018): everything before 23.0.11, all of 24, 25.0.0-25.0.3; fixed in 23.0.11,
    25.0.4 and 26.0.0. A version that does not parse counts as affected."""
    match = re.match(r"v?(\d+)\.(\d+)(?:\.(\d+))?", version.strip())
    if match is None:
        return True
    major, minor, patch = (int(part or 0) for part in match.groups())
    if major == 23:
        return (minor, patch) < (0, 11)
    if major == 25:
        return (minor, patch) < (0, 4)
    return major < 26


@dataclass(frozen=True)
class Plan:
    """What the probes try: the public name (None: pip is not there to name one), the host's
    gateways on both networks, the throwaway listener's port, Redis's port, the proxy's port
    (None: no proxy running) and private resolvers."""

    public: str | None
    public_address: str | None
    setup_gateway: str | None
    egress_gateway: str | None
    listener: int
    redis: int | None
    proxy: int | None
    resolvers: tuple[str, ...] = ()

    def setup_probe(self) -> Probe:
        probe = Probe(resolve={self.public: REACH_SECONDS} if self.public else {})
        if self.public:
            probe.connect["public"] = (self.public, 443, REACH_SECONDS)
        probe.connect.update(self._forbidden(self.setup_gateway))
        for resolver in self.resolvers:
            probe.connect[f"resolver {resolver}:443"] = (resolver, 443, BLOCK_SECONDS)
        return probe

    def egress_probe(self) -> Probe:
        probe = Probe(resolve={self.public: BLOCK_SECONDS} if self.public else {})
        if self.proxy is not None and self.egress_gateway:
            probe.connect["proxy"] = (self.egress_gateway, self.proxy, REACH_SECONDS)
        if self.public_address:
            probe.connect["public"] = (self.public_address, 443, BLOCK_SECONDS)
        probe.connect.update(self._forbidden(self.egress_gateway))
        return probe

    def _forbidden(self, gateway: str | None) -> dict[str, tuple[str, int, float]]:
        connect = {"metadata": (*METADATA, BLOCK_SECONDS)}
        if gateway:
            connect["host"] = (gateway, self.listener, BLOCK_SECONDS)
            if self.redis:
                connect["redis"] = (gateway, self.redis, BLOCK_SECONDS)
        return connect


@dataclass(frozen=True)
class Verdict:
    """Why each kind of network may not be used here (None: it may), and what works but is
    worth an operator's look (setup without DNS is not a hole, but its installs will fail)."""

    setup: str | None
    egress: str | None
    warnings: tuple[str, ...] = ()


def judge(
    plan: Plan,
    setup: Findings | str | None,
    egress: Findings | str | None,
    engine: str,
    allow_vulnerable: bool,
) -> Verdict:
    """The verdict from what the probes found (a string: why a probe failed; None: that network
    does not exist, so there is nothing to refuse)."""
    warnings: list[str] = []
    setup_problem = _setup_problem(plan, setup, warnings)
    egress_problem = _egress_problem(plan, egress)
    if egress_problem is None and engine_affected(engine) and not allow_vulnerable:
        egress_problem = (
            f"this Docker engine ({engine}) has CVE-2024-29018 (DNS forwarded out of internal "
            "networks; fixed in 23.0.11, 25.0.4, 26.0.0): upgrade it, or set "
            "ALLOW_VULNERABLE_ENGINE=true if the host's resolver is not on loopback"
        )
    return Verdict(_off("setup", setup_problem), _off("allowlist/on", egress_problem),
                   tuple(warnings))  # fmt: skip


def _off(what: str, problem: str | None) -> str | None:
    return None if problem is None else f"network for {what} is off on this worker: {problem}"


def _setup_problem(plan: Plan, found: Findings | str | None, warnings: list[str]) -> str | None:
    if found is None:
        return None
    if isinstance(found, str):
        return f"the network self-test could not run ({found})"
    if found.reached("host") or found.reached("redis"):
        return f"{FIREWALL}: a setup sandbox reached a service on this host"
    leaks = [label for label in found.connected if label.startswith("resolver ")]
    leaks = [label for label in ["metadata", *leaks] if found.reached(label)]
    if leaks:
        return f"{FIREWALL}: a setup sandbox reached a private address ({', '.join(leaks)})"
    if plan.public is None:
        warnings.append("setup's DNS was not checked: pip is not installed to name a public host")
    elif not found.resolved.get(plan.public):
        warnings.append(
            f"setup sandboxes cannot resolve names ({plan.public}): the firewall drops DNS to "
            "this host's resolvers; rerun deploy/docker/sandbox-network.sh as root (with "
            "SANDBOX_DNS=ip,... if Docker uses other resolvers than /etc/resolv.conf)"
        )
    elif not found.reached("public"):
        warnings.append(f"setup sandboxes resolve names but do not reach {plan.public}:443")
    return None


def _egress_problem(plan: Plan, found: Findings | str | None) -> str | None:
    if found is None:
        return None
    if isinstance(found, str):
        return f"the network self-test could not run ({found})"
    if found.reached("host") or found.reached("redis"):
        return f"{FIREWALL}: an egress sandbox reached a service on this host"
    if found.reached("metadata") or found.reached("public"):
        return f"{FIREWALL}: an egress sandbox reached an address other than the proxy"
    if plan.public and found.resolved.get(plan.public):
        return (
            f"an egress sandbox resolved {plan.public}: Docker forwards DNS out of the internal "
            "network (CVE-2024-29018: upgrade the engine, or give the host a non-loopback resolver)"
        )
    if "proxy" in found.connected and not found.reached("proxy"):
        return (
            f"egress sandboxes cannot reach the proxy on port {plan.proxy}: the firewall lets "
            "only EGRESS_PORTS through (rerun deploy/docker/sandbox-network.sh as root)"
        )
    return None


class NetworkCheck:
    """The start-up self-test, run once in the background; `problem_for` waits for it."""

    def __init__(self, task: asyncio.Task[Verdict]) -> None:
        self._task = task

    @classmethod
    def start(
        cls, settings: Settings, engine: docker.DockerClient, *, proxy_running: bool
    ) -> NetworkCheck:
        return cls(asyncio.create_task(_check(settings, engine, proxy_running)))

    async def verdict(self) -> Verdict:
        return await asyncio.shield(self._task)

    async def problem_for(self, mode: str) -> str | None:
        """Why network `mode` ("setup", "allowlist" or "on") may not be used on this worker,
        in a sentence for the status comment; None when it may ("off" always may)."""
        if mode == "off":
            return None
        verdict = await self.verdict()
        return verdict.setup if mode == "setup" else verdict.egress

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


async def _check(settings: Settings, engine: docker.DockerClient, proxy_running: bool) -> Verdict:
    try:
        verdict = await asyncio.wait_for(
            _run(settings, engine, proxy_running, settings.sandbox_network), CHECK_SECONDS
        )
    except TimeoutError:
        problem = f"the network self-test did not finish in {CHECK_SECONDS:.0f} s"
        verdict = Verdict(_off("setup", problem), _off("allowlist/on", problem))
    except Exception as error:  # whatever broke, the answer is "no network" (fail closed)
        problem = f"the network self-test failed ({type(error).__name__}: {error})"
        verdict = Verdict(_off("setup", problem), _off("allowlist/on", problem))
    for line in (verdict.setup, verdict.egress, *verdict.warnings):
        if line:
            log.warning("network self-test: %s", line)
    if not (verdict.setup or verdict.egress or verdict.warnings):
        log.info("network self-test: setup and egress networks are firewalled as they should be")
    return verdict


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
