"""The worker's end of the egress proxy process (`egress_proc`): start it, push each sandbox's
policy to it, and hand the requests it streams back to the task that made them.

The process holds every sandbox connection, so a flood costs its descriptors and CPU, not the
worker's. If it dies, registrations fail with `ProxyGone` and the worker says so per task.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

from worker.egress.policy import NetworkPolicy, Request

log = logging.getLogger(__name__)
START_TIMEOUT = 30.0
INHERITED = ("PATH", "PYTHONPATH", "HOME", "LANG", "LC_ALL", "TZ", "SSL_CERT_FILE", "SSL_CERT_DIR")
"""The environment the proxy gets: none of the worker's secrets (GitHub key, OpenAI key,
webhook secret), which the process that faces every sandbox has no use for."""
COMMAND_TIMEOUT = 30.0


class ProxyGone(Exception):
    """The proxy process failed to start or has ended; the message says why."""


class ProxyProcess:
    def __init__(self, process: asyncio.subprocess.Process, port: int, total: int) -> None:
        self.process, self.port, self.total = process, port, total
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[None]] = {}
        self._records: dict[str, Callable[[Request], None]] = {}
        self._reader = asyncio.create_task(self._read())
        self.ended: str | None = None

    @classmethod
    async def start(cls, config: dict[str, Any]) -> ProxyProcess:
        """Start the process with `config` (see `egress_proc`); `ProxyGone` if it cannot
        listen, with its reason."""
        environment = {name: os.environ[name] for name in INHERITED if name in os.environ}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "worker.egress.process", env=environment,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=1 << 20,
        )  # fmt: skip
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(json.dumps(config).encode() + b"\n")
        try:
            async with asyncio.timeout(START_TIMEOUT):
                first = json.loads(await process.stdout.readline() or b"{}")
        except (TimeoutError, ValueError):
            first = {}
        if first.get("event") != "listening":
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            raise ProxyGone(
                first.get("error") or "the proxy process did not start (its log says why)"
            )
        return cls(process, int(first["port"]), int(first["total"]))

    async def _read(self) -> None:
        assert self.process.stdout is not None
        try:
            while line := await self.process.stdout.readline():
                self._dispatch(json.loads(line))
        except Exception:
            log.exception("egress proxy process: unreadable output")
        code = await self.process.wait()
        self.ended = f"the egress proxy process ended (exit status {code})"
        log.warning("%s", self.ended)
        for waiting in self._waiting.values():
            if not waiting.done():
                waiting.set_exception(ProxyGone(self.ended))

    def _dispatch(self, message: dict[str, Any]) -> None:
        if message.get("event") == "ack":
            waiting = self._waiting.pop(int(message["id"]), None)
            if waiting is not None and not waiting.done():
                waiting.set_result(None)
        elif message.get("event") == "request":
            record = self._records.get(str(message["ip"]))
            if record is not None:
                record(Request(**message["request"]))

    async def _command(self, message: dict[str, Any]) -> None:
        if self.ended is not None or self.process.stdin is None:
            raise ProxyGone(self.ended or "the egress proxy process is not running")
        number = next(self._ids)
        done = asyncio.get_running_loop().create_future()
        self._waiting[number] = done
        self.process.stdin.write(json.dumps({**message, "id": number}).encode() + b"\n")
        try:
            await self.process.stdin.drain()
            async with asyncio.timeout(COMMAND_TIMEOUT):
                await done
        except (OSError, TimeoutError) as error:
            raise ProxyGone(f"the egress proxy process does not answer ({error!r})") from None
        finally:
            self._waiting.pop(number, None)

    async def register(
        self, ip: str, policy: NetworkPolicy, record: Callable[[Request], None], label: str
    ) -> None:
        """Serve `ip` under `policy` from the moment this returns; requests go to `record`."""
        self._records[ip] = record
        rules = {"mode": policy.mode, "allow": policy.allow, "methods": policy.methods}
        await self._command({"op": "register", "ip": ip, "label": label, "policy": rules})

    async def unregister(self, ip: str) -> None:
        """Stop serving `ip`, once its last requests (cut connections) are recorded."""
        try:
            await self._command({"op": "unregister", "ip": ip})
        finally:
            self._records.pop(ip, None)

    async def close(self) -> None:
        if self.process.stdin is not None and not self.process.stdin.is_closing():
            self.process.stdin.close()
        try:
            async with asyncio.timeout(10):
                await self.process.wait()
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        await self._reader
