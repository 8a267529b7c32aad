"""GitHub clients: the App (JWT) and short-lived installation tokens narrowed to one repository.

Every client has a timeout (githubkit has none by default) and no HTTP cache (a cached issue or
permission would be stale exactly when it matters). Tokens are minted per task for one
repository with only the permissions the task needs, and revoked when the task ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from githubkit import AppAuthStrategy, GitHub, TokenAuthStrategy

if TYPE_CHECKING:
    from githubkit_schemas.latest.types import AppPermissionsType

    from app.settings import Settings

Reaction = Literal["+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"]
WRITE_ROLES = frozenset({"admin", "maintain", "write"})
TASK_PERMISSIONS: AppPermissionsType = {
    "contents": "write",
    "issues": "write",
    "pull_requests": "write",
    "metadata": "read",
}
"""The worker's per-task token: it pushes, so it is revoked when the task ends."""
FEEDBACK_PERMISSIONS: AppPermissionsType = {
    "issues": "write",
    "pull_requests": "write",
    "metadata": "read",
}
"""The receiver's token (reactions, comments, permission checks): it cannot touch code."""


@dataclass(frozen=True)
class InstallationToken:
    token: str
    expires_at: str

    def __repr__(self) -> str:
        return f"InstallationToken(expires_at={self.expires_at!r})"


def app_client(settings: Settings) -> GitHub[AppAuthStrategy]:
    return GitHub(
        AppAuthStrategy(str(settings.app_id), settings.private_key_pem()),
        base_url=settings.github_api_url,
        timeout=settings.github_timeout,
        http_cache=False,
    )


def token_client(settings: Settings, token: InstallationToken) -> GitHub[TokenAuthStrategy]:
    return GitHub(
        TokenAuthStrategy(token.token),
        base_url=settings.github_api_url,
        timeout=settings.github_timeout,
        http_cache=False,
    )


async def mint_token(
    github: GitHub[AppAuthStrategy], installation_id: int, repo: str
) -> InstallationToken:
    """An installation token for `repo` only, with the task's permissions (never `workflows`)."""
    response = await github.rest.apps.async_create_installation_access_token(
        installation_id,
        repositories=[repo.split("/", 1)[1]],
        permissions=TASK_PERMISSIONS,
    )
    data = response.parsed_data
    return InstallationToken(token=data.token, expires_at=str(data.expires_at))


async def revoke_token(github: GitHub[TokenAuthStrategy]) -> None:
    await github.rest.apps.async_revoke_installation_access_token()


async def role_of(github: GitHub[Any], repo: str, login: str) -> str:
    """The user's exact role on `repo` (`admin`, `maintain`, `write`, `triage`, `read`, ...)."""
    owner, name = repo.split("/", 1)
    response = await github.rest.repos.async_get_collaborator_permission_level(owner, name, login)
    return response.parsed_data.role_name


def installation_client(
    github: GitHub[AppAuthStrategy], installation_id: int, repo: str
) -> GitHub[Any]:
    """The receiver's client for one repository (token cached by githubkit for its hour)."""
    return github.with_auth(
        github.auth.as_installation(
            installation_id, repositories=[repo.split("/", 1)[1]], permissions=FEEDBACK_PERMISSIONS
        )
    )


async def react(
    github: GitHub[Any], repo: str, subject: str, number: int, content: Reaction
) -> None:
    """Add a reaction to the issue, or to the comment named by `subject` (`kind:id`)."""
    owner, name = repo.split("/", 1)
    kind, _, ident = subject.partition(":")
    if kind == "issue_comment":
        await github.rest.reactions.async_create_for_issue_comment(
            owner, name, int(ident), content=content
        )
    elif kind == "review_comment":
        await github.rest.reactions.async_create_for_pull_request_review_comment(
            owner, name, int(ident), content=content
        )
    else:
        await github.rest.reactions.async_create_for_issue(owner, name, number, content=content)
