"""The queue on a real Redis: where a waiting task stands, counting only tasks not yet running."""

from __future__ import annotations

import asyncio

from arq.constants import in_progress_key_prefix

from app import queue
from app.tasks import Task
from tests.harness import queue_settings


def task(number: int) -> Task:
    return Task(repo="octo/queue", number=number, installation_id=1, sender="alice",
                trigger=f"label:d-{number}", delivery_id=f"d-{number}")  # fmt: skip


def test_positions_count_the_tasks_waiting_ahead_not_the_running_ones(redis_url: str) -> None:
    async def scenario() -> list[int | None]:
        redis = await queue.connect(queue_settings(redis_url.replace("/0", "/5")))
        try:
            await redis.flushdb()
            tasks = [task(n) for n in range(1, 5)]
            for one in tasks:
                assert (await queue.submit(redis, one, active_ttl=60)).outcome == "queued"
            await redis.set(in_progress_key_prefix + tasks[0].job_id, "1")  # a worker took it
            places = [await queue.position(redis, one.job_id) for one in tasks]
            return [*places, await queue.position(redis, "task:no-such-job")]
        finally:
            await redis.flushdb()
            await redis.aclose()

    assert asyncio.run(scenario()) == [1, 1, 2, 3, None]
