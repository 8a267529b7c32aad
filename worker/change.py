"""The agent's change, checked by the host's git: what it touches is read from the host's own
index after applying it, never from the text that git produced inside the sandbox.

The sandbox's diff is untrusted bytes. Its git may be configured to print other prefixes
(`diff.mnemonicPrefix`, `diff.noprefix`) or quoted names, and a binary patch's size on the wire
is compressed. So the host applies the bytes to a private index at the base commit, then takes
paths and modes from that index (`-z`, NUL-separated), sizes and contents from the applied
blobs, and decides the policy on those: no workflow files, no submodules, no symbolic links,
per-file and total size caps, and no live secret in any added content. The tree it built is
what gets committed, so what was checked is exactly what is pushed.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from worker.gitops import GitError, git, git_bytes
from worker.report.markdown import inline_code

SUBMODULE, SYMLINK = "160000", "120000"
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
BINARY_SIZE = re.compile(rb"^(?:literal|delta) (\d+)$", re.MULTILINE)
"""A binary patch states each inflated size: refused before anything is inflated."""


@dataclass(frozen=True)
class Change:
    """The agent's change as the host's git applied it."""

    files: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """Why it cannot be published, each written for the reviewer; empty: publishable."""
    tree: str | None = None
    """The tree of base + change, built on the host: what a commit carries."""
    added_bytes: int = 0


@dataclass(frozen=True)
class Caps:
    file_bytes: int
    total_bytes: int


@contextlib.contextmanager
def _private_index(repo: Path) -> Iterator[dict[str, str]]:
    with tempfile.TemporaryDirectory(prefix="codex-index-") as scratch:
        yield {"GIT_INDEX_FILE": os.path.join(scratch, "index")}


def path_problems(path: str) -> list[str]:
    """What is wrong with a path of the applied index (a real name, never quoted)."""
    parts = path.split("/")
    lowered = [part.lower() for part in parts]
    if ".git" in lowered:
        return [f"{inline_code(path)}: changes inside .git are not allowed"]
    if lowered[:2] == [".github", "workflows"]:
        return [
            f"{inline_code(path)}: workflow files cannot be changed by the app "
            "(no `workflows` permission)"
        ]
    return []


async def stage(
    repo: Path,
    base: str,
    diff: bytes,
    caps: Caps,
    leaks: Callable[[bytes], bool] = lambda data: False,
) -> Change:
    """Apply `diff` to a private index at `base` in the host clone `repo` and check the result.

    `leaks` says whether added content holds a live secret (the tokens, the repository's
    secrets, their encoded forms)."""
    if not diff.strip():
        return Change()
    for size in BINARY_SIZE.findall(diff):
        if int(size) > caps.file_bytes:
            return Change(problems=[f"a binary file of {int(size):,} bytes is over the "
                                    f"{caps.file_bytes:,} byte cap per file"])  # fmt: skip
    with _private_index(repo) as env:
        await git("read-tree", base, cwd=repo, env=env)
        try:
            await git("apply", "--cached", "--binary", "--whitespace=nowarn", "-", cwd=repo,
                      stdin=diff, env=env)  # fmt: skip
        except GitError as error:
            why = inline_code(str(error))
            return Change(problems=[f"the change does not apply to the base commit: {why}"])
        raw = await git("diff-index", "--cached", "-z", "--no-renames", "--raw", "--abbrev=40",
                        base, cwd=repo, env=env)  # fmt: skip
        entries = _entries(raw)
        problems: list[str] = []
        for path, mode, _ in entries:
            problems += path_problems(path)
            if mode == SUBMODULE:
                problems.append(f"{inline_code(path)}: submodule changes are not allowed")
            elif mode == SYMLINK:
                problems.append(
                    f"{inline_code(path)}: the change creates a symbolic link, which is not allowed"
                )
        blobs = [(path, sha) for path, mode, sha in entries if mode not in ("000000", SUBMODULE)]
        added, sizes = 0, await _sizes(repo, [sha for _, sha in blobs])
        for (path, _), size in zip(blobs, sizes, strict=True):
            added += size
            if size > caps.file_bytes:
                problems.append(
                    f"{inline_code(path)}: {size:,} bytes, over the {caps.file_bytes:,} byte cap"
                )
        if added > caps.total_bytes:
            problems.append(f"the change adds {added:,} bytes, over the {caps.total_bytes:,} "
                            "byte cap")  # fmt: skip
        if not problems:
            for path, sha in blobs:
                if leaks(await _blob(repo, sha)):
                    problems.append(
                        f"{inline_code(path)}: holds a secret or token, so nothing was pushed"
                    )
        tree = (await git("write-tree", cwd=repo, env=env)).strip()
    files = sorted(path for path, _, _ in entries)
    return Change(files, sorted(set(problems)), tree, added)


def _entries(raw: str) -> list[tuple[str, str, str]]:
    """(path, new mode, new sha) of each entry of `git diff-index -z --raw`."""
    fields = raw.split("\0")
    entries = []
    for i in range(0, len(fields) - 1, 2):
        meta, path = fields[i], fields[i + 1]
        _, new_mode, _, new_sha, _ = meta.lstrip(":").split(" ")
        entries.append((path, new_mode, new_sha))
    return entries


async def _sizes(repo: Path, shas: list[str]) -> list[int]:
    if not shas:
        return []
    out = await git("cat-file", "--batch-check=%(objectsize)", cwd=repo,
                    stdin="".join(f"{sha}\n" for sha in shas).encode())  # fmt: skip
    return [int(line) for line in out.split()]


async def _blob(repo: Path, sha: str) -> bytes:
    return await git_bytes("cat-file", "blob", sha, cwd=repo)


async def commit(repo: Path, base: str, tree: str, message: str, author: str, email: str) -> str:
    """A commit of `tree` on top of `base`; the work tree and index are left alone."""
    env = {
        "GIT_AUTHOR_NAME": author, "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": author, "GIT_COMMITTER_EMAIL": email,
    }  # fmt: skip
    out = await git("commit-tree", tree, "-p", base, "-m", message, cwd=repo, env=env)
    return out.strip()
