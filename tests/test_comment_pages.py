"""The prompt quotes a thread's newest comments, which GitHub lists last: read from the end."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from githubkit import AppAuthStrategy, GitHub
from githubkit.cache import MemCacheStrategy

from tests.fakes.github import GitHubSim
from worker.plan import MAX_COMMENTS, PER_PAGE, newest

REPO = "octo/pages"


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[GitHubSim]:
    with GitHubSim(tmp_path / "github") as running:
        running.create_repo(REPO, {"README.md": "# pages\n"})
        yield running


def client(sim: GitHubSim) -> GitHub[Any]:
    app = GitHub(AppAuthStrategy(sim.app_id, sim.private_key_pem), base_url=sim.url,
                 cache_strategy=MemCacheStrategy(), auto_retry=False, timeout=10)  # fmt: skip
    auth = app.auth.as_installation(
        sim.installation_id("octo"), repositories=["pages"], permissions={"issues": "read"}
    )
    return app.with_auth(auth)


@pytest.mark.parametrize("count", [0, 7, PER_PAGE, PER_PAGE + 5, 2 * PER_PAGE + 29, 250])
def test_the_newest_comments_are_read_in_order_in_at_most_three_requests(
    sim: GitHubSim, count: int
) -> None:
    number = sim.create_issue(REPO, "Busy thread", "Body.", user="alice")
    for k in range(count):
        sim.add_comment(REPO, number, f"comment {k}", "bob")
    github = client(sim)
    before = len(sim.requests)

    async def read() -> list[Any]:
        return await newest(
            lambda page: github.rest.issues.async_list_comments(
                "octo", "pages", number, per_page=PER_PAGE, page=page
            ),
            MAX_COMMENTS,
        )

    got = [comment.body for comment in asyncio.run(read())]

    assert got == [f"comment {k}" for k in range(max(0, count - MAX_COMMENTS), count)]
    listed = [r for r in sim.requests[before:] if r.path.endswith(f"/{number}/comments")]
    assert 1 <= len(listed) <= 3
