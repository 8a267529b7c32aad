"""Tar archives for the Docker API: how files enter a sandbox without bind mounts."""

from __future__ import annotations

import io
import tarfile
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

SANDBOX_UID = 1000
"""The image's unprivileged user (`codex`), owner of everything copied in."""


def tar_tree(root: Path) -> tempfile.SpooledTemporaryFile[bytes]:
    """A tar of `root`'s contents owned by the sandbox user, without following symlinks."""
    spool = tempfile.SpooledTemporaryFile(max_size=32 * 1024 * 1024)  # noqa: SIM115 (caller closes)

    def owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = SANDBOX_UID
        info.uname = info.gname = "codex"
        return info

    with tarfile.open(fileobj=spool, mode="w") as tar:
        for child in sorted(root.iterdir()):
            tar.add(child, arcname=child.name, filter=owned)
    spool.seek(0)
    return spool


def tar_files(files: Mapping[str, bytes]) -> bytes:
    """A tar of `files` (name -> content) owned by the sandbox user."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
            info.uid = info.gid = SANDBOX_UID
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
