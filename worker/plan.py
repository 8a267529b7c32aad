"""What a task works on and where its result goes, read from GitHub before anything runs.

An issue task works on the default branch and opens a draft PR from `codex/issue-N-slug`. A PR
task works on the PR's head: it pushes new commits to that branch when it lives in this
repository, and when it lives in a fork (where the app cannot push) it opens a draft PR whose
base is a copy of the fork's branch, so the diff shows only the proposed changes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, cast
from urllib.parse import parse_qs, urlsplit

from githubkit import GitHub, Response
from redis.asyncio import Redis

from app import access, keys
from app.github import CONFIG_PATH, read_file
from app.tasks import Task
from worker import repoconfig
from worker.agent import prompt
from worker.publish import slug
from worker.runrecord import RunRecord

if TYPE_CHECKING:
    from githubkit_schemas.latest.models import PullRequest

MAX_COMMENTS = 30
"""The newest comments of each kind that the prompt quotes (before its size budget)."""
PER_PAGE = 100


@dataclass(frozen=True)
class Plan:
    title: str
    fetch_ref: str
    """What to check out: a branch name or `refs/pull/N/head`."""
    mode: Literal["new_pr", "same_branch", "fork_pr"]
    push_branch: str
    pr_base: str
    """The base branch of the draft PR (new_pr, fork_pr)."""
    clone_url: str
    html_url: str
    config: repoconfig.RepoConfig
    about: str
    """The issue's or PR's own title."""
    author: str
    """Who opened the issue or PR."""
    body: str
    """Its description, as written (the prompt marks it untrusted when its author is)."""
    base_ref: str = "main"
    """The branch AGENTS.md is read from: the default branch, or the PR's base (never a
    PR's head, which may be a fork)."""
    attempts_prefix: str = "codex/task"
    """Best-of-N: attempt K is pushed to `<prefix>-attempt-K`."""
    pull_number: int | None = None
    """same_branch: the PR the push lands on."""
    owned: bool = False
    """same_branch: the PR's branch is one this app made (`codex/...`), so its title, body and
    labels are the app's to update."""
    base_copy: str | None = None
    """fork_pr: the branch in this repository that holds a copy of the fork's head."""


async def plan(github: GitHub[Any], task: Task, defaults: dict[str, Any]) -> Plan:
    """What to do, or `repoconfig.ConfigError` before anything has started: one round of
    GitHub reads (the repository, its config, the issue or PR), so the sandbox can start
    while `prompt_for` reads the rest."""
    owner, name = task.repo.split("/", 1)
    get_item: Awaitable[Any] = (
        github.rest.issues.async_get(owner, name, task.number)
        if task.kind == "issue"
        else github.rest.pulls.async_get(owner, name, task.number)
    )
    got_repo, text, got_item = await asyncio.gather(
        github.rest.repos.async_get(owner, name),
        read_file(github, task.repo, CONFIG_PATH),
        get_item,
    )
    repo, item = got_repo.parsed_data, got_item.parsed_data
    config = repoconfig.parse(text, defaults)
    author = item.user.login if item.user else "ghost"
    common = {"clone_url": repo.clone_url, "html_url": item.html_url, "config": config,
              "about": item.title, "author": author, "body": item.body or ""}  # fmt: skip
    if task.kind == "issue":
        return Plan(
            title=item.title,
            fetch_ref=repo.default_branch,
            mode="new_pr",
            push_branch=f"codex/issue-{task.number}-{slug(item.title)}",
            pr_base=repo.default_branch,
            base_ref=repo.default_branch,
            attempts_prefix=f"codex/issue-{task.number}",
            **common,
        )
    pull = cast("PullRequest", item)
    head_repo = pull.head.repo.full_name if pull.head.repo else None
    if head_repo == task.repo:
        return Plan(
            title=pull.title,
            fetch_ref=pull.head.ref,
            mode="same_branch",
            push_branch=pull.head.ref,
            pr_base=pull.base.ref,
            base_ref=pull.base.ref,
            attempts_prefix=f"codex/pr-{task.number}",
            pull_number=task.number,
            owned=pull.head.ref.startswith("codex/"),
            **common,
        )
    return Plan(
        title=f"Changes for #{task.number}: {pull.title}",
        fetch_ref=f"refs/pull/{task.number}/head",
        mode="fork_pr",
        push_branch=f"codex/pr-{task.number}-{slug(pull.title)}",
        pr_base=f"codex/pr-{task.number}-head",
        base_copy=f"codex/pr-{task.number}-head",
        base_ref=pull.base.ref,
        attempts_prefix=f"codex/pr-{task.number}",
        **common,
    )


