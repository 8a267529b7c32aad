"""Host-side git: clone, check and apply the agent's diff, commit, push.

The token reaches git through environment-only config (`GIT_CONFIG_*`), so it is never written
to `.git/config`, never on a command line, and never copied into the sandbox. Hooks are off for
every command: the repository is untrusted input.
"""

from __future__ import annotations

import asyncio
import base64
import os
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path

SAFE = ("-c", "core.hooksPath=/dev/null", "-c", "protocol.file.allow=never")
DIFF_HEADER = re.compile(r"^diff --git a/(.+?) b/(.+)$")


class GitError(Exception):
    """A git command failed; the message says which and why (token-free)."""


def auth_env(token: str) -> dict[str, str]:
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "http.extraHeader",
        "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "/bin/false",
    }


async def git(
    *args: str, cwd: Path | None = None, token: str | None = None, stdin: bytes | None = None
) -> str:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": "/nonexistent",
        "GIT_CONFIG_NOSYSTEM": "1",
        "LC_ALL": "C",
    }
    if token:
        env |= auth_env(token)
    process = await asyncio.create_subprocess_exec(
        "git",
        *SAFE,
        *args,
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate(stdin)
    if process.returncode != 0:
        message = err.decode(errors="replace").strip()
        if token:
            message = message.replace(token, "[REDACTED]")
        raise GitError(f"git {args[0]} failed: {message[-2000:]}")
    return out.decode(errors="replace")


async def clone(url: str, token: str, dest: Path, ref: str) -> str:
    """Fetch `ref` (a branch or `refs/pull/N/head`) shallowly into `dest` and check it out.

    Returns the commit sha. No remote is configured, so nothing in the checkout names the
    server, let alone a credential.
    """
    await git("init", "--quiet", str(dest))
    await git("fetch", "--quiet", "--depth", "50", "--no-tags", url, ref, cwd=dest, token=token)
    await git("checkout", "--quiet", "--detach", "FETCH_HEAD", cwd=dest)
    return (await git("rev-parse", "HEAD", cwd=dest)).strip()


async def fetch(repo: Path, url: str, token: str, ref: str, local: str) -> str:
    """Fetch `ref` shallowly as `local` (a ref name) into an existing clone; returns its sha."""
    await git("fetch", "--quiet", "--depth", "1", "--no-tags", url, f"+{ref}:{local}", cwd=repo,
              token=token)  # fmt: skip
    return (await git("rev-parse", local, cwd=repo)).strip()


async def files_named(repo: Path, rev: str, name: str) -> dict[str, str]:
    """Every file called `name` in the tree of `rev` (committed content, not the work tree)."""
    listing = await git("ls-tree", "-r", "-z", "--name-only", rev, cwd=repo)
    found: dict[str, str] = {}
    for path in sorted(p for p in listing.split("\0") if posixpath.basename(p) == name):
        found[path] = await git("cat-file", "blob", f"{rev}:{path}", cwd=repo)
    return found


async def reset(repo: Path, rev: str) -> None:
    """Point the checkout at `rev` with a clean index and work tree (the next attempt's base)."""
    await git("checkout", "--quiet", "--force", "--detach", rev, cwd=repo)
    await git("clean", "--quiet", "-fdx", cwd=repo)


@dataclass(frozen=True)
class DiffCheck:
    files: list[str]
    problems: list[str]


def check_diff(diff: bytes, max_bytes: int) -> DiffCheck:
    """What the diff touches and what is wrong with it; pure, so it runs before any apply."""
    if len(diff) > max_bytes:
        return DiffCheck([], [f"the change is {len(diff)} bytes, over the {max_bytes} byte cap"])
    files: list[str] = []
    problems: list[str] = []
    current = ""
    for line in diff.decode(errors="replace").splitlines():
        if header := DIFF_HEADER.match(line):
            current = header.group(2)
            for path in {header.group(1), current}:
                problems += _path_problems(path)
            files.append(current)
        elif line.startswith(("new file mode 160000", "index ")) and " 160000" in line:
            problems.append(f"{current}: submodule changes are not allowed")
        elif line.startswith(("new file mode 120000", "new mode 120000")):
            problems.append(f"{current}: the change creates a symbolic link, which is not allowed")
    return DiffCheck(sorted(set(files)), sorted(set(problems)))


def _path_problems(path: str) -> list[str]:
    normal = posixpath.normpath(path)
    if path.startswith("/") or normal.startswith("..") or "\\" in path:
        return [f"{path}: path leaves the repository"]
    if normal == ".git" or normal.startswith(".git/"):
        return [f"{path}: changes inside .git are not allowed"]
    if normal.startswith(".github/workflows/"):
        return [f"{path}: workflow files cannot be changed by the app (no `workflows` permission)"]
    return []


async def commit(repo: Path, diff: bytes, message: str, author: str, email: str) -> str:
    """Apply `diff` to the index and commit it; returns the new commit sha."""
    await git("apply", "--index", "--binary", "--whitespace=nowarn", "-", cwd=repo, stdin=diff)
    await git(
        "-c", f"user.name={author}", "-c", f"user.email={email}",
        "commit", "--quiet", "--no-verify", "--no-gpg-sign", "-m", message,
        cwd=repo,
    )  # fmt: skip
    return (await git("rev-parse", "HEAD", cwd=repo)).strip()


async def push(
    repo: Path, url: str, token: str, branch: str, *, rev: str = "HEAD", force: bool = True
) -> None:
    """Push `rev` to `branch`. Force on our own `codex/` branches (a rerun must converge);
    never on someone else's branch, where a moved head must fail the push instead."""
    flags = ["--force"] if force else []
    refspec = f"{rev}:refs/heads/{branch}"
    await git("push", "--quiet", *flags, url, refspec, cwd=repo, token=token)
