"""Dress GitHub's examples for issues, pull requests, comments and reactions.

Shared by the REST handlers and the webhook payload builder, so a webhook's `issue` and the
API's issue agree field for field. Pull request refs and shas are read from the bare repos
at the time of the call, like GitHub does after a push (see `pullrefs`).
"""

from __future__ import annotations

from typing import Any

from . import gitrepo, pullrefs
from .openapi import example
from .records import REACTIONS, Comment, Issue, Reaction, Repo
from .shapes import label_obj, node_id, repo_into, set_present, stamp, user_into
from .state import State


def _issue_urls(repo: Repo, number: int, state: State, pull: bool) -> dict[str, str]:
    api = f"{state.base_url}/repos/{repo.full_name}"
    kind = "pull" if pull else "issues"
    return {
        "url": f"{api}/issues/{number}",
        "repository_url": api,
        "labels_url": f"{api}/issues/{number}/labels{{/name}}",
        "comments_url": f"{api}/issues/{number}/comments",
        "events_url": f"{api}/issues/{number}/events",
        "timeline_url": f"{api}/issues/{number}/timeline",
        "html_url": f"{state.base_url}/{repo.full_name}/{kind}/{number}",
    }


def _comment_count(issue: Issue, state: State, kind: str) -> int:
    return sum(
        1
        for c in state.comments.values()
        if c.kind == kind and (c.full_name, c.number) == (issue.full_name, issue.number)
    )


def reactions_summary(state: State, repo: Repo, subject: str, url: str) -> dict[str, Any]:
    """The `reactions` rollup GitHub embeds in issues and comments, counted from state."""
    with state.lock:
        contents = [
            r.content
            for r in state.reactions
            if (r.full_name, r.subject) == (repo.full_name, subject)
        ]
    summary: dict[str, Any] = {"url": f"{url}/reactions", "total_count": len(contents)}
    summary.update({name: contents.count(name) for name in REACTIONS})
    return summary


def issue_into(
    template: dict[str, Any], issue: Issue, state: State, as_pull: bool = False
) -> dict[str, Any]:
    """An issue object; a pull request (or `as_pull`) gets the `pull_request` key."""
    repo = state.repo(issue.full_name)
    is_pull = issue.pull is not None or as_pull
    urls = _issue_urls(repo, issue.number, state, is_pull)
    for key, value in urls.items():
        if key in template or key in ("url", "html_url"):
            template[key] = value
    template.update(
        id=issue.id,
        node_id=node_id("Issue", issue.id),
        number=issue.number,
        title=issue.title,
        body=issue.body,
        state=issue.state,
        user=user_into(template.get("user"), state.user(issue.user), state),
        labels=[label_obj(repo, name, state) for name in issue.labels],
        locked=False,
        assignee=None,
        assignees=[],
        milestone=None,
        comments=_comment_count(issue, state, "issue"),
        author_association=state.author_association(repo, issue.user),
        active_lock_reason=None,
        reactions=reactions_summary(state, repo, f"issue:{issue.number}", urls["url"]),
    )
    set_present(
        template,
        state_reason=issue.state_reason,
        closed_by=None,
        pinned_comment=None,
        draft=issue.pull.draft if issue.pull else None,
    )
    if "draft" in template and template["draft"] is None:
        del template["draft"]
    stamp(template, "created_at", issue.created_at)
    stamp(template, "updated_at", issue.updated_at)
    template["closed_at"] = None
    stamp(template, "closed_at", issue.closed_at)
    if isinstance(template.get("repository"), dict):
        repo_into(template["repository"], repo, state)
    if is_pull:
        web = f"{state.base_url}/{repo.full_name}/pull/{issue.number}"
        template["pull_request"] = {
            "url": f"{state.base_url}/repos/{repo.full_name}/pulls/{issue.number}",
            "html_url": web,
            "diff_url": f"{web}.diff",
            "patch_url": f"{web}.patch",
            "merged_at": None,
        }
    else:
        template.pop("pull_request", None)
    return template


def comment_into(template: dict[str, Any], comment: Comment, state: State) -> dict[str, Any]:
    repo = state.repo(comment.full_name)
    issue = state.issue(comment.full_name, comment.number)
    kind = "pull" if issue.pull is not None else "issues"
    api = f"{state.base_url}/repos/{repo.full_name}"
    template.update(
        id=comment.id,
        node_id=node_id("IssueComment", comment.id),
        url=f"{api}/issues/comments/{comment.id}",
        html_url=f"{state.base_url}/{repo.full_name}/{kind}/{comment.number}"
        f"#issuecomment-{comment.id}",
        body=comment.body,
        user=user_into(template.get("user"), state.user(comment.user), state),
        issue_url=f"{api}/issues/{comment.number}",
        author_association=state.author_association(repo, comment.user),
        performed_via_github_app=None,
        reactions=reactions_summary(
            state, repo, f"issue_comment:{comment.id}", f"{api}/issues/comments/{comment.id}"
        ),
    )
    set_present(template, pin=None, minimized=None)
    stamp(template, "created_at", comment.created_at)
    stamp(template, "updated_at", comment.updated_at)
    return template


