"""`RunRecord`: what a published run leaves for later commands on its pull request.

`/codex continue` reads how the run ended and its last commands; `/codex pick N` reads each
attempt's PR version; the next run on a same-branch PR keeps its closing line (`Fixes #N`).
Kept in Redis for `RUN_TTL` (30 days) under `app/keys.py` `run_key`. A record that cannot be
read (another version's, or edited by hand) counts as absent, never as a crash.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from redis.asyncio import Redis

from app.keys import RUN_TTL, run_key


@dataclass(frozen=True)
class Version:
    """The pull request as it reads when it carries one attempt."""

    title: str
    body: str
    labels: dict[str, bool]
    """Labels to add (True) and to remove (False)."""
    branch: str
    """Where this attempt's commit is pushed."""


@dataclass(frozen=True)
class RunRecord:
    branch: str
    """The PR's head branch."""
    stop_reason: str | None
    summary: str | None
    commands: list[str]
    """The last commands the agent ran (at most 25)."""
    closing: str
    """The PR body's last line, kept across runs."""
    attempts: dict[int, Version] = field(default_factory=dict)
    """Best-of-N: every publishable attempt's version of the PR, for `/codex pick`."""

    def to_json(self) -> str:
        data = asdict(self)
        data["attempts"] = {str(n): asdict(v) for n, v in self.attempts.items()}
        return json.dumps(data)

    @classmethod
    def from_json(cls, raw: str | bytes) -> RunRecord | None:
        try:
            data: dict[str, Any] = json.loads(raw)
            return cls(
                branch=str(data["branch"]),
                stop_reason=_text(data.get("stop_reason")),
                summary=_text(data.get("summary")),
                commands=[str(c) for c in data.get("commands") or []],
                closing=str(data.get("closing") or ""),
                attempts={
                    int(n): Version(
                        title=str(v["title"]),
                        body=str(v["body"]),
                        labels={str(k): bool(on) for k, on in v["labels"].items()},
                        branch=str(v["branch"]),
                    )
                    for n, v in (data.get("attempts") or {}).items()
                },
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            return None

    async def save(self, redis: Redis, repo: str, number: int) -> None:
        await redis.set(run_key(repo, number), self.to_json(), ex=RUN_TTL)

    @classmethod
    async def load(cls, redis: Redis, repo: str, number: int) -> RunRecord | None:
        raw = await redis.get(run_key(repo, number))
        return None if raw is None else cls.from_json(raw)


def _text(value: object) -> str | None:
    return None if value is None else str(value)
