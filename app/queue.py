"""The queue: tasks on arq exactly once per trigger, one task per issue or PR at a time.

GitHub redelivers with the same `X-GitHub-Delivery` for up to three days, while arq forgets a
job id an hour after the job ends, so a trigger is remembered here for four days. A submission
is one Lua script (trigger seen, issue lock, arq job, queue entry): Redis stores all of it or
none of it, so a delivery that fails half-way answers 5xx and a redelivery queues the task.

Every connection has a socket timeout and retries a dropped connection with backoff: a Redis
that restarts is waited for, a hung one is an error within seconds instead of a hang.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Literal

from arq.connections import ArqRedis, RedisSettings
from arq.constants import (
    abort_jobs_ss,
    default_queue_name,
    expires_extra_ms,
    in_progress_key_prefix,
    job_key_prefix,
    result_key_prefix,
)
from arq.jobs import serialize_job
from redis.asyncio import ConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.keys import SEEN_TTL, active_key, cancel_key, seen_key
from app.settings import Settings
from app.tasks import Task, deserialize, job_function, serialize

BACKOFF_CAP = 2.0
"""Longest wait, in seconds, between two tries of a Redis command."""

_SUBMIT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return {'duplicate'} end
if not redis.call('SET', KEYS[2], ARGV[1], 'NX', 'EX', ARGV[2]) then
  local holder = redis.call('GET', KEYS[2])
  if holder and cjson.decode(holder)['job_id'] == ARGV[7] then return {'duplicate'} end
  redis.call('SET', KEYS[1], '1', 'EX', ARGV[3])
  return {'busy', holder or false}
end
redis.call('SET', KEYS[1], '1', 'EX', ARGV[3])
if redis.call('EXISTS', KEYS[3], KEYS[4]) > 0 then return {'duplicate'} end
redis.call('PSETEX', KEYS[3], ARGV[5], ARGV[4])
redis.call('ZADD', KEYS[5], ARGV[6], ARGV[7])
return {'queued'}
"""
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


def retry(settings: Settings) -> Retry:
    """Tries after a dropped connection or a timeout, waiting 0.1 s, 0.2 s, ... up to 2 s."""
    return Retry(ExponentialBackoff(cap=BACKOFF_CAP, base=0.05), settings.redis_retries)


RETRIED: list[type[Exception]] = [RedisConnectionError, RedisTimeoutError, OSError]
"""What is tried again. `OSError` because redis-py 5 lets a refused connect through as one, so a
Redis that is restarting would end the worker's poll loop at its first reconnect."""


def redis_settings(settings: Settings) -> RedisSettings:
    """arq's connection settings for the worker: retries with backoff on a dropped connection
    or a timeout, so a Redis restart of a few seconds does not end the worker's poll loop.

    arq's `RedisSettings` cannot carry a socket timeout; `pool` has one for the app."""
    options = RedisSettings.from_dsn(settings.redis_url)
    options.conn_timeout = max(1, math.ceil(settings.redis_timeout))
    options.conn_retries = settings.redis_retries
    options.retry_on_timeout = True
    options.retry_on_error = list(RETRIED)
    options.retry = retry(settings)
    return options


def pool(settings: Settings) -> ArqRedis:
    """A client for the app's Redis with the same retries as `redis_settings`, plus a socket
    timeout on every command and health checks of idle connections. It connects on first use."""
    connections = ConnectionPool.from_url(
        settings.redis_url,
        socket_timeout=settings.redis_timeout,
        socket_connect_timeout=settings.redis_timeout,
        health_check_interval=settings.redis_health_check,
        retry_on_timeout=True,
        retry_on_error=list(RETRIED),
        retry=retry(settings),
    )
    client = ArqRedis(connections, job_serializer=serialize, job_deserializer=deserialize)
    client.auto_close_connection_pool = True  # `aclose` closes the pool it was given, too
    return client


async def connect(settings: Settings) -> ArqRedis:
    """`pool`, checked once: a Redis that does not answer at startup stops startup."""
    redis = pool(settings)
    await redis.ping()
    return redis


async def first_time(redis: ArqRedis, trigger_id: str) -> bool:
    """True the first time a trigger (a delivery, a comment) is seen in four days."""
    return bool(await redis.set(seen_key(trigger_id), "1", nx=True, ex=SEEN_TTL))


async def active(redis: ArqRedis, thread: str) -> Task | None:
    raw = await redis.get(active_key(thread))
    return Task.model_validate(json.loads(raw)["task"]) if raw else None


async def submit(redis: ArqRedis, task: Task, active_ttl: int) -> Submission:
    """Queue `task` unless its trigger was seen or its issue/PR already has a task.

    One script, as arq's `enqueue_job` would store the job (same keys, same expiry), so no
    failure can leave the issue locked by a job that was never queued."""
    now = int(time.time() * 1000)
    job = serialize_job(job_function(task), (task.dump(),), {}, None, now, serializer=serialize)
    keys = (seen_key(task.job_id), active_key(task.thread), job_key_prefix + task.job_id,
            result_key_prefix + task.job_id, default_queue_name)  # fmt: skip
    args = (holder(task), active_ttl, int(SEEN_TTL.total_seconds()), job, expires_extra_ms, now,
            task.job_id)  # fmt: skip
    reply = await redis.eval(_SUBMIT, len(keys), *keys, *args)  # type: ignore[arg-type, misc]
    outcome = reply[0].decode()
    if outcome == "busy":
        raw = reply[1] if len(reply) > 1 else None
        running = Task.model_validate(json.loads(raw)["task"]) if raw else None
        return Submission("busy", running)
    return Submission("queued" if outcome == "queued" else "duplicate")


def holder(task: Task) -> str:
    """The value of the issue/PR lock held by `task` (read by the app's "already running")."""
    return json.dumps({"job_id": task.job_id, "task": task.dump()})


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
