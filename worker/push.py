"""The publish phase: commit each publishable attempt on the host, push, open or update the PR.

The texts come decided from `report/outcome.py` (`Publication`); the GitHub writes are
`publish.py`'s; git runs on the host with a token that never enters a container. What this
leaves for later commands on the PR is saved first, so `/codex pick` and `/codex continue`
work as soon as the PR shows.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from worker import change, gitops, publish
from worker.attempt import Attempt
from worker.errors import TaskFailed
from worker.lifecycle import TaskRun
from worker.plan import Plan
from worker.report import outcome
from worker.runrecord import RunRecord
from worker.workspace import settled


async def closing_line(run: TaskRun, plan: Plan) -> str | None:
    """The PR body's last line: `Fixes #N`, kept across `/codex continue` runs."""
    if plan.base_copy:
        return outcome.fork_closing(run.task, plan)
    if plan.mode == "same_branch" and plan.pull_number is not None:
        record = await RunRecord.load(run.redis, run.task.repo, plan.pull_number)
        return record.closing if record else ""
    return None


async def publish_change(
    run: TaskRun,
    plan: Plan,
    attempts: list[Attempt],
    done: outcome.Publication,
    closing: str | None,
    checkout: Path,
    base: str,
) -> tuple[str, str]:
    """Push the attempts and put the winner on the PR; returns where the change is (a link
    or a branch) and the final status text."""
    task, settings, url = run.task, run.settings, plan.clone_url
    bot = settings.bot_name
    commits: dict[int, str] = {}
    for number, message in done.messages.items():
        tree = attempts[number - 1].change.tree
        assert tree is not None  # `Publication` holds messages only for attempts with a tree
        commits[number] = await change.commit(
            checkout, base, tree, message, author=f"{bot}[bot]",
            email=f"{settings.app_id}+{bot}[bot]@users.noreply.github.com",
        )  # fmt: skip
    for number, branch in done.attempt_branches.items():
        await gitops.push(checkout, url, await run.tokens.secret(), branch, rev=commits[number])
    chosen, best = done.chosen, attempts[done.winner - 1]
    if plan.mode == "same_branch":
        run.pushed = True  # a push to a person's PR branch is theirs to see: no rerun redoes it
        try:
            await gitops.push(checkout, url, await run.tokens.secret(), plan.push_branch,
                              rev=commits[done.winner], force=False)  # fmt: skip
        except gitops.GitError as error:
            raise TaskFailed(
                f"`{plan.push_branch}` moved while the agent worked, so nothing was pushed. "
                "Comment `/codex fix` again to work on the new head."
            ) from error
        assert plan.pull_number is not None
        number, link = plan.pull_number, f"`{plan.push_branch}`"
        if plan.owned:
            await publish.update_pull(run.github, task.repo, number, title=chosen.title,
                                      body=chosen.body)  # fmt: skip
    else:
        looking = asyncio.create_task(  # a rerun's PR is looked up while the push runs
            publish.find_open(run.github, task.repo, head=plan.push_branch, base=plan.pr_base)
        )
        try:
            if plan.base_copy:
                await gitops.push(checkout, url, await run.tokens.secret(), plan.base_copy,
                                  rev=base)  # fmt: skip
            await gitops.push(checkout, url, await run.tokens.secret(), plan.push_branch,
                              rev=commits[done.winner])  # fmt: skip
            pull = await publish.open_draft(
                run.github, task.repo, await looking, head=plan.push_branch, base=plan.pr_base,
                title=chosen.title, body=chosen.body,
            )  # fmt: skip
        finally:
            await settled(looking)
        number, link = pull.number, pull.url
        run.pushed = True  # the draft PR is open: a rerun would redo the work under it
    if plan.mode != "same_branch" or plan.owned:
        record = outcome.run_record(task, plan, best, done, closing)
        await record.save(run.redis, task.repo, number)
        await publish.set_labels(run.github, task.repo, number, chosen.labels)
    spent = outcome.took(run.elapsed(), best.worklog, settings.cost)
    return link, outcome.published(task, plan, best, link, chosen.body, spent)
