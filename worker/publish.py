"""Publishing on GitHub: branch names and the draft PR.

Idempotent, because arq runs a job at least once: the PR is looked up by its head branch
before one is created, and a rerun updates it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from githubkit import GitHub, TokenAuthStrategy

if TYPE_CHECKING:
    from githubkit_schemas.latest.models import PullRequestSimple

Client = GitHub[TokenAuthStrategy]


def slug(title: str, limit: int = 40) -> str:
    words = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return words[:limit].rstrip("-") or "task"


@dataclass(frozen=True)
class PullRequest:
    number: int
    url: str


async def open_draft(
    github: Client, repo: str, *, head: str, base: str, title: str, body: str
) -> PullRequest:
    """Open a draft PR from `head`, or update the open one that already has that head."""
    owner, name = repo.split("/", 1)
    existing = await github.rest.pulls.async_list(
        owner, name, state="open", head=f"{owner}:{head}", base=base
    )
    # githubkit's generated `list` method shadows the builtin in its annotations.
    for pull in cast("list[PullRequestSimple]", existing.parsed_data):
        await github.rest.pulls.async_update(owner, name, pull.number, title=title, body=body)
        return PullRequest(pull.number, pull.html_url)
    created = await github.rest.pulls.async_create(
        owner, name, title=title, head=head, base=base, body=body, draft=True
    )
    return PullRequest(created.parsed_data.number, created.parsed_data.html_url)
