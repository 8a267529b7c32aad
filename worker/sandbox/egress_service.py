"""The egress proxy as the worker runs it: one per worker process, listening on the egress
network's gateway, serving each sandbox under its repository's `network` policy for as long as
that sandbox's agent phase lasts.

When the proxy cannot run (no egress network, the port taken by another worker on this host)
the worker still starts: tasks with `network.agent: off` are unaffected, and the others fail
with `problem` in their status comment.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import docker
import docker.errors

from app.settings import Settings
from worker.repoconfig import NetworkConfig
from worker.sandbox.certs import CertificateAuthority
from worker.sandbox.containers import DockerSandbox
from worker.sandbox.egress import EgressProxy
from worker.sandbox.egress_policy import NetworkPolicy, Request
from worker.worklog import WorkLog

log = logging.getLogger(__name__)


class EgressUnavailable(Exception):
    """`network.agent` asks for the proxy and this worker has none; the message says why."""


@dataclass
class Egress:
    network: str
    proxy: EgressProxy | None = None
    url: str = ""
    ca_pem: bytes = b""
    problem: str | None = None

    @classmethod
    async def start(cls, settings: Settings, engine: docker.DockerClient) -> Egress:
        name, port = settings.egress_network, settings.egress_port
        try:
            network = await asyncio.to_thread(engine.networks.get, name)
        except docker.errors.NotFound:
            return cls._unavailable(
                name, f"there is no Docker network {name!r} (deploy/docker/sandbox-network.sh)"
            )
        configs = network.attrs.get("IPAM", {}).get("Config") or [{}]
        gateway = configs[0].get("Gateway")
        if not gateway:
            return cls._unavailable(name, f"the Docker network {name!r} has no gateway address")
        ca = CertificateAuthority.load_or_create(settings.egress_ca_dir)
        proxy = EgressProxy(
            ca, hosts=settings.egress_hosts, upstream_ca=settings.egress_upstream_ca
        )
        try:
            await proxy.start(gateway, port)
        except OSError as error:
            return cls._unavailable(
                name, f"the egress proxy could not listen on {gateway}:{port} ({error.strerror})"
            )
        log.info("egress proxy listening on %s:%d for network %s", gateway, port, name)
        return cls(name, proxy, f"http://{gateway}:{port}", ca.cert_pem)

    @classmethod
    def _unavailable(cls, network: str, problem: str) -> Egress:
        log.warning("egress proxy not running: %s; network.agent allowlist/on tasks fail", problem)
        return cls(network, problem=problem)

    async def close(self) -> None:
        if self.proxy is not None:
            await self.proxy.close()

    def require(self, mode: str) -> None:
        """Raise when a task with network `mode` cannot run here."""
        if mode != "off" and self.proxy is None:
            raise EgressUnavailable(
                f"`network.agent: {mode}` needs the egress proxy, which is not running on this "
                f"worker: {self.problem}. Use `network.agent: off`, or ask the operator."
            )

    @asynccontextmanager
    async def serve(
        self, sandbox: DockerSandbox, config: NetworkConfig, worklog: WorkLog, label: str
    ) -> AsyncIterator[None]:
        """Move `sandbox` onto the egress network and serve it under `config` until exit; every
        request it makes lands in `worklog` (and the worker's log)."""
        self.require(config.agent)
        assert self.proxy is not None and config.agent != "off"
        policy = NetworkPolicy(config.agent, tuple(config.allow), tuple(config.methods))
        address = await sandbox.join_egress(self.network, self.url, self.ca_pem)

        def record(request: Request) -> None:
            worklog.record_egress(request.allowed, *egress_line(request))

        worklog.network = config.agent
        self.proxy.register(address, policy, record, label=label)
        try:
            yield
        finally:
            self.proxy.unregister(address)


def egress_line(request: Request) -> tuple[str, str]:
    """What was asked (`GET host/path`, or the raw first line of a request the proxy could not
    parse) and the work log's line for it, with its true verdict."""
    where = request.host if request.port in (80, 443) else f"{request.host}:{request.port}"
    what = f"{request.method} {where if request.host else ''}{request.path or ''}"
    when = time.strftime("%H:%M:%S", time.gmtime(request.time))
    verdict = "allowed" if request.allowed else "REFUSED"
    status = f" → {request.status}" if request.status is not None else ""
    return what, f"{when} {verdict} {what}{status}, {request.bytes} B: {request.reason}"
