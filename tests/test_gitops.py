"""Host-side git: what a diff may touch, and applying it with the repository's hooks ignored."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from worker import gitops


def diff_of(*files: str, mode: str = "100644") -> bytes:
    parts = []
    for name in files:
        parts.append(
            f"diff --git a/{name} b/{name}\nnew file mode {mode}\nindex 0000000..e69de29\n"
            f"--- /dev/null\n+++ b/{name}\n@@ -0,0 +1 @@\n+x\n"
        )
    return "".join(parts).encode()


def test_an_ordinary_change_passes_and_lists_its_files() -> None:
    check = gitops.check_diff(diff_of("src/a.py", "README.md"), 10_000)
    assert check.problems == []
    assert check.files == ["README.md", "src/a.py"]


@pytest.mark.parametrize(
    ("diff", "problem"),
    [
        (diff_of(".github/workflows/ci.yml"), "workflow files cannot be changed"),
        (diff_of("../outside.txt"), "path leaves the repository"),
        (diff_of(".git/hooks/pre-commit"), "changes inside .git are not allowed"),
        (diff_of("link", mode="120000"), "symbolic link"),
        (diff_of("vendor/lib", mode="160000"), "submodule changes are not allowed"),
        (diff_of("big.txt") * 100, "byte cap"),
    ],
)
def test_dangerous_changes_are_refused_with_a_reason(diff: bytes, problem: str) -> None:
    check = gitops.check_diff(diff, 2_000)
    assert any(problem in p for p in check.problems), check.problems


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout


def test_commit_applies_the_diff_without_running_repository_hooks(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "a.txt").write_text("one\n")
    git(repo, "add", ".")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "init")
    marker = tmp_path / "hook-ran"
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_text(f"#!/bin/sh\ntouch {marker}\n")
    hook.chmod(0o755)
    diff = b"diff --git a/a.txt b/a.txt\n--- a/a.txt\n+++ b/a.txt\n@@ -1 +1 @@\n-one\n+two\n"

    sha = asyncio.run(gitops.commit(repo, diff, "Change a", "bot[bot]", "bot@example.com"))

    assert git(repo, "show", "HEAD:a.txt") == "two\n"
    assert git(repo, "log", "-1", "--format=%H %an %s").strip() == f"{sha} bot[bot] Change a"
    assert not marker.exists()


def test_a_failing_git_command_says_why_without_the_token(tmp_path: Path) -> None:
    token = "ghs_" + "x" * 40
    with pytest.raises(gitops.GitError) as raised:
        asyncio.run(
            gitops.clone(f"http://127.0.0.1:1/{token}/r.git", token, tmp_path / "c", "main")
        )
    assert "git fetch failed" in str(raised.value)
    assert token not in str(raised.value)
