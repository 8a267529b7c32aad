"""Putting tasks on the arq queue exactly once per trigger.

GitHub redelivers with the same `X-GitHub-Delivery` for up to three days, while arq forgets a
job id an hour after the job ends, so a trigger is remembered here for four days. It is recorded
only after the job is safely stored: a failure before that answers 5xx and stays redeliverable.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta

from arq.connections import ArqRedis, RedisSettings, create_pool

from app.tasks import JOB_FUNCTION, Task, deserialize, serialize

SEEN_TTL = timedelta(days=4)


def seen_key(task: Task) -> str:
    return f"codex:seen:{task.job_id}"


async def connect(redis_url: str) -> ArqRedis:
    return await create_pool(
        RedisSettings.from_dsn(redis_url),
        job_serializer=serialize,
        job_deserializer=deserialize,
    )


async def submit(redis: ArqRedis, task: Task) -> bool:
    """Queue `task`; False when this trigger was queued before (a redelivery)."""
    if await redis.exists(seen_key(task)):
        return False
    job = await redis.enqueue_job(JOB_FUNCTION, task.dump(), _job_id=task.job_id)
    await redis.set(seen_key(task), "1", ex=SEEN_TTL)
    return job is not None


def status_key(job_id: str) -> str:
    return f"codex:status:{job_id}"


async def set_status(redis: ArqRedis, job_id: str, status: str, detail: str = "") -> None:
    """The task's current phase, for the status comment and the dashboard."""
    record = json.dumps({"status": status, "detail": detail, "at": time.time()})
    await redis.set(status_key(job_id), record, ex=SEEN_TTL)
