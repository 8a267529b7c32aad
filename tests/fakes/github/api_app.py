"""REST handlers for the App itself: `/app`, installations, installation tokens.

These are the endpoints githubkit's `AppAuthStrategy` / `as_installation` use to turn the
App's private key into a short-lived, optionally narrowed installation token.
"""

from __future__ import annotations

import copy
from typing import Any

from .auth import mint
from .errors import ApiError, invalid
from .openapi import example
from .records import Installation, iso
from .routing import Call, Reply
from .shapes import node_id, repo_into, set_present, stamp, user_into
from .state import State


def get_app(call: Call) -> Reply:
    state = call.state
    app = state.app
    t = example("integration")
    t.update(
        id=app.app_id,
        slug=app.slug,
        client_id=f"Iv1.sim{app.app_id:010d}",
        node_id=node_id("Integration", app.app_id),
        owner=user_into(t.get("owner"), state.user("octocat"), state),
        name=app.name,
        description="",
        external_url=state.base_url,
        html_url=f"{state.base_url}/apps/{app.slug}",
        permissions=dict(app.permissions),
        events=list(app.events),
    )
    set_present(t, installations_count=len(state.installations))
    return Reply(200, t)


def _installation_obj(template: dict[str, Any], inst: Installation, state: State) -> dict[str, Any]:
    account = state.user(inst.account)
    template.update(
        id=inst.id,
        account=user_into(template.get("account"), account, state),
        access_tokens_url=f"{state.base_url}/app/installations/{inst.id}/access_tokens",
        repositories_url=f"{state.base_url}/installation/repositories",
        html_url=f"{state.base_url}/settings/installations/{inst.id}",
        app_id=state.app.app_id,
        app_slug=state.app.slug,
        target_id=account.id,
        target_type="User",
        permissions=dict(inst.permissions),
        events=list(state.app.events),
        repository_selection="all",
        single_file_name=None,
        suspended_at=None,
        suspended_by=None,
    )
    for key in ("has_multiple_single_files", "single_file_paths"):
        template.pop(key, None)
    stamp(template, "created_at", inst.created_at)
    stamp(template, "updated_at", inst.created_at)
    return template


def get_repo_installation(call: Call) -> Reply:
    if call.repo.installation_id is None:  # e.g. someone's fork
        raise ApiError(404, "Not Found")
    inst = call.state.installations[call.repo.installation_id]
    return Reply(200, _installation_obj(example("installation"), inst, call.state))


def get_installation(call: Call) -> Reply:
    inst = call.state.installations.get(call.number())
    if inst is None:
        raise ApiError(404, "Not Found")
    return Reply(200, _installation_obj(example("base-installation"), inst, call.state))


def create_token(call: Call) -> Reply:
    state = call.state
    inst = state.installations.get(call.number())
    if inst is None:
        raise ApiError(404, "Not Found")
    fields = call.fields()
    names: list[str] | None = None
    if fields.get("repositories") is not None:
        names = fields["repositories"]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise invalid("InstallationToken", "repositories")
    if fields.get("repository_ids") is not None:
        ids = fields["repository_ids"]
        by_id = {r.id: r.name for r in state.repos.values() if r.owner == inst.account}
        if not isinstance(ids, list) or any(i not in by_id for i in ids):
            raise ApiError(
                422,
                "There is at least one repository that does not exist or is not accessible to"
                " the parent installation.",
            )
        names = [*(names or []), *(by_id[i] for i in ids)]
    permissions = fields.get("permissions")
    if permissions is not None and not isinstance(permissions, dict):
        raise invalid("InstallationToken", "permissions")
    token = mint(state, inst.id, names, permissions, state.app.token_length)
    t = example("installation-token")
    t.update(
        token=token.token,
        expires_at=iso(token.expires_at),
        permissions=dict(token.permissions),
        repository_selection="all" if names is None else "selected",
    )
    for key in ("single_file", "has_multiple_single_files", "single_file_paths"):
        t.pop(key, None)
    if names is None:
        t.pop("repositories", None)
    else:
        template = t["repositories"][0]
        repos = [state.repo(f"{inst.account}/{n}") for n in names]
        t["repositories"] = [repo_into(copy.deepcopy(template), r, state) for r in repos]
    return Reply(201, t)


def revoke_token(call: Call) -> Reply:
    assert call.token is not None
    with call.state.lock:
        call.token.revoked = True
    return Reply(204)
