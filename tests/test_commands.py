"""`/codex ...` comments: what each one means, and what is not a command at all."""

from __future__ import annotations

import pytest

from app.commands import Command, parse


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("/codex fix", Command("fix", "", word="fix")),
        ("/codex", Command("fix", "", word="fix")),
        ("/codex fix use a + b please", Command("fix", "use a + b please", word="fix")),
        ("/codex make add() add", Command("fix", "make add() add", word="fix")),
        ("Thanks!\n\n/codex FIX  tidy up\nmore", Command("fix", "tidy up", word="fix")),
        ("/codex stop", Command("stop", "", word="stop")),
        ("/codex help", Command("help", "", word="help")),
        ("/codex deploy", Command("unknown", "", word="deploy")),
        ("/codex fix --attempts 3 quickly", Command("fix", "quickly", 3, word="fix")),
        ("/codex --attempts=2", Command("fix", "", 2, word="fix")),
    ],
)
def test_commands(body: str, expected: Command) -> None:
    assert parse(body) == expected


@pytest.mark.parametrize("value", ["9", "0", "two", "-1"])
def test_attempts_out_of_range_is_an_error_naming_the_value(value: str) -> None:
    command = parse(f"/codex fix --attempts {value}")
    assert command is not None and command.error is not None
    assert f"got `{value}`" in command.error and "1 to 4" in command.error


@pytest.mark.parametrize(
    "body",
    [
        "Let's not /codex fix this yet",
        "> /codex fix\n\nI agree with the above",
        "Usage:\n```\n/codex fix\n```\n",
        "~~~\n/codex stop\n~~~",
        "/codexfix",
        "",
    ],
)
def test_quotes_code_and_mentions_are_not_commands(body: str) -> None:
    assert parse(body) is None
