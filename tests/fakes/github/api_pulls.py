"""REST handlers for pull requests and their review comments.

Creating a pull request is validated against the bare repository like GitHub does: both
branches must exist, the head must have commits the base lacks, and only one open pull
request may exist per head branch.
"""

from __future__ import annotations

from . import gitrepo
from .api_issues import bot, find_issue, text
from .errors import ApiError, custom, invalid
from .openapi import example
from .records import Issue, Repo, now
from .routing import Call, Reply, paginate
from .shapes_issues import pull_into, refresh_shas, review_comment_into
from .state import State


def _pulls(state: State, repo: Repo) -> list[Issue]:
    with state.lock:
        return [
            i
            for (name, _), i in state.issues.items()
            if name == repo.full_name and i.pull is not None
        ]


def _open_for_head(state: State, repo: Repo, head: str, other_than: int = 0) -> Issue | None:
    for issue in _pulls(state, repo):
        assert issue.pull is not None
        if issue.state == "open" and issue.pull.head == head and issue.number != other_than:
            return issue
    return None


def _head_ref(repo: Repo, head: str) -> str:
    owner, _, ref = head.rpartition(":")
    if owner and owner != repo.owner:
        raise invalid("PullRequest", "head")  # forks are not simulated
    return ref


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
        if head and (head_owner not in ("", call.repo.owner) or head_ref != issue.pull.head):
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
    head_ref = _head_ref(repo, head)
    base_sha = gitrepo.branch_sha(repo.path, base)
    if base_sha is None:
        raise invalid("PullRequest", "base")
    head_sha = gitrepo.branch_sha(repo.path, head_ref)
    if head_sha is None:
        raise invalid("PullRequest", "head")
    with state.lock:
        if _open_for_head(state, repo, head_ref) is not None:
            raise custom(
                "PullRequest", f"A pull request already exists for {repo.owner}:{head_ref}."
            )
        if gitrepo.commit_count(repo.path, base_sha, head_sha) == 0:
            raise custom("PullRequest", f"No commits between {base} and {head_ref}")
        pull = state.new_pull_info(head_ref, base, bool(fields.get("draft")), head_sha, base_sha)
        issue = state.new_issue(repo, title, body, bot(call), pull=pull)
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
        if reopening and _open_for_head(state, repo, issue.pull.head, other_than=issue.number):
            raise custom(
                "PullRequest", f"A pull request already exists for {repo.owner}:{issue.pull.head}."
            )
        if title is not None:
            issue.title = title
        if "body" in fields:
            issue.body = body
        if base is not None:
            issue.pull.base = base
            refresh_shas(issue, repo)
        if new_state is not None and new_state != issue.state:
            issue.state = new_state
            issue.closed_at = now() if new_state == "closed" else None
        issue.updated_at = now()
    return Reply(200, pull_into(example("pull-request"), issue, state))


def list_review_comments(call: Call) -> Reply:
    issue = find_pull(call)
    with call.state.lock:
        found = sorted(
            (
                c
                for c in call.state.comments.values()
                if c.kind == "review" and (c.full_name, c.number) == (issue.full_name, issue.number)
            ),
            key=lambda c: c.id,
        )
    template = "pull-request-review-comment-items"
    return paginate(call, [review_comment_into(example(template), c, call.state) for c in found])
