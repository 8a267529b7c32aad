"""`StatusReporter`: the one status comment of a task, edited in order and never in the way.

Passing phases are shown in the background (`soon`), each after the ones before it, so the
task never waits for GitHub to edit a comment and a slow edit never overtakes a newer one.
The agent's steps are shown at most every `every` seconds. The final word (`final`) waits for
every edit before it and is retried once with a fresh token, since it must land: whoever reads
"done" may act at once. A GitHub hiccup on a passing phase is logged, never raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from githubkit import GitHub
from redis.asyncio import Redis

from app import status
from app.tasks import Task, TaskStatus
from worker.redact import Redactor
from worker.tokens import TokenSource

log = logging.getLogger(__name__)


class StatusReporter:
    def __init__(
        self,
        redis: Redis,
        github: GitHub[Any],
        task: Task,
        redact: Redactor,
        *,
        try_number: int = 1,
        max_tries: int = 1,
        tokens: TokenSource | None = None,
        every: float = 5.0,
    ) -> None:
        self.redis, self.github, self.task, self.redact = redis, github, task, redact
        self.try_number, self.max_tries, self.tokens = try_number, max_tries, tokens
        self.every = every
        """Seconds between edits that only say how far the agent got."""
        self.shown = 0.0
        self.steps: dict[int, int] = {}
        self.started = time.monotonic()
        self._last: asyncio.Task[None] | None = None

    def soon(self, phase: TaskStatus, text: str) -> None:
        """Show a passing phase in the background, after every phase shown before it."""
        self.shown = time.monotonic()
        previous = self._last

        async def show() -> None:
            if previous is not None:
                await previous
            await self.show(phase, text)

        self._last = asyncio.create_task(show())

    def step(self, attempt: int, step: int, *, attempts: int, max_steps: int) -> None:
        """Attempt `attempt` reached `step`: shown unless an edit went out moments ago."""
        self.steps[attempt] = step
        if time.monotonic() - self.shown < self.every:
            return
        if self._last is not None and not self._last.done():
            return  # GitHub is slow: no queue of step counts behind the edit in flight
        elapsed = time.monotonic() - self.started
        where = " · ".join(f"#{n} step {s}" for n, s in sorted(self.steps.items()))
        if attempts == 1:
            where = f"step {step} of at most {max_steps}"
        self.soon(TaskStatus.WORKING, f"🛠️ Working: {where}, {elapsed:.0f} s in.")

    async def settle(self) -> None:
        """Every edit handed to `soon` is done (each one's failure was logged)."""
        if self._last is not None:
            await asyncio.wait([self._last])

    async def show(self, phase: TaskStatus, text: str, try_number: int | None = None) -> None:
        """Record `phase` and edit the comment now. A new try of the task says so first."""
        self.shown = time.monotonic()
        shown_try = self.try_number if try_number is None else try_number
        if self.try_number > 1 and not phase.final and try_number is None:
            text = f"🔁 Resuming: try {self.try_number} of {self.max_tries}.\n\n{text}"
        for last in (False, True):
            try:
                await status.show(
                    self.redis, self.github, self.task, phase, self.redact(text), shown_try
                )
                return
            except Exception:
                log.warning("task %s: status comment failed", self.task.job_id, exc_info=True)
                if last or not phase.final or self.tokens is None:
                    return
                # The final word must land: a token GitHub refused (revoked, expired early)
                # is replaced once.
                with contextlib.suppress(Exception):
                    await self.tokens.renew()

    async def final(self, phase: TaskStatus, text: str) -> None:
        """The last word of this try, after every edit before it."""
        await self.settle()
        await self.show(phase, text)

    async def requeued(self, text: str, *, timeout: float | None = None) -> None:
        """The task goes back to the queue for try `try_number + 1`: shown as queued again."""
        with contextlib.suppress(Exception):
            async with asyncio.timeout(timeout):
                await self.settle()
                await self.show(TaskStatus.QUEUED, text, self.try_number + 1)
