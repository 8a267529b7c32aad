"""What a person sees within seconds of acting, sent by the app after it has answered GitHub.

These run as background work of the webhook request, so the acknowledgement (👀 and the
"queued" status comment) does not wait for a free worker. Failures are logged, never raised:
the task is already safely queued, and the worker keeps the status comment up to date anyway.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

from arq.connections import ArqRedis
from githubkit import AppAuthStrategy, GitHub

from app import access, commands, queue, status
from app.events import Cancel, Reply, Thread
from app.github import CONFIG_PATH, installation_client, react, read_file
from app.keys import busy_key, while_running
from app.settings import Settings
from app.tasks import Task, TaskStatus

log = logging.getLogger(__name__)
BUSY_LIMIT = 8


@dataclass(frozen=True)
class Services:
    settings: Settings
    redis: ArqRedis
    github: GitHub[AppAuthStrategy]
    slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(BUSY_LIMIT))
    """Replies in flight at once: a burst of deliveries queues its replies here, where they
    cost nothing, instead of all competing with the next deliveries for the event loop."""

    def client(self, installation_id: int, repo: str) -> GitHub[Any]:
        return installation_client(self.github, installation_id, repo)


async def guarded(services: Services, what: str, work: Awaitable[None]) -> None:
    """Run one reply after the answer was sent; a failure is logged, never raised."""
    try:
        async with services.slots:
            await work
    except Exception:
        log.exception("%s failed", what)


async def acknowledge(services: Services, task: Task) -> None:
    """👀 and the status comment for a queued task, or a polite refusal."""
    github = services.client(task.installation_id, task.repo)
    redis = services.redis
    if not await access.may_start(redis, github, task.repo, task.sender):
        log.info("task %s: refused, %s lacks write access", task.job_id, task.sender)
        await access.refuse(redis, github, task, queued=True)
        return
    await react(github, task.repo, task.subject, task.number, "eyes")
    place = await queue.position(redis, task.job_id)
    where = f" (position {place} in the queue)" if place else ""
    await status.show(redis, github, task, TaskStatus.QUEUED, f"⏳ Queued{where}.")


async def busy(services: Services, task: Task, running: Task | None) -> None:
    """Tell the sender a task already runs: one reply per running task and person, and one 😕
    per trigger (a comment, or the issue for a label), however often GitHub delivers it."""
    github = services.client(task.installation_id, task.repo)
    redis = services.redis
    if not await access.may_start(redis, github, task.repo, task.sender):
        await access.refuse_once(redis, github, task.repo, task.number, task.sender)
        return
    holder = running.job_id if running is not None else task.thread
    if await _first(services, busy_key(holder, f"subject:{task.subject}")):
        await react(github, task.repo, task.subject, task.number, "confused")
    told = busy_key(holder, f"person:{task.sender}")
    if not await _first(services, told):
        log.info("task %s: %s was told before that %s runs", task.job_id, task.sender, holder)
        return
    link = ""
    if running is not None and (comment := await status.comment_of(redis, running.job_id)):
        link = f" Follow it here: {comment.url}"
    try:
        await _comment(
            github,
            task.repo,
            task.number,
            f"@{task.sender} a task is already running for this "
            f"{'pull request' if task.kind == 'pull' else 'issue'}, so this one was not queued."
            f"{link} Use `/codex stop` to cancel it first.",
        )
    except BaseException:
        await redis.delete(told)  # not told after all: the next duplicate tries again
        raise


async def cancel(services: Services, request: Cancel) -> None:
    """Stop the issue's or PR's task, if the sender may: arq aborts a running job within a
    poll, and a queued one is closed here."""
    thread = request.thread
    github = services.client(thread.installation_id, thread.repo)
    redis = services.redis
    if not await access.may_start(redis, github, thread.repo, thread.sender):
        log.info("cancel on %s refused: %s lacks write access", thread.key, thread.sender)
        await access.refuse_once(redis, github, thread.repo, thread.number, thread.sender)
        return
    running = await queue.cancel(redis, thread.key, thread.sender)
    log.info("cancel on %s: %s", thread.key, running.job_id if running else "nothing running")
    if request.explicit:
        await react(github, thread.repo, request.subject, thread.number, "eyes")
    if running is None:
        if request.explicit:
            await _comment(github, thread.repo, thread.number, "Nothing is running here to stop.")
        return
    state = await status.current(redis, running.job_id)
    if state is None or state["rank"] == TaskStatus.QUEUED.rank:
        # Not started: arq drops the job, so the app closes the task itself.
        text = f"🛑 Cancelled by @{thread.sender} before it started."
        await status.show(redis, github, running, TaskStatus.CANCELLED, text)
        await queue.release(redis, running)


async def reply(services: Services, request: Reply) -> None:
    thread = request.thread
    github = services.client(thread.installation_id, thread.repo)
    if not await access.may_start(services.redis, github, thread.repo, thread.sender):
        await access.refuse_once(services.redis, github, thread.repo, thread.number, thread.sender)
        return
    await react(github, thread.repo, request.subject, thread.number, "eyes")
    text = reply_text(request, services.settings)
    if request.kind == "help":
        text += "\n\n" + repository_settings(
            services.settings, thread.repo, await read_file(github, thread.repo, CONFIG_PATH)
        )
    await _comment(github, thread.repo, thread.number, text)


def repository_settings(settings: Settings, repo: str, config: str | None) -> str:
    """What this repository adds to the server's settings: the installation's defaults for it,
    then its own `.github/codex.yml` (validated when a task starts)."""
    parts = []
    if defaults := settings.defaults_for(repo):
        dumped = json.dumps(defaults, indent=2, sort_keys=True)
        parts.append(f"Server defaults for `{repo}` (`REPO_DEFAULTS`):\n\n```json\n{dumped}\n```")
    if presets := settings.egress_presets:
        listed = [f"`@{name}`: {', '.join(f'`{host}`' for host in hosts[:20]) or 'no hosts'}"
                  for name, hosts in sorted(presets.items())[:20]]  # fmt: skip
        parts.append("Allowlist presets for `network.allow` (`EGRESS_PRESETS`):\n\n- "
                     + "\n- ".join(listed))  # fmt: skip
    if config is None:
        parts.append(f"`{CONFIG_PATH}` is not on the default branch: the defaults apply.")
    else:
        fence = "~~~~" if "```" in config else "```"
        clipped = config if len(config) <= 4000 else config[:4000] + "\n# … (cut)"
        parts.append(
            f"`{CONFIG_PATH}` on the default branch (it wins over the defaults; it is "
            f"validated when a task starts):\n\n{fence}yaml\n{clipped.rstrip()}\n{fence}"
        )
    return "\n\n".join(parts)


def reply_text(request: Reply, settings: Settings) -> str:
    if request.kind == "unknown":
        head = f"`/codex {request.detail}` is not a command I know. These are:"
    elif request.kind == "invalid":
        head = f"That command cannot run as written: {request.detail}. The commands are:"
    else:
        head = "The commands:"
    return f"{head}\n\n{commands.usage()}\n\n{effective_settings(settings, request.thread)}"


def effective_settings(settings: Settings, thread: Thread) -> str:
    rows = [
        ("trigger label", f"`{settings.trigger_label}`"),
        ("model", f"`{settings.codex_model}` through the `{settings.model_api}` API"),
        ("sandbox image", f"`{settings.sandbox_image}`"),
        ("sandbox runtime", f"`{settings.sandbox_runtime or 'runc'}`"),
        ("network in the agent phase", "`network.agent` in `.github/codex.yml`: `off` (default), "
         "`allowlist` or `on`, through the egress proxy"),
        ("limits per attempt", f"{settings.max_steps} steps, {settings.agent_timeout} s, "
         f"{settings.max_tokens:,} tokens, ${settings.max_cost:g}"),
        ("command timeout", f"{settings.command_timeout} s"),
        ("task timeout", f"{settings.task_timeout} s"),
    ]  # fmt: skip
    table = "\n".join(f"| {name} | {value} |" for name, value in rows)
    return f"Settings in effect for `{thread.repo}`:\n\n| setting | value |\n|---|---|\n{table}"


async def _first(services: Services, key: str) -> bool:
    """True the first time `key` is claimed while a task may still run."""
    return bool(await services.redis.set(key, "1", nx=True, ex=while_running(services.settings)))


async def _comment(github: GitHub[Any], repo: str, number: int, body: str) -> None:
    owner, name = repo.split("/", 1)
    await github.rest.issues.async_create_comment(owner, name, number, body=body)
