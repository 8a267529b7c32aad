"""A passing fault is waited out, not reported as a failure: GitHub answering 502 for longer
than githubkit's own retries last hands the task back to arq, which runs it again after
`RETRY_DELAY` (within the task's deadline), and the same issue ends with one draft PR."""

from __future__ import annotations

import uuid

import pytest

from tests.fakes.openai import finish, shell
from tests.harness import System, wait_for

pytestmark = pytest.mark.system


def test_a_github_outage_longer_than_its_retries_is_retried_through_the_queue(
    system: System,
) -> None:
    sim = system.github
    repo = f"octo-transient/r{uuid.uuid4().hex[:8]}"
    sim.create_repo(repo, {"version.txt": "1\n"})
    sim.set_permission(repo, "alice", "write")
    title = f"Bump the version {repo}"
    number = sim.create_issue(repo, title, "Please.", user="alice")
    system.openai.script(
        (title,),
        [[shell("echo 2 > version.txt")], [finish("Bumped the version.", ["cat version.txt"])]],
    )
    # githubkit tries a 5xx four times in all; five 502s outlast them, so the first try fails.
    sim.fail("POST", rf"/repos/{repo}/pulls$", status=502, times=5)
    assert system.label(repo, number) == 202

    def saying(text: str) -> str | None:
        bot = sim.bot_login
        mine = [str(c["body"]) for c in sim.comments(repo, number) if c["user"] == bot]
        return mine[0] if mine and text in mine[0] else None

    requeued = wait_for(lambda: saying("Re-queued"), 120, f"the re-queued status\n{system.logs()}")
    print(f"the person reads while it waits: {requeued.splitlines()[0]}")
    assert "GitHub answered 502" in requeued and "(try 2 of 3)" in requeued
    assert "The task failed" not in requeued
    pulls = wait_for(lambda: sim.pulls(repo), 120, f"a draft PR\n{system.logs()}")
    final = wait_for(lambda: saying("Draft PR ready"), 30, "the final status")
    assert len(pulls) == 1 and str(pulls[0]["number"]) in final
    assert "Resuming" not in final  # the final word replaces the passing phases
    print(
        f"PRs for the issue: {len(sim.pulls(repo))}; status comments: "
        f"{len([c for c in sim.comments(repo, number) if c['user'] == sim.bot_login])}"
    )
    assert len([c for c in sim.comments(repo, number) if c["user"] == sim.bot_login]) == 1
