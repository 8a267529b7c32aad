"""Coloured command output reaches the model and the PR body as plain text."""

from __future__ import annotations

from tests.fakes.openai import finish, shell
from tests.harness import System
from tests.repos import calc_repo

CONFIG = """\
setup: |
  printf '\\033[1m\\033[32madded 3 packages\\033[39m\\033[22m\\n'
validate: |
  printf '\\033[31mcheck\\033[39m \\033]8;;https://example.com\\033\\\\ok\\033]8;;\\033\\\\\\n'
"""


def test_colour_codes_reach_neither_the_model_nor_the_pr_body(system: System) -> None:
    repo = calc_repo(system, CONFIG)
    number = system.github.create_issue(repo, "Colourful output", "Run it.", user="alice")
    coloured = "printf '\\033[1m\\033[31m FAIL \\033[39m\\033[22m \\033[2K\\033[1Gdone\\n'"
    system.openai.script(
        "Colourful output",
        [[shell(coloured)], [shell("echo $NO_COLOR > colour.txt")], [finish("Ran it.", [])]],
    )

    assert system.label(repo, number) == 202

    pull = system.published(repo, number)
    outputs = system.openai.tool_outputs("Colourful output")
    assert outputs[0] == "exit code: 0\n FAIL  done\n", "the model reads what a terminal shows"
    assert system.github.git(repo, "show", f"{pull['head']}:colour.txt") == "1\n", "NO_COLOR=1"
    body = pull["body"]
    assert "\x1b" not in body, "the commands are shown as written, their output as seen"
    assert "added 3 packages" in body, "the setup step's output, plain"
    assert "```text\ncheck ok\n```" in body, "the worker's own validation run, plain"
