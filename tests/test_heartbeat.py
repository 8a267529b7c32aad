"""The heartbeat and janitor on a real Redis, with arq's own keys as arq writes them.

What a person would notice: a task whose worker is gone runs again (its in-progress key goes, so
arq starts it), a live or just-started one is left alone, a task out of tries gets one final
word, an issue stays locked exactly while its task is alive, a new try's status may move back,
and a task whose job vanished is ended once, freeing its issue.
"""

from __future__ import annotations

import asyncio

from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix, job_key_prefix, retry_key_prefix

from app import queue, status
from app.keys import ALIVE_TTL, alive_key
from app.tasks import Task, TaskStatus
from tests.harness import redis_scenario
from worker.heartbeat import Heartbeat
from worker.report import outcome

IN_PROGRESS_MS = 3_670_000


def task(number: int) -> Task:
    return Task(repo="octo/beat", number=number, installation_id=1, sender="alice",
                trigger=f"label:hb-{number}", delivery_id=f"hb-{number}")  # fmt: skip


async def started(redis: ArqRedis, one: Task, seconds_ago: float) -> None:
    """As arq's `start_jobs` does, `seconds_ago`."""
    left = IN_PROGRESS_MS - int(seconds_ago * 1000)
    await redis.psetex(in_progress_key_prefix + one.job_id, left, b"1")


def beats(redis: ArqRedis, given_up: list[tuple[str, int]]) -> Heartbeat:
    async def finalize(one: Task, tries: int) -> None:
        given_up.append((one.job_id, tries))

    return Heartbeat(redis, "w-test", in_progress_ms=IN_PROGRESS_MS, max_tries=3,
                     finalize=finalize)  # fmt: skip


def test_only_a_task_whose_worker_is_gone_is_started_again(redis_url: str) -> None:
    async def scenario(redis: ArqRedis) -> list[bool]:
        dead, fresh, live = task(1), task(2), task(3)
        for one in (dead, fresh, live):
            await queue.submit(redis, one, active_ttl=60)
        await started(redis, dead, ALIVE_TTL + 5)
        await started(redis, fresh, 1)  # its worker has not beaten yet
        await started(redis, live, ALIVE_TTL + 5)
        await redis.set(alive_key(live.job_id), "w-other", ex=ALIVE_TTL)
        assert await beats(redis, []).sweep() == 1
        return [bool(await redis.exists(in_progress_key_prefix + o.job_id)) for o in (dead,
                fresh, live)]  # fmt: skip

    assert redis_scenario(redis_url, scenario) == [False, True, True]


def test_a_task_out_of_tries_gets_one_final_word_from_two_janitors(redis_url: str) -> None:
    async def scenario(redis: ArqRedis) -> list[tuple[str, int]]:
        one = task(4)
        await queue.submit(redis, one, active_ttl=60)
        await redis.set(retry_key_prefix + one.job_id, 3)
        given_up: list[tuple[str, int]] = []
        for _ in range(2):
            await started(redis, one, ALIVE_TTL + 5)
            await beats(redis, given_up).sweep()
        return given_up

    assert redis_scenario(redis_url, scenario) == [(task(4).job_id, 3)]


def test_the_issue_lock_lasts_while_the_task_is_alive_and_not_after(redis_url: str) -> None:
    async def scenario(redis: ArqRedis) -> list[bool]:
        one = task(5)
        await queue.submit(redis, one, active_ttl=2)  # would lapse in 2 s
        heartbeat = beats(redis, [])
        seen = []
        async with heartbeat.running_task(one):
            await asyncio.sleep(2.5)
            seen.append(await queue.active(redis, one.thread) == one)
            await queue.release(redis, one)  # the task ended
            await heartbeat.beat()
            seen.append(await queue.active(redis, one.thread) is None)
        return seen

    assert redis_scenario(redis_url, scenario) == [True, True]


def test_a_new_try_moves_the_status_back_and_an_old_try_is_ignored(redis_url: str) -> None:
    async def scenario(redis: ArqRedis) -> list[str]:
        job = task(6).job_id
        seen = []
        await status.record(redis, job, TaskStatus.WORKING, "working, try 1", 1)
        await status.record(redis, job, TaskStatus.PREPARING, "resuming, try 2", 2)
        seen.append((await status.current(redis, job) or {})["text"])
        await status.record(redis, job, TaskStatus.PUBLISHING, "late news from try 1", 1)
        seen.append((await status.current(redis, job) or {})["text"])
        await status.record(redis, job, TaskStatus.CANCELLED, "cancelled by the app")
        await status.record(redis, job, TaskStatus.PREPARING, "try 3 after the end", 3)
        seen.append((await status.current(redis, job) or {})["text"])
        return seen

    assert redis_scenario(redis_url, scenario) == [
        "resuming, try 2",
        "resuming, try 2",
        "cancelled by the app",
    ]


def lost_beats(redis: ArqRedis, ended: list[str]) -> Heartbeat:
    async def finalize(one: Task, tries: int) -> None:
        raise AssertionError("no task is out of tries here")

    async def lost(one: Task) -> None:
        ended.append(one.job_id)
        await queue.release(redis, one)

    return Heartbeat(redis, "w-test", in_progress_ms=IN_PROGRESS_MS, max_tries=3,
                     finalize=finalize, lost=lost)  # fmt: skip


def test_a_task_whose_job_is_gone_is_ended_once_and_its_issue_freed(redis_url: str) -> None:
    async def scenario(redis: ArqRedis) -> None:
        gone, queued, running, ended_ok = task(7), task(8), task(9), task(10)
        for one in (gone, queued, running, ended_ok):
            await queue.submit(redis, one, active_ttl=600)
            await status.record(redis, one.job_id, TaskStatus.WORKING, "🛠️ Working", 1)
        await redis.delete(job_key_prefix + gone.job_id)  # the job vanished
        await started(redis, running, 5)
        await redis.delete(job_key_prefix + running.job_id)  # still running: left alone
        await status.record(redis, ended_ok.job_id, TaskStatus.DONE, "✅ done", 1)
        await redis.delete(job_key_prefix + ended_ok.job_id)  # only its lock is left
        ended: list[str] = []
        first, second = lost_beats(redis, ended), lost_beats(redis, ended)
        assert await first.sweep_lost() == 0, "seen once: not yet"
        assert await second.sweep_lost() == 0
        found = [await first.sweep_lost(), await second.sweep_lost()]
        print(f"tasks ended by two janitors: {found}; final words: {len(ended)}")
        assert found == [1, 0] and ended == [gone.job_id]
        assert "`/codex fix`" in outcome.lost()
        assert await queue.active(redis, gone.thread) is None
        assert await queue.active(redis, ended_ok.thread) is None, "a stale lock is freed"
        assert await queue.active(redis, queued.thread) == queued
        assert await queue.active(redis, running.thread) == running
        again = Task(**(gone.dump() | {"trigger": "label:hb-7-again"}))
        assert (await queue.submit(redis, again, active_ttl=600)).outcome == "queued"

    redis_scenario(redis_url, scenario)
