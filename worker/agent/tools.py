"""The tools the model may call, as JSON schemas, and the parsing of its calls to them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from worker.agent.patch import Patch, PatchError, parse

SHELL = "shell"
APPLY_PATCH = "apply_patch"
FINISH = "finish"

_PATCH_EXAMPLE = """*** Begin Patch
*** Update File: src/calc.py
@@ def sub(a, b):
-    return a + b
+    return a - b
*** Add File: docs/notes.md
+# Notes
*** Delete File: old.txt
*** End Patch"""

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": SHELL,
        "description": (
            "Run a shell command (sh -c) in the repository checkout inside the sandbox and return "
            "its exit code and output (head and tail kept when long). Use it to read files, "
            "search the code and run the tests; edit files with apply_patch."
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
        "name": APPLY_PATCH,
        "description": (
            "Edit files with a patch; paths are relative to the repository root. Sections: "
            "'*** Add File: path' (every line starts with '+'), '*** Delete File: path', "
            "'*** Update File: path' (optionally followed by '*** Move to: new/path') with hunks. "
            "A hunk starts with '@@' (or '@@ line' to search just after that line, such as a "
            "def or class line); each hunk line starts with ' ' (context), '-' (remove) or "
            "'+' (add). Give about 3 lines of context around each change so that it matches "
            "one place; hunks go in file order. End a hunk that reaches the end of the file "
            "with '*** End of File'. Nothing is changed unless the whole patch applies. "
            f"Example:\n{_PATCH_EXAMPLE}"
        ),
        "parameters": {
            "type": "object",
            "properties": {
                "patch": {
                    "type": "string",
                    "description": "The patch, from '*** Begin Patch' to '*** End Patch'.",
                },
            },
            "required": ["patch"],
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
class PatchCall:
    patch: Patch
    text: str
    """The patch as the model wrote it (for the work log)."""


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


def parse_call(name: str, raw: str, *, max_timeout: int) -> ShellCall | PatchCall | FinishCall:
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
    if name == APPLY_PATCH:
        patch = args.get("patch")
        if not isinstance(patch, str) or not patch.strip():
            raise BadToolCall("apply_patch needs a non-empty string 'patch'")
        try:
            return PatchCall(parse(patch), patch)
        except PatchError as error:
            raise BadToolCall(str(error)) from None
    if name == FINISH:
        summary = args.get("summary")
        if not isinstance(summary, str) or not summary.strip():
            raise BadToolCall("finish needs a non-empty string 'summary'")
        validation = args.get("validation", [])
        if not isinstance(validation, list) or not all(isinstance(v, str) for v in validation):
            raise BadToolCall("'validation' must be a list of command strings")
        return FinishCall(summary=summary, validation=validation)
    raise BadToolCall(
        f"unknown tool {name!r}; the tools are {SHELL!r}, {APPLY_PATCH!r} and {FINISH!r}"
    )
