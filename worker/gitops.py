"""Host-side git: clone, fetch, read committed files, push (the change itself: `change.py`).

The token reaches git through environment-only config (`GIT_CONFIG_*`), so it is never written
to `.git/config`, never on a command line, and never copied into the sandbox. Hooks are off for
every command: the repository is untrusted input.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import posixpath
from collections.abc import Mapping
from pathlib import Path

SAFE = ("-c", "core.hooksPath=/dev/null", "-c", "protocol.file.allow=never")


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
    *args: str,
    cwd: Path | None = None,
    token: str | None = None,
    stdin: bytes | None = None,
    env: Mapping[str, str] | None = None,
) -> str:
    """`git ARGS` with hooks off, no user or system config, and `env` added; its stdout."""
    return (await git_bytes(*args, cwd=cwd, token=token, stdin=stdin, env=env)).decode(
        errors="replace"
    )


async def git_bytes(
    *args: str,
    cwd: Path | None = None,
    token: str | None = None,
    stdin: bytes | None = None,
    env: Mapping[str, str] | None = None,
) -> bytes:
    full = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": "/nonexistent",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "LC_ALL": "C",
        **(env or {}),
    }
    if token:
        full |= auth_env(token)
    process = await asyncio.create_subprocess_exec(
        "git",
        *SAFE,
        *args,
        cwd=cwd,
        env=full,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await process.communicate(stdin)
    except BaseException:
        # A cancelled task (say, a clone its task no longer needs) must not leave git writing
        # into a directory the caller is about to remove.
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await asyncio.shield(process.wait())
        raise
    if process.returncode != 0:
        message = err.decode(errors="replace").strip()
        if token:
            message = message.replace(token, "[REDACTED]")
        raise GitError(f"git {args[0]} failed: {message[-2000:]}")
    return out


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


async def push(
    repo: Path, url: str, token: str, branch: str, *, rev: str = "HEAD", force: bool = True
) -> None:
    """Push `rev` to `branch`. Force on our own `codex/` branches (a rerun must converge);
    never on someone else's branch, where a moved head must fail the push instead."""
    flags = ["--force"] if force else []
    refspec = f"{rev}:refs/heads/{branch}"
    await git("push", "--quiet", *flags, url, refspec, cwd=repo, token=token)
