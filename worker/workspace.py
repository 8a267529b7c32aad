"""The host's side of a task before any sandbox: the checkout and the task's prompt.

The repository is cloned on the host (with a token that never enters a container) while the
issue or PR and its comments are read from GitHub; the prompt is that thread, the base
branch's AGENTS.md files and the facts of the sandbox the agent works in.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from worker import gitops
from worker import plan as planning
from worker.agent import prompt
from worker.agent.loop import Limits
from worker.attempt import Workspace
from worker.lifecycle import TaskRun
from worker.repoconfig import RepoConfig


async def prepare(run: TaskRun, plan: planning.Plan, checkout: Path, limits: Limits) -> Workspace:
    """Clone into `checkout` while the thread is read; the prompt once both are there."""
    reading = asyncio.create_task(planning.prompt_for(run.redis, run.github, run.task, plan))
    try:
        token = await run.tokens.secret()
        base = await gitops.clone(plan.clone_url, token, checkout, plan.fetch_ref)
        agents_ref = base
        if plan.base_ref != plan.fetch_ref:
            agents_ref = await gitops.fetch(
                checkout, plan.clone_url, await run.tokens.secret(), plan.base_ref,
                "refs/codex/base",
            )  # fmt: skip
        agents_files = await gitops.files_named(checkout, agents_ref, "AGENTS.md")
        text = task_prompt(await reading, agents_files, plan.config, limits)
    finally:
        await settled(reading)
    return Workspace(base=base, prompt=text)


def task_prompt(
    plan_prompt: str, agents_files: dict[str, str], config: RepoConfig, limits: Limits
) -> str:
    """The task as the model sees it: the issue or PR, AGENTS.md, and the environment."""
    facts = prompt.Environment(
        network=config.network.agent,
        allow=tuple(config.network.allow),
        methods=tuple(config.network.methods),
        validate=config.validate_command,
        max_steps=limits.max_steps,
        minutes=limits.seconds / 60,
        command_timeout=limits.command_timeout,
    )
    parts = [plan_prompt, prompt.agents_md(agents_files), prompt.environment(facts)]
    return "\n\n".join(part for part in parts if part)


async def settled(work: asyncio.Future[Any]) -> None:
    """`work` is over: cancelled if it was still running, and its error (if any) seen, since
    the error that stopped the task first is the one reported."""
    if not work.done():
        work.cancel()
    await asyncio.wait([work])
    if not work.cancelled():
        work.exception()
