"""`/codex pick N`, its own arq function: the PR's branch moves to attempt N's commit and the
PR's title, body and labels follow, from the run's record (`runrecord.py`). No sandbox runs.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from app.tasks import TaskStatus
from worker import gitops, publish
from worker.errors import TaskFailed
from worker.lifecycle import TaskRun, entry
from worker.runrecord import RunRecord


async def run_pick(ctx: dict[str, Any], payload: dict[str, Any]) -> str:
    return await entry(ctx, payload, pick)


async def pick(run: TaskRun) -> str:
    task = run.task
    record = await RunRecord.load(run.redis, task.repo, task.number)
    versions = record.attempts if record else {}
    if record is None or len(versions) < 2 or task.pick not in versions:
        have = ", ".join(str(n) for n in sorted(versions)) if len(versions) > 1 else "none"
        raise TaskFailed(
            f"this pull request has no attempt {task.pick} to move to (attempts with a "
            f"change: {have}). `/codex pick` works on draft PRs opened with `--attempts`."
        )
    chosen = versions[task.pick]
    run.status.soon(TaskStatus.PUBLISHING, f"📤 Moving to attempt {task.pick}.")
    owner, name = task.repo.split("/", 1)
    clone_url = (await run.github.rest.repos.async_get(owner, name)).parsed_data.clone_url
    with tempfile.TemporaryDirectory(prefix="codex-") as workdir:
        checkout = Path(workdir) / "repo"
        sha = await gitops.clone(clone_url, await run.tokens.secret(), checkout, chosen.branch)
        await gitops.push(checkout, clone_url, await run.tokens.secret(), record.branch, rev=sha)
    await publish.update_pull(
        run.github, task.repo, task.number, title=chosen.title, body=chosen.body
    )
    await publish.set_labels(run.github, task.repo, task.number, chosen.labels)
    text = f"✅ This PR now carries attempt {task.pick} (`{chosen.branch}`, {sha[:7]})."
    await run.finish(TaskStatus.DONE, text)
    return f"picked attempt {task.pick}"
