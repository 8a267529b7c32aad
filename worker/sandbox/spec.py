"""What a sandbox container is made of, and how one is created from it.

The baseline options every sandbox gets (PITFALLS: non-root, no capabilities,
`no-new-privileges`, pids, memory = memory+swap, CPUs, `init`, no IPv6, never the Docker
socket) are set here, in one call, so a container is never started without them.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field

import docker
from docker.models.containers import Container

from app.settings import default
from worker.sandbox import disk
from worker.sandbox.archives import SANDBOX_UID

WORKDIR = "/workspace"
HOME = "/home/codex"
OWNER_LABELS: dict[str, str] = {}
"""Labels naming the worker process that starts a container (`codex.worker`, `codex.fleet`),
set once at worker startup, so another worker can remove what a dead one left behind."""
IPV6_OFF = {"net.ipv6.conf.all.disable_ipv6": "1", "net.ipv6.conf.default.disable_ipv6": "1"}
"""Our own setting, whatever the engine's defaults: the firewall rules are IPv4 (and the
bridges drop IPv6 as well)."""


class SandboxError(Exception):
    """The sandbox failed (not the command in it): the container died or would not start."""


@dataclass(frozen=True)
class SandboxSpec:
    image: str
    memory: str = default("sandbox_memory")
    cpus: float = default("sandbox_cpus")
    pids: int = default("sandbox_pids")
    runtime: str | None = None
    output_limit: int = default("output_limit")
    network: str | None = None
    """A Docker network for the setup phase (`isolate()` leaves it); None: no network at all."""
    env: Mapping[str, str] = field(default_factory=dict)
    """Environment of every command (not secret: visible in the container's config)."""
    label: str = ""
    """Written to the container's `codex.task` label, so leftovers can be found and removed."""
    disk: int | None = None
    """Bytes the container may write to disk (`SANDBOX_DISK`); None: no limit."""
    selftest: bool = False
    """A probe of the worker's own (labelled `codex.selftest`): not a task's container."""
    tmpfs: Mapping[str, str] = field(default_factory=dict)
    """Memory-backed mounts (path -> options): what is written there is in no snapshot."""


_quotas: dict[str, bool] = {}


def has_quota(client: docker.DockerClient) -> bool:
    """Whether `client`'s engine enforces a disk size per container (asked once per engine)."""
    url = str(client.api.base_url)
    if url not in _quotas:
        _quotas[url] = disk.has_quotas(client.info())
    return _quotas[url]


def create_container(client: docker.DockerClient, spec: SandboxSpec) -> Container:
    """Create and start the container. `create`, unlike `run`, never pulls a missing image."""
    memory = spec.memory
    quota = {"size": str(spec.disk)} if spec.disk and has_quota(client) else None
    container = client.containers.create(
        spec.image,
        command=["sleep", "infinity"],
        name=f"codex-{secrets.token_hex(6)}",
        init=True,
        user=f"{SANDBOX_UID}:{SANDBOX_UID}",
        working_dir=WORKDIR,
        environment={
            **spec.env,
            "HOME": HOME,
            "CI": "true",
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            "NO_COLOR": "1",
        },
        network=spec.network,  # docker-py refuses both at once, by truthiness
        network_mode=None if spec.network else "none",
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        pids_limit=spec.pids,
        mem_limit=memory,
        memswap_limit=memory,
        nano_cpus=int(spec.cpus * 1e9),
        runtime=spec.runtime,
        labels={"codex.selftest" if spec.selftest else "codex.task": spec.label, **OWNER_LABELS},
        tmpfs=dict(spec.tmpfs) or None,
        sysctls=IPV6_OFF,
        storage_opt=quota,
    )
    try:
        container.start()
    except BaseException:
        with suppress(docker.errors.APIError):
            container.remove(force=True)
        raise
    return container
