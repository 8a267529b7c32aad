"""Concurrency caps that hold across every worker: tasks per installation and per repository.

`MAX_CONCURRENT_TASKS` bounds one worker process; `MAX_TASKS_PER_INSTALLATION` and
`MAX_TASKS_PER_REPO` bound the whole fleet, so one busy account or repository cannot take every
slot of every worker. A task takes its slots as it starts, before any GitHub or Docker work, in
two Redis sets (`codex:running:installation:<id>`, `codex:running:repo:<owner/name>`). A member
counts only while its task's alive key lives (`worker/heartbeat.py`): the slot of a task whose
worker died frees itself within `ALIVE_TTL`, and the heartbeat removes it when the task ends.
Reading the sets and taking the slots is one optimistic transaction (`WATCH`), so two workers
deciding at once never both take the last slot.

A task over a cap goes back to arq's queue for `CAP_RECHECK` seconds without using up one of
its tries, and its status comment says what it waits for.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

from arq import Retry
from arq.connections import ArqRedis
from arq.constants import retry_key_prefix
from redis.exceptions import WatchError

from app import github as gh
from app import queue, status
from app.keys import alive_key, running_installation_key, running_repo_key
from app.settings import Settings
from app.tasks import Task, TaskStatus

log = logging.getLogger(__name__)

CONTENDED = 20
"""Transactions tried before a busy Redis counts as a failure (each try is a few commands)."""

Scope = Literal["installation", "repository"]


@dataclass(frozen=True)
class Caps:
    per_installation: int
    """0: no limit."""
    per_repo: int

    @classmethod
    def of(cls, settings: Settings) -> Caps:
        return cls(settings.max_tasks_per_installation, settings.max_tasks_per_repo)

    @property
    def any(self) -> bool:
        return bool(self.per_installation or self.per_repo)


@dataclass(frozen=True)
class Wait:
    """Why a task may not start yet: `running` tasks of its `scope` hold all `limit` slots."""

    scope: Scope
    running: int
    limit: int


def decide(caps: Caps, installation_running: int, repo_running: int) -> Wait | None:
    """None: the task may start. The counts are the other live tasks holding slots."""
    if caps.per_installation and installation_running >= caps.per_installation:
        return Wait("installation", installation_running, caps.per_installation)
    if caps.per_repo and repo_running >= caps.per_repo:
        return Wait("repository", repo_running, caps.per_repo)
    return None


def waiting_text(wait: Wait, repo: str) -> str:
    """The status comment of a task over a cap."""
    of = "this installation" if wait.scope == "installation" else f"`{repo}`"
    tasks, are = ("task", "is") if wait.running == 1 else ("tasks", "are")
    return (
        f"⏳ Queued: {wait.running} {tasks} of {of} {are} running (the limit is {wait.limit}); "
        "this one starts when one ends."
    )


def slot_keys(task: Task) -> tuple[str, str]:
    return running_installation_key(task.installation_id), running_repo_key(task.repo)


async def take(redis: ArqRedis, task: Task, caps: Caps) -> Wait | None:
    """Take `task`'s slots, or say what it waits for. Members whose alive key is gone are
    dropped on the way; `task` itself (a new try of it) never counts against itself."""
    keys = slot_keys(task)
    for _ in range(CONTENDED):
        async with redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(*keys)
                live: list[int] = []
                dead: list[list[bytes]] = []
                for key in keys:
                    found: set[bytes] = await pipe.smembers(key)  # type: ignore[misc]
                    members = [m for m in found if m != task.job_id.encode()]
                    alive = [await pipe.exists(alive_key(m.decode())) for m in members]
                    live.append(sum(1 for a in alive if a))
                    dead.append([m for m, a in zip(members, alive, strict=True) if not a])
                wait = decide(caps, live[0], live[1])
                pipe.multi()  # type: ignore[no-untyped-call]
                for key, gone in zip(keys, dead, strict=True):
                    if gone:
                        pipe.srem(key, *gone)
                    if wait is None:
                        pipe.sadd(key, task.job_id)
                await pipe.execute()
                return wait
            except WatchError:
                continue  # another worker changed a set meanwhile: read again
    raise RuntimeError(f"task {task.job_id}: the cap sets stayed contended for {CONTENDED} tries")


async def release(redis: ArqRedis, task: Task) -> None:
    """`task` holds no slot any more (whether it had one or not)."""
    async with redis.pipeline(transaction=True) as pipe:
        for key in slot_keys(task):
            pipe.srem(key, task.job_id)
        await pipe.execute()


async def admit(ctx: dict[str, Any], task: Task) -> None:
    """The hook at the start of `run_task`: returns when `task` may run (its slots taken), or
    sends it back to the queue for `CAP_RECHECK` seconds (arq's `Retry`) with its status comment
    saying what it waits for. Waiting uses up no try: arq counted this start as one, so the
    count goes back by one."""
    settings: Settings = ctx["deps"].settings
    caps, redis = Caps.of(settings), ctx["redis"]
    if not caps.any or await queue.cancelled_by(redis, task.job_id):
        return  # a cancelled task starts, and ends at once saying so
    try:
        wait = await take(redis, task, caps)
    except Exception:  # contention past its tries, a Redis hiccup: ask again, as a wait would
        log.warning("task %s: its slots could not be taken; asking again", task.job_id,
                    exc_info=True)  # fmt: skip
        await redis.decr(retry_key_prefix + task.job_id)
        raise Retry(defer=settings.cap_recheck) from None
    if wait is None:
        return
    log.info("task %s: waits for a slot (%d of %d of its %s running)", task.job_id, wait.running,
             wait.limit, wait.scope)  # fmt: skip
    await _show(ctx, task, waiting_text(wait, task.repo))
    await redis.decr(retry_key_prefix + task.job_id)
    raise Retry(defer=settings.cap_recheck)


async def _show(ctx: dict[str, Any], task: Task, text: str) -> None:
    """Say what the task waits for, once per change of the words: not every few seconds."""
    redis: ArqRedis = ctx["redis"]
    shown = await status.current(redis, task.job_id)
    if shown and shown.get("text") == text:
        return
    try:
        token = await gh.mint_token(ctx["deps"].app_github, task.installation_id, task.repo)
        github = gh.token_client(ctx["deps"].app_github, token)
        try:
            await status.show(redis, github, task, TaskStatus.QUEUED, text, ctx["job_try"])
        finally:
            await gh.revoke_token(github)
    except Exception:
        log.warning("task %s: status comment failed", task.job_id, exc_info=True)
