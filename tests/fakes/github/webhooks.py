"""Webhook payloads built from GitHub's published examples and the simulator's state.

`payload()` takes the first example of `@octokit/webhooks-examples` for (event, action) and
overwrites what a receiver acts on — repository, installation, sender, issue / pull request,
label, comment — so an app under test sees the same objects the REST API serves. An event
reports a change GitHub already made, so the change is applied to the simulator too: a
`labeled` label is added (`unlabeled` removed), a `comment_body` without `comment_id`
becomes a new comment (a review comment on `path`/`line` for review comment events), an
`edited` comment takes its new body (the old one goes to `changes.body.from`), and a
`deleted` comment is removed.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import threading
from typing import Any, Literal

from . import gitrepo, pullrefs
from .fixtures import WEBHOOK_EXAMPLES_JSON, require
from .records import Comment, Issue, NotFoundError, now
from .shapes import label_obj, node_id, rehost, repo_into, user_into
from .shapes_issues import comment_into, issue_into, pull_into, review_comment_into
from .state import State

_lock = threading.Lock()
_cache: dict[str, list[dict[str, Any]]] = {}


def examples(event: str) -> list[tuple[str | None, dict[str, Any]]]:
    """All (action, payload) examples GitHub publishes for `event`, unmodified copies."""
    with _lock:
        if not _cache:
            with require(WEBHOOK_EXAMPLES_JSON).open("rb") as f:
                for entry in json.load(f):
                    _cache[entry["name"]] = entry["examples"]
    if event not in _cache:
        raise KeyError(f"no webhook examples for event {event!r}")
    return [(e.get("action"), copy.deepcopy(e)) for e in _cache[event]]


@dataclasses.dataclass(frozen=True)
class _CommentArgs:
    """What the test said about the comment a payload carries."""

    sender: str
    comment_id: int | None
    body: str | None
    path: str | None
    line: int | None
    previous_body: str | None


def _new_comment(
    state: State,
    kind: Literal["issue", "review"],
    issue: Issue,
    given: _CommentArgs,
    example_comment: dict[str, Any],
) -> Comment:
    body = given.body or ""
    if kind == "issue":
        comment = state.add_comment(issue, body, given.sender)
        with state.lock:
            issue.updated_at = comment.created_at
        return comment
    if issue.pull is None:
        raise ValueError(f"{issue.full_name}#{issue.number} is not a pull request")
    path = given.path or str(example_comment.get("path") or "README.md")
    return add_review_comment(state, issue, body, given.sender, path, given.line or 1)


def _comment(
    state: State,
    kind: Literal["issue", "review"],
    issue: Issue | None,
    action: str | None,
    given: _CommentArgs,
    example_comment: dict[str, Any],
) -> tuple[Comment | None, str]:
    """The comment the payload describes, and its body before an edit. By id: the stored
    comment (an `edited` one takes `body`; for other actions `body` only shows in the
    payload), or one made up for the payload when the id is unknown. Given only a body: a
    new comment on the issue (GitHub stores it before it sends `created`). `deleted` takes
    the comment out of the simulator."""
    stored: Comment | None = None
    if given.comment_id is not None:
        try:
            stored = state.comment(given.comment_id, kind)
        except NotFoundError:
            if issue is None:
                return None, ""
            moment = now()
            made_up = Comment(
                given.comment_id,
                issue.full_name,
                issue.number,
                given.body or "",
                given.sender,
                moment,
                moment,
                kind,
                (given.path or example_comment.get("path")) if kind == "review" else None,
                (given.line or 1) if kind == "review" else None,
            )
            return made_up, given.previous_body or ""
    elif given.body is not None and issue is not None:
        stored = _new_comment(state, kind, issue, given, example_comment)
        if action == "edited":
            return stored, given.previous_body or ""
    if stored is None:
        return None, ""
    previous = stored.body if given.previous_body is None else given.previous_body
    found = stored
    with state.lock:
        if given.comment_id is not None and given.body is not None:
            if action == "edited":
                stored.body, stored.updated_at = given.body, now()
            else:
                found = dataclasses.replace(stored, body=given.body)
        if action == "deleted":
            state.comments.pop(stored.id, None)
    return found, previous


def add_review_comment(
    state: State, issue: Issue, body: str, user: str, path: str, line: int
) -> Comment:
    """A review comment on `line` (new side) of `path` at the pull request's head, with
    the `diff_hunk` GitHub stores for it."""
    assert issue.pull is not None
    pullrefs.sync(state, [issue])
    base = state.repo(issue.full_name)  # holds the head's commits too (refs/pull/<n>/head)
    head, base_sha = issue.pull.head_sha, issue.pull.base_sha
    hunk = gitrepo.diff_hunk(base.path, base_sha, head, path, line)
    return state.add_comment(issue, body, user, "review", path, line, head, hunk)


def _apply_label(state: State, issue: Issue, action: str | None, label: str) -> None:
    """The event reports a change GitHub already made: make it in the simulator too."""
    if action == "labeled":
        state.add_labels(issue, [label])
    elif action == "unlabeled":
        with state.lock:
            if label in issue.labels:
                issue.labels.remove(label)


def payload(
    state: State,
    event: str,
    action: str | None,
    full_name: str,
    *,
    sender: str,
    number: int | None = None,
    label: str | None = None,
    comment_body: str | None = None,
    comment_id: int | None = None,
    pull: bool = False,
    path: str | None = None,
    line: int | None = None,
    previous_body: str | None = None,
) -> dict[str, Any]:
    matching = [p for a, p in examples(event) if a == action]
    if not matching:
        raise KeyError(f"no webhook example for {event}.{action}")
    body = matching[0]
    repo = state.repo(full_name)
    if repo.installation_id is None:
        raise ValueError(f"the App is not installed on {full_name}: GitHub sends it nothing")
    body["repository"] = repo_into(body["repository"], repo, state)
    body["sender"] = user_into(body.get("sender"), state.user(sender), state)
    body["installation"] = {
        "id": repo.installation_id,
        "node_id": node_id("Installation", repo.installation_id),
    }
    for key in ("organization", "enterprise"):
        body.pop(key, None)
    issue: Issue | None = state.issue(full_name, number) if number is not None else None
    if issue is not None and label is not None:
        _apply_label(state, issue, action, label)
    if isinstance(body.get("comment"), dict):
        kind: Literal["issue", "review"] = (
            "review" if event == "pull_request_review_comment" else "issue"
        )
        given = _CommentArgs(sender, comment_id, comment_body, path, line, previous_body)
        found, previous = _comment(state, kind, issue, action, given, body["comment"])
        if found is not None:
            shape = review_comment_into if kind == "review" else comment_into
            body["comment"] = shape(body["comment"], found, state)
            if action == "edited" and isinstance(body.get("changes"), dict):
                body["changes"] = {"body": {"from": previous or ""}}
    if issue is not None and isinstance(body.get("issue"), dict):
        body["issue"] = issue_into(body["issue"], issue, state, as_pull=pull)
    if issue is not None and isinstance(body.get("pull_request"), dict):
        if issue.pull is None:
            raise ValueError(f"{full_name}#{number} is not a pull request")
        body["pull_request"] = pull_into(body["pull_request"], issue, state)
        if "number" in body:
            body["number"] = issue.number
    if label is not None:
        body["label"] = label_obj(repo, label, state, body.get("label"))
    result: dict[str, Any] = rehost(body, state.base_url)
    return result
