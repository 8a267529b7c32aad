"""The repository's `validate` command, run by the worker in a container the agent never had.

Anything left in the agent's container outside its diff (a `usercustomize.py`, a `.pth` file,
a PATH shim, a process) could shape a check run there. So the check gets a fresh container
from the environment the agent started from, made ready while the agent works, and only the
change the host accepted is applied to it. Its exit code is evidence; the model's word is not.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path

import docker

from worker.redact import Redactor
from worker.repoconfig import RepoConfig
from worker.report.markdown import plain
from worker.report.worklog import Step
from worker.sandbox.archives import tar_files
from worker.sandbox.containers import DockerSandbox, start_sandbox
from worker.sandbox.spec import HOME, SandboxSpec
from worker.setup import Environment, maintain

CHANGE_FILE = ".codex-change.diff"
APPLY_COMMAND = (
    f"git -c core.hooksPath=/dev/null apply --binary --whitespace=nowarn {HOME}/{CHANGE_FILE}"
)


class ValidationSandbox:
    """A container for the check, started in the background as soon as it is created."""

    def __init__(
        self,
        client: docker.DockerClient,
        spec: SandboxSpec,
        env: Environment,
        checkout: Awaitable[Path],
        config: RepoConfig,
        setup_timeout: int,
        redact: Redactor,
    ) -> None:
        self.env, self.config = env, config
        self.ready = asyncio.create_task(
            self._prepare(client, spec, checkout, setup_timeout, redact)
        )

    async def _prepare(
        self,
        client: docker.DockerClient,
        spec: SandboxSpec,
        checkout: Awaitable[Path],
        setup_timeout: int,
        redact: Redactor,
    ) -> DockerSandbox:
        sandbox = await start_sandbox(client, spec)
        try:
            if not self.env.built:
                await sandbox.put_tree(await checkout)
            if self.env.warm:
                await maintain(sandbox, self.config, setup_timeout, redact)
        except BaseException:
            await asyncio.shield(sandbox.kill())
            raise
        return sandbox

    async def check(
        self,
        diff: bytes,
        command: str,
        timeout: int,
        network: Callable[[DockerSandbox], contextlib.AbstractAsyncContextManager[None]],
    ) -> Step:
        """Apply `diff`, then run `command` under the agent phase's `network`."""
        sandbox = await self.ready
        if diff:
            await asyncio.to_thread(
                sandbox.container.put_archive, HOME, tar_files({CHANGE_FILE: diff})
            )
            applied = await sandbox.run(APPLY_COMMAND, timeout=120)
            if applied.exit_code != 0:
                output = f"the change could not be applied for validation:\n{plain(applied.output)}"
                return Step(None, command, applied.exit_code or 1, applied.duration, output,
                            kind="check")  # fmt: skip
        async with network(sandbox):
            result = await sandbox.run(command, timeout=timeout)
        return Step(None, command, result.exit_code, result.duration, plain(result.output),
                    result.timed_out, kind="check")  # fmt: skip

    async def close(self) -> None:
        """Remove the container, whatever state its preparation is in."""
        if not self.ready.done():
            self.ready.cancel()
        with contextlib.suppress(BaseException):
            sandbox = await self.ready
            await sandbox.kill()
