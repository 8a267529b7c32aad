"""Who may start work: people with write, maintain or admin permission, nobody else.

The role comes from the collaborator-permission API (`author_association` says nothing about
write access) and is cached for a minute, so a burst of comments costs one API call.
"""

from __future__ import annotations

from typing import Any

from arq.connections import ArqRedis
from githubkit import GitHub
from redis.asyncio import Redis

from app import queue, status
from app.github import WRITE_ROLES, role_of
from app.keys import REFUSAL_TTL, ROLE_TTL, refused_key, role_key
from app.tasks import Task, TaskStatus


async def role(redis: Redis, github: GitHub[Any], repo: str, login: str) -> str:
    key = role_key(repo, login)
    cached = await redis.get(key)
    if cached:
        return str(cached.decode())
    value = await role_of(github, repo, login)
    await redis.set(key, value, ex=ROLE_TTL)
    return value


async def may_start(redis: Redis, github: GitHub[Any], repo: str, login: str) -> bool:
    return await role(redis, github, repo, login) in WRITE_ROLES


def refusal(login: str) -> str:
    return (
        f"Thanks, @{login}! Only people with write access to this repository can start or "
        "stop the agent, so this request changes nothing. A maintainer can label the issue or "
        "comment `/codex fix` to start it, or `/codex stop` to stop it."
    )


async def refuse_once(
    redis: Redis, github: GitHub[Any], repo: str, number: int, login: str
) -> None:
    """Tell `login` why nothing runs, once per issue or PR."""
    if await redis.set(refused_key(repo, number, login), "1", nx=True, ex=REFUSAL_TTL):
        owner, name = repo.split("/", 1)
        await github.rest.issues.async_create_comment(owner, name, number, body=refusal(login))


async def refuse(redis: ArqRedis, github: GitHub[Any], task: Task, *, queued: bool) -> None:
    """The one answer to a task started by someone without write access, from the app (on
    arrival, `queued`: its job is cancelled) or the worker (whose role check is fresher): the
    task is marked refused, its issue freed, and its sender told once per issue why nothing
    runs. A status comment the task already has (queued, or re-queued after a try) says it
    will not run; none is posted otherwise."""
    await status.record(redis, task.job_id, TaskStatus.REFUSED, not_started(task.sender))
    if queued:
        await queue.cancel(redis, task.thread, by=task.sender)
    await queue.release(redis, task)
    await refuse_once(redis, github, task.repo, task.number, task.sender)
    await status.sync(redis, github, task)


def not_started(login: str) -> str:
    return (
        "🚫 Not started: only people with write access to this repository can start the "
        f"agent, and @{login} does not have it."
    )
