"""The agent's change as the host's git applies it: diffs made by a hostile sandbox git (other
prefixes, quoted names, compressed binaries) are judged by what they really change."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from worker import change

CAPS = change.Caps(file_bytes=1_000_000, total_bytes=2_000_000)
IDENTITY = ("-c", "user.name=t", "-c", "user.email=t@example.com")


def git(repo: Path, *args: str, data: bytes | None = None) -> bytes:
    return subprocess.run(
        ["git", *IDENTITY, *args], cwd=repo, check=True, capture_output=True, input=data
    ).stdout


def host_and_sandbox(tmp_path: Path) -> tuple[Path, Path, str]:
    """The host's clone and the sandbox's copy of one repository, both at the base commit."""
    host = tmp_path / "host"
    host.mkdir()
    git(host, "init", "-q", "-b", "main")
    (host / "a.txt").write_text("one\n")
    (host / "run.sh").write_text("#!/bin/sh\n")
    git(host, "add", ".")
    git(host, "commit", "-qm", "init")
    base = git(host, "rev-parse", "HEAD").decode().strip()
    sandbox = tmp_path / "sandbox"
    subprocess.run(["git", "clone", "-q", str(host), str(sandbox)], check=True)
    return host, sandbox, base


def sandbox_diff(sandbox: Path, base: str, *config: str) -> bytes:
    """What the sandbox hands over: its git, with whatever config the agent gave it."""
    flags = [arg for pair in config for arg in ("-c", pair)]
    git(sandbox, "add", "-A")
    return git(sandbox, *flags, "diff", "--cached", "--binary", base)


def stage(host: Path, base: str, diff: bytes, **kwargs: Callable[[bytes], bool]) -> change.Change:
    return asyncio.run(change.stage(host, base, diff, CAPS, **kwargs))


def test_an_ordinary_change_is_listed_by_its_real_paths(tmp_path: Path) -> None:
    host, sandbox, base = host_and_sandbox(tmp_path)
    (sandbox / "a.txt").write_text("two\n")
    (sandbox / "..foo").write_text("a name that starts with two dots stays inside\n")
    (sandbox / "run.sh").unlink()
    staged = stage(host, base, sandbox_diff(sandbox, base))
    assert staged.problems == []
    assert staged.files == ["..foo", "a.txt", "run.sh"]
    assert staged.tree is not None
    assert git(host, "status", "--porcelain") == b"", "the host's work tree and index untouched"


@pytest.mark.parametrize(
    "config",
    [("diff.mnemonicPrefix=true",), ("diff.noprefix=true",), ("core.quotePath=true",)],
)
@pytest.mark.parametrize("name", ["ci.yml", "c\ti.yml", 'c"i.yml', "c\\i.yml", "c\ni.yml"])
def test_a_workflow_file_is_refused_however_the_sandbox_git_prints_it(
    tmp_path: Path, config: tuple[str, ...], name: str
) -> None:
    host, sandbox, base = host_and_sandbox(tmp_path)
    (sandbox / ".github" / "workflows").mkdir(parents=True)
    (sandbox / ".github" / "workflows" / name).write_text("on: push\n")
    (sandbox / "a.txt").write_text("cover\n")
    staged = stage(host, base, sandbox_diff(sandbox, base, *config))
    if config == ("diff.noprefix=true",):
        # Without prefixes the host strips a real directory: the change cannot apply as made,
        # so it is refused, never applied somewhere else.
        assert staged.problems and staged.files in ([], [f".github/workflows/{name}", "a.txt"])
        return
    assert f".github/workflows/{name}" in staged.files, staged
    assert any("workflow files cannot be changed" in p for p in staged.problems), staged


def test_a_huge_file_compressed_small_is_refused_before_it_is_inflated(tmp_path: Path) -> None:
    host, sandbox, base = host_and_sandbox(tmp_path)
    with (sandbox / "zeros.bin").open("wb") as out:
        out.truncate(200 * 1024 * 1024)
    diff = sandbox_diff(sandbox, base)
    assert len(diff) < 1_500_000, "the patch on the wire is small (under the 5 MB read cap)"
    staged = stage(host, base, diff)
    assert staged.problems == [
        "a binary file of 209,715,200 bytes is over the 1,000,000 byte cap per file"
    ]


def test_sizes_are_those_of_the_applied_files(tmp_path: Path) -> None:
    host, sandbox, base = host_and_sandbox(tmp_path)
    for n in range(3):
        (sandbox / f"part{n}.txt").write_text("x" * 800_000 + "\n")
    staged = stage(host, base, sandbox_diff(sandbox, base))
    assert staged.problems == ["the change adds 2,400,003 bytes, over the 2,000,000 byte cap"]


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda s: (s / "link").symlink_to("/etc/passwd"), "`link`: the change creates a symbolic"),
        (lambda s: git(s, "update-index", "--add", "--cacheinfo",
                       f"160000,{'1' * 40},vendor/lib"), "`vendor/lib`: submodule changes"),
    ],
)  # fmt: skip
def test_links_and_submodules_are_refused(
    tmp_path: Path, make: Callable[[Path], object], problem: str
) -> None:
    host, sandbox, base = host_and_sandbox(tmp_path)
    make(sandbox)
    diff = git(sandbox, "diff", "--binary", "--cached", base) or sandbox_diff(sandbox, base)
    staged = stage(host, base, diff)
    assert any(p.startswith(problem) for p in staged.problems), staged


def test_paths_inside_git_or_outside_the_repository_never_apply(tmp_path: Path) -> None:
    host, _, base = host_and_sandbox(tmp_path)
    for path in (".git/hooks/pre-commit", "../outside.txt", "/etc/cron.d/x", "a/../../x"):
        diff = (f"diff --git a/{path} b/{path}\nnew file mode 100644\nindex 0000000..e69de29\n"
                f"--- /dev/null\n+++ b/{path}\n@@ -0,0 +1 @@\n+x\n").encode()  # fmt: skip
        staged = stage(host, base, diff)
        assert staged.problems and staged.tree is None, (path, staged)
    assert not (tmp_path / "outside.txt").exists()


def test_a_secret_in_an_added_file_is_refused_even_inside_a_binary(tmp_path: Path) -> None:
    host, sandbox, base = host_and_sandbox(tmp_path)
    secret = b"npm-token-0123456789abcdef"
    (sandbox / "blob.bin").write_bytes(b"\0\1\2" + secret + b"\0" * 100)
    diff = sandbox_diff(sandbox, base)
    assert secret not in diff, "git compressed it"
    staged = stage(host, base, diff, leaks=lambda data: secret in data)
    assert staged.problems == ["`blob.bin`: holds a secret or token, so nothing was pushed"]


def test_commit_carries_the_checked_tree_and_runs_no_hook(tmp_path: Path) -> None:
    host, sandbox, base = host_and_sandbox(tmp_path)
    marker = tmp_path / "hook-ran"
    hook = host / ".git" / "hooks" / "pre-commit"
    hook.write_text(f"#!/bin/sh\ntouch {marker}\n")
    hook.chmod(0o755)
    (sandbox / "a.txt").write_text("two\n")
    staged = stage(host, base, sandbox_diff(sandbox, base))
    assert staged.tree is not None
    sha = asyncio.run(
        change.commit(host, base, staged.tree, "Change a", "bot[bot]", "bot@example.com")
    )
    assert git(host, "show", f"{sha}:a.txt") == b"two\n"
    assert git(host, "log", "-1", "--format=%an %s", sha).strip() == b"bot[bot] Change a"
    assert not marker.exists()
