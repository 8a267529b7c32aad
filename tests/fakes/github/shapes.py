"""Dress GitHub's example objects in simulator state: users, repositories, labels.

Responses keep every field of GitHub's documented example (so githubkit's models accept
them) and overwrite the fields that carry meaning (ids, names, urls, owners, timestamps).
Templates are edited in place and returned. URLs point at the simulator, never github.com.
"""

from __future__ import annotations

import base64
import re
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from .openapi import example
from .records import Repo, User, iso
from .state import State

_HOSTS = ("https://api.github.com", "https://github.com", "https://uploads.github.com")
_REPO_API = re.compile(r"^https://api\.github\.com/repos/[^/{]+/[^/{]+")
_USER_API = re.compile(r"^https://api\.github\.com/users/[^/{]+")


def rehost(obj: Any, base: str) -> Any:
    """Point every github.com URL left in `obj` at the simulator (in place)."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            obj[key] = rehost(value, base)
    elif isinstance(obj, list):
        obj[:] = [rehost(value, base) for value in obj]
    elif isinstance(obj, str):
        for host in _HOSTS:
            if obj.startswith(host):
                return base + obj[len(host) :]
    return obj


def node_id(kind: str, number: int) -> str:
    return base64.b64encode(f"0{len(kind)}:{kind}{number}".encode()).decode()


def stamp(template: dict[str, Any], key: str, moment: datetime | None) -> None:
    """Set a timestamp keeping the example's type (webhooks sometimes use epoch ints)."""
    if key not in template:
        return
    current = template[key]
    if moment is None:
        template[key] = None
    elif isinstance(current, int) and not isinstance(current, bool):
        template[key] = int(moment.timestamp())
    else:
        template[key] = iso(moment)


def set_present(template: dict[str, Any], **values: Any) -> None:
    """Overwrite only keys the example has, so optional fields stay as documented."""
    for key, value in values.items():
        if key in template:
            template[key] = value


def user_into(template: dict[str, Any] | None, user: User, state: State) -> dict[str, Any]:
    t = template if template is not None else example("issue")["user"]
    base = state.base_url
    for key, value in list(t.items()):
        if isinstance(value, str):
            t[key] = _USER_API.sub(f"{base}/users/{user.login}", value)
    html = (
        f"{base}/apps/{user.login.removesuffix('[bot]')}"
        if user.type == "Bot"
        else (f"{base}/{user.login}")
    )
    t.update(
        login=user.login,
        id=user.id,
        node_id=node_id("Bot" if user.type == "Bot" else "User", user.id),
        avatar_url=f"{base}/avatars/u/{user.id}",
        gravatar_id="",
        url=f"{base}/users/{user.login}",
        html_url=html,
        type=user.type,
        site_admin=False,
    )
    set_present(t, name=None, email=None, user_view_type="public")
    return t


def repo_into(template: dict[str, Any], repo: Repo, state: State) -> dict[str, Any]:
    base = state.base_url
    host = urlsplit(base).netloc
    full = repo.full_name
    for key, value in list(template.items()):
        if isinstance(value, str):
            template[key] = _REPO_API.sub(f"{base}/repos/{full}", value)
    template.update(
        id=repo.id,
        node_id=node_id("Repository", repo.id),
        name=repo.name,
        full_name=full,
        private=repo.private,
        html_url=f"{base}/{full}",
        url=f"{base}/repos/{full}",
        fork=repo.parent is not None,
    )
    template["owner"] = user_into(template.get("owner"), state.user(repo.owner), state)
    template.update(visibility="private" if repo.private else "public", topics=[])
    set_present(
        template,
        clone_url=f"{base}/{full}.git",
        git_url=f"git://{host}/{full}.git",
        ssh_url=f"git@{host}:{full}.git",
        svn_url=f"{base}/{full}",
        mirror_url=None,
        homepage=None,
        description=None,
        language=None,
        default_branch=repo.default_branch,
        master_branch=repo.default_branch,
        license=None,
        template_repository=None,
        is_template=False,
        archived=False,
        disabled=False,
        forks_count=0,
        forks=0,
        stargazers_count=0,
        watchers_count=0,
        watchers=0,
        open_issues_count=0,
        open_issues=0,
        network_count=0,
        subscribers_count=0,
    )
    for moment_key in ("created_at", "updated_at", "pushed_at"):
        stamp(template, moment_key, repo.created_at)
    for key in ("parent", "source", "organization"):
        template.pop(key, None)
    # Newer than the OpenAPI examples, required by githubkit's current models.
    template.setdefault("has_discussions", False)
    return template


def label_obj(
    repo: Repo, name: str, state: State, template: dict[str, Any] | None = None
) -> dict[str, Any]:
    t = template if template is not None else example("label")
    label_id = state.label_id(repo, name)
    t.update(
        id=label_id,
        node_id=node_id("Label", label_id),
        url=f"{state.base_url}/repos/{repo.full_name}/labels/{name}",
        name=name,
        color="ededed",
        default=False,
    )
    set_present(t, description=None)
    # Newer than the examples; githubkit's webhook models require them.
    t.setdefault("archived_at", None)
    t.setdefault("archived_by", None)
    return t
