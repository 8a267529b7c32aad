"""Generated repository history: megabytes of incompressible blobs in old commits.

`git fast-import` writes them straight into one pack, stored rather than deflated
(`pack.compression=0`: random bytes do not compress) and without delta attempts
(`--big-file-threshold`), so 100 MB takes a couple of seconds. The shape is what a shallow
clone meets in a real repository with a heavy past: the big blobs live only in commits older
than the last `RECENT`, which touch one small file, so the worker's `git fetch --depth 50`
gets the small tip tree while the server still holds, and indexes, the whole history.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tests.fakes.github.gitrepo import git_env, run_git

CHUNK = 4 * 1024 * 1024
"""Bytes of one old commit's blob."""
RECENT = 60
"""Small commits on top of the heavy ones: more than the worker's fetch depth (50)."""
BIG_PATH = "history/blob.bin"
START = 1_700_000_000


@dataclass(frozen=True)
class History:
    packed_mb: float
    """The repository's packs on disk, MB (`git count-objects`)."""
    commits: int
    tip_bytes: int
    """The tip's tree: what a checkout holds."""


def _commit(out: IO[bytes], n: int, message: str, parent: str | None) -> None:
    text = message.encode()
    out.write(b"commit refs/heads/main\n")
    out.write(b"committer Bench <bench@example.com> %d +0000\n" % (START + n))
    out.write(b"data %d\n%s\n" % (len(text), text))
    if parent:
        out.write(b"from %s\n" % parent.encode())


def _inline(out: IO[bytes], path: str, data: bytes) -> None:
    out.write(b"M 100644 inline %s\ndata %d\n" % (path.encode(), len(data)))
    out.write(data)
    out.write(b"\n")


def add_history(git_dir: Path, megabytes: int) -> History:
    """Grow `main` of the bare repository `git_dir` by `megabytes` of old history."""
    parent = run_git(git_dir, "rev-parse", "main").strip()
    heavy = max(1, megabytes * 1024 * 1024 // CHUNK)
    importer = subprocess.Popen(
        ["git", f"--git-dir={git_dir}", "-c", "pack.compression=0",
         "-c", "fastimport.unpackLimit=0", "fast-import", "--quiet", "--big-file-threshold=1m"],
        stdin=subprocess.PIPE, env=git_env(),
    )  # fmt: skip
    out = importer.stdin
    assert out is not None
    with out:
        for n in range(heavy):
            _commit(out, n, f"Old data {n}", parent if n == 0 else None)
            _inline(out, BIG_PATH, os.urandom(CHUNK))
        _commit(out, heavy, "Drop the old data", None)
        out.write(f"D {BIG_PATH}\n".encode())
        for n in range(RECENT):
            _commit(out, heavy + 1 + n, f"Change {n}", None)
            _inline(out, "CHANGELOG.md", f"change {n}\n".encode())
    if importer.wait() != 0:
        raise RuntimeError(f"git fast-import failed in {git_dir}")
    return _measure(git_dir)


def _measure(git_dir: Path) -> History:
    counts = dict(
        line.split(": ", 1) for line in run_git(git_dir, "count-objects", "-v").splitlines()
    )
    tree = run_git(git_dir, "ls-tree", "-r", "-l", "main").splitlines()
    commits = int(run_git(git_dir, "rev-list", "--count", "main"))
    return History(
        packed_mb=(int(counts["size-pack"]) + int(counts["size"])) / 1024,
        commits=commits,
        tip_bytes=sum(int(line.split()[3]) for line in tree),
    )
