"""The Docker sandbox: one fresh, locked-down container per task, reached only through the API.

The checkout goes in and the diff comes out through the Docker API (no bind mounts), so a remote
engine works too and nothing on the host is shared with the container. How a container is made
is `spec.py`; how one command runs in it, `execution.py`; this module is a running container
(files in and out, its networks, stopping it) and its lifetime (`open_sandbox`).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import shlex
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import docker
from docker.models.containers import Container

from worker.protocols import CommandResult
from worker.sandbox import disk
from worker.sandbox.archives import tar_files, tar_tree
from worker.sandbox.execution import GRACE, READ_TRIES, read_output, run_command
from worker.sandbox.removal import remove_in_background
from worker.sandbox.spec import (
    HOME,
    WORKDIR,
    SandboxError,
    SandboxSpec,
    create_container,
    has_quota,
)

log = logging.getLogger(__name__)

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")
CA_VARIABLES = (
    "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS",
    "GIT_SSL_CAINFO", "PIP_CERT",
)  # fmt: skip
"""How common tools are told about a proxy and an extra CA, without root in the container."""


class DockerSandbox:
    """Matches `worker.protocols.Sandbox`; the rest (networks, the container) is Docker's."""

    def __init__(
        self, client: docker.DockerClient, container: Container, spec: SandboxSpec
    ) -> None:
        self.client = client
        self.api = client.api
        self.container = container
        self.spec = spec
        self.exec_env: dict[str, str] = {}
        """Environment of every command from now on (the agent phase's proxy settings)."""
        self.stopped: str | None = None
        """Why the worker stopped the sandbox (its disk limit), for the person to read."""
        self.watcher: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return str(self.container.name)

    async def put_tree(self, root: Path) -> None:
        """Copy the directory `root` into the sandbox's working directory."""

        def put() -> None:
            with tar_tree(root) as archive:
                if not self.container.put_archive(WORKDIR, archive):
                    raise SandboxError(f"copying the checkout into {self.name} failed")

        await asyncio.to_thread(put)

    async def run(
        self,
        command: str,
        *,
        timeout: int,
        workdir: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> CommandResult:
        directory = WORKDIR if not workdir else str(Path(WORKDIR) / workdir)
        started = time.monotonic()
        try:
            output, code = await asyncio.wait_for(
                asyncio.to_thread(self._run, command, timeout, directory, env),
                timeout + GRACE + 30,
            )
        except TimeoutError:
            await self.kill()
            raise SandboxError(
                f"command outlived its {timeout}s limit and the sandbox was stopped: "
                f"{shlex.quote(command)[:200]}"
            ) from None
        if self.stopped:
            raise SandboxError(self.stopped)
        # `timeout` exits 124 after TERM, 137 after KILL.
        return CommandResult(
            exit_code=code,
            output=output,
            duration=time.monotonic() - started,
            timed_out=code in (124, 137),
        )

    def _run(
        self, command: str, timeout: int, workdir: str, env: Mapping[str, str] | None
    ) -> tuple[str, int]:
        try:
            return run_command(
                self.api,
                str(self.container.id),
                command,
                timeout=timeout,
                workdir=workdir,
                environment={**self.exec_env, **(env or {})},
                output_limit=self.spec.output_limit,
                label=self.spec.label,
            )
        except docker.errors.APIError as error:
            raise SandboxError(
                self.stopped or f"the sandbox stopped answering: {error.explanation}"
            ) from error

    async def read(self, command: str, *, limit: int, timeout: int = 120) -> bytes | None:
        """The raw stdout of `command`, or None when it exceeds `limit` bytes or fails."""

        def run() -> bytes | None:
            return read_output(self.api, str(self.container.id), command, workdir=WORKDIR,
                               limit=limit, timeout=timeout, label=self.spec.label)  # fmt: skip

        try:
            data = await asyncio.wait_for(asyncio.to_thread(run), READ_TRIES * (timeout + 30))
        except docker.errors.APIError as error:
            raise SandboxError(self.stopped or f"the sandbox stopped answering: {error}") from None
        if self.stopped:
            raise SandboxError(self.stopped)
        return data

    async def read_file(self, path: str, limit: int = 4_000_000) -> bytes | None:
        """A file of the checkout (relative `path`), or None when it is missing or too large."""
        return await self.read(f"cat -- {shlex.quote(path)}", limit=limit)

    async def write_files(self, files: Mapping[str, bytes | None]) -> None:
        """Write (or with None, delete) checkout files. Contents are staged through the Docker
        API and copied with `cat >`, so an existing file keeps its mode (an edited script stays
        executable)."""
        stage = f"{HOME}/.codex-write-{secrets.token_hex(4)}"
        staged = {str(n): data for n, data in enumerate(files.values()) if data is not None}
        script = []
        for n, (path, data) in enumerate(files.items()):
            target = shlex.quote(path)
            if data is None:
                script.append(f"rm -f -- {target}")
            else:
                script.append(f'mkdir -p -- "$(dirname -- {target})" && cat {stage}/{n} > {target}')
        script.append(f"rm -rf {stage}")
        if staged:
            await self.run(f"mkdir -p {stage}", timeout=30)

            def put() -> None:
                if not self.container.put_archive(stage, tar_files(staged)):
                    raise SandboxError(f"copying files into {self.name} failed")

            await asyncio.to_thread(put)
        result = await self.run(" && ".join(script), timeout=60)
        if result.exit_code != 0:
            raise SandboxError(f"writing files in the sandbox failed: {result.output[-500:]}")

    async def isolate(self) -> None:
        """Leave every network: from here on the container has loopback only."""
        if self.spec.network is not None:  # otherwise it never had more than loopback
            await self._leave_networks(keep=None)

    async def _leave_networks(self, keep: str | None) -> None:
        await asyncio.to_thread(self.container.reload)
        joined = self.container.attrs["NetworkSettings"]["Networks"] or {}
        for name in joined:
            if name not in (keep, "none"):
                network = await asyncio.to_thread(self.client.networks.get, name)
                await asyncio.to_thread(network.disconnect, self.container, force=True)

    async def join_egress(self, network: str, proxy_url: str, ca_pem: bytes) -> str:
        """The agent phase with `allowlist` or `on`: the container leaves the setup network and
        joins `network`, where the only address it reaches is the egress proxy. Its commands
        get the proxy settings and trust `ca_pem` (for TLS interception). Returns the
        container's address there: the proxy tells tasks apart by it."""
        await self._leave_networks(keep=network)
        joined = self.container.attrs["NetworkSettings"]["Networks"] or {}
        if network not in joined:
            net = await asyncio.to_thread(self.client.networks.get, network)
            await asyncio.to_thread(net.connect, self.container)
            await asyncio.to_thread(self.container.reload)
        address = str(self.container.attrs["NetworkSettings"]["Networks"][network]["IPAddress"])
        await asyncio.to_thread(
            self.container.put_archive, HOME, tar_files({".codex-egress-ca.pem": ca_pem})
        )
        bundle, ours = f"{HOME}/.codex-ca-bundle.pem", f"{HOME}/.codex-egress-ca.pem"
        await self.run(
            f"cat /etc/ssl/certs/ca-certificates.crt {ours} > {bundle} 2>/dev/null "
            f"|| cp {ours} {bundle}",
            timeout=30,
        )
        self.exec_env = {
            **{name: proxy_url for name in PROXY_VARIABLES},
            "NO_PROXY": "localhost,127.0.0.1,::1",
            "no_proxy": "localhost,127.0.0.1,::1",
            **{name: bundle for name in CA_VARIABLES},
        }
        return address

    async def stop(self, reason: str) -> None:
        """Stop the sandbox for `reason`: every command from now on fails saying so."""
        self.stopped = reason
        with suppress(docker.errors.APIError):
            await asyncio.to_thread(self.container.kill)

    async def kill(self) -> None:
        if self.watcher is not None:
            self.watcher.cancel()
        with suppress(docker.errors.NotFound):
            await asyncio.to_thread(self.container.remove, force=True)


async def start_sandbox(client: docker.DockerClient, spec: SandboxSpec) -> DockerSandbox:
    """A fresh container; the caller removes it (`kill`). `open_sandbox` is the usual way.

    A cancel cannot stop the engine call in its thread: the container it makes is removed."""
    starting = asyncio.ensure_future(asyncio.to_thread(create_container, client, spec))
    try:
        container = await asyncio.shield(starting)
    except asyncio.CancelledError:
        with suppress(Exception):
            leftover = await starting
            await asyncio.to_thread(leftover.remove, force=True)
        raise
    except docker.errors.ImageNotFound:
        raise SandboxError(
            f"the sandbox image `{spec.image}` is not on this worker's Docker engine (tasks never "
            "pull images); the operator can build it with deploy/sandbox/build-local.sh"
        ) from None
    except docker.errors.APIError as error:
        hint = ""
        if spec.runtime and "runtime" in str(error.explanation):
            hint = f" (is the {spec.runtime!r} runtime registered? deploy/docker/ensure-dockerd.sh)"
        raise SandboxError(f"the sandbox would not start: {error.explanation}{hint}") from error
    sandbox = DockerSandbox(client, container, spec)
    if spec.disk and not has_quota(client):
        sandbox.watcher = asyncio.create_task(
            disk.watch(client, str(container.id), spec.disk, sandbox.stop)
        )
    log.info("task %s: sandbox %s started", spec.label, sandbox.name)
    return sandbox


@asynccontextmanager
async def open_sandbox(
    client: docker.DockerClient, spec: SandboxSpec, *, remove_later: bool = False
) -> AsyncIterator[DockerSandbox]:
    """A fresh container for the `async with` block; removed whatever happens.

    With `remove_later`, a block that ends normally leaves the removal running in the
    background (the caller goes on to publish meanwhile) until `removals_settled()`; a block
    that fails or is cancelled removes the container before it goes on."""
    sandbox = await start_sandbox(client, spec)

    async def remove() -> None:
        await sandbox.kill()
        log.info("task %s: sandbox %s removed", spec.label, sandbox.name)

    try:
        yield sandbox
    except BaseException:
        await asyncio.shield(remove())
        raise
    if remove_later:
        remove_in_background(remove())
    else:
        await remove()


async def network_exists(client: docker.DockerClient, name: str) -> bool:
    try:
        await asyncio.to_thread(client.networks.get, name)
    except docker.errors.NotFound:
        return False
    return True
