"""Tool calls from the model: valid ones parse, malformed ones get an answer it can act on."""

from __future__ import annotations

import pytest

from worker.tools import BadToolCall, FinishCall, ShellCall, parse_call


def test_shell_call_with_defaults_and_a_capped_timeout() -> None:
    assert parse_call("shell", '{"command": "ls"}', max_timeout=60) == ShellCall("ls", 60, None)
    call = parse_call(
        "shell", '{"command": "ls", "timeout_seconds": 5, "workdir": "src"}', max_timeout=60
    )
    assert call == ShellCall("ls", 5, "src")


def test_finish_call() -> None:
    parsed = parse_call("finish", '{"summary": "done", "validation": ["pytest"]}', max_timeout=9)
    assert parsed == FinishCall("done", ["pytest"])


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("shell", "{not json", "arguments are not valid JSON"),
        ("shell", "[1]", "must be a JSON object"),
        ("shell", '{"command": ""}', "non-empty string 'command'"),
        ("shell", '{"command": "ls", "timeout_seconds": "soon"}', "positive integer"),
        ("finish", '{"summary": "ok", "validation": "pytest"}', "list of command strings"),
        ("browse", "{}", "unknown tool 'browse'"),
    ],
)
def test_malformed_calls_explain_themselves(name: str, raw: str, message: str) -> None:
    with pytest.raises(BadToolCall, match=message):
        parse_call(name, raw, max_timeout=60)
