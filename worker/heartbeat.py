"""Liveness: running tasks prove every few seconds that their worker still runs them.

arq marks a started job with an in-progress key that lives as long as the job's timeout (an
hour and more), so a SIGKILLed worker's job would wait that long before any worker ran it again.
Here each worker refreshes, every `BEAT_EVERY` seconds, a short-lived key per running task
(`codex:alive:<job id>`, `ALIVE_TTL`) and one for itself (`codex:worker:<id>`), and extends its
tasks' one-task-per-issue locks, so a lock lasts exactly as long as its task is alive.

Every worker also runs the janitor: an in-progress job older than `ALIVE_TTL` without an alive
key lost its worker, so its in-progress key is deleted and arq, which still has it queued, starts
it again on the next poll (a fresh try: `ctx["job_try"]` counts up). A job already tried
`max_tries` times is not started again by arq (it drops it, calling nothing of ours): the
janitor writes its final status and frees its issue instead. Recovery takes at most
`ALIVE_TTL + BEAT_EVERY` seconds plus a poll.

The alive key is also what keeps a task's slot under the fleet-wide caps (`worker/caps.py`):
a slot counts while its task's alive key lives, and `running_task` gives it back at the end.

The janitor also finds tasks that are lost: an issue lock whose job is gone from arq (no job,
no in-progress key, no alive key), as when the job failed outside the task's own handling, it
expired, or someone deleted it. Nothing would ever end such a task, and its issue would answer
"already running" until the lock lapsed; seen on two rounds in a row, the task gets a final
status that says so (`report/outcome.lost`) and its issue is freed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix, job_key_prefix, retry_key_prefix
from arq.jobs import deserialize_job

from app import keys, queue, status
from app.keys import ALIVE_TTL, LOCK_AHEAD, WORKER_TTL, alive_key, worker_key
from app.tasks import JOB_FUNCTIONS, Task, TaskStatus, deserialize
from worker import caps

log = logging.getLogger(__name__)

BEAT_EVERY = 10
"""Seconds between beats: well inside `ALIVE_TTL` and `WORKER_TTL` (app/keys.py), so a missed
beat or two never looks like a dead worker."""

_EXTEND = """
local current = redis.call('GET', KEYS[1])
if not current then
  if ARGV[4] ~= '1' then return 0 end
  redis.call('SET', KEYS[1], ARGV[3], 'EX', ARGV[2])
  return 1
