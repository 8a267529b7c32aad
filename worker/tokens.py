"""The task's installation token, minted again before it expires, for git and REST alike.

An installation token lives one hour and a task may run longer (a long agent run, a retry):
minted once, it dies mid-task, the push gets 401 and every later status edit fails too, so the
comment says "Working" forever. Here every use asks `TokenSource` for the token, which mints a
new one (same repository, same permissions) when less than `REFRESH_BEFORE` is left, and the
REST client reads it per request. Every token minted is revoked when the task ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from githubkit import AppAuthStrategy, GitHub, TokenAuthStrategy

from app import github as gh

log = logging.getLogger(__name__)

REFRESH_BEFORE = timedelta(minutes=5)


class TokenSource:
    def __init__(
        self,
        app: GitHub[AppAuthStrategy],
        installation_id: int,
        repo: str,
        minted: Callable[[str], None],
    ) -> None:
        self.app = app
        self.installation_id = installation_id
        self.repo = repo
        self.minted = minted
        """Told every new token's value (the redactor learns it)."""
        self.issued: list[gh.InstallationToken] = []
        self._lock = asyncio.Lock()

    async def current(self) -> gh.InstallationToken:
        """A token with at least `REFRESH_BEFORE` left."""
        async with self._lock:
            if not self.issued or _left(self.issued[-1]) < REFRESH_BEFORE:
                await self._mint()
            return self.issued[-1]

    async def secret(self) -> str:
        return (await self.current()).token

    async def renew(self) -> None:
        """A new token now, whatever the last one's expiry says (GitHub answered 401)."""
        async with self._lock:
            await self._mint()

    async def _mint(self) -> None:
        token = await gh.mint_token(self.app, self.installation_id, self.repo)
        self.minted(token.token)
        self.issued.append(token)

    def client(self) -> GitHub[TokenAuthStrategy]:
        """A REST client that takes the current token for each request."""
        return self.app.with_auth(Refreshing(self))

    async def revoke_all(self) -> None:
        for token in self.issued:
            if _left(token) <= timedelta(0):
                continue
            try:
                await gh.revoke_token(gh.token_client(self.app, token))
            except Exception:
                log.warning("could not revoke an installation token for %s", self.repo)


def _left(token: gh.InstallationToken) -> timedelta:
    try:
        expires = datetime.fromisoformat(token.expires_at.replace("Z", "+00:00"))
    except ValueError:
        return timedelta(0)  # unreadable: treat as expired and mint again
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    return expires - datetime.now(UTC)


class Refreshing(TokenAuthStrategy):
    """githubkit's token strategy, reading the token from a `TokenSource` per request."""

    def __init__(self, source: TokenSource) -> None:
        super().__init__("")
        self.source = source

    def get_auth_flow(self, github: Any) -> httpx.Auth:
        return _SourceAuth(self.source)


class _SourceAuth(httpx.Auth):
    def __init__(self, source: TokenSource) -> None:
        self.source = source

    async def async_auth_flow(self, request: httpx.Request) -> Any:
        request.headers["Authorization"] = f"token {await self.source.secret()}"
        yield request
