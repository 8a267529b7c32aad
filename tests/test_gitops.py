"""Host-side git: errors that say why without the token."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from worker import gitops


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout


def test_a_failing_git_command_says_why_without_the_token(tmp_path: Path) -> None:
    token = "ghs_" + "x" * 40
    with pytest.raises(gitops.GitError) as raised:
        asyncio.run(
            gitops.clone(f"http://127.0.0.1:1/{token}/r.git", token, tmp_path / "c", "main")
        )
    assert "git fetch failed" in str(raised.value)
    assert token not in str(raised.value)