end
if cjson.decode(current)['job_id'] ~= ARGV[1] then return 0 end
if redis.call('TTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return 1
"""
_LOST = """
local holder = redis.call('GET', KEYS[1])
if not holder or cjson.decode(holder)['job_id'] ~= ARGV[1] then return false end
if redis.call('EXISTS', KEYS[2], KEYS[3], KEYS[4]) > 0 then return false end
return holder
"""
_ORPHANED = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local left = redis.call('PTTL', KEYS[1])
if left < 0 then return 0 end
if tonumber(ARGV[1]) - left < tonumber(ARGV[2]) then return 0 end
return 1
"""

Finalize = Callable[[Task, int], Awaitable[None]]
"""Writes the final status of a task given up after that many tries, and frees its issue."""
Lost = Callable[[Task], Awaitable[None]]
"""Writes the final status of a task whose job is gone, and frees its issue."""


def presence(paused: str | None) -> str:
    """The value of a worker's key: whether it takes new tasks, and if not, why."""
    if paused is None:
        return json.dumps({"accepting": True})
    return json.dumps({"accepting": False, "why": paused})


def new_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class Heartbeat:
    """The beats of one worker process: itself, its running tasks, and the janitor's rounds."""

    def __init__(
        self,
        redis: ArqRedis,
        worker_id: str,
        *,
        in_progress_ms: int,
        max_tries: int,
        finalize: Finalize,
        lost: Lost | None = None,
        extra: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.redis = redis
        self.worker_id = worker_id
        self.in_progress_ms = in_progress_ms
        """How long arq's in-progress key lives from a job's start (its age is read from it)."""
        self.max_tries = max_tries
        self.finalize = finalize
        self.lost = lost
        self.suspects: set[str] = set()
        """Lost-looking jobs seen on the last round: lost if seen again on this one."""
        self.extra = extra
        """Run after every beat (the container reaper)."""
        self.running: dict[str, Task] = {}
        self.paused: str | None = None
        """Why this worker takes no new tasks (its engine is gone), or None: shown in its key."""
        self._loop: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.beat()
        self._loop = asyncio.create_task(self._beating())

    async def close(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
        # A courtesy (the key expires by itself): a Redis that is already gone, as when the
        # whole service stops at once, must not hold the worker's shutdown in its retries.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.redis.delete(worker_key(self.worker_id)), 2)

    @contextlib.asynccontextmanager
    async def running_task(self, task: Task) -> AsyncIterator[None]:
        """While the block runs, `task` is alive. Its alive key is left to expire afterwards:
        arq removes the job from its queue only after the function returns, and a janitor that
        saw neither key meanwhile would start the job again."""
        self.running[task.job_id] = task
        try:
            await self._beat_task(task, take=True)  # a new try whose lock lapsed takes it again
            yield
        finally:
            self.running.pop(task.job_id, None)
            with contextlib.suppress(Exception):  # unreleased, the slot frees with the alive key
                await caps.release(self.redis, task)

    async def _beating(self) -> None:
        while True:
            await asyncio.sleep(BEAT_EVERY)
            try:
                await self.beat()
                await self.sweep()
                await self.sweep_lost()
                if self.extra is not None:
                    await self.extra()
            except Exception:
                log.warning("worker %s: heartbeat round failed", self.worker_id, exc_info=True)

    async def pause(self, reason: str | None) -> None:
        """Announce at once that this worker takes no new tasks, and why (None: it does)."""
        self.paused = reason
        await self.redis.set(worker_key(self.worker_id), presence(reason), ex=WORKER_TTL)

    async def beat(self) -> None:
        await self.redis.set(worker_key(self.worker_id), presence(self.paused), ex=WORKER_TTL)
        for task in list(self.running.values()):
            await self._beat_task(task)

    async def _beat_task(self, task: Task, take: bool = False) -> None:
        """Alive for `ALIVE_TTL` more seconds; the issue lock, if still the task's (a finished
        task released it), for `LOCK_AHEAD` more."""
        await self.redis.set(alive_key(task.job_id), self.worker_id, ex=ALIVE_TTL)
        args = (task.job_id, str(LOCK_AHEAD), queue.holder(task), "1" if take else "0")
        await self.redis.eval(_EXTEND, 1, keys.active_key(task.thread), *args)  # type: ignore[misc]

    async def sweep(self) -> int:
        """Start again the tasks whose worker is gone; returns how many were found."""
        found = 0
        async for raw in self.redis.scan_iter(match=f"{in_progress_key_prefix}task:*", count=200):
            job_id = raw.decode()[len(in_progress_key_prefix) :]
            if await self._orphaned(job_id):
                found += 1
                await self._recover(job_id)
        return found

    async def _orphaned(self, job_id: str) -> bool:
        keys = (in_progress_key_prefix + job_id, alive_key(job_id))
        args = (str(self.in_progress_ms), str(ALIVE_TTL * 1000))
        return bool(await self.redis.eval(_ORPHANED, len(keys), *keys, *args))  # type: ignore[misc]

    async def _recover(self, job_id: str) -> None:
        tries = int(await self.redis.get(retry_key_prefix + job_id) or 0)
        if tries >= self.max_tries:
            task = await self._task_of(job_id)
            # Claimed once, so two janitors never both write the final status.
            claim = keys.given_up_key(job_id)
            if task is not None and await self.redis.set(claim, "1", nx=True, ex=keys.GIVEN_UP_TTL):
                log.warning("task %s: its worker died on try %d of %d; giving up", job_id, tries,
                            self.max_tries)  # fmt: skip
                try:
                    await self.finalize(task, tries)
                except BaseException:
                    await self.redis.delete(claim)  # the next round tries again
                    raise
        else:
            log.warning("task %s: its worker is gone (try %d); starting it again", job_id, tries)
        # Without it arq starts the job again, or (past `max_tries`) drops it from the queue.
        await self.redis.delete(in_progress_key_prefix + job_id)

    async def sweep_lost(self) -> int:
        """End the tasks whose job is gone (seen on two rounds); returns how many were ended."""
        if self.lost is None:
            return 0
        seen, ended = set(), 0
        async for raw in self.redis.scan_iter(match=keys.active_key("*"), count=200):
            holder = await self.redis.get(raw)
            if holder is None:
                continue
            job_id = str(json.loads(holder)["job_id"])
            checked = (raw, job_key_prefix + job_id, in_progress_key_prefix + job_id,
                       alive_key(job_id))  # fmt: skip
            lost = await self.redis.eval(_LOST, len(checked), *checked, job_id)  # type: ignore[misc]
            if not lost:
                continue
            seen.add(job_id)
            if job_id in self.suspects and await self._end_lost(job_id, lost):
                ended += 1
        self.suspects = seen
        return ended

    async def _end_lost(self, job_id: str, holder: bytes) -> bool:
        assert self.lost is not None
        task = Task.model_validate(json.loads(holder)["task"])
        state = await status.current(self.redis, job_id)
        if state is not None and TaskStatus(state["status"]).final:
            await queue.release(self.redis, task)  # it ended; only its lock was left behind
            return False
        claim = keys.given_up_key(job_id)  # one janitor writes it, as for a task out of tries
        if not await self.redis.set(claim, "1", nx=True, ex=keys.GIVEN_UP_TTL):
            return False
        log.warning("task %s: its job is gone but its status says %s; ending it", job_id,
                    state["status"] if state else "nothing")  # fmt: skip
        try:
            await self.lost(task)
        except BaseException:
            await self.redis.delete(claim)  # the next round tries again
            raise
        return True

    async def _task_of(self, job_id: str) -> Task | None:
        raw = await self.redis.get(job_key_prefix + job_id)
        if raw is None:
            return None
        job = deserialize_job(raw, deserializer=deserialize)
        if job.function not in JOB_FUNCTIONS or not job.args:
            return None
        return Task.model_validate(job.args[0])
