"""Who is calling, and may they: App JWTs, installation tokens, repository scope.

Mirrors GitHub's rules closely enough to catch real mistakes: the JWT must be RS256 with the
App's key, `iss` = App id and a lifetime of at most 10 minutes (plus 60 s of clock skew);
installation tokens must be issued, live, unrevoked, cover the repository, and carry the
permission the endpoint needs ("Resource not accessible by integration" otherwise).
"""

from __future__ import annotations

import base64
import secrets
import string
import time
from dataclasses import dataclass
from typing import Literal

import jwt

from .errors import ApiError
from .records import LEVELS, Repo, Token, now
from .state import State

SKEW = 60
MAX_JWT_LIFETIME = 600 + SKEW
NOT_ACCESSIBLE = "Resource not accessible by integration"


@dataclass(frozen=True)
class Caller:
    kind: Literal["jwt", "installation", "none", "invalid"]
    token: Token | None = None
    error: str = ""


def verify_jwt(state: State, encoded: str) -> str | None:
    """None when `encoded` is a valid App JWT, else GitHub's complaint."""
    try:
        claims = jwt.decode(
            encoded,
            state.app.public_key_pem,
            algorithms=["RS256"],
            leeway=SKEW,
            options={"require": ["iat", "exp", "iss"]},
        )
    except jwt.ExpiredSignatureError:
        return (
            "'Expiration time' claim ('exp') must be a numeric value representing the future"
            " time at which the assertion expires"
        )
    except jwt.ImmatureSignatureError:
        return (
            "'Issued at' claim ('iat') must be an Integer representing the time that the"
            " assertion was issued"
        )
    except jwt.InvalidTokenError:
        return "A JSON web token could not be decoded"
    if str(claims["iss"]) != str(state.app.app_id):
        return "A JSON web token could not be decoded"
    if int(claims["exp"]) - int(claims["iat"]) > MAX_JWT_LIFETIME:
        return "'Expiration time' claim ('exp') is too far in the future"
    if int(claims["exp"]) > time.time() + MAX_JWT_LIFETIME:
        return "'Expiration time' claim ('exp') is too far in the future"
    return None


def live_token(state: State, value: str) -> Token | None:
    with state.lock:
        token = state.tokens.get(value)
    if token is None or token.revoked or token.expires_at <= now():
        return None
    return token


def identify(state: State, authorization: str | None) -> Caller:
    """Classify an Authorization header (Bearer JWT, token/Bearer ghs_, or Basic)."""
    if not authorization:
        return Caller("none")
    scheme, _, credential = authorization.strip().partition(" ")
    scheme, credential = scheme.lower(), credential.strip()
    if scheme == "basic":
        try:
            _, _, credential = base64.b64decode(credential).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return Caller("invalid", error="Bad credentials")
    elif scheme == "bearer" and not credential.startswith("ghs_"):
        problem = verify_jwt(state, credential)
        return Caller("invalid", error=problem) if problem else Caller("jwt")
    elif scheme not in ("token", "bearer"):
        return Caller("invalid", error="Bad credentials")
    token = live_token(state, credential)
    if token is None:
        return Caller("invalid", error="Bad credentials")
    return Caller("installation", token)


def require_jwt(caller: Caller) -> None:
    if caller.kind == "jwt":
        return
    if caller.kind == "invalid":
        raise ApiError(401, caller.error)
    raise ApiError(401, "A JSON web token could not be decoded")


def require_token(caller: Caller) -> Token:
    if caller.kind == "installation" and caller.token is not None:
        return caller.token
    if caller.kind == "none":
        raise ApiError(401, "Requires authentication")
    raise ApiError(401, caller.error or "Bad credentials")


def covers(token: Token, repo: Repo) -> bool:
    if token.installation_id != repo.installation_id:
        return False
    return token.repositories is None or repo.name in token.repositories


def require_access(caller: Caller, repo: Repo, need: str) -> Token:
    """`need` is "perm:level" where perm may list alternatives: "issues|pull_requests:write"."""
    token = require_token(caller)
    if not covers(token, repo):
        if repo.private:
            raise ApiError(404, "Not Found")
        raise ApiError(403, NOT_ACCESSIBLE)
    permissions, _, level = need.partition(":")
    if not any(token.allows(p, level) for p in permissions.split("|")):
        raise ApiError(403, NOT_ACCESSIBLE)
    return token


def mint(
    state: State,
    installation_id: int,
    repositories: list[str] | None,
    permissions: dict[str, str] | None,
    length: int,
) -> Token:
    """Issue an installation token, narrowed as asked; 422 like GitHub when it can't be."""
    installation = state.installations[installation_id]
    if repositories is not None:
        for name in repositories:
            repo = state.repos.get(f"{installation.account}/{name}")
            if repo is None:
                raise ApiError(
                    422,
                    "There is at least one repository that does not exist or is not accessible"
                    " to the parent installation.",
                )
    granted = dict(installation.permissions)
    if permissions:
        for name, level in permissions.items():
            have = installation.permissions.get(name)
            if level not in LEVELS or have is None or LEVELS[have] < LEVELS[level]:
                raise ApiError(
                    422, "The permissions requested are not granted to this installation."
                )
        granted = {"metadata": "read", **permissions}
    alphabet = string.ascii_letters + string.digits
    token = Token(
        token="ghs_" + "".join(secrets.choice(alphabet) for _ in range(length)),
        installation_id=installation_id,
        repositories=tuple(repositories) if repositories is not None else None,
        permissions=granted,
        expires_at=now() + state.app.token_lifetime,
    )
    state.add_token(token)
    return token
