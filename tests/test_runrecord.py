"""What a published run leaves for `/codex continue` and `/codex pick`, on a real Redis: saved
and read back whole, its TTL a month, and a record nobody can read (another version's, edited
by hand) counted as absent instead of failing the command."""

from __future__ import annotations

from arq.connections import ArqRedis

from app.keys import RUN_TTL, run_key
from tests.harness import redis_scenario
from worker.runrecord import RunRecord, Version

RECORD = RunRecord(
    branch="codex/issue-7-fix",
    stop_reason="the step limit (40) was reached at step 40",
    summary="Half of it.",
    commands=["pytest -q", "sed -i 's/a/b/' x.py"],
    closing="Fixes #7",
    attempts={
        1: Version("[incomplete] Fix", "body 1", {"incomplete": True}, "codex/task-attempt-1"),
        2: Version("Fix", "body 2", {"incomplete": False}, "codex/task-attempt-2"),
    },
)


def test_a_record_comes_back_whole_and_lives_a_month(redis_url: str) -> None:
    async def scenario(redis: ArqRedis) -> tuple[RunRecord | None, int]:
        await RECORD.save(redis, "octo/calc", 9)
        return await RunRecord.load(redis, "octo/calc", 9), await redis.ttl(run_key("octo/calc", 9))

    loaded, ttl = redis_scenario(redis_url, scenario)
    assert loaded == RECORD
    assert RUN_TTL - 5 <= ttl <= RUN_TTL


def test_an_unreadable_or_missing_record_is_absent(redis_url: str) -> None:
    async def scenario(redis: ArqRedis) -> list[RunRecord | None]:
        found = [await RunRecord.load(redis, "octo/calc", 1)]
        for raw in ("not json", "[1, 2]", '{"summary": "no branch"}',
                    '{"branch": "b", "attempts": {"x": {"title": "t"}}}'):  # fmt: skip
            await redis.set(run_key("octo/calc", 2), raw)
            found.append(await RunRecord.load(redis, "octo/calc", 2))
        return found

    assert redis_scenario(redis_url, scenario) == [None] * 5
