"""Sans-I/O parsing of `/codex ...` comments.

A command is a line that starts with `/codex`, outside quotes (`> ...`) and code blocks, so
quoting someone's command or documenting the syntax starts nothing. The first such line wins.

    /codex fix [text]      solve the issue (or address the review), with extra instructions
    /codex [text]          the same, when the text is more than one word
    /codex stop            cancel the queued or running task
    /codex help            list the commands and the effective settings
    /codex continue [text] on a PR opened incomplete: resume on its branch
    /codex pick N          on a best-of-N PR: move the PR to attempt N
    --attempts N           option (1-4): independent attempts, the best one is published
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, cast

PREFIX = "/codex"
VERBS = ("fix", "stop", "help", "continue", "pick")
MAX_ATTEMPTS = 4
ATTEMPTS = re.compile(r"(?:^|\s)--attempts(?:=|\s+)(\S+)")
FENCE = re.compile(r"^\s*(`{3,}|~{3,})")

Verb = Literal["fix", "stop", "help", "continue", "pick", "unknown"]


@dataclass(frozen=True)
class Command:
    verb: Verb
    text: str = ""
    """Free text after the verb (the extra instructions), options removed."""
    attempts: int | None = None
    error: str | None = None
    """Why the command cannot run as written; the reply quotes it."""
    word: str = ""
    """The subcommand as written, for replies about unknown ones."""
    pick: int | None = None
    """`/codex pick N`: the attempt to move the PR to."""


def command_line(body: str) -> str | None:
    """The text after `/codex` on the first command line, or None when there is none."""
    fenced = False
    for line in body.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        stripped = line.strip()
        if fenced or stripped.startswith(">"):
            continue
        if stripped == PREFIX or stripped.startswith(PREFIX + " "):
            return stripped[len(PREFIX) :].strip()
    return None


def parse(body: str) -> Command | None:
    line = command_line(body)
    if line is None:
        return None
    attempts, error = None, None
    if match := ATTEMPTS.search(line):
        value = match.group(1)
        line = (line[: match.start()] + line[match.end() :]).strip()
        if value.isdigit() and 1 <= int(value) <= MAX_ATTEMPTS:
            attempts = int(value)
        else:
            error = f"`--attempts` must be a whole number from 1 to {MAX_ATTEMPTS}, got `{value}`"
    word, _, rest = line.partition(" ")
    if not word or word.lower() == "fix":
        return Command("fix", rest.strip() if word else "", attempts, error, "fix")
    if word.lower() in ("stop", "help", "continue"):
        verb: Verb = cast("Verb", word.lower())
        return Command(verb, rest.strip(), attempts, error, word.lower())
    if word.lower() == "pick":
        number = rest.strip().lstrip("#")
        if number.isdigit() and 1 <= int(number) <= MAX_ATTEMPTS:
            return Command("pick", "", None, error, "pick", pick=int(number))
        error = f"`/codex pick` takes an attempt number from 1 to {MAX_ATTEMPTS}, got `{rest}`"
        return Command("pick", "", None, error, "pick")
    if not rest.strip():
        return Command("unknown", "", attempts, error, word)
    return Command("fix", line, attempts, error, "fix")


def usage() -> str:
    return (
        "| command | what it does |\n|---|---|\n"
        "| `/codex fix [instructions]` | work on this issue or pull request; "
        "the text is added to the instructions |\n"
        "| `/codex [instructions]` | the same |\n"
        "| `/codex stop` | cancel the queued or running task |\n"
        "| `/codex help` | this list and the settings in effect |\n"
        "| `/codex continue [instructions]` | on a PR published incomplete: resume on its "
        "branch |\n"
        "| `/codex pick N` | on a PR with several attempts: move it to attempt N |\n"
        f"| `--attempts N` | option for `fix`: 1 to {MAX_ATTEMPTS} attempts |"
    )
