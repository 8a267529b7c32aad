"""The attempts of a task: one, or N side by side (best-of-N), from one checkout and one
environment; `attempt.py` is one of them, `ranking.py` orders them afterwards.

The first attempt speaks in the status comment; the others stay quiet but for their step
counts, which the status shows side by side.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from app.tasks import TaskStatus
from worker import attempt, setup
from worker.agent import prompt
from worker.agent.loop import Limits, Progress
from worker.attempt import Attempt, Workspace
from worker.lifecycle import TaskRun
from worker.plan import Plan
from worker.sandbox import images


async def run_all(
    run: TaskRun,
    plan: Plan,
    checkout: Path,
    workspace: asyncio.Future[Workspace],
    environment: asyncio.Future[setup.Environment],
    image: str,
    limits: Limits,
) -> list[Attempt]:
    count = run.task.attempts or plan.config.attempts
    job = attempt.Job(
        deps=run.deps,
        repo=run.task.repo,
        label=run.task.job_id,
        config=plan.config,
        checkout=checkout,
        workspace=workspace,
        environment=environment,
        image=image,
        runtime=runtime(run, plan),
        instructions=prompt.INSTRUCTIONS,
        limits=limits,
        redact=run.redact,
        attempts=count,
    )

    async def show(phase: TaskStatus, text: str) -> None:
        run.status.soon(phase, text)

    async def quiet(phase: TaskStatus, text: str) -> None:
        pass

    def progress(number: int) -> Progress:
        async def report(step: int) -> None:
            run.status.step(number, step, attempts=count, max_steps=limits.max_steps)

        return report

    if count == 1:
        return [await attempt.run(job, 1, show, progress(1))]
    async with asyncio.TaskGroup() as group:
        running = [
            group.create_task(attempt.run(job, n, show if n == 1 else quiet, progress(n)))
            for n in range(1, count + 1)
        ]
    return [done.result() for done in running]


async def environment_for(
    run: TaskRun,
    plan: Plan,
    image: str,
    checkout: Path,
    workspace: asyncio.Future[Workspace],
) -> setup.Environment:
    """The setup phase, once for all attempts (`worker/setup.py`)."""
    config, task, settings = plan.config, run.task, run.settings
    secrets = setup.secrets(settings, task.repo, config, run.redact)
    image_id = await images.require_local(run.deps.docker, image)
    if config.setup.strip():
        await asyncio.shield(workspace)  # the cache key reads the checkout's lockfiles
    job = setup.SetupJob(
        settings=settings,
        cache=run.deps.cache,
        network=run.deps.network,
        repo=task.repo,
        label=task.job_id,
        config=config,
        image=image,
        image_id=image_id,
        runtime=runtime(run, plan),
        secrets=secrets,
        redact=run.redact,
    )

    async def show(phase: TaskStatus, text: str) -> None:
        run.status.soon(phase, text)

    return await setup.prepare(job, checkout, show)


def runtime(run: TaskRun, plan: Plan) -> str | None:
    return plan.config.runtime or run.settings.sandbox_runtime
