"""REST handlers for repositories: metadata, collaborator permission, contents, refs.

Contents, refs and branches are read from the real bare repository, so whatever a test (or
the app under test) pushed is what the API reports.
"""

from __future__ import annotations

import base64
import zlib
from typing import Any

from . import gitrepo
from .errors import ApiError
from .openapi import example
from .records import LEGACY_PERMISSION, ROLES, Repo
from .routing import Call, Reply
from .shapes import node_id, repo_into, user_into
from .state import State


def get_repo(call: Call) -> Reply:
    return Reply(200, repo_into(example("full-repository"), call.repo, call.state))


def get_permission(call: Call) -> Reply:
    login = call.args[0]
    role = call.state.role(call.repo, login)
    t = example("repository-collaborator-permission-response-if-user-has-admin-permissions")
    user = user_into(t.get("user"), call.state.user(login), call.state)
    rank = ROLES.index(role)  # ROLES runs from admin down to none
    user["permissions"] = {
        name: rank <= ROLES.index(needed)
        for name, needed in (
            ("admin", "admin"),
            ("maintain", "maintain"),
            ("push", "write"),
            ("triage", "triage"),
            ("pull", "read"),
        )
    }
    user["role_name"] = role
    t.update(permission=LEGACY_PERMISSION[role], role_name=role, user=user)
    return Reply(200, t)


def _ref_param(call: Call) -> tuple[str, str]:
    """(ref name, commit sha) for ?ref=, defaulting to the default branch."""
    ref = call.query.get("ref") or call.repo.default_branch
    sha = gitrepo.resolve(call.repo.path, ref)
    if sha is None:
        raise ApiError(404, f"No commit found for the ref {ref}")
    return ref, sha


def _content_links(
    t: dict[str, Any], repo: Repo, state: State, ref: str, path: str, kind: str, sha: str
) -> None:
    api = f"{state.base_url}/repos/{repo.full_name}"
    web = f"{state.base_url}/{repo.full_name}"
    git_kind = "trees" if kind == "dir" else "blobs"
    t.update(
        type=kind,
        name=path.rsplit("/", 1)[-1],
        path=path,
        sha=sha,
        url=f"{api}/contents/{path}?ref={ref}",
        git_url=f"{api}/git/{git_kind}/{sha}",
        html_url=f"{web}/{'tree' if kind == 'dir' else 'blob'}/{ref}/{path}",
        download_url=None if kind == "dir" else f"{web}/raw/{ref}/{path}",
    )
    t["_links"] = {"self": t["url"], "git": t["git_url"], "html": t["html_url"]}


def get_contents(call: Call) -> Reply:
    path = (call.args[0] if call.args else "").strip("/")
    repo = call.repo
    ref, commit = _ref_param(call)
    entry = gitrepo.tree_entry(repo.path, commit, path)
    if entry is None:
        raise ApiError(404, "Not Found")
    kind, sha = entry
    if kind == "tree":
        items = []
        for child_kind, child_sha, child_path, size in gitrepo.list_tree(repo.path, commit, path):
            item = example("content-file-response-if-content-is-a-directory")
            shown = {"tree": "dir", "commit": "submodule"}.get(child_kind, "file")
            _content_links(item, repo, call.state, ref, child_path, shown, child_sha)
            item["size"] = size
            items.append(item)
        return Reply(200, items)
    if kind != "blob":
        raise ApiError(404, "Not Found")
    data = gitrepo.read_blob(repo.path, sha)
    encoded = base64.b64encode(data).decode()
    t = example("content-file-response-if-content-is-a-file")
    _content_links(t, repo, call.state, ref, path, "file", sha)
    t.update(
        encoding="base64",
        size=len(data),
        content="".join(encoded[i : i + 60] + "\n" for i in range(0, len(encoded), 60)),
    )
    return Reply(200, t)


def get_ref(call: Call) -> Reply:
    ref = call.args[0]
    repo = call.repo
    sha = gitrepo.resolve(repo.path, f"refs/{ref}")
    if sha is None or not ref.startswith(("heads/", "tags/")):
        raise ApiError(404, "Not Found")
    api = f"{call.state.base_url}/repos/{repo.full_name}"
    t = example("git-ref")
    t.update(
        ref=f"refs/{ref}",
        node_id=node_id("Ref", zlib.crc32(f"{repo.full_name}:{ref}".encode())),
        url=f"{api}/git/refs/{ref}",
        object={"type": "commit", "sha": sha, "url": f"{api}/git/commits/{sha}"},
    )
    return Reply(200, t)


def get_branch(call: Call) -> Reply:
    branch = call.args[0]
    repo = call.repo
    state = call.state
    sha = gitrepo.branch_sha(repo.path, branch)
    if sha is None:
        raise ApiError(404, "Branch not found")
    info = gitrepo.commit_info(repo.path, sha)
    api = f"{state.base_url}/repos/{repo.full_name}"
    web = f"{state.base_url}/{repo.full_name}"
    t = example("branch-get")
    commit = t["commit"]
    commit.update(
        sha=sha,
        node_id=node_id("Commit", int(sha[:8], 16)),
        url=f"{api}/commits/{sha}",
        html_url=f"{web}/commit/{sha}",
        comments_url=f"{api}/commits/{sha}/comments",
        author=None,
        committer=None,
        parents=[
            {"sha": p, "url": f"{api}/commits/{p}", "html_url": f"{web}/commit/{p}"}
            for p in info["parents"].split()
        ],
    )
    commit["commit"].update(
        author={
            "name": info["author_name"],
            "email": info["author_email"],
            "date": info["author_date"],
        },
        committer={
            "name": info["committer_name"],
            "email": info["committer_email"],
            "date": info["committer_date"],
        },
        message=info["message"],
        tree={"sha": info["tree"], "url": f"{api}/git/trees/{info['tree']}"},
        url=f"{api}/git/commits/{sha}",
        comment_count=0,
    )
    t.update(
        name=branch,
        _links={"self": f"{api}/branches/{branch}", "html": f"{web}/tree/{branch}"},
        protected=False,
        protection={
            "enabled": False,
            "required_status_checks": {"enforcement_level": "off", "contexts": [], "checks": []},
        },
        protection_url=f"{api}/branches/{branch}/protection",
    )
    return Reply(200, t)
