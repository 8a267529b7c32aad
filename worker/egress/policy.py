"""What the egress proxy lets a sandbox reach: pure decisions, no I/O.

`.github/codex.yml` `network:` becomes a `NetworkPolicy`; the proxy asks `decide_connect()` about
each CONNECT, `decide()` about each HTTP request it can see, and `address_allowed()` about every
address a name resolves to. Keeping these here, free of sockets, lets the rules be tested with
plain data and read in one place:

- ports: 80 and 443 for HTTP requests, 443 only for CONNECT, in every mode;
- `allowlist`: the host must match `allow` (`*.example.org` matches any subdomain, not the apex)
  and the method must be in `methods`; HTTPS is always decrypted, so each request is seen;
- `on`: any host, any method;
- never an address on the host, its networks or the cloud metadata service (`address_allowed`).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

CONFIG = "`.github/codex.yml`"
HTTP_PORTS = frozenset({80, 443})
TUNNEL_PORT = 443
ALL_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"})
"""A `methods` list covering these (or holding `*`) allows every method."""
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


@dataclass(frozen=True)
class NetworkPolicy:
    mode: Literal["allowlist", "on"]
    allow: tuple[str, ...] = ()
    """Domains; `*.example.org` matches any subdomain of example.org, not example.org itself."""
    methods: tuple[str, ...] = ("GET", "HEAD", "OPTIONS")
    """HTTP methods allowed in `allowlist` mode; `*` allows all."""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    """Written for the person reading the work log: what matched, or what to change."""


@dataclass(frozen=True)
class Request:
    """One line of the egress log: a request (or an opaque tunnel) and what became of it."""

    time: float
    """Unix time at which the request arrived."""
    method: str
    """`CONNECT` for a tunnel whose requests the proxy cannot see."""
    host: str
    port: int
    path: str | None
    """Path and query for plain HTTP and intercepted HTTPS; None for a tunnel."""
    allowed: bool
    reason: str
    status: int | None
    """The upstream's HTTP status; None when nothing was forwarded or no status was seen."""
    bytes: int
    """Bytes relayed between client and upstream, both directions, excluding request heads."""


class UnknownPreset(ValueError):
    """`network.allow` names an `@preset` the server does not define; says which ones it does."""


PRESET = re.compile(r"^@[a-z0-9-]+$")
"""`@internal-registries`: a name from the server's `EGRESS_PRESETS`."""


def expand_presets(allow: Sequence[str], presets: Mapping[str, Sequence[str]]) -> tuple[str, ...]:
    """`allow` with each `@name` replaced by the host patterns `presets[name]` lists."""
    expanded: list[str] = []
    for entry in allow:
        if not PRESET.match(entry):
            expanded.append(entry)
            continue
        if entry[1:] not in presets:
            known = ", ".join(f"`@{name}`" for name in sorted(presets)) or "none"
            raise UnknownPreset(
                f"{CONFIG} network.allow names `{entry}`, which this server does not define "
                f"(its EGRESS_PRESETS: {known}): fix the name or ask the operator to add it"
            )
        expanded.extend(presets[entry[1:]])
    return tuple(dict.fromkeys(expanded))


def canonical_ip(ip: str) -> str:
    """One spelling per address, also for IPv4 seen through a dual-stack socket."""
    address = ipaddress.ip_address(ip)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


@functools.lru_cache(maxsize=4096)
def normalize_host(host: str) -> str | None:
    """Lower-case `host` without its trailing dot; None unless it is a DNS name or IP literal."""
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    host = host.removesuffix(".")
    labels = host.split(".")
    if len(host) > 253 or not all(_LABEL.match(label) for label in labels):
        return None
    return host


def _matching_rule(policy: NetworkPolicy, host: str) -> str | None:
    for rule in policy.allow:
        pattern = rule.strip().lower().removesuffix(".")
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]):
                return rule
        elif host == pattern:
            return rule
    return None


def host_allowed(policy: NetworkPolicy, host: str) -> bool:
    """Whether `host` may be reached at all under `policy` (ports and methods aside)."""
    name = normalize_host(host)
    if name is None:
        return False
    return policy.mode == "on" or _matching_rule(policy, name) is not None


def _all_methods(policy: NetworkPolicy) -> bool:
    methods = {method.strip().upper() for method in policy.methods}
    return "*" in methods or methods >= ALL_METHODS


def needs_interception(policy: NetworkPolicy) -> bool:
    """`allowlist` decrypts all HTTPS: to enforce `methods`, and, even when every method is
    allowed, to check that the requests inside a tunnel name the host it was opened to."""
    return policy.mode == "allowlist"


def _decide_host(policy: NetworkPolicy, host: str) -> Decision:
    name = normalize_host(host)
    if name is None:
        return Decision(False, f"`{host}` is not a valid host name")
    if policy.mode == "on":
        return Decision(True, "network.agent is `on`")
    rule = _matching_rule(policy, name)
    if rule is None:
        return Decision(False, f"`{name}` is not allowed by {CONFIG} network.allow")
    return Decision(True, f"`{name}` matches network.allow `{rule}`")


def decide_connect(policy: NetworkPolicy, host: str, port: int) -> Decision:
    """A CONNECT: only to port 443, only to an allowed host. With interception the requests
    inside are decided one by one (`decide`); without, the tunnel as a whole (method None)."""
    if port != TUNNEL_PORT:
        return Decision(False, f"CONNECT to port {port} is not allowed: HTTPS on port 443 only")
    if needs_interception(policy):
        return _decide_host(policy, host)
    return decide(policy, host, port, None)


@functools.lru_cache(maxsize=4096)
def decide(policy: NetworkPolicy, host: str, port: int, method: str | None) -> Decision:
    """An HTTP request to `host:port`; `method` None stands for a tunnel whose requests the proxy
    cannot see, allowed only when the policy allows every method. Cached: a kept-alive client
    asks the same question request after request (the arguments are all immutable)."""
    allowed_ports = {TUNNEL_PORT} if method is None else HTTP_PORTS
    if port not in allowed_ports:
        return Decision(False, f"port {port} is not allowed: HTTP on port 80, HTTPS on 443 only")
    verdict = _decide_host(policy, host)
    if not verdict.allowed or policy.mode == "on" or _all_methods(policy):
        return verdict
    listed = ", ".join(policy.methods) or "none"
    if method is None:
        return Decision(False, f"network.methods ({listed}) cannot be enforced on this tunnel")
    if method.upper() not in {m.strip().upper() for m in policy.methods}:
        return Decision(
            False, f"{method.upper()} is not allowed by {CONFIG} network.methods ({listed})"
        )
    return Decision(True, f"{verdict.reason}; {method.upper()} is in network.methods")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_allowed(ip: str) -> bool:
    """Whether the proxy may connect to `ip`: only public unicast addresses, so never the host,
    its networks (Redis, the Docker API), the metadata service (169.254.169.254) or CGNAT."""
    try:
        address = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return address_allowed(str(embedded))
    refused = (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_unspecified
        or address.is_reserved
        or (isinstance(address, ipaddress.IPv6Address) and address.is_site_local)
    )
    return address.is_global and not refused
