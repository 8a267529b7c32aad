"""Webhook payloads built from GitHub's published examples and the simulator's state.

`payload()` takes the first example of `@octokit/webhooks-examples` for (event, action) and
overwrites what a receiver acts on — repository, installation, sender, issue / pull request,
label, comment — so an app under test sees the same objects the REST API serves. An event
reports a change GitHub already made, so the change is applied to the simulator too: a
`labeled` label is added (`unlabeled` removed), and a `comment_body` without `comment_id`
becomes a new comment.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import threading
from typing import Any, Literal

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


def _comment(
    state: State,
    kind: Literal["issue", "review"],
    issue: Issue | None,
    comment_id: int | None,
    comment_body: str | None,
    sender: str,
    example_comment: dict[str, Any],
) -> Comment | None:
    """The comment the payload describes: from state by id; or, given only a body, a new
    comment added to the issue (GitHub stores it before it sends `created`)."""
    if comment_id is not None:
        try:
            found = state.comment(comment_id, kind)
        except NotFoundError:
            if issue is None:
                return None
            found = Comment(
                comment_id,
                issue.full_name,
                issue.number,
                comment_body or "",
                sender,
                now(),
                now(),
                kind,
                example_comment.get("path"),
                1,
                None,
            )
        if comment_body is not None:
            found = dataclasses.replace(found, body=comment_body)
        return found
    if comment_body is None or issue is None:
        return None
    head = issue.pull.head_sha if issue.pull else None
    path = example_comment.get("path") if kind == "review" else None
    return state.add_comment(issue, comment_body, sender, kind, path, 1 if path else None, head)


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
) -> dict[str, Any]:
    matching = [p for a, p in examples(event) if a == action]
    if not matching:
        raise KeyError(f"no webhook example for {event}.{action}")
    body = matching[0]
    repo = state.repo(full_name)
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
    if isinstance(body.get("comment"), dict):
        kind: Literal["issue", "review"] = (
            "review" if event == "pull_request_review_comment" else "issue"
        )
        found = _comment(state, kind, issue, comment_id, comment_body, sender, body["comment"])
        if found is not None:
            shape = review_comment_into if kind == "review" else comment_into
            body["comment"] = shape(body["comment"], found, state)
    result: dict[str, Any] = rehost(body, state.base_url)
    return result
