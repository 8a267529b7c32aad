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

JOB_FUNCTION = "run_task"


class TaskStatus(StrEnum):
    QUEUED = "queued"
    PREPARING = "preparing"
    WORKING = "working"
    PUBLISHING = "publishing"
    DONE = "done"
    FAILED = "failed"


class Task(BaseModel):
    model_config = ConfigDict(frozen=True)

    repo: str
    """`owner/name` of the repository."""
    number: int
    """The issue (or pull request) number."""
    kind: Literal["issue"] = "issue"
    installation_id: int
    sender: str
    """Login of the person whose action started the task."""
    trigger: str
    """What started it, unique per trigger: `label:<delivery id>` or `comment:<comment id>`."""
    delivery_id: str
    instructions: str = ""
    """Extra text from the person who started the task."""

    @property
    def job_id(self) -> str:
        return f"task:{self.repo}#{self.number}:{self.trigger}"

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
