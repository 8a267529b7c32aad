"""A task's life around its work, the same for every kind of task (`jobs.py`, `pick.py`).

A token that refreshes itself, the task's deadline, a person's cancel, the write-access check,
and whatever happens a last word in the status comment: the failure explained (`errors.py`), a
transient one handed back to arq for a later try within the deadline, an interrupted one
handed back to the next worker. When it ends the issue is freed, the task's temporary
environments are removed and its tokens revoked.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from arq import Retry
from arq.connections import ArqRedis

from app import access, queue, status
from app import github as gh
from app.keys import STATUS_TTL, lastrun_key, started_key
from app.tasks import Task, TaskStatus
from worker import caps, errors
from worker.deps import Deps
from worker.heartbeat import Heartbeat
from worker.progress import StatusReporter
from worker.redact import Redactor
from worker.report import outcome
from worker.report.markdown import safe_markdown
from worker.sandbox.removal import removals_settled
from worker.tokens import TokenSource

log = logging.getLogger(__name__)

Work = Callable[["TaskRun"], Awaitable[str]]
"""The task's own work; returns what the worker logs as its result."""


async def entry(ctx: dict[str, Any], payload: dict[str, Any], work: Work) -> str:
    """An arq function's body: the task from its JSON, alive while it runs, `work` in a
    `TaskRun`. A try whose task an earlier try already ended (its worker stopped before arq
    heard of it) does nothing again."""
    task = Task.model_validate(payload)
    log.info("task %s: started (delivery %s, try %d)", task.job_id, task.delivery_id,
             ctx["job_try"])  # fmt: skip
    if ctx["job_try"] > 1:
        state = await status.current(ctx["redis"], task.job_id)
        if state and TaskStatus(state["status"]).final:
            log.info("task %s: already %s on an earlier try", task.job_id, state["status"])
            return f"already {state['status']} on an earlier try"
    beats: Heartbeat = ctx["heartbeat"]
    async with beats.running_task(task):
        await caps.admit(ctx, task)  # over a fleet-wide cap: back to the queue, no try used
        run = TaskRun(ctx["deps"], ctx["redis"], task, ctx["job_try"], beats.max_tries)
        result = await run.run(work)
    log.info("task %s: %s", task.job_id, result)
    return result


