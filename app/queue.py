"""The queue: tasks on arq exactly once per trigger, one task per issue or PR at a time.

GitHub redelivers with the same `X-GitHub-Delivery` for up to three days, while arq forgets a
job id an hour after the job ends, so a trigger is remembered here for four days. It is recorded
only after the job is safely stored: a failure before that answers 5xx and stays redeliverable.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.constants import abort_jobs_ss, default_queue_name, in_progress_key_prefix

from app.tasks import JOB_FUNCTION, Task, deserialize, serialize

SEEN_TTL = timedelta(days=4)
_RELEASE = """
local current = redis.call('GET', KEYS[1])
if current and cjson.decode(current)['job_id'] == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

_POSITION = """
local rank = redis.call('ZRANK', KEYS[1], ARGV[1])
if not rank then return nil end
local waiting = 1
if rank > 0 then
  for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, rank - 1)) do
    if redis.call('EXISTS', ARGV[2] .. id) == 0 then waiting = waiting + 1 end
  end
end
return waiting
"""


@dataclass(frozen=True)
class Submission:
    outcome: Literal["queued", "duplicate", "busy"]
    active: Task | None = None
    """With `busy`: the task already running for that issue or PR."""


def seen_key(trigger_id: str) -> str:
    return f"codex:seen:{trigger_id}"


def active_key(thread: str) -> str:
    return f"codex:active:{thread}"


def cancel_key(job_id: str) -> str:
    return f"codex:cancel:{job_id}"


async def connect(redis_url: str) -> ArqRedis:
    return await create_pool(
        RedisSettings.from_dsn(redis_url),
        job_serializer=serialize,
        job_deserializer=deserialize,
    )


async def first_time(redis: ArqRedis, trigger_id: str) -> bool:
    """True the first time a trigger (a delivery, a comment) is seen in four days."""
    return bool(await redis.set(seen_key(trigger_id), "1", nx=True, ex=SEEN_TTL))


async def active(redis: ArqRedis, thread: str) -> Task | None:
    raw = await redis.get(active_key(thread))
    return Task.model_validate(json.loads(raw)["task"]) if raw else None


async def submit(redis: ArqRedis, task: Task, active_ttl: int) -> Submission:
    """Queue `task` unless its trigger was seen or its issue/PR already has a task."""
    if await redis.exists(seen_key(task.job_id)):
        return Submission("duplicate")
    holder = json.dumps({"job_id": task.job_id, "task": task.dump()})
    if not await redis.set(active_key(task.thread), holder, nx=True, ex=active_ttl):
        running = await active(redis, task.thread)
        if running is not None and running.job_id == task.job_id:
            return Submission("duplicate")
        await redis.set(seen_key(task.job_id), "1", ex=SEEN_TTL)
        return Submission("busy", running)
    try:
        job = await redis.enqueue_job(JOB_FUNCTION, task.dump(), _job_id=task.job_id)
    except BaseException:
        await release(redis, task)
        raise
    await redis.set(seen_key(task.job_id), "1", ex=SEEN_TTL)
    return Submission("queued" if job is not None else "duplicate")


async def release(redis: ArqRedis, task: Task) -> None:
    """The issue/PR is free for a new task (only if `task` is the one holding it)."""
    await redis.eval(_RELEASE, 1, active_key(task.thread), task.job_id)  # type: ignore[misc]


async def cancel(redis: ArqRedis, thread: str, by: str) -> Task | None:
    """Ask the running or queued task of `thread` to stop; returns it, or None if none."""
    task = await active(redis, thread)
    if task is None:
        return None
    await redis.set(cancel_key(task.job_id), by, ex=SEEN_TTL)
    await redis.zadd(abort_jobs_ss, {task.job_id: int(time.time() * 1000)})
    return task


async def cancelled_by(redis: ArqRedis, job_id: str) -> str | None:
    raw = await redis.get(cancel_key(job_id))
    return raw.decode() if raw else None


async def position(redis: ArqRedis, job_id: str) -> int | None:
    """1 for the next task to start, 2 for the one after it...; None when not waiting.

    One script, one round trip: a long queue costs Redis microseconds, not a call per job."""
    place = await redis.eval(  # type: ignore[misc]
        _POSITION, 1, default_queue_name, job_id, in_progress_key_prefix
    )
    return None if place is None else int(place)
