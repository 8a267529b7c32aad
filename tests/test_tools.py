"""Tool calls from the model: valid ones parse, malformed ones get an answer it can act on."""

from __future__ import annotations

import json

import pytest

from worker.agent.tools import TOOLS, BadToolCall, FinishCall, PatchCall, ShellCall, parse_call

PATCH = "*** Begin Patch\n*** Add File: notes.md\n+hi\n*** End Patch"


def test_shell_call_with_defaults_and_a_capped_timeout() -> None:
    assert parse_call("shell", '{"command": "ls"}', max_timeout=60) == ShellCall("ls", 60, None)
    call = parse_call(
        "shell", '{"command": "ls", "timeout_seconds": 5, "workdir": "src"}', max_timeout=60
    )
    assert call == ShellCall("ls", 5, "src")


def test_finish_call() -> None:
    parsed = parse_call("finish", '{"summary": "done", "validation": ["pytest"]}', max_timeout=9)
    assert parsed == FinishCall("done", ["pytest"])


def test_apply_patch_call_carries_the_parsed_patch() -> None:
    call = parse_call("apply_patch", json.dumps({"patch": PATCH}), max_timeout=60)
    assert isinstance(call, PatchCall)
    assert call.patch.paths == ["notes.md"]
    assert call.patch.apply({"notes.md": None}) == {"notes.md": "hi\n"}


def test_every_tool_offered_is_parsed() -> None:
    assert [tool["name"] for tool in TOOLS] == ["shell", "apply_patch", "finish"]
    with pytest.raises(BadToolCall, match="'shell', 'apply_patch' and 'finish'"):
        parse_call("edit", "{}", max_timeout=60)


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("shell", "{not json", "arguments are not valid JSON"),
        ("shell", "[1]", "must be a JSON object"),
        ("shell", '{"command": ""}', "non-empty string 'command'"),
        ("shell", '{"command": "ls", "timeout_seconds": "soon"}', "positive integer"),
        ("finish", '{"summary": "ok", "validation": "pytest"}', "list of command strings"),
        ("browse", "{}", "unknown tool 'browse'"),
        ("apply_patch", '{"patch": "*** Begin', "arguments are not valid JSON"),
        ("apply_patch", "{}", "non-empty string 'patch'"),
        ("apply_patch", json.dumps({"patch": PATCH[:-15]}), r"must end with a line '\*\*\* End"),
        (
            "apply_patch",
            json.dumps({"patch": PATCH.replace("+hi", "hi")}),
            r"^line 3 of the patch: every line of an added file starts with '\+', got: 'hi'$",
        ),
        (
            "apply_patch",
            json.dumps({"patch": PATCH.replace("notes.md", "../notes.md")}),
            "contains '..'",
        ),
    ],
)
def test_malformed_calls_explain_themselves(name: str, raw: str, message: str) -> None:
    with pytest.raises(BadToolCall, match=message):
        parse_call(name, raw, max_timeout=60)
