"""Publishing on GitHub: branch names and the draft PR.

Idempotent, because arq runs a job at least once: the PR is looked up by its head branch
before one is created, and a rerun updates it. Creating is create-or-find: githubkit retries a
POST that answered 5xx, so a PR that GitHub created before its answer was lost comes back as 422
"already exists" (or the 5xx itself); either way the open PR for the head is adopted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from githubkit import GitHub, TokenAuthStrategy
from githubkit.exception import RequestFailed

if TYPE_CHECKING:
    from githubkit_schemas.latest.models import PullRequestSimple

Client = GitHub[TokenAuthStrategy]
MARKER = re.compile(r"^\[(incomplete|failing validation)\] ")


def slug(title: str, limit: int = 40) -> str:
    words = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return words[:limit].rstrip("-") or "task"


@dataclass(frozen=True)
class PullRequest:
    number: int
    url: str


async def find_open(github: Client, repo: str, *, head: str, base: str) -> PullRequest | None:
    """The open PR from `head` into `base`, if a previous run of the task opened one."""
    owner, name = repo.split("/", 1)
    existing = await github.rest.pulls.async_list(
        owner, name, state="open", head=f"{owner}:{head}", base=base
    )
    # githubkit's generated `list` method shadows the builtin in its annotations.
    for pull in cast("list[PullRequestSimple]", existing.parsed_data):
        return PullRequest(pull.number, pull.html_url)
    return None


async def open_draft(
    github: Client,
    repo: str,
    existing: PullRequest | None,
    *,
    head: str,
    base: str,
    title: str,
    body: str,
) -> PullRequest:
    """Open a draft PR from `head`, or update `existing`, the open one that has that head
    (`find_open`, which may run while the branch is pushed)."""
    owner, name = repo.split("/", 1)
    if existing is not None:
        await github.rest.pulls.async_update(owner, name, existing.number, title=title, body=body)
        return existing
    try:
        created = await github.rest.pulls.async_create(
            owner, name, title=title, head=head, base=base, body=body, draft=True
        )
    except RequestFailed as error:
        code = error.response.status_code
        if code != 422 and code < 500:
            raise
        adopted = await find_open(github, repo, head=head, base=base)
        if adopted is None:
            raise
        await github.rest.pulls.async_update(owner, name, adopted.number, title=title, body=body)
        return adopted
    return PullRequest(created.parsed_data.number, created.parsed_data.html_url)


async def update_pull(github: Client, repo: str, number: int, *, title: str, body: str) -> None:
    owner, name = repo.split("/", 1)
    await github.rest.pulls.async_update(owner, name, number, title=title, body=body)


async def set_labels(github: Client, repo: str, number: int, labels: dict[str, bool]) -> None:
    """Add the labels marked True and remove those marked False (absent ones are fine)."""
    owner, name = repo.split("/", 1)
    if wanted := [label for label, on in labels.items() if on]:
        await github.rest.issues.async_add_labels(owner, name, number, labels=wanted)
    for label in (label for label, on in labels.items() if not on):
        try:
            await github.rest.issues.async_remove_label(owner, name, number, label)
        except RequestFailed as error:
            if error.response.status_code != 404:
                raise


def bare_title(title: str) -> str:
    """`title` without the markers `titled` adds."""
    while (match := MARKER.match(title)) is not None:
        title = title[match.end() :]
    return title


def titled(title: str, markers: list[str]) -> str:
    """`[incomplete] [failing validation] title`: the state a reviewer must see first."""
    return "".join(f"[{marker}] " for marker in markers) + bare_title(title)
