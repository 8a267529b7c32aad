"""GitHub clients: the App (JWT) and short-lived installation tokens narrowed to one repository.

Every client has a timeout (githubkit has none by default) and no HTTP cache (a cached issue or
permission would be stale exactly when it matters). Tokens are minted per task for one
repository with only the permissions the task needs, and revoked when the task ends.
"""

from __future__ import annotations

import base64
import json
import re
import ssl
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

import httpx
from githubkit import AppAuthStrategy, GitHub, TokenAuthStrategy
from githubkit.exception import (
    GitHubException,
    RateLimitExceeded,
    RequestError,
    RequestFailed,
    RequestTimeout,
)
from githubkit.retry import RetryChainDecision, RetryOption, RetryRateLimit, RetryServerError

if TYPE_CHECKING:
    from githubkit_schemas.latest.types import AppPermissionsType

    from app.settings import Settings

CONFIG_PATH = ".github/codex.yml"
"""A repository's configuration, read from its default branch (by `/codex help` and tasks)."""
Reaction = Literal["+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"]
WRITE_ROLES = frozenset({"admin", "maintain", "write"})
MESSAGE_LIMIT = 300
"""Characters of GitHub's error message quoted back to a person."""
TASK_PERMISSIONS: AppPermissionsType = {
    "contents": "write",
    "issues": "write",
    "pull_requests": "write",
    "metadata": "read",
}
"""The worker's per-task token: it pushes, so it is revoked when the task ends."""
FEEDBACK_PERMISSIONS: AppPermissionsType = {
    "contents": "read",
    "issues": "write",
    "pull_requests": "write",
    "metadata": "read",
}
"""The receiver's token (reactions, comments, permission checks, `/codex help` reading
`.github/codex.yml`): it cannot change code."""


@dataclass(frozen=True)
class InstallationToken:
    token: str
    expires_at: str

    def __repr__(self) -> str:
        return f"InstallationToken(expires_at={self.expires_at!r})"


class SharedTransport(httpx.AsyncHTTPTransport):
    """One connection pool and TLS context for every client githubkit makes.

    Outside `async with`, githubkit opens a new httpx client for each request and closes it
    after; with a fresh transport that means a new TLS context (tens of ms of CPU) and a new
    connection every time. Sharing this transport keeps both: the clients' `aclose` leaves it
    open, and `close` (at shutdown) really closes it."""

    def __init__(self) -> None:
        super().__init__(verify=ssl.create_default_context(), http2=False)

    async def aclose(self) -> None:
        pass

    async def close(self) -> None:
        await super().aclose()


class ShortRateLimitWait(RetryRateLimit):
    """A rate limit is waited out here only when GitHub asks for at most `longest`; a longer
    wait goes back to the queue (`worker/errors.py`), never holds a worker or a webhook."""

    def __init__(self, longest: timedelta) -> None:
        super().__init__(max_retry=1)
        self.longest = longest

    def __call__(self, exc: GitHubException, retry_count: int) -> RetryOption:
        decision = super().__call__(exc, retry_count)
        if decision.do_retry and (decision.retry_after or timedelta()) > self.longest:
            return RetryOption(False)
        return decision


RETRY = RetryChainDecision(ShortRateLimitWait(timedelta(seconds=60)), RetryServerError(3))
"""githubkit's retries, set here rather than left to its default: a 5xx is tried again 3
times (after 1, 4 and 9 s), a rate limit once if GitHub asks for at most a minute. What is
still failing after that is the error tree's to retry through the queue."""


def app_client(settings: Settings) -> GitHub[AppAuthStrategy]:
    """The App's client; every client derived from it (`with_auth`) shares its transport and
    its retries (`RETRY`)."""
    return GitHub(
        AppAuthStrategy(str(settings.app_id), settings.private_key_pem()),
        base_url=settings.github_api_url,
        timeout=settings.github_timeout,
        http_cache=False,
        auto_retry=RETRY,
        async_transport=SharedTransport(),
    )


def token_client(
    app: GitHub[AppAuthStrategy], token: InstallationToken
) -> GitHub[TokenAuthStrategy]:
    return app.with_auth(TokenAuthStrategy(token.token))


async def close(app: GitHub[Any]) -> None:
    """Close the connections of `app` and of every client derived from it."""
    transport = app.config.async_transport
    if isinstance(transport, SharedTransport):
        await transport.close()


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


async def read_file(github: GitHub[Any], repo: str, path: str) -> str | None:
    """A text file's content on the default branch, or None when there is no such file."""
    owner, name = repo.split("/", 1)
    try:
        response = await github.rest.repos.async_get_content(owner, name, path)
    except RequestFailed as error:
        if error.response.status_code == 404:
            return None
        raise
    data = response.json()
    if not isinstance(data, dict) or data.get("type") != "file":
        return None
    return base64.b64decode(str(data.get("content") or "")).decode("utf-8", "replace")


def describe_error(error: BaseException) -> str:
    """A GitHub failure as a person reads it: "GitHub answered 422: Validation Failed (A pull
    request already exists for octo:codex/1.)", from the JSON `message` and `errors` GitHub sends.

    githubkit's exceptions print as `Response(422 Unprocessable Entity, data_model=...)`, which
    names neither the reason nor what to do; the text is bounded and kept on one line."""
    if isinstance(error, RequestFailed):
        response = error.response.raw_response
        text = f"GitHub answered {response.status_code}: {_message(response)}"
        if isinstance(error, RateLimitExceeded):
            text += f" (rate limited; retry after {error.retry_after.total_seconds():.0f} s)"
        return text
    if isinstance(error, RequestTimeout):
        return f"GitHub did not answer in time ({error.request.method} {error.request.url.path})"
    if isinstance(error, RequestError):
        reason = str(error.exc) or type(error.exc).__name__
        return f"GitHub could not be reached: {_one_line(reason)}"
    return _one_line(f"{type(error).__name__}: {error}")


def _message(response: httpx.Response) -> str:
    """`message`, then the detail of each entry in `errors` (a 422 puts the reason there)."""
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return _one_line(response.reason_phrase or "no message")
    parts = [str(body.get("message") or response.reason_phrase or "no message")]
    details = []
    for item in body.get("errors") or []:
        if isinstance(item, dict):
            detail = item.get("message") or " ".join(
                str(item[key]) for key in ("resource", "field", "code") if item.get(key)
            )
            details.append(str(detail))
        elif isinstance(item, str):
            details.append(item)
    if details:
        parts.append(f"({'; '.join(details)})")
    return _one_line(" ".join(parts))


def _one_line(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"
