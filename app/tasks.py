"""The contract between the app and the worker: what a task is and how its job is named.

A `Task` travels through Redis as JSON (never pickle: anyone who can write to Redis would run
code in the workers). Its job id is derived from what triggered it, so a redelivered webhook
maps to the same job and queues nothing new.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

JOB_FUNCTIONS = ("run_task", "run_pick")
"""The worker's arq functions: every task is `run_task` but `/codex pick`, which runs no
sandbox (`worker/pick.py`)."""


def job_function(task: Task) -> str:
    return "run_pick" if task.action == "pick" else "run_task"


class TaskStatus(StrEnum):
    """A task's phases in order; the last four are final."""

    QUEUED = "queued"
    PREPARING = "preparing"
    SETTING_UP = "setting up"
    WORKING = "working"
    VALIDATING = "validating"
    PUBLISHING = "publishing"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    REFUSED = "refused"

    @property
    def rank(self) -> int:
        return min(list(TaskStatus).index(self), FINAL_RANK)

    @property
    def final(self) -> bool:
        return self.rank == FINAL_RANK


FINAL_RANK = 6


class Task(BaseModel):
    model_config = ConfigDict(frozen=True)

    repo: str
    """`owner/name` of the repository."""
    number: int
    """The issue or pull request number."""
    kind: Literal["issue", "pull"] = "issue"
    installation_id: int
    sender: str
    """Login of the person whose action started the task."""
    trigger: str
    """What started it, unique per trigger: `label:<delivery id>` or `comment:<comment id>`."""
    delivery_id: str
    instructions: str = ""
    """Extra text from the person who started the task."""
    attempts: int | None = None
    """`--attempts N`; None: the repository's `attempts` setting."""
    action: Literal["fix", "continue", "pick"] = "fix"
    """`continue` resumes an incomplete PR on its branch; `pick` moves a PR to an attempt."""
    pick: int | None = None
    subject: str = "issue"
    """What the trigger was, for the 👀 reaction: `issue`, `issue_comment:<id>`,
    `review_comment:<id>`."""
    review_path: str | None = None
    """For a review comment: the file and line it is attached to."""
    review_line: int | None = None

    @property
    def job_id(self) -> str:
        return f"task:{self.repo}#{self.number}:{self.trigger}"

    @property
    def thread(self) -> str:
        """The issue or PR this task belongs to; one task per thread at a time."""
        return f"{self.repo}#{self.number}"

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def serialize(data: dict[str, Any]) -> bytes:
    """arq's job (de)serializer: JSON, so Redis never carries executable payloads."""
    return json.dumps(data, separators=(",", ":"), default=str).encode()


def deserialize(raw: bytes) -> dict[str, Any]:
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError("job payload is not a JSON object")
    return value
