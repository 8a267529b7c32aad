"""The tools the model may call, as JSON schemas, and the parsing of its calls to them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

SHELL = "shell"
FINISH = "finish"

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": SHELL,
        "description": (
            "Run a shell command (sh -c) in the repository checkout inside the sandbox and return "
            "its exit code and output (head and tail kept when long). Use it to read files, "
            "edit them (sed, cat > file, python), and run the tests."
        ),
        "parameters": {
            "type": "object",
            "properties": {
                "command": {"type": "string", "description": "The command line to run."},
                "timeout_seconds": {
                    "type": "integer",
                    "description": "Stop the command after this many seconds (default 120).",
                },
                "workdir": {
                    "type": "string",
                    "description": "Directory to run in, relative to the repository root.",
                },
            },
            "required": ["command"],
            "additionalProperties": False,
        },
    },
    {
        "type": "function",
        "name": FINISH,
        "description": (
            "Finish the task. Call it once the change is made and checked. The summary becomes "
            "the pull request description; list the commands that validate the change."
        ),
        "parameters": {
            "type": "object",
            "properties": {
                "summary": {"type": "string", "description": "What changed and why (Markdown)."},
                "validation": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "Commands you ran that show the change works.",
                },
            },
            "required": ["summary"],
            "additionalProperties": False,
        },
    },
]


class BadToolCall(Exception):
    """A call the model must correct; the message is sent back to it verbatim."""


@dataclass(frozen=True)
class ShellCall:
    command: str
    timeout: int
    workdir: str | None


@dataclass(frozen=True)
class FinishCall:
    summary: str
    validation: list[str]


def _arguments(raw: str) -> dict[str, Any]:
    try:
        value = json.loads(raw or "{}")
    except json.JSONDecodeError as error:
        raise BadToolCall(f"arguments are not valid JSON ({error}); send a JSON object") from None
    if not isinstance(value, dict):
        raise BadToolCall("arguments must be a JSON object")
    return value


def parse_call(name: str, raw: str, *, max_timeout: int) -> ShellCall | FinishCall:
    args = _arguments(raw)
    if name == SHELL:
        command = args.get("command")
        if not isinstance(command, str) or not command.strip():
            raise BadToolCall("shell needs a non-empty string 'command'")
        timeout = args.get("timeout_seconds", 120)
        if not isinstance(timeout, int) or timeout < 1:
            raise BadToolCall("'timeout_seconds' must be a positive integer")
        workdir = args.get("workdir")
        if workdir is not None and not isinstance(workdir, str):
            raise BadToolCall("'workdir' must be a string")
        return ShellCall(command=command, timeout=min(timeout, max_timeout), workdir=workdir)
    if name == FINISH:
        summary = args.get("summary")
        if not isinstance(summary, str) or not summary.strip():
            raise BadToolCall("finish needs a non-empty string 'summary'")
        validation = args.get("validation", [])
        if not isinstance(validation, list) or not all(isinstance(v, str) for v in validation):
            raise BadToolCall("'validation' must be a list of command strings")
        return FinishCall(summary=summary, validation=validation)
    raise BadToolCall(f"unknown tool {name!r}; the tools are {SHELL!r} and {FINISH!r}")
