"""What the firewall self-test (`selftest.py`) concludes from what its probes found: the plan of
what each probe tries, and the verdict per kind of network. Pure: no sockets, no Docker, so the
rules are tested with plain data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from worker.egress.probe import BLOCK_SECONDS, REACH_SECONDS, Findings, Probe

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
    return Verdict(off("setup", setup_problem), off("allowlist/on", egress_problem),
                   tuple(warnings))  # fmt: skip


def off(what: str, problem: str | None) -> str | None:
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
