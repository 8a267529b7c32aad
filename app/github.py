"""GitHub clients: the App (JWT) and short-lived installation tokens narrowed to one repository.

Every client has a timeout (githubkit has none by default) and no HTTP cache (a cached issue or
permission would be stale exactly when it matters). Tokens are minted per task for one
repository with only the permissions the task needs, and revoked when the task ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from githubkit import AppAuthStrategy, GitHub, TokenAuthStrategy

if TYPE_CHECKING:
    from githubkit_schemas.latest.types import AppPermissionsType

    from app.settings import Settings

WRITE_ROLES = frozenset({"admin", "maintain", "write"})
TASK_PERMISSIONS: AppPermissionsType = {
    "contents": "write",
    "issues": "write",
    "pull_requests": "write",
    "metadata": "read",
}


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


async def role_of(github: GitHub[TokenAuthStrategy], repo: str, login: str) -> str:
    """The user's exact role on `repo` (`admin`, `maintain`, `write`, `triage`, `read`, ...)."""
    owner, name = repo.split("/", 1)
    response = await github.rest.repos.async_get_collaborator_permission_level(owner, name, login)
    return response.parsed_data.role_name
