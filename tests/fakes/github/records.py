"""The simulator's records: plain data for users, repositories, issues, tokens, and logs.

Kept apart from `State` (which owns allocation and locking) so handlers, shapes and tests can
name these types without pulling in the whole world. The NamedTuples are what tests read
back (`sim.requests`, `sim.reactions(...)`, `sim.pushes`, `sim.deliveries`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, NamedTuple

ROLES = ("admin", "maintain", "write", "triage", "read", "none")
LEGACY_PERMISSION = {
    "admin": "admin",
    "maintain": "write",
    "write": "write",
    "triage": "read",
    "read": "read",
    "none": "none",
}
REACTIONS = ("+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes")
LEVELS = {"read": 1, "write": 2, "admin": 3}


def now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class NotFoundError(KeyError):
    """The named object does not exist in the simulated world."""


class RecordedRequest(NamedTuple):
    """One request the simulator answered (REST or git)."""

    method: str
    path: str
    status: int
    auth_kind: str  # "jwt" | "installation" | "none" | "invalid"


class ReactionRecord(NamedTuple):
    """A reaction: subject is "issue:<number>", "issue_comment:<id>" or "review_comment:<id>"."""

    subject: str
    content: str
    user: str


class PushRecord(NamedTuple):
    """One `git push` that reached the simulator; `updates` is empty when it was refused."""

    full_name: str
    token: str
    updates: tuple[tuple[str, str, str], ...]  # (ref, old sha, new sha)
    status: int


class Delivery(NamedTuple):
    """One webhook delivery made by `GitHubSim.deliver`."""

    event: str
    delivery_id: str
    status: int


@dataclass
class User:
    login: str
    id: int
    type: Literal["User", "Bot", "Organization"] = "User"


@dataclass
class Repo:
    owner: str
    name: str
    id: int
    path: Path
    default_branch: str
    private: bool
    installation_id: int | None  # None: the App is not installed there (someone's fork)
    created_at: datetime
    roles: dict[str, str] = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=dict)  # name -> label id
    next_number: int = 1
    parent: str | None = None  # full name of the repository this one is a fork of

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


@dataclass
class PullInfo:
    id: int
    head: str
    base: str
    draft: bool
    head_sha: str
    base_sha: str
    merged: bool = False
    head_repo: str | None = None  # full name of a fork holding the head branch; None: same repo
    maintainer_can_modify: bool = False


@dataclass
class Issue:
    full_name: str
    number: int
    id: int
    title: str
    body: str | None
    user: str
    created_at: datetime
    updated_at: datetime
    state: str = "open"
    state_reason: str | None = None
    closed_at: datetime | None = None
    labels: list[str] = field(default_factory=list)
    pull: PullInfo | None = None

    def snapshot(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "title": self.title,
            "body": self.body,
            "state": self.state,
            "state_reason": self.state_reason,
            "labels": list(self.labels),
            "user": self.user,
            "is_pull": self.pull is not None,
            "updated_at": iso(self.updated_at),
        }


@dataclass
class Comment:
    id: int
    full_name: str
    number: int
    body: str
    user: str
    created_at: datetime
    updated_at: datetime
    kind: Literal["issue", "review"] = "issue"
    path: str | None = None
    line: int | None = None
    commit_id: str | None = None
    diff_hunk: str | None = None  # review comments: the diff up to `line`, as when made
    history: list[str] = field(default_factory=list)
    """Every body the comment had before its current one, oldest first (edits in place)."""

    def snapshot(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "body": self.body,
            "user": self.user,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "path": self.path,
            "line": self.line,
            "diff_hunk": self.diff_hunk,
            "history": list(self.history),
        }


@dataclass
class Reaction:
    id: int
    full_name: str
    subject: str
    content: str
    user: str
    created_at: datetime


@dataclass
class Installation:
    id: int
    account: str
    permissions: dict[str, str]
    created_at: datetime


@dataclass
class Token:
    """An installation access token as issued; `repositories` is None when not narrowed."""

    token: str
    installation_id: int
    repositories: tuple[str, ...] | None
    permissions: dict[str, str]
    expires_at: datetime
    revoked: bool = False

    def allows(self, permission: str, level: str) -> bool:
        have = self.permissions.get(permission)
        return have is not None and LEVELS[have] >= LEVELS[level]


@dataclass
class Fault:
    method: str
    pattern: re.Pattern[str]
    status: int
    remaining: int
    after: bool = False
    """The request takes effect, then the answer is replaced (a 502 from GitHub's edge)."""


@dataclass
class AppConfig:
    """The GitHub App the simulator hosts."""

    app_id: int
    slug: str
    name: str
    private_key_pem: str
    public_key_pem: str
    permissions: dict[str, str]
    events: list[str]
    token_length: int = 36
    token_lifetime: timedelta = timedelta(hours=1)
    """How long installation tokens live (GitHub: one hour); tests shorten it."""

    @property
    def bot_login(self) -> str:
        return f"{self.slug}[bot]"

    @property
    def bot_id(self) -> int:
        return 9_000_000 + self.app_id
