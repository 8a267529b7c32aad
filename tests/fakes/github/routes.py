"""The REST endpoints the simulator serves, in one table.

Each line: method, path (GitHub's docs notation), the auth it needs, handler. "none" needs no
credentials; "jwt" means
the App's JWT; "token" any live installation token; "<perm>:<level>" an installation token
covering the repository with that permission (alternatives separated by "|").
"""

from __future__ import annotations

from . import api_app, api_issues, api_manifests, api_pulls, api_repos
from .routing import Route, route

R = "/repos/{owner}/{repo}"
ISSUES_READ = "issues|pull_requests:read"
ISSUES_WRITE = "issues|pull_requests:write"

ROUTES: list[Route] = [
    route("GET", "/app", "jwt", api_app.get_app),
    route("POST", "/app-manifests/{code}/conversions", "none", api_manifests.convert),
    route("GET", "/app/installations/{id}", "jwt", api_app.get_installation),
    route("POST", "/app/installations/{id}/access_tokens", "jwt", api_app.create_token),
    route("DELETE", "/installation/token", "token", api_app.revoke_token),
    route("GET", f"{R}/installation", "jwt", api_app.get_repo_installation),
    route("GET", R, "metadata:read", api_repos.get_repo),
    route(
        "GET", f"{R}/collaborators/{{user}}/permission", "metadata:read", api_repos.get_permission
    ),
    route("GET", f"{R}/contents", "contents:read", api_repos.get_contents),
    route("GET", f"{R}/contents/{{path+}}", "contents:read", api_repos.get_contents),
    route("GET", f"{R}/git/ref/{{ref+}}", "contents:read", api_repos.get_ref),
    route("GET", f"{R}/branches/{{branch+}}", "contents:read", api_repos.get_branch),
    route("GET", f"{R}/issues/{{n}}", ISSUES_READ, api_issues.get_issue),
    route("PATCH", f"{R}/issues/{{n}}", ISSUES_WRITE, api_issues.update_issue),
    route("GET", f"{R}/issues/{{n}}/comments", ISSUES_READ, api_issues.list_comments),
    route("POST", f"{R}/issues/{{n}}/comments", ISSUES_WRITE, api_issues.create_comment),
    route("GET", f"{R}/issues/comments/{{id}}", ISSUES_READ, api_issues.get_comment),
    route("PATCH", f"{R}/issues/comments/{{id}}", ISSUES_WRITE, api_issues.update_comment),
    route("DELETE", f"{R}/issues/comments/{{id}}", ISSUES_WRITE, api_issues.delete_comment),
    route("POST", f"{R}/issues/{{n}}/reactions", ISSUES_WRITE, api_issues.react_issue),
    route(
        "POST",
        f"{R}/issues/comments/{{id}}/reactions",
        ISSUES_WRITE,
        api_issues.react_issue_comment,
    ),
    route(
        "POST",
        f"{R}/pulls/comments/{{id}}/reactions",
        "pull_requests:write",
        api_issues.react_review_comment,
    ),
    route("POST", f"{R}/issues/{{n}}/labels", ISSUES_WRITE, api_issues.add_labels),
    route("DELETE", f"{R}/issues/{{n}}/labels/{{name}}", ISSUES_WRITE, api_issues.remove_label),
    route("GET", f"{R}/pulls", "pull_requests:read", api_pulls.list_pulls),
    route("POST", f"{R}/pulls", "pull_requests:write", api_pulls.create_pull),
    route("GET", f"{R}/pulls/{{n}}", "pull_requests:read", api_pulls.get_pull),
    route("PATCH", f"{R}/pulls/{{n}}", "pull_requests:write", api_pulls.update_pull),
    route("GET", f"{R}/pulls/{{n}}/comments", "pull_requests:read", api_pulls.list_review_comments),
]
