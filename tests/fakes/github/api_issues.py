"""REST handlers for issues (and pull requests seen as issues): comments, labels, reactions.

Writes made through the API are attributed to the App's bot user (`<slug>[bot]`), since the
only callers holding installation tokens are the App itself.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .errors import ApiError, custom, invalid
from .openapi import example
from .records import REACTIONS, Comment, Issue, NotFoundError, now
from .routing import Call, Reply, paginate
from .shapes import label_obj
from .shapes_issues import comment_into, issue_into, reaction_obj

MAX_BODY = 65536


def text(fields: dict[str, Any], name: str, resource: str, required: bool) -> str | None:
    """A string field, validated like GitHub (type, presence, 65536-character cap)."""
    if name not in fields or fields[name] is None:
        if required:
            raise invalid(resource, name, "missing_field")
        return None
    value = fields[name]
    if not isinstance(value, str):
        raise invalid(resource, name)
    if len(value) > MAX_BODY:
        raise custom(resource, f"{name} is too long (maximum is {MAX_BODY} characters)")
    return value


def find_issue(call: Call, index: int = 0) -> Issue:
    try:
        return call.state.issue(call.repo.full_name, call.number(index))
    except NotFoundError:
        raise ApiError(404, "Not Found") from None


def find_comment(call: Call, kind: str = "issue") -> Comment:
    try:
        found = call.state.comment(call.number(), kind)
    except NotFoundError:
        raise ApiError(404, "Not Found") from None
    if found.full_name != call.repo.full_name:
        raise ApiError(404, "Not Found")
    return found


def since_param(call: Call) -> datetime | None:
    """`?since=` (ISO 8601): GitHub lists what was updated at or after it, to the second."""
    raw = call.query.get("since")
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise invalid("Issue", "since") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def bot(call: Call) -> str:
    return call.state.app.bot_login


def get_issue(call: Call) -> Reply:
    return Reply(200, issue_into(example("issue"), find_issue(call), call.state))


def update_issue(call: Call) -> Reply:
    issue = find_issue(call)
    fields = call.fields()
    title = text(fields, "title", "Issue", required=False)
    body = text(fields, "body", "Issue", required=False)
    state_value = fields.get("state")
    if state_value is not None and state_value not in ("open", "closed"):
        raise invalid("Issue", "state")
    labels = fields.get("labels")
    with call.state.lock:
        if title is not None:
            issue.title = title
        if "body" in fields:
            issue.body = body
        if state_value is not None and state_value != issue.state:
            issue.state = state_value
            issue.closed_at = now() if state_value == "closed" else None
            issue.state_reason = fields.get("state_reason") or (
                "completed" if state_value == "closed" else "reopened"
            )
        if labels is not None:
            issue.labels = []
            call.state.add_labels(issue, _label_names(labels))
        issue.updated_at = now()
    return Reply(200, issue_into(example("issue"), issue, call.state))


def list_comments(call: Call) -> Reply:
    issue = find_issue(call)
    since = since_param(call)
    with call.state.lock:
        found = sorted(
            (
                c
                for c in call.state.comments.values()
                if c.kind == "issue"
                and (c.full_name, c.number) == (issue.full_name, issue.number)
                and (since is None or c.updated_at.replace(microsecond=0) >= since)
            ),
            key=lambda c: c.id,
        )
    return paginate(call, [comment_into(example("issue-comment"), c, call.state) for c in found])


def create_comment(call: Call) -> Reply:
    issue = find_issue(call)
    body = text(call.fields(), "body", "IssueComment", required=True)
    assert body is not None
    comment = call.state.add_comment(issue, body, bot(call))
    with call.state.lock:
        issue.updated_at = comment.created_at
    return Reply(201, comment_into(example("issue-comment"), comment, call.state))


def get_comment(call: Call) -> Reply:
    return Reply(200, comment_into(example("issue-comment"), find_comment(call), call.state))


def update_comment(call: Call) -> Reply:
    comment = find_comment(call)
    body = text(call.fields(), "body", "IssueComment", required=True)
    assert body is not None
    with call.state.lock:
        comment.history.append(comment.body)
        comment.body = body
        comment.updated_at = now()
    return Reply(200, comment_into(example("issue-comment"), comment, call.state))


def delete_comment(call: Call) -> Reply:
    comment = find_comment(call)
    with call.state.lock:
        del call.state.comments[comment.id]
    return Reply(204)


def _react(call: Call, subject: str) -> Reply:
    content = call.fields().get("content")
    if content not in REACTIONS:
        raise invalid("Reaction", "content")
    reaction, created = call.state.react(call.repo, subject, content, bot(call))
    return Reply(201 if created else 200, reaction_obj(reaction, call.state))


def react_issue(call: Call) -> Reply:
    return _react(call, f"issue:{find_issue(call).number}")


def react_issue_comment(call: Call) -> Reply:
    return _react(call, f"issue_comment:{find_comment(call).id}")


def react_review_comment(call: Call) -> Reply:
    return _react(call, f"review_comment:{find_comment(call, 'review').id}")


def _label_names(raw: Any) -> list[str]:
    items = raw.get("labels") if isinstance(raw, dict) else raw
    if not isinstance(items, list):
        raise invalid("Label", "labels")
    names = []
    for item in items:
        name = item.get("name") if isinstance(item, dict) else item
        if not isinstance(name, str) or not name:
            raise invalid("Label", "name")
        names.append(name)
    return names


def _labels_reply(call: Call, issue: Issue) -> Reply:
    return Reply(200, [label_obj(call.repo, n, call.state) for n in issue.labels])


def add_labels(call: Call) -> Reply:
    issue = find_issue(call)
    call.state.add_labels(issue, _label_names(call.body))
    return _labels_reply(call, issue)


def remove_label(call: Call) -> Reply:
    issue = find_issue(call)
    name = call.args[1]
    with call.state.lock:
        if name not in issue.labels:
            raise ApiError(404, "Label does not exist")
        issue.labels.remove(name)
        issue.updated_at = now()
    return _labels_reply(call, issue)
