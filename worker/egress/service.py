"""The egress proxy as the worker runs it: one per worker process, in a process of its own
(`egress_proc`) listening on the egress network's gateway, serving each sandbox under its
repository's `network` policy (with `EGRESS_PRESETS` expanded) for as long as that sandbox's
agent phase lasts; the requests it streams back land in the task's work log.

When the proxy cannot run (no egress network, the port taken by another worker on this host)
the worker still starts: tasks with `network.agent: off` are unaffected, and the others fail
with `problem` in their status comment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import docker
import docker.errors

from app.settings import Settings
from worker.egress.certs import CertificateAuthority
from worker.egress.client import ProxyGone, ProxyProcess
from worker.egress.policy import NetworkPolicy, Request, UnknownPreset, expand_presets
from worker.repoconfig import NetworkConfig
from worker.report.worklog import WorkLog
from worker.sandbox.containers import DockerSandbox

log = logging.getLogger(__name__)


class EgressUnavailable(Exception):
    """`network.agent` asks for the proxy and this worker has none; the message says why."""


@dataclass
class Egress:
    network: str
    process: ProxyProcess | None = None
    url: str = ""
    ca_pem: bytes = b""
    problem: str | None = None
    presets: Mapping[str, list[str]] = field(default_factory=dict)

    @property
    def proxy(self) -> ProxyProcess | None:
        """The old name of `process` (the proxy ran in the worker's own event loop then)."""
        return self.process

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
        config = {
            "bind": gateway, "port": port, "ca_dir": str(settings.egress_ca_dir),
            "hosts": settings.egress_hosts, "per_sandbox": settings.egress_sandbox_connections,
            "upstream_ca": str(settings.egress_upstream_ca or "") or None,
        }  # fmt: skip
        try:
            process = await ProxyProcess.start(config)
        except ProxyGone as gone:
            return cls._unavailable(
                name, f"the egress proxy could not listen on {gateway}:{port} ({gone})"
            )
        log.info(
            "egress proxy (pid %d) listening on %s:%d for network %s, %d connections at most",
            *(process.process.pid, gateway, port, name, process.total),
        )
        url = f"http://{gateway}:{port}"
        return cls(name, process, url, ca.cert_pem, presets=settings.egress_presets)

    @classmethod
    def _unavailable(cls, network: str, problem: str) -> Egress:
        log.warning("egress proxy not running: %s; network.agent allowlist/on tasks fail", problem)
        return cls(network, problem=problem)

    async def close(self) -> None:
        if self.process is not None:
            await self.process.close()

    def require(self, mode: str) -> None:
        """Raise when a task with network `mode` cannot run here."""
        problem = self.problem if self.process is None else self.process.ended
        if mode != "off" and problem is not None:
            raise EgressUnavailable(
                f"`network.agent: {mode}` needs the egress proxy, which is not running on this "
                f"worker: {problem}. Use `network.agent: off`, or ask the operator."
            )

    def policy(self, config: NetworkConfig) -> NetworkPolicy:
        """The proxy's rules for `config`, `@preset` entries expanded from `EGRESS_PRESETS`."""
        assert config.agent != "off"
        try:
            allow = expand_presets(config.allow, self.presets)
        except UnknownPreset as unknown:
            raise EgressUnavailable(str(unknown)) from None
        return NetworkPolicy(config.agent, allow, tuple(config.methods))

    @asynccontextmanager
    async def serve(
        self, sandbox: DockerSandbox, config: NetworkConfig, worklog: WorkLog, label: str
    ) -> AsyncIterator[None]:
        """Move `sandbox` onto the egress network and serve it under `config` until exit; every
        request it makes lands in `worklog` (and the worker's log)."""
        self.require(config.agent)
        assert self.process is not None
        policy = self.policy(config)
        address = await sandbox.join_egress(self.network, self.url, self.ca_pem)

        def record(request: Request) -> None:
            worklog.record_egress(request.allowed, *egress_line(request))

        worklog.network = config.agent
        try:
            await self.process.register(address, policy, record, label)
        except ProxyGone as gone:
            raise EgressUnavailable(f"the egress proxy failed: {gone}") from None
        try:
            yield
        finally:
            with contextlib.suppress(ProxyGone):
                await self.process.unregister(address)


def egress_line(request: Request) -> tuple[str, str]:
    """What was asked (`GET host/path`, or the raw first line of a request the proxy could not
    parse) and the work log's line for it, with its true verdict."""
    where = request.host if request.port in (80, 443) else f"{request.host}:{request.port}"
    what = f"{request.method} {where if request.host else ''}{request.path or ''}"
    when = time.strftime("%H:%M:%S", time.gmtime(request.time))
    verdict = "allowed" if request.allowed else "REFUSED"
    status = f" → {request.status}" if request.status is not None else ""
    return what, f"{when} {verdict} {what}{status}, {request.bytes} B: {request.reason}"
