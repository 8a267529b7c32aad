"""The seams between the orchestration and its backends, in one place.

Implementations (Docker, the openai SDK) do not inherit from these; they only match them, and
`worker/main.py` picks them at startup.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


class ModelError(Exception):
    """The model API failed for good (after the SDK's retries); the message is for users."""

    def __init__(self, message: str, *, status: int | None = None, tries: int = 1) -> None:
        super().__init__(message)
        self.status = status
        """The HTTP status of the last answer; None for a timeout or a lost connection."""
        self.tries = tries


@dataclass(frozen=True)
class CommandResult:
    exit_code: int
    output: str
    """stdout and stderr interleaved, trimmed in the middle when long."""
    duration: float
    timed_out: bool = False


class Sandbox(Protocol):
    async def run(
        self,
        command: str,
        *,
        timeout: int,
        workdir: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> CommandResult:
        """Run `command` with `sh -c` in the sandbox; never longer than `timeout` seconds.

        `env` exists for that one command only (how setup-only secrets are passed)."""
        ...

    async def read(self, command: str, *, limit: int, timeout: int = 120) -> bytes | None:
        """The raw stdout of `command`, which only reads (it may run more than once); None
        when it fails or writes more than `limit` bytes."""
        ...

    async def put_tree(self, root: Path) -> None:
        """Copy the host directory `root` into the checkout."""
        ...

    async def read_file(self, path: str) -> bytes | None:
        """A file of the checkout (relative `path`); None when it is missing or too large."""
        ...

    async def write_files(self, files: Mapping[str, bytes | None]) -> None:
        """Write (None: delete) files of the checkout; an existing file keeps its mode."""
        ...


@dataclass(frozen=True)
class ToolCall:
    call_id: str
    name: str
    arguments: str
    """The raw JSON text the model produced; parsing it is the agent's job."""


@dataclass(frozen=True)
class ToolResult:
    call_id: str
    output: str


@dataclass(frozen=True)
class Turn:
    text: str
    calls: list[ToolCall] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0


class Conversation(Protocol):
    async def next_turn(self, results: Sequence[ToolResult], note: str | None = None) -> Turn:
        """Send the tool results (and an optional note from us) and get the model's next turn."""
        ...


class Model(Protocol):
    def start(
        self, instructions: str, prompt: str, *, model: str | None = None, effort: str | None = None
    ) -> Conversation:
        """A new conversation; `model` and `effort` override the server's defaults."""
        ...
