"""REST handlers for pull requests and their review comments.

Creating a pull request is validated against the bare repositories like GitHub does: both
branches must exist, the head must have commits the base lacks, and only one open pull
request may exist per head branch. `head` may name a fork's branch as "owner:branch".
"""

from __future__ import annotations

from datetime import datetime

from . import gitrepo, pullrefs
from .api_issues import bot, find_issue, since_param, text
from .errors import ApiError, custom, invalid
from .openapi import example
from .records import Issue, Repo, now
from .routing import Call, Reply, paginate
from .shapes_issues import pull_into, review_comment_into
from .state import State


def _pulls(state: State, repo: Repo) -> list[Issue]:
    with state.lock:
        return [
            i
            for (name, _), i in state.issues.items()
            if name == repo.full_name and i.pull is not None
        ]


def _head_of(issue: Issue) -> tuple[str, str]:
    """(head repository full name, head branch) of a pull request."""
    assert issue.pull is not None
    return issue.pull.head_repo or issue.full_name, issue.pull.head


def _open_for_head(
    state: State, repo: Repo, head: tuple[str, str], other_than: int = 0
) -> Issue | None:
    for issue in _pulls(state, repo):
        if issue.state == "open" and _head_of(issue) == head and issue.number != other_than:
            return issue
    return None


def _already_exists(head: tuple[str, str]) -> ApiError:
    owner = head[0].split("/")[0]
    return custom("PullRequest", f"A pull request already exists for {owner}:{head[1]}.")


def _head_ref(state: State, repo: Repo, head: str) -> tuple[Repo, str]:
    """The repository and branch `head` ("branch" or "owner:branch") names."""
    owner, _, ref = head.rpartition(":")
    found = pullrefs.fork_of(state, repo, owner or repo.owner)
    if found is None:
        raise invalid("PullRequest", "head")
    return found, ref


def find_pull(call: Call) -> Issue:
    issue = find_issue(call)
    if issue.pull is None:
        raise ApiError(404, "Not Found")
    return issue


def list_pulls(call: Call) -> Reply:
    wanted = call.query.get("state", "open")
    head = call.query.get("head")
    head_owner, _, head_ref = (head or "").rpartition(":")
    base = call.query.get("base")
    found = []
    for issue in sorted(_pulls(call.state, call.repo), key=lambda i: -i.number):
        assert issue.pull is not None
        if wanted != "all" and issue.state != wanted:
            continue
        head_repo, ref = _head_of(issue)
        if head and ((head_owner or call.repo.owner) != head_repo.split("/")[0] or head_ref != ref):
            continue
        if base is not None and issue.pull.base != base:
            continue
        found.append(issue)
    return paginate(
        call, [pull_into(example("pull-request-simple-items"), i, call.state) for i in found]
    )


def create_pull(call: Call) -> Reply:
    repo, state = call.repo, call.state
    fields = call.fields()
    title = text(fields, "title", "PullRequest", required=True)
    body = text(fields, "body", "PullRequest", required=False)
    head = text(fields, "head", "PullRequest", required=True)
    base = text(fields, "base", "PullRequest", required=True)
    assert title is not None and head is not None and base is not None
    head_repo, head_ref = _head_ref(state, repo, head)
    base_sha = gitrepo.branch_sha(repo.path, base)
    if base_sha is None:
        raise invalid("PullRequest", "base")
    head_sha = gitrepo.branch_sha(head_repo.path, head_ref)
    if head_sha is None:
        raise invalid("PullRequest", "head")
    fork = head_repo.full_name if head_repo is not repo else None
    with state.lock:
        if _open_for_head(state, repo, (head_repo.full_name, head_ref)) is not None:
            raise _already_exists((head_repo.full_name, head_ref))
        if fork is not None:  # the fork's commits join the base repo (GitHub shares objects)
            gitrepo.set_ref(repo.path, "refs/sim/pending-head", head_sha, head_repo.path)
        try:
            if gitrepo.commit_count(repo.path, base_sha, head_sha) == 0:
                shown = head_ref if fork is None else f"{head_repo.owner}:{head_ref}"
                raise custom("PullRequest", f"No commits between {base} and {shown}")
        finally:
            if fork is not None:
                gitrepo.run_git(repo.path, "update-ref", "-d", "refs/sim/pending-head")
        pull = state.new_pull_info(
            head_ref,
            base,
            bool(fields.get("draft")),
            head_sha,
            base_sha,
            head_repo=fork,
            maintainer_can_modify=fork is not None and bool(fields.get("maintainer_can_modify")),
        )
        issue = state.new_issue(repo, title, body, bot(call), pull=pull)
        pullrefs.sync(state, [issue])
    return Reply(201, pull_into(example("pull-request"), issue, state))


def get_pull(call: Call) -> Reply:
    return Reply(200, pull_into(example("pull-request"), find_pull(call), call.state))


def update_pull(call: Call) -> Reply:
    issue = find_pull(call)
    assert issue.pull is not None
    repo, state = call.repo, call.state
    fields = call.fields()
    title = text(fields, "title", "PullRequest", required=False)
    body = text(fields, "body", "PullRequest", required=False)
    new_state = fields.get("state")
    if new_state is not None and new_state not in ("open", "closed"):
        raise invalid("PullRequest", "state")
    base = text(fields, "base", "PullRequest", required=False)
    if base is not None and gitrepo.branch_sha(repo.path, base) is None:
        raise invalid("PullRequest", "base")
    with state.lock:
        reopening = new_state == "open" and issue.state == "closed"
        if reopening and _open_for_head(state, repo, _head_of(issue), other_than=issue.number):
            raise _already_exists(_head_of(issue))
        if title is not None:
            issue.title = title
        if "body" in fields:
            issue.body = body
        if base is not None:
            issue.pull.base = base
        if new_state is not None and new_state != issue.state:
            issue.state = new_state
            issue.closed_at = now() if new_state == "closed" else None
        issue.updated_at = now()
        pullrefs.sync(state, [issue])
    return Reply(200, pull_into(example("pull-request"), issue, state))


def list_review_comments(call: Call) -> Reply:
    issue = find_pull(call)
    since: datetime | None = since_param(call)
    with call.state.lock:
        found = sorted(
            (
                c
                for c in call.state.comments.values()
                if c.kind == "review"
                and (c.full_name, c.number) == (issue.full_name, issue.number)
                and (since is None or c.updated_at.replace(microsecond=0) >= since)
            ),
            key=lambda c: c.id,
        )
    template = "pull-request-review-comment-items"
    return paginate(call, [review_comment_into(example(template), c, call.state) for c in found])
