"""The `Sandbox` seam (worker/protocols.py) over a local directory: enough to run the agent loop
for real in-process, without Docker. Commands run with `sh -c` in the directory, stderr joined to
stdout as in the container; a command past its timeout is killed and reported with exit 124, as
`timeout` reports it in the container. It isolates nothing: for tests of the agent's seam only.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import time
from collections.abc import Mapping
from pathlib import Path

from worker.protocols import CommandResult


class LocalSandbox:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.commands: list[str] = []
        """Every command run, in order."""

    async def run(
        self,
        command: str,
        *,
        timeout: int,
        workdir: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> CommandResult:
        self.commands.append(command)
        started = time.monotonic()
        process = await asyncio.create_subprocess_shell(
            command,
            cwd=self.root / (workdir or "."),
            env=None if env is None else {**os.environ, **env},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            output, _ = await asyncio.wait_for(process.communicate(), timeout)
        except TimeoutError:
            os.killpg(process.pid, signal.SIGKILL)  # the shell and what it started
            await process.wait()
            return CommandResult(124, "", time.monotonic() - started, timed_out=True)
        code = await process.wait()
        return CommandResult(code, output.decode(errors="replace"), time.monotonic() - started)

    async def read(self, command: str, *, limit: int, timeout: int = 120) -> bytes | None:
        process = await asyncio.create_subprocess_shell(
            command, cwd=self.root, stdout=asyncio.subprocess.PIPE
        )
        output, _ = await asyncio.wait_for(process.communicate(), timeout)
        return output if process.returncode == 0 and len(output) <= limit else None

    async def put_tree(self, root: Path) -> None:
        shutil.copytree(root, self.root, dirs_exist_ok=True)

    async def read_file(self, path: str) -> bytes | None:
        file = self.root / path
        return file.read_bytes() if file.is_file() else None

    async def write_files(self, files: Mapping[str, bytes | None]) -> None:
        for path, data in files.items():
            file = self.root / path
            if data is None:
                file.unlink(missing_ok=True)
            else:
                file.parent.mkdir(parents=True, exist_ok=True)
                file.write_bytes(data)
