"""`run_task`: one task from dequeue to draft PR, in phase order. Each phase lives elsewhere:

    lifecycle.py    token, deadline, cancel, write access; the last word whatever happens
    plan.py         read GitHub: what to work on and where the result goes
    workspace.py    clone on the host and build the prompt     ┐ side by side
    bestofn.py      the setup phase (setup.py), then N attempts ┘ (attempt.py)
    ranking.py      order the attempts
    report/outcome  every text of the outcome, decided as plain data
    push.py         commit, push, open or update the draft PR (publish.py: the GitHub writes)

A cancel (`/codex stop`, label removed) arrives as an arq abort: the containers go with the
task and nothing is pushed. `/codex pick` is its own arq function (`pick.py`).
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from app import tasklog
from app.github import CONFIG_PATH
from app.tasks import TaskStatus
from worker import bestofn, pick, push, ranking, workspace
from worker import plan as planning
from worker.errors import TaskFailed
from worker.lifecycle import TaskRun, entry
from worker.repoconfig import limits_for
from worker.report import outcome
from worker.report.worklog import render_full
from worker.sandbox import images
from worker.workspace import settled


async def run_task(ctx: dict[str, Any], payload: dict[str, Any]) -> str:
    return await entry(ctx, payload, work)


async def work(run: TaskRun) -> str:
    task, settings = run.task, run.settings
    if task.action == "pick":  # queued as run_task by a version before `run_pick` existed
        return await pick.pick(run)
    run.status.soon(TaskStatus.PREPARING, "⏳ Preparing: reading the issue and cloning.")
    plan = await planning.plan(run.github, task, settings.defaults_for(task.repo))
    if task.action == "continue" and not plan.owned:
        raise TaskFailed(
            "`/codex continue` resumes a pull request this app opened (a `codex/` branch); "
            "use `/codex fix` on other pull requests."
        )
    image = plan.config.image or settings.sandbox_image
    if refused := images.refusal(image, settings.sandbox_image, settings.sandbox_images,
                                 task.repo):  # fmt: skip
        raise images.ImageRefused(f"{CONFIG_PATH} `image`: {refused}")
    with tempfile.TemporaryDirectory(prefix="codex-") as workdir:
        checkout = Path(workdir) / "repo"
        limits = limits_for(settings, plan.config.limits)
        # The clone runs while the setup phase and the attempts start their containers.
        cloned = asyncio.create_task(workspace.prepare(run, plan, checkout, limits))
        setup = asyncio.create_task(bestofn.environment_for(run, plan, image, checkout, cloned))
        try:
            attempts = await bestofn.run_all(run, plan, checkout, cloned, setup, image, limits)
        finally:
            await settled(cloned)
            await settled(setup)
            if not setup.cancelled() and setup.exception() is None and setup.result().temporary:
                run.temporary.append(setup.result().image)
        full = run.redact(render_full([one.worklog for one in attempts]))
        log_url = await tasklog.store(run.redis, settings, task.job_id, full)
        best = attempts[ranking.order([a.candidate() for a in attempts])[0].number - 1]
        if not best.publishable:
            await run.finish(TaskStatus.DONE, outcome.nothing_published(best, log_url))
            return "no changes"
        await run.check_cancelled()
        run.status.soon(TaskStatus.PUBLISHING, "📤 Publishing the change.")
        closing = await push.closing_line(run, plan)
        done = outcome.publication(task, plan, attempts, closing=closing, log_url=log_url,
                                   duration=run.elapsed(), cost=settings.cost,
                                   redact=run.redact)  # fmt: skip
        base = cloned.result().base
        link, text = await push.publish_change(run, plan, attempts, done, closing, checkout, base)
    await run.finish(TaskStatus.DONE, text)
    return f"published to {link}"