def review_comment_into(template: dict[str, Any], comment: Comment, state: State) -> dict[str, Any]:
    repo = state.repo(comment.full_name)
    api = f"{state.base_url}/repos/{repo.full_name}"
    html = f"{state.base_url}/{repo.full_name}/pull/{comment.number}#discussion_r{comment.id}"
    line = comment.line or 1
    template.update(
        id=comment.id,
        node_id=node_id("PullRequestReviewComment", comment.id),
        url=f"{api}/pulls/comments/{comment.id}",
        html_url=html,
        pull_request_url=f"{api}/pulls/{comment.number}",
        body=comment.body,
        path=comment.path or "",
        user=user_into(template.get("user"), state.user(comment.user), state),
        commit_id=comment.commit_id or "",
        original_commit_id=comment.commit_id or "",
        diff_hunk=comment.diff_hunk or f"@@ -{line},1 +{line},1 @@",
        author_association=state.author_association(repo, comment.user),
        _links={
            "self": {"href": f"{api}/pulls/comments/{comment.id}"},
            "html": {"href": html},
            "pull_request": {"href": f"{api}/pulls/{comment.number}"},
        },
        reactions=reactions_summary(
            state, repo, f"review_comment:{comment.id}", f"{api}/pulls/comments/{comment.id}"
        ),
        position=line,
        original_position=line,
        line=line,
        original_line=line,
        start_line=None,
        original_start_line=None,
        start_side=None,
        side="RIGHT",
        pull_request_review_id=comment.id,
        subject_type="line",
    )
    template.pop("in_reply_to_id", None)
    stamp(template, "created_at", comment.created_at)
    stamp(template, "updated_at", comment.updated_at)
    return template


def _branch_side(
    template: dict[str, Any], repo: Repo, ref: str, sha: str, state: State
) -> dict[str, Any]:
    template.update(label=f"{repo.owner}:{ref}", ref=ref, sha=sha)
    template["user"] = user_into(template.get("user"), state.user(repo.owner), state)
    template["repo"] = repo_into(template.get("repo") or example("full-repository"), repo, state)
    return template


def pull_into(template: dict[str, Any], issue: Issue, state: State) -> dict[str, Any]:
    """A pull request object (full, or the "simple" list shape — whichever `template` is)."""
    pull = issue.pull
    assert pull is not None
    repo = state.repo(issue.full_name)
    head_repo = pullrefs.head_repo(state, issue)
    pullrefs.sync(state, [issue])
    api = f"{state.base_url}/repos/{repo.full_name}"
    web = f"{state.base_url}/{repo.full_name}/pull/{issue.number}"
    template.update(
        url=f"{api}/pulls/{issue.number}",
        id=pull.id,
        node_id=node_id("PullRequest", pull.id),
        html_url=web,
        diff_url=f"{web}.diff",
        patch_url=f"{web}.patch",
        issue_url=f"{api}/issues/{issue.number}",
        commits_url=f"{api}/pulls/{issue.number}/commits",
        review_comments_url=f"{api}/pulls/{issue.number}/comments",
        review_comment_url=f"{api}/pulls/comments{{/number}}",
        comments_url=f"{api}/issues/{issue.number}/comments",
        statuses_url=f"{api}/statuses/{pull.head_sha}",
        number=issue.number,
        state=issue.state,
        locked=False,
        title=issue.title,
        user=user_into(template.get("user"), state.user(issue.user), state),
        body=issue.body,
        labels=[label_obj(repo, name, state) for name in issue.labels],
        milestone=None,
        active_lock_reason=None,
        merged_at=None,
        merge_commit_sha=None,
        assignee=None,
        assignees=[],
        requested_reviewers=[],
        requested_teams=[],
        head=_branch_side(template["head"], head_repo, pull.head, pull.head_sha, state),
        base=_branch_side(template["base"], repo, pull.base, pull.base_sha, state),
        _links={
            "self": {"href": f"{api}/pulls/{issue.number}"},
            "html": {"href": web},
            "issue": {"href": f"{api}/issues/{issue.number}"},
            "comments": {"href": f"{api}/issues/{issue.number}/comments"},
            "review_comments": {"href": f"{api}/pulls/{issue.number}/comments"},
            "review_comment": {"href": f"{api}/pulls/comments{{/number}}"},
            "commits": {"href": f"{api}/pulls/{issue.number}/commits"},
            "statuses": {"href": f"{api}/statuses/{pull.head_sha}"},
        },
        author_association=state.author_association(repo, issue.user),
        auto_merge=None,
        draft=pull.draft,
    )
    stamp(template, "created_at", issue.created_at)
    stamp(template, "updated_at", issue.updated_at)
    template["closed_at"] = None
    stamp(template, "closed_at", issue.closed_at)
    if "commits" in template:  # the full shape carries counts
        additions, deletions, files = gitrepo.diff_stats(repo.path, pull.base_sha, pull.head_sha)
        template.update(
            merged=pull.merged,
            mergeable=True,
            rebaseable=True,
            mergeable_state="draft" if pull.draft else "clean",
            merged_by=None,
            comments=_comment_count(issue, state, "issue"),
            review_comments=_comment_count(issue, state, "review"),
            maintainer_can_modify=pull.maintainer_can_modify,
            commits=gitrepo.commit_count(repo.path, pull.base_sha, pull.head_sha),
            additions=additions,
            deletions=deletions,
            changed_files=files,
        )
    return template


def reaction_obj(reaction: Reaction, state: State) -> dict[str, Any]:
    t = example("reaction")
    t.update(
        id=reaction.id,
        node_id=node_id("Reaction", reaction.id),
        user=user_into(t.get("user"), state.user(reaction.user), state),
        content=reaction.content,
    )
    stamp(t, "created_at", reaction.created_at)
    return t