def _page_number(link: dict[str, str] | None) -> int:
    if link is None:
        return 1
    page = parse_qs(urlsplit(link.get("url", "")).query).get("page", ["1"])[0]
    return int(page) if page.isdigit() else 1


async def newest(list_page: Callable[[int], Awaitable[Response[Any]]], count: int) -> list[Any]:
    """The last `count` items of a GitHub list, which GitHub returns oldest first.

    Neither comment list can be asked for newest first (issue comments have no `direction`), so
    the first page's Link header says which page is last; that page is read, and the one before
    it when the last holds fewer than `count`: at most three requests on any thread."""
    first = await list_page(1)
    items = list(first.parsed_data)
    last = _page_number(first.raw_response.links.get("last"))
    if last > 1:
        tail = list((await list_page(last)).parsed_data)
        if len(tail) < count:
            before = items if last == 2 else list((await list_page(last - 1)).parsed_data)
            tail = before + tail
        items = tail
    return items[-count:]


async def _trusted(redis: Redis, github: GitHub[Any], repo: str, login: str) -> bool:
    return login.endswith("[bot]") is False and await access.may_start(redis, github, repo, login)


async def _quote(
    redis: Redis, github: GitHub[Any], repo: str, author: str, text: str, label: str
) -> prompt.Quote:
    trusted = await _trusted(redis, github, repo, author)
    return prompt.Quote(author=author, text=text, label=label, trusted=trusted)


async def prompt_for(redis: Redis, github: GitHub[Any], task: Task, plan: Plan) -> str:
    """The task as the model reads it: the issue and its comments, or the PR, its review
    comments since the last run and the line commented on; untrusted authors marked."""
    owner, name = task.repo.split("/", 1)
    if task.kind == "issue":
        listed = await newest(
            lambda page: github.rest.issues.async_list_comments(
                owner, name, task.number, per_page=PER_PAGE, page=page
            ),
            MAX_COMMENTS,
        )
        texts = [(plan.author, plan.body, "issue")]
        for comment in listed:
            login = comment.user.login if comment.user else "ghost"
            if not login.endswith("[bot]"):
                texts.append((login, comment.body or "", "comment"))
        kind = "issue"
    else:
        texts = [(plan.author, plan.body, "pull request")]
        since = await redis.get(keys.lastrun_key(task.thread))
        reviews = await newest(
            lambda page: github.rest.pulls.async_list_review_comments(
                owner, name, task.number, per_page=PER_PAGE, page=page
            ),
            MAX_COMMENTS,
        )
        for comment in reviews:
            if since and comment.created_at.timestamp() < json.loads(since):
                continue
            login = comment.user.login if comment.user else "ghost"
            label = f"review comment on {comment.path}:{comment.line or comment.original_line}"
            texts.append((login, comment.body, label))
        kind = "pull request"
    quotes = list(
        await asyncio.gather(*(_quote(redis, github, task.repo, *text) for text in texts))
    )
    quotes[0] = replace(quotes[0], pinned=True)  # the issue or PR itself: what the task is
    if task.review_path:
        quotes.append(
            prompt.Quote(
                author=task.sender,
                text=f"The request is attached to {task.review_path} line {task.review_line}.",
                label="location",
                trusted=True,
                pinned=True,
            )
        )
    if task.action == "continue":
        quotes.append(await previous_run(redis, task))
    subject = prompt.Subject(kind, task.repo, task.number, plan.about)
    return prompt.task_prompt(subject, quotes, task.instructions)


async def previous_run(redis: Redis, task: Task) -> prompt.Quote:
    """For `/codex continue`: how the last run on this PR ended and what it did."""
    run = await RunRecord.load(redis, task.repo, task.number)
    if run is None:
        text = (
            "Continue the work on this branch. No record of the previous run is left; read the "
            "pull request description and the branch's changes to see where it stopped."
        )
    else:
        commands = "\n".join(f"- {c}" for c in run.commands[-25:])
        text = (
            f"A previous run on this branch stopped before finishing: {run.stop_reason}. "
            "Its changes are already committed on this branch; continue from there.\n\n"
            f"Its summary: {run.summary or '(none)'}\n\n"
            f"Its last commands:\n{commands or '- (none)'}"
        )
    return prompt.Quote(author="codex", text=text, label="previous run", trusted=True, pinned=True)
