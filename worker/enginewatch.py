"""The engine watch: a worker whose container engine stops answering stops taking tasks.

Without it, a worker whose engine is gone keeps taking tasks, fails each within a second and
sends it back to the queue (`EngineUnavailable` is transient, `worker/errors.py`): the queue
drains through the one worker that cannot run anything, and every pass costs the task a try.
Here each worker pings its engine every `PING_EVERY` seconds. When a ping fails, the worker
takes no new task, says so in its presence key (`codex:worker:<id>`, written by the
heartbeat), and pings again with backoff (1, 2, 4 ... `BACKOFF_CAP` s) until the engine
answers; then it takes tasks again. Meanwhile the other workers take the queue. A task already
running finishes or fails as it would; one whose engine went away mid-task is re-queued for any
worker (`worker/errors.py`). Every job's end also pings at once (arq's `on_job_end`, which runs
before arq puts a job back in the queue), so a task the engine failed is held back from the
worker that failed it, however short its retry delay.

How intake is held: arq's `Worker` reads `max_jobs` on every poll (`_poll_iteration` reads the
queue only while `job_counter < max_jobs`, and `start_jobs` checks again before each job), so
`max_jobs = 0` takes no new job while the poll loop goes on. Aborts of running jobs (`/codex
stop`) and arq's health record keep working; holding the job semaphore instead would block the
poll loop inside `start_jobs` and stop them too. arq's own switch, `allow_pick_jobs`, is left to
arq's graceful SIGTERM: if the watch used it, an engine that came back during a shutdown would
turn intake on again. `python -m worker` (`worker/__main__.py`) builds the `Worker` with arq's
`create_worker` and hands it to startup, so the watch can reach it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from worker.sandbox import engine

log = logging.getLogger(__name__)

PING_EVERY = 2.0
"""Seconds between pings while the engine answers: how long a worker may still take tasks
after its engine went away."""
PING_TIMEOUT = 5
"""Seconds a ping may take; an engine slower than that counts as gone."""
BACKOFF_FIRST = 1.0
BACKOFF_CAP = 30.0
"""Seconds between pings while the engine is gone: 1, 2, 4 ... up to this."""


def next_ping(failures: int) -> float:
    """Seconds until the next ping after `failures` failed pings in a row (0: it answers)."""
    if failures <= 0:
        return PING_EVERY
    return float(min(BACKOFF_CAP, BACKOFF_FIRST * 2 ** min(failures - 1, 16)))


def unreachable_reason(error: BaseException) -> str:
    """What the presence key and the log say about a failed ping."""
    told = engine.explain(error)
    if told is not None:
        return told.split(". This is for the operator")[0]
    return f"the container engine ({engine.engine_name()}) failed a ping: {type(error).__name__}"


class Intake(Protocol):
    """The part of arq's `Worker` the watch turns: how many jobs it may run at once."""

    max_jobs: int


class EngineWatch:
    """Pings the engine; while it is gone, the worker's intake is 0 and `on_change` is told
    why (and told None once the engine answers again)."""

    def __init__(
        self,
        ping: Callable[[], object],
        intake: Intake,
        on_change: Callable[[str | None], Awaitable[None]],
    ) -> None:
        self.ping = ping
        """Blocking (docker-py's `DockerClient.ping`): run in a thread."""
        self.intake = intake
        self.capacity = intake.max_jobs
        self.on_change = on_change
        self.down_since: float | None = None
        self.failures = 0
        self._loop: asyncio.Task[None] | None = None

    @property
    def accepting(self) -> bool:
        return self.down_since is None

    def start(self) -> None:
        self._loop = asyncio.create_task(self._watching())

    async def close(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop

    async def check(self) -> bool:
        """One ping; pause or resume intake on a change. True when the engine answered."""
        try:
            await asyncio.wait_for(asyncio.to_thread(self.ping), PING_TIMEOUT)
        except Exception as error:
            self.failures += 1
            await self._gone(error)
            return False
        await self._back()
        return True

    async def _watching(self) -> None:
        while True:
            await asyncio.sleep(next_ping(self.failures))
            try:
                await self.check()
            except Exception:
                log.warning("engine watch: round failed", exc_info=True)

    async def _gone(self, error: BaseException) -> None:
        reason = unreachable_reason(error)
        if self.down_since is not None:
            log.info("%s (still, for %.0f s); next ping in %.0f s", reason,
                     time.monotonic() - self.down_since, next_ping(self.failures))  # fmt: skip
            return
        self.down_since = time.monotonic()
        self.intake.max_jobs = 0
        log.warning("%s: taking no new tasks until it answers", reason)
        await self.on_change(reason)

    async def _back(self) -> None:
        self.failures = 0
        if self.down_since is None:
            return
        gone_for = time.monotonic() - self.down_since
        self.down_since = None
        self.intake.max_jobs = self.capacity
        log.warning("the container engine (%s) answers again after %.1f s: taking tasks",
                    engine.engine_name(), gone_for)  # fmt: skip
        await self.on_change(None)