class TaskRun:
    """One try of one task: what every phase shares, and the task's end."""

    def __init__(
        self, deps: Deps, redis: ArqRedis, task: Task, try_number: int = 1, max_tries: int = 1
    ) -> None:
        self.deps, self.redis, self.task = deps, redis, task
        self.settings = deps.settings
        self.try_number = try_number
        """arq's `job_try`: above 1 after a worker died or stopped, or a transient failure."""
        self.max_tries = max_tries
        self.redact = Redactor([deps.settings.openai_api_key.get_secret_value()])
        self.started = time.monotonic()
        self.started_at = time.time()
        self.tokens = TokenSource(deps.app_github, task.installation_id, task.repo, self.redact.add)
        self.github = self.tokens.client()  # a fresh token per request: the final word lands
        self.status = StatusReporter(
            redis, self.github, task, self.redact, try_number=try_number, max_tries=max_tries,
            tokens=self.tokens, every=self.settings.progress_every,
        )  # fmt: skip
        self.temporary: list[str] = []
        """Environments committed for this task only, removed when it ends."""
        self.first_start = self.started_at
        """When the task's first try started, read from Redis as this try begins; its deadline
        and any retry count from there."""
        self.pushed = False
        """A person can see this try's work (the draft PR is open, or a PR's branch moved):
        from then on a failure is final, never retried by rerunning the work. Before that (a
        `codex/` branch pushed, its PR not yet opened) a retry redoes it on the same branch."""

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    async def check_cancelled(self) -> None:
        if by := await queue.cancelled_by(self.redis, self.task.job_id):
            raise errors.Cancelled(by)

    async def run(self, work: Work) -> str:
        task = self.task
        deadline = asyncio.timeout(None)
        try:
            async with deadline:
                # Every try works in what is left of the task's deadline, counted from its
                # first start. A token GitHub would not mint is a failure like any other.
                self.first_start = await self._first_start()
                left = self.settings.task_timeout - (time.time() - self.first_start)
                deadline.reschedule(asyncio.get_running_loop().time() + max(left, 1.0))
                await self.tokens.current()
                await self.check_cancelled()
                if not await access.may_start(self.redis, self.github, task.repo, task.sender):
                    # The refusal is its own reply (once per person and issue), not a status.
                    await access.refuse(self.redis, self.github, task, queued=False)
                    return f"refused: {task.sender} lacks write access"
                return await work(self)
        except (asyncio.CancelledError, errors.Cancelled) as stop:
            if deadline.expired():
                return await self._failed(stop, deadline_passed=True)
            return await self._stopped(stop)
        except Exception as error:
            return await self._failed(error, deadline_passed=deadline.expired())
        finally:
            await self._discard_environments()
            await self.tokens.revoke_all()

    async def _stopped(self, stop: BaseException) -> str:
        """A person's cancel, or the worker stopping (arq cancels the job)."""
        by = await queue.cancelled_by(self.redis, self.task.job_id)
        if by is None and self.try_number < self.max_tries:
            text = outcome.handed_back(self.try_number, self.max_tries)
            await self.status.requeued(text, timeout=5)
            raise stop  # the worker is shutting down: arq runs the task again
        if by is None:  # arq would drop it silently: say so, and free the issue
            await self.finish(TaskStatus.FAILED, outcome.interrupted(self.try_number))
            raise stop
        await self.finish(TaskStatus.CANCELLED, f"🛑 Cancelled by @{by}.")
        if isinstance(stop, asyncio.CancelledError):
            raise stop
        return "cancelled"

    async def _failed(self, error: BaseException, *, deadline_passed: bool) -> str:
        task = self.task
        failure = errors.classify(error, deadline_passed=deadline_passed,
                                  task_timeout=self.settings.task_timeout,
                                  inert=self._inert)  # fmt: skip
        log.error("task %s failed (%s)", task.job_id, type(failure).__name__,
                  exc_info=error)  # fmt: skip
        if by := await queue.cancelled_by(self.redis, task.job_id):
            # A stop that came while this try failed: arq would drop the job unseen next time.
            await self.finish(TaskStatus.CANCELLED, f"🛑 Cancelled by @{by}.")
            return "cancelled"
        told = failure.told(self._inert)
        wait = None
        if not self.pushed:  # a retry after a push would redo the work over what is published
            wait = errors.retry_in(failure, try_number=self.try_number, max_tries=self.max_tries,
                                   elapsed=time.time() - self.first_start,
                                   deadline=self.settings.task_timeout,
                                   delay=self.settings.retry_delay)  # fmt: skip
        if wait is not None:
            log.warning("task %s: %s; trying again in %d s", task.job_id, failure, wait)
            text = outcome.requeued(told, wait, self.try_number, self.max_tries)
            await self.status.requeued(self.redact(text))
            raise Retry(defer=wait)
        await self.finish(
            TaskStatus.FAILED, outcome.failed(failure, told, self.try_number, pushed=self.pushed)
        )
        return f"failed: {failure.explain()}"

    def _inert(self, text: str) -> str:
        return safe_markdown(self.redact(text), self.task.number, self.task.repo)

    async def _first_start(self) -> float:
        """When the task's first try started (this one's start, if it is the first)."""
        key = started_key(self.task.job_id)
        ttl = STATUS_TTL  # outlives every try, however long they wait in the queue
        await self.redis.set(key, repr(self.started_at), nx=True, ex=ttl)
        raw = await self.redis.get(key)
        return min(float(raw) if raw else self.started_at, self.started_at)

    async def _discard_environments(self) -> None:
        """Best effort: an engine gone away here must not replace the task's own outcome (an
        arq `Retry` above all); the cache's collector removes what is left later."""
        try:
            if self.temporary:
                await removals_settled()  # no container of this task still uses them
                for image in self.temporary:
                    await self.deps.cache.discard(image)
        except Exception:
            log.warning("task %s: temporary environments not removed", self.task.job_id,
                        exc_info=True)  # fmt: skip

    async def finish(self, phase: TaskStatus, text: str) -> None:
        """Free the issue or PR for its next task, then say so: whoever reads "done" may
        trigger again at once."""
        lastrun = lastrun_key(self.task.thread)
        await self.redis.set(lastrun, json.dumps(self.started_at), ex=STATUS_TTL)
        await removals_settled()  # whoever reads "done" finds no container left behind
        await self.status.settle()
        await queue.release(self.redis, self.task)
        await self.status.show(phase, text)


async def give_up(deps: Deps, redis: ArqRedis, task: Task, text: str, tries: int = 0) -> None:
    """The janitor's final word on a task that will not run again (its worker died on its
    last try, or its job is gone): `text` as a failure, from try `tries` (0: the last one)."""
    token = await gh.mint_token(deps.app_github, task.installation_id, task.repo)
    github = gh.token_client(deps.app_github, token)
    try:
        await queue.release(redis, task)
        await status.show(redis, github, task, TaskStatus.FAILED, text, tries)
    finally:
        try:
            await gh.revoke_token(github)
        except Exception:
            log.debug("task %s: revoking the janitor's token failed", task.job_id, exc_info=True)
