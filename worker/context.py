"""What a task works on and where its result goes, read from GitHub before anything runs.

An issue task works on the default branch and opens a draft PR from `codex/issue-N-slug`. A PR
task works on the PR's head: it pushes new commits to that branch when it lives in this
repository, and when it lives in a fork (where the app cannot push) it opens a draft PR whose
base is a copy of the fork's branch, so the diff shows only the proposed changes.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any, Literal, cast

from githubkit import GitHub
from redis.asyncio import Redis

from app import access
from app.github import read_file
from app.tasks import Task
from worker import prompt, repoconfig
from worker.publish import slug

MAX_COMMENTS = 30


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
    prompt: str
    config: repoconfig.RepoConfig
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


def run_key(repo: str, number: int) -> str:
    """What the last run on a PR left for `/codex continue` and `/codex pick`."""
    return f"codex:run:{repo}#{number}"


def lastrun_key(task: Task) -> str:
    return f"codex:lastrun:{task.thread}"


async def plan(redis: Redis, github: GitHub[Any], task: Task, defaults: dict[str, Any]) -> Plan:
    """What to do, or `repoconfig.ConfigError` before anything has started."""
    owner, name = task.repo.split("/", 1)
    repo = (await github.rest.repos.async_get(owner, name)).parsed_data
    text = await read_file(github, task.repo, repoconfig.PATH, repo.default_branch)
    config = repoconfig.parse(text, defaults)
    if task.kind == "issue":
        return await _issue_plan(redis, github, task, config, repo.clone_url, repo.default_branch)
    return await _pull_plan(redis, github, task, config, repo.clone_url)


async def _trusted(redis: Redis, github: GitHub[Any], repo: str, login: str) -> bool:
    return login.endswith("[bot]") is False and await access.may_start(redis, github, repo, login)


async def _quote(
    redis: Redis, github: GitHub[Any], repo: str, author: str, text: str, label: str
) -> prompt.Quote:
    trusted = await _trusted(redis, github, repo, author)
    return prompt.Quote(author=author, text=text, label=label, trusted=trusted)


async def _issue_plan(
    redis: Redis,
    github: GitHub[Any],
    task: Task,
    config: repoconfig.RepoConfig,
    clone_url: str,
    default_branch: str,
) -> Plan:
    owner, name = task.repo.split("/", 1)
    got, listed = await asyncio.gather(
        github.rest.issues.async_get(owner, name, task.number),
        github.rest.issues.async_list_comments(owner, name, task.number, per_page=MAX_COMMENTS),
    )
    issue = got.parsed_data
    author = issue.user.login if issue.user else "ghost"
    texts = [(author, issue.body or "", "issue")]
    for comment in cast("list[Any]", listed.parsed_data):
        login = comment.user.login if comment.user else "ghost"
        if not login.endswith("[bot]"):
            texts.append((login, comment.body or "", "comment"))
    quotes = list(
        await asyncio.gather(*(_quote(redis, github, task.repo, *text) for text in texts))
    )
    return Plan(
        title=issue.title,
        fetch_ref=default_branch,
        mode="new_pr",
        push_branch=f"codex/issue-{task.number}-{slug(issue.title)}",
        pr_base=default_branch,
        clone_url=clone_url,
        html_url=issue.html_url,
        prompt=prompt.task_prompt(
            prompt.Subject("issue", task.repo, task.number, issue.title), quotes, task.instructions
        ),
        config=config,
        base_ref=default_branch,
        attempts_prefix=f"codex/issue-{task.number}",
    )


async def _pull_plan(
    redis: Redis, github: GitHub[Any], task: Task, config: repoconfig.RepoConfig, clone_url: str
) -> Plan:
    owner, name = task.repo.split("/", 1)
    pull = (await github.rest.pulls.async_get(owner, name, task.number)).parsed_data
    author = pull.user.login if pull.user else "ghost"
    quotes = [await _quote(redis, github, task.repo, author, pull.body or "", "pull request")]
    since = await redis.get(lastrun_key(task))
    reviews = await github.rest.pulls.async_list_review_comments(
        owner, name, task.number, per_page=100
    )
    for comment in cast("list[Any]", reviews.parsed_data)[-MAX_COMMENTS:]:
        if since and comment.created_at.timestamp() < json.loads(since):
            continue
        login = comment.user.login if comment.user else "ghost"
        label = f"review comment on {comment.path}:{comment.line or comment.original_line}"
        quote = await _quote(redis, github, task.repo, login, comment.body, label)
        quotes.append(quote)
    if task.review_path:
        quotes.append(
            prompt.Quote(
                author=task.sender,
                text=f"The request is attached to {task.review_path} line {task.review_line}.",
                label="location",
                trusted=True,
            )
        )
    if task.action == "continue":
        quotes.append(await previous_run(redis, task))
    head_repo = pull.head.repo.full_name if pull.head.repo else None
    subject = prompt.Subject("pull request", task.repo, task.number, pull.title)
    text = prompt.task_prompt(subject, quotes, task.instructions)
    if head_repo == task.repo:
        return Plan(
            title=pull.title,
            fetch_ref=pull.head.ref,
            mode="same_branch",
            push_branch=pull.head.ref,
            pr_base=pull.base.ref,
            clone_url=clone_url,
            html_url=pull.html_url,
            prompt=text,
            config=config,
            base_ref=pull.base.ref,
            attempts_prefix=f"codex/pr-{task.number}",
            pull_number=task.number,
            owned=pull.head.ref.startswith("codex/"),
        )
    return Plan(
        title=f"Changes for #{task.number}: {pull.title}",
        fetch_ref=f"refs/pull/{task.number}/head",
        mode="fork_pr",
        push_branch=f"codex/pr-{task.number}-{slug(pull.title)}",
        pr_base=f"codex/pr-{task.number}-head",
        base_copy=f"codex/pr-{task.number}-head",
        clone_url=clone_url,
        html_url=pull.html_url,
        prompt=text,
        config=config,
        base_ref=pull.base.ref,
        attempts_prefix=f"codex/pr-{task.number}",
    )


async def previous_run(redis: Redis, task: Task) -> prompt.Quote:
    """For `/codex continue`: how the last run on this PR ended and what it did."""
    raw = await redis.get(run_key(task.repo, task.number))
    if raw is None:
        text = (
            "Continue the work on this branch. No record of the previous run is left; read the "
            "pull request description and the branch's changes to see where it stopped."
        )
    else:
        run = json.loads(raw)
        commands = "\n".join(f"- {c}" for c in run.get("commands", [])[-25:])
        text = (
            f"A previous run on this branch stopped before finishing: {run.get('stop_reason')}. "
            "Its changes are already committed on this branch; continue from there.\n\n"
            f"Its summary: {run.get('summary') or '(none)'}\n\n"
            f"Its last commands:\n{commands or '- (none)'}"
        )
    return prompt.Quote(author="codex", text=text, label="previous run", trusted=True)
