"""A task's status: one record in Redis, shown in one comment on the issue or PR.

The app (queued, refused, cancelled before start) and the worker (every later phase) both
update it. A phase never goes backwards and a final phase is final, so a slow update from one
side cannot undo a newer one from the other; only a new try of the task (a worker died or
stopped mid-task) moves a phase that is not final back, and an older try's late update is
ignored; the comment is always rendered from the current
record, and a claim in Redis makes sure only one comment is ever created per task.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

from githubkit import GitHub
from githubkit.exception import RequestFailed
from redis.asyncio import Redis

from app.keys import STATUS_TTL, comment_key, status_key
from app.tasks import FINAL_RANK, Task, TaskStatus

PENDING = "pending"

_RECORD = """
local data = cjson.decode(ARGV[1])
local now = tonumber(ARGV[5])
local current = redis.call('GET', KEYS[1])
if current then
  local record = cjson.decode(current)
  local rank = tonumber(record['rank'])
  local new = tonumber(ARGV[2])
  local was = tonumber(record['try'] or 1)
  if now == 0 then now = was end
  if now < was then return 0 end
  if now > was and rank < tonumber(ARGV[3]) then rank = -1 end
  if rank > new or (rank == new and rank == tonumber(ARGV[3])) then return 0 end
end
if now == 0 then now = 1 end
data['try'] = now
redis.call('SET', KEYS[1], cjson.encode(data), 'EX', ARGV[4])
return 1
"""


@dataclass(frozen=True)
class Comment:
    id: int
    url: str


async def record(
    redis: Redis, job_id: str, status: TaskStatus, text: str, try_number: int = 0
) -> bool:
    """Store the new phase unless a later one (of this try or a later one) is already
    recorded; True when stored. `try_number` is the worker's try (arq's `job_try`); the app
    leaves it 0, which stands for the try currently recorded."""
    data = {"status": status.value, "rank": status.rank, "text": text, "at": time.time()}
    args = (json.dumps(data), str(status.rank), str(FINAL_RANK), str(STATUS_TTL), str(try_number))
    stored = await redis.eval(_RECORD, 1, status_key(job_id), *args)  # type: ignore[misc]
    return bool(stored)


async def current(redis: Redis, job_id: str) -> dict[str, Any] | None:
    raw = await redis.get(status_key(job_id))
    return json.loads(raw) if raw else None


async def comment_of(redis: Redis, job_id: str) -> Comment | None:
    raw = await redis.get(comment_key(job_id))
    if not raw or raw == PENDING.encode():
        return None
    data = json.loads(raw)
    return Comment(int(data["id"]), str(data["url"]))


def render(task: Task, text: str) -> str:
    return f"{text}\n\n<sub>codex task `{task.job_id}` · started by @{task.sender}</sub>"


async def show(
    redis: Redis,
    github: GitHub[Any],
    task: Task,
    status: TaskStatus,
    text: str,
    try_number: int = 0,
) -> None:
    """Record the phase, then make the task's one comment show the current record."""
    await record(redis, task.job_id, status, text, try_number)
    await sync(redis, github, task)


async def sync(redis: Redis, github: GitHub[Any], task: Task) -> None:
    owner, name = task.repo.split("/", 1)
    key = comment_key(task.job_id)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        state = await current(redis, task.job_id)
        refused = state is not None and state["status"] == TaskStatus.REFUSED
        body = render(task, state["text"] if state else "⏳ Queued")
        raw = await redis.get(key)
        if raw is None and refused:
            return  # a refusal is a reply of its own (once per person), never a new comment
        if raw is None:
            if not await redis.set(key, PENDING, nx=True, ex=STATUS_TTL):
                continue
            try:
                created = await github.rest.issues.async_create_comment(
                    owner, name, task.number, body=body
                )
            except BaseException:
                await redis.delete(key)
                raise
            data = created.parsed_data
            await redis.set(key, json.dumps({"id": data.id, "url": data.html_url}), ex=STATUS_TTL)
        else:
            if raw == PENDING.encode():
                await asyncio.sleep(0.1)  # the other side is creating it; then edit it
                continue
            comment = json.loads(raw)
            try:
                await github.rest.issues.async_update_comment(owner, name, comment["id"], body=body)
            except RequestFailed as error:
                if error.response.status_code != 404:
                    raise
                await redis.delete(key)  # someone deleted it: post a new one
                continue
        if await current(redis, task.job_id) == state:
            return  # otherwise a newer phase landed meanwhile: show that one
    raise TimeoutError(f"status comment for {task.job_id} stayed claimed for 15 s")
