"""The status comment as `StatusReporter` edits it, on real Redis and the GitHub simulator over
HTTP: one comment, phases in order however fast they come, step counts throttled, a GitHub
hiccup on a passing phase never raised, a new try saying so."""

from __future__ import annotations

import asyncio
import uuid

from githubkit import GitHub, TokenAuthStrategy

from app import access, queue, status
from app.tasks import Task, TaskStatus
from tests.fakes.github import GitHubSim
from tests.harness import queue_settings
from worker.progress import StatusReporter
from worker.redact import Redactor


def scenario(redis_url: str, github: GitHubSim) -> Task:
    """A repository and issue of its own, with a write-access token for them."""
    repo = f"octo-progress/r{uuid.uuid4().hex[:8]}"
    github.create_repo(repo, {"README.md": "hi\n"})
    number = github.create_issue(repo, "Progress", "Show it.", user="alice")
    return Task(repo=repo, number=number, installation_id=github.installation_id("octo-progress"),
                sender="alice", trigger=f"label:{uuid.uuid4().hex}",
                delivery_id="d-progress")  # fmt: skip


def reporter_run(redis_url: str, github: GitHubSim, task: Task, steps: object, **kw: float) -> None:
    settings = queue_settings(redis_url.replace("/0", "/8"))

    async def run() -> None:
        redis = await queue.connect(settings)
        client = GitHub(TokenAuthStrategy(github.issue_token(task.repo)), base_url=github.url)
        try:
            reporter = StatusReporter(
                redis,
                client,
                task,
                Redactor(["sk-secret-1"]),
                **kw,  # type: ignore[arg-type]
            )
            await steps(reporter)  # type: ignore[operator]
        finally:
            await redis.aclose()

    asyncio.run(run())


def bodies(github: GitHubSim, task: Task) -> list[str]:
    return [str(c["body"]) for c in github.comments(task.repo, task.number)]


def test_phases_shown_in_a_burst_end_on_the_last_one_in_one_comment(
    redis_url: str, github: GitHubSim
) -> None:
    task = scenario(redis_url, github)

    async def steps(reporter: StatusReporter) -> None:
        for n in range(12):
            reporter.soon(TaskStatus.WORKING, f"🛠️ Working: phase {n}, token sk-secret-1.")
        await reporter.final(TaskStatus.DONE, "✅ Done.")

    reporter_run(redis_url, github, task, steps)
    shown = bodies(github, task)
    assert len(shown) == 1, shown
    assert shown[0].startswith("✅ Done.")


def test_steps_are_throttled_and_a_secret_never_reaches_the_comment(
    redis_url: str, github: GitHubSim
) -> None:
    task = scenario(redis_url, github)
    seen: list[str] = []

    async def steps(reporter: StatusReporter) -> None:
        reporter.soon(TaskStatus.WORKING, "🛠️ Working: sk-secret-1 in a command.")
        await reporter.settle()
        seen.append(bodies(github, task)[0])
        for step in range(1, 40):
            reporter.step(1, step, attempts=1, max_steps=40)
        await reporter.settle()
        seen.append(bodies(github, task)[0])

    reporter_run(redis_url, github, task, steps, every=3600)
    assert "sk-secret-1" not in seen[0] and "Working" in seen[0]
    assert "step" not in seen[1], "no step count within `every` of the last edit"


def test_a_github_hiccup_on_a_passing_phase_is_not_raised(
    redis_url: str, github: GitHubSim
) -> None:
    task = scenario(redis_url, github)
    github.fail("POST", rf"/repos/{task.repo}/issues/{task.number}/comments$", 403, times=1)

    async def steps(reporter: StatusReporter) -> None:
        await reporter.show(TaskStatus.WORKING, "🛠️ Working.")  # GitHub answers 403
        await reporter.final(TaskStatus.DONE, "✅ Done.")

    reporter_run(redis_url, github, task, steps)
    assert [b.splitlines()[0] for b in bodies(github, task)] == ["✅ Done."]


def test_a_new_try_says_so_until_the_final_word(redis_url: str, github: GitHubSim) -> None:
    task = scenario(redis_url, github)
    seen: list[str] = []

    async def steps(reporter: StatusReporter) -> None:
        await reporter.show(TaskStatus.PREPARING, "⏳ Preparing.")
        seen.append(bodies(github, task)[0])
        await reporter.final(TaskStatus.DONE, "✅ Done.")
        seen.append(bodies(github, task)[0])

    reporter_run(redis_url, github, task, steps, try_number=2, max_tries=3)
    assert seen[0].startswith("🔁 Resuming: try 2 of 3.\n\n⏳ Preparing.")
    assert seen[1].startswith("✅ Done.")


def test_a_task_refused_after_its_status_comment_was_posted_says_it_will_not_run(
    redis_url: str, github: GitHubSim
) -> None:
    """The worker's fresher role check refuses a task whose status comment already says it is
    queued (or re-queued after a try): that comment must not promise a run that never comes.
    A task refused before it had one still gets none (the refusal is its own reply)."""
    task = scenario(redis_url, github)
    quiet = scenario(redis_url, github)
    settings = queue_settings(redis_url.replace("/0", "/8"))

    async def run() -> None:
        redis = await queue.connect(settings)
        try:
            for each in (task, quiet):
                client = GitHub(
                    TokenAuthStrategy(github.issue_token(each.repo)), base_url=github.url
                )
                if each is task:
                    await status.show(
                        redis, client, each, TaskStatus.QUEUED, "⏳ Re-queued: try 2."
                    )
                await access.refuse(redis, client, each, queued=False)
        finally:
            await redis.aclose()

    asyncio.run(run())
    comments = bodies(github, task)
    assert len(comments) == 2, comments
    assert comments[0].startswith("🚫 Not started: only people with write access"), comments[0]
    assert "@alice does not have it" in comments[0] and "Re-queued" not in comments[0]
    assert comments[1].startswith("Thanks, @alice! Only people with write access")
    assert [c[:30] for c in bodies(github, quiet)] == ["Thanks, @alice! Only people wi"]
