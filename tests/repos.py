"""The repositories system tests create on the GitHub simulator, and the scripted fixes for them.

Names carry a per-run token and a counter: repositories, branches and environment snapshots
outlive a test in the simulator and the Docker engine, so every test gets a repository of its own.
"""

from __future__ import annotations

import itertools
import secrets
from typing import Any

from tests.fakes.openai import finish, shell
from tests.harness import System

counter = itertools.count(1)
RUN = secrets.token_hex(3)
"""Snapshots outlive a test session in the Docker engine: names unique per run keep them apart."""

CALC = "def add(a, b):\n    return a - b\n"
"""A calculator whose `add` subtracts: what most system tests ask the model to fix."""
TEST_CALC = """\
import unittest

from calc import add


class AddTest(unittest.TestCase):
    def test_adds(self):
        self.assertEqual(add(2, 3), 5)


if __name__ == "__main__":
    unittest.main()
"""
FIX = "sed -i 's/a - b/a + b/' calc.py"
CHECK = "python3 -m unittest -q"


def new_repo(system: System, writers: tuple[str, ...] = ("alice",)) -> str:
    """A repository whose app.py says `VERSION = 1`; `writers` have write access."""
    repo = f"octo-org/triggers-{RUN}-{next(counter)}"
    system.github.create_repo(repo, {"README.md": "# hello\n", "app.py": "VERSION = 1\n"})
    for login in writers:
        system.github.set_permission(repo, login, "write")
    return repo


def bump_script(system: System, title: str, *first: list[Any]) -> None:
    """The model edits app.py (of `new_repo`) and finishes, after any `first` turns."""
    system.openai.script(
        title,
        [
            *first,
            [shell("sed -i 's/VERSION = 1/VERSION = 2/' app.py")],
            [finish("Bumped the version.", ["grep -q 'VERSION = 2' app.py"])],
        ],
    )


def script_fix(system: System, match: str) -> None:
    """The model sets `x = 2` in f.py and finishes."""
    system.openai.script(
        match,
        [
            [shell("sed -i 's/x = 1/x = 2/' f.py")],
            [finish("Set x to 2.", ["grep -q 'x = 2' f.py"])],
        ],
    )


def calc_repo(system: System, config: str, files: dict[str, str] | None = None) -> str:
    """The calculator with `.github/codex.yml` saying `config`, and any other `files`."""
    repo = f"octo-org/agent-{RUN}-{next(counter)}"
    tree = {"calc.py": CALC, "test_calc.py": TEST_CALC, ".github/codex.yml": config}
    system.github.create_repo(repo, tree | (files or {}))
    system.github.set_permission(repo, "alice", "write")
    return repo


def env_repo(system: System, config: str) -> str:
    """A repository of the owner `octo-env` (which has a secret and defaults on the server)."""
    repo = f"octo-env/project-{RUN}-{next(counter)}"
    system.github.create_repo(repo, {"README.md": "# env\n", ".github/codex.yml": config})
    system.github.set_permission(repo, "alice", "write")
    return repo
